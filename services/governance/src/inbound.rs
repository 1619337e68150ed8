//! What governance takes from other services' event streams: risk-validation's `RiskAssessed`
//! opens an approval request, monitoring's `RollbackThresholdBreached` a rollback decision,
//! and dependency-mapping's `ServiceRegistered` / `ServiceUpdated` record the catalog's facts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use flotilla_bus::CloudEvent;
use flotilla_runtime::kit;
use flotilla_runtime::{EventHandler, HandlerError};
use prost::Message;
use uuid::Uuid;

use crate::app::GovernanceApp;
use crate::domain::*;

/// Risk-validation's event that opens approval requests.
pub const RISK_ASSESSED: &str = "flotilla.risk.v1.RiskAssessed";
/// Risk-validation's FMEA of a release (the gate stays shut while an action is open).
pub const FMEA_RECORDED: &str = "flotilla.risk.v1.FmeaRecorded";
/// Monitoring's event that opens rollback decisions.
pub const THRESHOLD_BREACHED: &str = "flotilla.monitoring.v1.RollbackThresholdBreached";
/// The catalog's events governance takes service facts from.
pub const SERVICE_REGISTERED: &str = "flotilla.dependency.v1.ServiceRegistered";
pub const SERVICE_UPDATED: &str = "flotilla.dependency.v1.ServiceUpdated";

/// How often an event naming what is not known yet is tried before it is refused (with the
/// consumer's growing pause between tries, some minutes).
const TRIES_WHILE_UNKNOWN: u32 = 30;

/// The command another service's event asks for, with the event's id; `None` for events
/// governance does not take.
pub fn command_of(event: &CloudEvent) -> Result<Option<(Uuid, Command)>, DomainError> {
    let bad = |reason: String| invalid(&event.ty, reason);
    let undecodable =
        |e: prost::DecodeError| bad(format!("event {} does not decode: {e}", event.id));
    let byte =
        |field: &str, v: u32| u8::try_from(v).map_err(|_| bad(format!("{field} is out of range")));
    let at = |field: &str, t: Option<&prost_types::Timestamp>| {
        Ok::<_, DomainError>(crate::grpc::convert::opt_ts(field, t)?.unwrap_or_else(Timestamp::now))
    };
    let id = event.event_id().map_err(|e| bad(e.to_string()))?;
    // What the event opens is named by the event: a redelivery names the same thing.
    let opened = Uuid::new_v5(&Uuid::NAMESPACE_OID, id.as_bytes());
    let command: Command = match event.ty.as_str() {
        RISK_ASSESSED => {
            let e = flotilla_proto::risk::v1::RiskAssessed::decode(event.data.as_slice())
                .map_err(undecodable)?;
            OpenApprovalRequest {
                id: opened,
                release: ReleaseFacts {
                    tier: byte("criticality_tier", e.criticality_tier)?,
                    risk_score: byte("risk_score", e.risk_score)?,
                    release: e.release,
                    version: e.version,
                    environment: e.environment,
                    service: e.service,
                    business_unit: e.business_unit,
                    personal_data: e.handles_personal_data,
                    author: e.author,
                    committers: e.committers,
                },
                emergency: e.emergency,
                authoritative: true,
                authorized_unit: None,
                by: Actor {
                    subject: "risk-validation".into(),
                    roles: ["scheduler".to_owned()].into(),
                    business_unit: String::new(),
                },
                at: at("assessed_at", e.assessed_at.as_ref())?,
            }
            .into()
        }
        THRESHOLD_BREACHED => {
            let e = flotilla_proto::monitoring::v1::RollbackThresholdBreached::decode(
                event.data.as_slice(),
            )
            .map_err(undecodable)?;
            let observed_at = at("observed_at", e.observed_at.as_ref())?;
            OpenRollbackDecision {
                decision: RollbackDecision {
                    id: opened,
                    tier: byte("criticality_tier", e.criticality_tier)?,
                    release: e.release,
                    environment: e.environment,
                    service: e.service,
                    business_unit: e.business_unit,
                    metric: e.metric,
                    observed: e.observed,
                    opened_at: observed_at,
                    decide_by: observed_at,
                    notify: Vec::new(),
                    status: RollbackStatus::Pending,
                    overdue: false,
                    decided_by: String::new(),
                    comment: String::new(),
                },
            }
            .into()
        }
        FMEA_RECORDED => {
            let f = flotilla_proto::risk::v1::FmeaRecorded::decode(event.data.as_slice())
                .map_err(undecodable)?
                .fmea
                .ok_or_else(|| bad(format!("event {} carries no FMEA", event.id)))?;
            RecordFmeaActions {
                release: f.release,
                business_unit: f.business_unit,
                open_actions: f.open_actions,
                at: at("recorded_at", f.recorded_at.as_ref())?,
                source_event_id: id,
            }
            .into()
        }
        SERVICE_REGISTERED | SERVICE_UPDATED => {
            let entry = if event.ty == SERVICE_REGISTERED {
                flotilla_proto::dependency::v1::ServiceRegistered::decode(event.data.as_slice())
                    .map(|e| e.service)
            } else {
                flotilla_proto::dependency::v1::ServiceUpdated::decode(event.data.as_slice())
                    .map(|e| e.service)
            }
            .map_err(undecodable)?
            .ok_or_else(|| bad(format!("event {} names no service", event.id)))?;
            RecordCatalogService {
                service: CatalogService {
                    tier: byte("criticality_tier", entry.criticality_tier)?,
                    name: entry.name,
                    business_unit: entry.business_unit,
                    personal_data: entry.handles_personal_data,
                    owner_team: entry.owner_team,
                },
                source_event_id: id,
                source_sequence: event.sequence().unwrap_or(0),
            }
            .into()
        }
        _ => return Ok(None),
    };
    Ok(Some((id, command)))
}

/// Applies the catalog's, risk-validation's and monitoring's events to governance's one app.
pub struct Inbound {
    app: Arc<GovernanceApp>,
    /// Events naming what is not known yet, by id, with how often they were tried.
    waiting: Mutex<HashMap<String, u32>>,
}

impl Inbound {
    pub fn new(app: Arc<GovernanceApp>) -> Self {
        Self {
            app,
            waiting: Mutex::default(),
        }
    }
}

#[async_trait::async_trait]
impl EventHandler for Inbound {
    async fn handle(&self, event: &CloudEvent) -> Result<(), HandlerError> {
        let result = self.app.on_event(event).await;
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                waiting.remove(&event.id);
                Ok(())
            }
            // An assessment may come before the catalog's word on its service: try again later.
            Err(kit::AppError::Domain(DomainError::NotYetKnown(m))) => {
                let tries = waiting.entry(event.id.clone()).or_insert(0);
                *tries += 1;
                if *tries >= TRIES_WHILE_UNKNOWN {
                    waiting.remove(&event.id);
                    return Err(HandlerError::Reject(format!(
                        "{m} (gave up after {TRIES_WHILE_UNKNOWN} tries)"
                    )));
                }
                Err(HandlerError::Retry(m))
            }
            Err(kit::AppError::Domain(e)) => Err(HandlerError::Reject(e.to_string())),
            // The store, a conflict or a stopped service: the event is delivered again.
            Err(e) => Err(HandlerError::Retry(e.to_string())),
        }
    }
}
