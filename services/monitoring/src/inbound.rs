//! What monitoring takes from other services' event streams: orchestration's
//! `DeploymentFinished` (recorded for DORA; a succeeded one opens the service's watch window
//! there, a rolled-back or failed one ends it) and `ArtifactRegistered` (a change's start), and
//! the catalog's services (their tier picks the thresholds) and dependencies (correlation).

use std::sync::Arc;

use flotilla_bus::CloudEvent;
use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::orchestration::v1 as orch;
use flotilla_runtime::kit::time::stored;
use flotilla_runtime::{EventHandler, HandlerError};
use prost::Message;

use crate::app::MonitoringApp;
use crate::domain::*;

pub const SOURCES: [&str; 4] = [
    "orchestration",
    "dependency-mapping",
    "risk-validation",
    "governance",
];

pub const RISK_ASSESSED: &str = "flotilla.risk.v1.RiskAssessed";
pub const APPROVAL_REQUEST_OPENED: &str = "flotilla.governance.v1.ApprovalRequestOpened";
pub const APPROVAL_GRANTED: &str = "flotilla.governance.v1.ApprovalGranted";

pub const DEPLOYMENT_FINISHED: &str = "flotilla.orchestration.v1.DeploymentFinished";
pub const ARTIFACT_REGISTERED: &str = "flotilla.orchestration.v1.ArtifactRegistered";
pub const SERVICE_REGISTERED: &str = "flotilla.dependency.v1.ServiceRegistered";
pub const DEPENDENCY_DECLARED: &str = "flotilla.dependency.v1.DependencyDeclared";
pub const DEPENDENCY_REMOVED: &str = "flotilla.dependency.v1.DependencyRemoved";
pub const SERVICE_UPDATED: &str = "flotilla.dependency.v1.ServiceUpdated";

/// The command another service's event asks for; `None` for events monitoring does not take.
pub fn command_of(m: &Monitoring, event: &CloudEvent) -> Result<Option<Command>, DomainError> {
    let bad = |reason: String| invalid(&event.ty, reason);
    let undecodable =
        |e: prost::DecodeError| bad(format!("event {} does not decode: {e}", event.id));
    let data = event.data.as_slice();
    Ok(Some(match event.ty.as_str() {
        DEPLOYMENT_FINISHED => {
            let e = orch::DeploymentFinished::decode(data).map_err(undecodable)?;
            let time = |t: Option<&prost_types::Timestamp>| {
                let at = stored(t);
                if at.0 == 0 { Timestamp::now() } else { at }
            };
            let outcome = match orch::DeploymentOutcome::try_from(e.outcome) {
                Ok(orch::DeploymentOutcome::Succeeded) => Outcome::Succeeded,
                Ok(orch::DeploymentOutcome::RolledBack) => Outcome::RolledBack,
                Ok(orch::DeploymentOutcome::Failed) => Outcome::Failed,
                _ => return Ok(None),
            };
            NoteDeployment {
                note: DeploymentNote {
                    deployment: e.deployment_id,
                    // Orchestration's release_id carries the release's name.
                    release: e.release_id,
                    service: e.service,
                    version: e.version,
                    environment: e.environment,
                    business_unit: event
                        .extension("businessunit")
                        .unwrap_or_default()
                        .to_owned(),
                    outcome,
                    started_at: time(e.started_at.as_ref()),
                    finished_at: time(e.finished_at.as_ref()),
                },
            }
            .into()
        }
        ARTIFACT_REGISTERED => {
            let a = orch::ArtifactRegistered::decode(data)
                .map_err(undecodable)?
                .artifact
                .ok_or_else(|| bad(format!("event {} names no artifact", event.id)))?;
            // The change starts at its commit when CI said when, else at the build.
            NoteArtifact {
                service: a.service,
                version: a.version,
                registered_at: stored(a.committed_at.as_ref().or(a.registered_at.as_ref())),
            }
            .into()
        }
        DEPENDENCY_DECLARED => {
            let d = dm::DependencyDeclared::decode(data)
                .map_err(undecodable)?
                .dependency
                .ok_or_else(|| bad(format!("event {} names no dependency", event.id)))?;
            NoteDependency {
                consumer: d.consumer,
                provider: d.provider,
                removed: false,
            }
            .into()
        }
        DEPENDENCY_REMOVED => {
            let d = dm::DependencyRemoved::decode(data).map_err(undecodable)?;
            NoteDependency {
                consumer: d.consumer,
                provider: d.provider,
                removed: true,
            }
            .into()
        }
        RISK_ASSESSED => {
            let a = flotilla_proto::risk::v1::RiskAssessed::decode(data).map_err(undecodable)?;
            let top = a
                .factors
                .iter()
                .max_by(|x, y| x.points.total_cmp(&y.points))
                .map(|f| format!("; most from {}: {}", f.name, f.explanation))
                .unwrap_or_default();
            NoteTimeline {
                entry: TimelineEntry {
                    at: stored(a.assessed_at.as_ref()),
                    source: "risk-validation".into(),
                    what: format!(
                        "risk assessed for {}: {} (tier {}, {}){top}",
                        a.environment, a.risk_score, a.criticality_tier, a.service
                    ),
                    reference: a.assessment_id,
                    release: a.release,
                },
            }
            .into()
        }
        APPROVAL_REQUEST_OPENED => {
            let r = flotilla_proto::governance::v1::ApprovalRequestOpened::decode(data)
                .map_err(undecodable)?;
            let facts = r.release.unwrap_or_default();
            NoteTimeline {
                entry: TimelineEntry {
                    at: stored(r.opened_at.as_ref()),
                    source: "governance".into(),
                    what: format!(
                        "approval request opened for {} (risk {}): {}",
                        facts.environment,
                        facts.risk_score,
                        r.requirements
                            .iter()
                            .map(|q| format!("{} x{}", q.role, q.count))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    reference: r.request_id,
                    release: facts.release,
                },
            }
            .into()
        }
        APPROVAL_GRANTED => {
            let g = flotilla_proto::governance::v1::ApprovalGranted::decode(data)
                .map_err(undecodable)?;
            // The request names the release.
            let Some(release) = m.approval_requests.get(&g.request_id) else {
                return Ok(None);
            };
            let a = g.approval.unwrap_or_default();
            NoteTimeline {
                entry: TimelineEntry {
                    release: release.clone(),
                    at: stored(a.approved_at.as_ref()),
                    source: "governance".into(),
                    what: format!("approved by {} as {}", a.approver, a.role),
                    reference: g.request_id,
                },
            }
            .into()
        }
        SERVICE_REGISTERED | SERVICE_UPDATED => {
            let entry = if event.ty == SERVICE_REGISTERED {
                dm::ServiceRegistered::decode(data).map(|e| e.service)
            } else {
                dm::ServiceUpdated::decode(data).map(|e| e.service)
            }
            .map_err(undecodable)?
            .ok_or_else(|| bad(format!("event {} names no service", event.id)))?;
            NoteCatalogService {
                service: entry.name,
                business_unit: entry.business_unit,
                tier: u8::try_from(entry.criticality_tier).unwrap_or(1),
            }
            .into()
        }
        _ => return Ok(None),
    }))
}

/// Applies orchestration's and the catalog's events to monitoring's one app.
pub struct Inbound(pub Arc<MonitoringApp>);

#[async_trait::async_trait]
impl EventHandler for Inbound {
    async fn handle(&self, event: &CloudEvent) -> Result<(), HandlerError> {
        self.0.take_event(event, |m, _| command_of(m, event)).await
    }
}
