//! Monitoring's events as stored: protobuf payloads of `flotilla.monitoring.v1.*`, schema
//! version 1. `RollbackThresholdBreached` (governance) and `RollbackRequested` (orchestration)
//! are contracts other services consume. Decoding takes what was recorded as it is.

use flotilla_core::decider::{StoredEvents, own_type};
use flotilla_proto::monitoring::v1 as pb;
use flotilla_runtime::kit::time::stored;
use prost::Message;

use crate::domain::*;
use crate::messages::*;

const PREFIX: &str = "flotilla.monitoring.v1.";
/// Schema version of every monitoring event today.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, Default)]
pub struct MonitoringEvents;

impl StoredEvents<Event> for MonitoringEvents {
    fn encode(&self, event: &Event) -> (String, u32, Vec<u8>) {
        let (name, payload) = match event {
            Event::HealthCheckDefined(c) => (
                "HealthCheckDefined",
                pb::HealthCheckDefined {
                    check: Some(check_pb(c)),
                }
                .encode_to_vec(),
            ),
            Event::HealthCheckRemoved { service, name } => (
                "HealthCheckRemoved",
                pb::HealthCheckRemoved {
                    name: name.clone(),
                    service: service.clone(),
                }
                .encode_to_vec(),
            ),
            Event::WatchPolicySet {
                version,
                policy,
                by,
                at,
            } => (
                "WatchPolicySet",
                pb::WatchPolicySet {
                    version: *version,
                    policy: Some(policy_pb(policy)),
                    set_by: by.clone(),
                    set_at: Some(ts(*at)),
                }
                .encode_to_vec(),
            ),
            Event::CatalogServiceNoted {
                service,
                business_unit,
                tier,
            } => (
                "CatalogServiceNoted",
                pb::CatalogServiceNoted {
                    service: service.clone(),
                    business_unit: business_unit.clone(),
                    criticality_tier: u32::from(*tier),
                }
                .encode_to_vec(),
            ),
            Event::DeploymentNoted(d) => (
                "DeploymentNoted",
                pb::DeploymentNoted {
                    deployment_id: d.deployment.clone(),
                    release: d.release.clone(),
                    service: d.service.clone(),
                    version: d.version.clone(),
                    environment: d.environment.clone(),
                    business_unit: d.business_unit.clone(),
                    outcome: outcome_pb(d.outcome) as i32,
                    started_at: Some(ts(d.started_at)),
                    finished_at: Some(ts(d.finished_at)),
                }
                .encode_to_vec(),
            ),
            Event::ArtifactNoted {
                service,
                version,
                registered_at,
            } => (
                "ArtifactNoted",
                pb::ArtifactNoted {
                    service: service.clone(),
                    version: version.clone(),
                    registered_at: Some(ts(*registered_at)),
                }
                .encode_to_vec(),
            ),
            Event::TimelineNoted(e) => (
                "TimelineNoted",
                pb::TimelineNoted {
                    entry: Some(entry_pb(e)),
                }
                .encode_to_vec(),
            ),
            Event::PostmortemRecorded(p) => (
                "PostmortemRecorded",
                pb::PostmortemRecorded {
                    postmortem: Some(postmortem_pb(p, &[])),
                }
                .encode_to_vec(),
            ),
            Event::TicketRecorded(t) => (
                "TicketRecorded",
                pb::TicketRecorded {
                    ticket: Some(ticket_pb(t)),
                }
                .encode_to_vec(),
            ),
            Event::AdoptionTargetDeclared(t) => (
                "AdoptionTargetDeclared",
                pb::AdoptionTargetDeclared {
                    target: Some(target_pb(t)),
                }
                .encode_to_vec(),
            ),
            Event::AdoptionMeasured {
                release,
                feature,
                value,
                at,
            } => (
                "AdoptionMeasured",
                pb::AdoptionMeasured {
                    release: release.clone(),
                    feature: feature.clone(),
                    value: *value,
                    measured_at: Some(ts(*at)),
                }
                .encode_to_vec(),
            ),
            Event::DependencyNoted {
                consumer,
                provider,
                removed,
            } => (
                "DependencyNoted",
                pb::DependencyNoted {
                    consumer: consumer.clone(),
                    provider: provider.clone(),
                    removed: *removed,
                }
                .encode_to_vec(),
            ),
            Event::WatchOpened(w) => (
                "WatchOpened",
                pb::WatchOpened {
                    watch: Some(watch_pb(w)),
                }
                .encode_to_vec(),
            ),
            Event::SamplesObserved {
                watch,
                metric,
                count,
                worst,
                last_at,
                source,
            } => (
                "SamplesObserved",
                pb::SamplesObserved {
                    watch_id: watch.to_string(),
                    metric: metric.clone(),
                    count: *count,
                    worst: *worst,
                    last_at: Some(ts(*last_at)),
                    source: source.clone(),
                }
                .encode_to_vec(),
            ),
            Event::RollbackThresholdBreached(b) => {
                ("RollbackThresholdBreached", breach_pb(b).encode_to_vec())
            }
            Event::RollbackRequested(r) => ("RollbackRequested", request_pb(r).encode_to_vec()),
            Event::WatchClosed { watch, status, at } => (
                "WatchClosed",
                pb::WatchClosed {
                    watch_id: watch.to_string(),
                    status: status_pb(*status) as i32,
                    closed_at: Some(ts(*at)),
                }
                .encode_to_vec(),
            ),
        };
        (format!("{PREFIX}{name}"), SCHEMA_VERSION, payload)
    }

    fn decode(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<Option<Event>, String> {
        fn message<M: Message + Default>(payload: &[u8]) -> Result<M, String> {
            M::decode(payload).map_err(|e| e.to_string())
        }
        let uuid = |field: &str, s: &str| -> Result<uuid::Uuid, String> {
            s.parse()
                .map_err(|_| format!("{field} {:?} is not a uuid", names::shown(s)))
        };
        let Some(name) = own_type(PREFIX, SCHEMA_VERSION, event_type, schema_version)? else {
            return Ok(None);
        };
        let event = match name {
            "HealthCheckDefined" => {
                let m: pb::HealthCheckDefined = message(payload)?;
                Event::HealthCheckDefined(Box::new(check_of(m.check.unwrap_or_default())))
            }
            "HealthCheckRemoved" => {
                let m: pb::HealthCheckRemoved = message(payload)?;
                Event::HealthCheckRemoved {
                    service: m.service,
                    name: m.name,
                }
            }
            "WatchPolicySet" => {
                let m: pb::WatchPolicySet = message(payload)?;
                Event::WatchPolicySet {
                    version: m.version,
                    policy: policy_of(m.policy.unwrap_or_default()),
                    by: m.set_by,
                    at: stored(m.set_at.as_ref()),
                }
            }
            "CatalogServiceNoted" => {
                let m: pb::CatalogServiceNoted = message(payload)?;
                Event::CatalogServiceNoted {
                    service: m.service,
                    business_unit: m.business_unit,
                    tier: u8::try_from(m.criticality_tier).unwrap_or(u8::MAX),
                }
            }
            "DeploymentNoted" => {
                let m: pb::DeploymentNoted = message(payload)?;
                Event::DeploymentNoted(Box::new(DeploymentNote {
                    deployment: m.deployment_id,
                    release: m.release,
                    service: m.service,
                    version: m.version,
                    environment: m.environment,
                    business_unit: m.business_unit,
                    outcome: outcome_of(m.outcome),
                    started_at: stored(m.started_at.as_ref()),
                    finished_at: stored(m.finished_at.as_ref()),
                }))
            }
            "ArtifactNoted" => {
                let m: pb::ArtifactNoted = message(payload)?;
                Event::ArtifactNoted {
                    service: m.service,
                    version: m.version,
                    registered_at: stored(m.registered_at.as_ref()),
                }
            }
            "TimelineNoted" => {
                let m: pb::TimelineNoted = message(payload)?;
                Event::TimelineNoted(Box::new(entry_of(m.entry.unwrap_or_default())))
            }
            "PostmortemRecorded" => {
                let m: pb::PostmortemRecorded = message(payload)?;
                Event::PostmortemRecorded(Box::new(postmortem_of(m.postmortem.unwrap_or_default())))
            }
            "TicketRecorded" => {
                let m: pb::TicketRecorded = message(payload)?;
                Event::TicketRecorded(Box::new(ticket_of(m.ticket.unwrap_or_default())))
            }
            "AdoptionTargetDeclared" => {
                let m: pb::AdoptionTargetDeclared = message(payload)?;
                Event::AdoptionTargetDeclared(Box::new(target_of(m.target.unwrap_or_default())))
            }
            "AdoptionMeasured" => {
                let m: pb::AdoptionMeasured = message(payload)?;
                Event::AdoptionMeasured {
                    release: m.release,
                    feature: m.feature,
                    value: m.value,
                    at: stored(m.measured_at.as_ref()),
                }
            }
            "DependencyNoted" => {
                let m: pb::DependencyNoted = message(payload)?;
                Event::DependencyNoted {
                    consumer: m.consumer,
                    provider: m.provider,
                    removed: m.removed,
                }
            }
            "WatchOpened" => {
                let m: pb::WatchOpened = message(payload)?;
                Event::WatchOpened(Box::new(watch_of(m.watch.unwrap_or_default())?))
            }
            "SamplesObserved" => {
                let m: pb::SamplesObserved = message(payload)?;
                Event::SamplesObserved {
                    watch: uuid("watch_id", &m.watch_id)?,
                    metric: m.metric,
                    count: m.count,
                    worst: m.worst,
                    last_at: stored(m.last_at.as_ref()),
                    source: m.source,
                }
            }
            "RollbackThresholdBreached" => {
                Event::RollbackThresholdBreached(Box::new(breach_of(message(payload)?)?))
            }
            "RollbackRequested" => {
                Event::RollbackRequested(Box::new(request_of(message(payload)?)?))
            }
            "WatchClosed" => {
                let m: pb::WatchClosed = message(payload)?;
                Event::WatchClosed {
                    watch: uuid("watch_id", &m.watch_id)?,
                    status: status_of(m.status),
                    at: stored(m.closed_at.as_ref()),
                }
            }
            other => return Err(format!("{PREFIX}{other} is not a monitoring event")),
        };
        Ok(Some(event))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use flotilla_core::testing::Scenario;
    use uuid::Uuid;

    use super::*;

    /// One event of every type, as the domain decides them.
    fn every_type() -> Vec<Event> {
        let at = |m: i64| Timestamp(1_764_547_200_000_000 + m * 60_000_000);
        let mut s = Scenario::<Monitoring>::default();
        let mut events = Vec::new();
        let mut run = |c: Command| {
            let d = s.apply(c).expect("accepted");
            events.extend(d.events);
        };
        run(NoteCatalogService {
            service: "checkout".into(),
            business_unit: "payments".into(),
            tier: 2,
        }
        .into());
        run(SetWatchPolicy {
            policy: WatchPolicy::default(),
            by: "admin".into(),
            at: at(0),
        }
        .into());
        run(DefineHealthCheck {
            check: HealthCheck {
                name: "checkout_success_ratio".into(),
                service: "checkout".into(),
                environment: "prod".into(),
                business_unit: "payments".into(),
                promql: "sum(rate(orders_paid[5m])) / sum(rate(orders_placed[5m]))".into(),
                comparison: Comparison::Below,
                threshold: 0.995,
                skip_nan: true,
                description: "orders paid / orders placed".into(),
            },
        }
        .into());
        run(NoteDependency {
            consumer: "checkout".into(),
            provider: "payments-ledger".into(),
            removed: false,
        }
        .into());
        run(NoteArtifact {
            service: "checkout".into(),
            version: "2.1.0".into(),
            registered_at: at(-90),
        }
        .into());
        for d in ["d1", "d2"] {
            run(NoteDeployment {
                note: DeploymentNote {
                    deployment: d.into(),
                    release: "checkout-2.1.0".into(),
                    service: "checkout".into(),
                    version: "2.1.0".into(),
                    environment: "prod".into(),
                    business_unit: "payments".into(),
                    outcome: Outcome::Succeeded,
                    started_at: at(0),
                    finished_at: at(1),
                },
            }
            .into());
        }
        run(RecordSamples {
            service: "checkout".into(),
            environment: "prod".into(),
            metric: "error_rate".into(),
            samples: vec![
                Sample {
                    at: at(2),
                    value: 0.001,
                },
                Sample {
                    at: at(3),
                    value: 0.2,
                },
            ],
            source: "push".into(),
            seed: Uuid::from_u128(0x51),
            now: at(3),
        }
        .into());
        run(RecordTicket {
            ticket: Ticket {
                id: "INC-4711".into(),
                // Recorded before tickets had a reporter: still decodes.
                reporter: String::new(),
                service: "checkout".into(),
                environment: "prod".into(),
                business_unit: String::new(),
                severity: Severity::Sev2,
                summary: "card payments declined".into(),
                labels: vec!["payments".into()],
                opened_at: at(30),
                release: String::new(),
                link: String::new(),
            },
        }
        .into());
        run(DeclareAdoptionTarget {
            target: AdoptionTarget {
                release: "checkout-2.1.0".into(),
                feature: "wallet".into(),
                metric: "wallet_share".into(),
                target: 0.3,
                due: at(20_160),
                business_unit: "payments".into(),
                by: "pia".into(),
            },
        }
        .into());
        run(RecordAdoption {
            release: "checkout-2.1.0".into(),
            feature: "wallet".into(),
            value: 0.12,
            at: at(60),
        }
        .into());
        run(NoteTimeline {
            entry: TimelineEntry {
                release: "checkout-2.1.0".into(),
                at: at(0),
                source: "risk-validation".into(),
                what: "risk assessed for prod: 24 (tier 2, checkout)".into(),
                reference: String::new(),
            },
        }
        .into());
        run(RecordPostmortem {
            release: "checkout-2.1.0".into(),
            summary: "error rate rose after the deploy; rolled back in 5 min".into(),
            factors: vec![ContributingFactor {
                kind: FactorKind::Testing,
                description: "no load test of the new retry path".into(),
            }],
            actions: vec![FollowUp {
                action: "load-test retries in staging".into(),
                owner: "sam".into(),
                due: at(20_160),
                done: false,
            }],
            by: "rita".into(),
            at: at(90),
        }
        .into());
        run(RemoveHealthCheck {
            service: "checkout".into(),
            name: "checkout_success_ratio".into(),
        }
        .into());
        events
    }

    #[test]
    fn every_event_type_encodes_as_recorded_and_decodes() {
        let mut seen = BTreeSet::new();
        for event in every_type() {
            let (ty, version, payload) = MonitoringEvents.encode(&event);
            if !seen.insert(ty.clone()) {
                continue;
            }
            let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/golden/{ty}.v{version}.bin"));
            flotilla_core::testing::golden(&file, &payload);
            let stored = std::fs::read(&file).expect("golden file");
            let decoded = MonitoringEvents
                .decode(&ty, version, &stored)
                .expect("decodes")
                .expect("its own type");
            assert_eq!(decoded, event, "{ty} decodes as recorded");
        }
        assert_eq!(
            seen.iter()
                .map(|t| t.trim_start_matches(PREFIX))
                .collect::<Vec<_>>(),
            [
                "AdoptionMeasured",
                "AdoptionTargetDeclared",
                "ArtifactNoted",
                "CatalogServiceNoted",
                "DependencyNoted",
                "DeploymentNoted",
                "HealthCheckDefined",
                "HealthCheckRemoved",
                "PostmortemRecorded",
                "RollbackRequested",
                "RollbackThresholdBreached",
                "SamplesObserved",
                "TicketRecorded",
                "TimelineNoted",
                "WatchClosed",
                "WatchOpened",
                "WatchPolicySet",
            ],
            "every stored type has a golden file"
        );
    }
}
