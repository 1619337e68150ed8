//! Risk-validation's events as stored: protobuf payloads of `flotilla.risk.v1.*`, schema
//! version 1. `RiskAssessed` and `FmeaRecorded` are contracts governance consumes,
//! `CanaryJudged` and `ValidationRecorded` contracts orchestration consumes; the `*Noted`
//! events keep what was taken from other services. Decoding takes what
//! was recorded as it is.

use flotilla_core::decider::{StoredEvents, own_type};
use flotilla_proto::risk::v1 as pb;
use prost::Message;

use crate::domain::*;
use flotilla_runtime::kit::time::stored;

use crate::messages::*;

const PREFIX: &str = "flotilla.risk.v1.";
/// Schema version of every risk-validation event today.
pub const SCHEMA_VERSION: u32 = 1;

/// Risk-validation's events to and from stored payloads.
#[derive(Clone, Copy, Debug, Default)]
pub struct RiskEvents;

impl StoredEvents<Event> for RiskEvents {
    fn encode(&self, event: &Event) -> (String, u32, Vec<u8>) {
        let (name, payload) = match event {
            Event::CanaryJudged(j) => (
                "CanaryJudged",
                pb::CanaryJudged {
                    judgement: Some(judged_pb(j)),
                }
                .encode_to_vec(),
            ),
            Event::RiskAssessed(a) => ("RiskAssessed", assessed_pb(a).encode_to_vec()),
            Event::PlanNoted { release, impact } => (
                "PlanNoted",
                pb::PlanNoted {
                    release: release.clone(),
                    impact: impact.clone(),
                }
                .encode_to_vec(),
            ),
            Event::FmeaRecorded(f) => (
                "FmeaRecorded",
                pb::FmeaRecorded {
                    fmea: Some(fmea_pb(f)),
                }
                .encode_to_vec(),
            ),
            Event::ValidationRecorded(v) => (
                "ValidationRecorded",
                pb::ValidationRecorded {
                    validation: Some(validation_pb(v)),
                }
                .encode_to_vec(),
            ),
            Event::ReleaseNoted(r) => ("ReleaseNoted", release_noted_pb(r).encode_to_vec()),
            Event::CatalogServiceNoted(e) => (
                "CatalogServiceNoted",
                pb::CatalogServiceNoted {
                    service: e.service.clone(),
                    business_unit: e.business_unit.clone(),
                    criticality_tier: u32::from(e.tier),
                    handles_personal_data: e.personal_data,
                }
                .encode_to_vec(),
            ),
            Event::PromotionPathNoted {
                business_unit,
                environments,
            } => (
                "PromotionPathNoted",
                pb::PromotionPathNoted {
                    business_unit: business_unit.clone(),
                    environments: environments.clone(),
                }
                .encode_to_vec(),
            ),
            Event::DeploymentNoted(d) => (
                "DeploymentNoted",
                pb::DeploymentNoted {
                    deployment_id: d.deployment.clone(),
                    release: d.release.clone(),
                    service: d.service.clone(),
                    environment: d.environment.clone(),
                    outcome: outcome_pb(d.outcome) as i32,
                    finished_at: Some(ts(d.finished_at)),
                }
                .encode_to_vec(),
            ),
            Event::RiskWeightsSet {
                version,
                weights,
                by,
                at,
            } => (
                "RiskWeightsSet",
                pb::RiskWeightsSet {
                    version: *version,
                    weights: Some(weights_pb(weights)),
                    set_by: by.clone(),
                    set_at: Some(ts(*at)),
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
        let Some(name) = own_type(PREFIX, SCHEMA_VERSION, event_type, schema_version)? else {
            return Ok(None);
        };
        let event = match name {
            "CanaryJudged" => {
                let m: pb::CanaryJudged = message(payload)?;
                Event::CanaryJudged(Box::new(judged_of(m.judgement.unwrap_or_default())?))
            }
            "RiskAssessed" => Event::RiskAssessed(Box::new(assessed_of(message(payload)?)?)),
            "PlanNoted" => {
                let m: pb::PlanNoted = message(payload)?;
                Event::PlanNoted {
                    release: m.release,
                    impact: m.impact,
                }
            }
            "FmeaRecorded" => {
                let m: pb::FmeaRecorded = message(payload)?;
                Event::FmeaRecorded(Box::new(fmea_of(m.fmea.unwrap_or_default())))
            }
            "ValidationRecorded" => {
                let m: pb::ValidationRecorded = message(payload)?;
                Event::ValidationRecorded(Box::new(validation_of(
                    m.validation.unwrap_or_default(),
                )?))
            }
            "ReleaseNoted" => Event::ReleaseNoted(Box::new(release_noted_of(message(payload)?))),
            "CatalogServiceNoted" => {
                let m: pb::CatalogServiceNoted = message(payload)?;
                Event::CatalogServiceNoted(CatalogEntry {
                    service: m.service,
                    business_unit: m.business_unit,
                    tier: u8::try_from(m.criticality_tier).unwrap_or(u8::MAX),
                    personal_data: m.handles_personal_data,
                })
            }
            "PromotionPathNoted" => {
                let m: pb::PromotionPathNoted = message(payload)?;
                Event::PromotionPathNoted {
                    business_unit: m.business_unit,
                    environments: m.environments,
                }
            }
            "DeploymentNoted" => {
                let m: pb::DeploymentNoted = message(payload)?;
                Event::DeploymentNoted(DeploymentNote {
                    deployment: m.deployment_id,
                    release: m.release,
                    service: m.service,
                    environment: m.environment,
                    outcome: outcome_of(m.outcome),
                    finished_at: stored(m.finished_at.as_ref()),
                })
            }
            "RiskWeightsSet" => {
                let m: pb::RiskWeightsSet = message(payload)?;
                Event::RiskWeightsSet {
                    version: m.version,
                    weights: weights_of(&m.weights.unwrap_or_default()),
                    by: m.set_by,
                    at: stored(m.set_at.as_ref()),
                }
            }
            other => return Err(format!("{PREFIX}{other} is not a risk-validation event")),
        };
        Ok(Some(event))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use flotilla_core::decider::Decider;

    use super::*;
    use crate::domain::judge::*;

    /// A judgement decided by the domain, as a canary's analysis would get it.
    fn judged() -> Event {
        let config = crate::messages::config_of(flotilla_proto::risk::v1::JudgeConfig {
            metrics: vec![
                pb::MetricConfig {
                    name: "latency_p99".into(),
                    direction: pb::Direction::Increase as i32,
                    critical: true,
                    ..Default::default()
                },
                pb::MetricConfig {
                    name: "error_rate".into(),
                    nan_strategy: pb::NanStrategy::Replace as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        let c = JudgeCanary {
            id: uuid::Uuid::from_u128(0x1d),
            deployment: "0190d5a2-7b3c-7d4e-8f10-aa11bb22cc33".into(),
            analysis: "canary-judge".into(),
            release: "payments-2.0.1".into(),
            environment: "prod".into(),
            business_unit: "payments".into(),
            config,
            samples: vec![
                MetricSamples {
                    name: "latency_p99".into(),
                    experiment: vec![412.0, 398.0, 420.0, 405.0, 431.0],
                    control: vec![180.0, 175.0, 182.0, 178.0, 185.0],
                },
                MetricSamples {
                    name: "error_rate".into(),
                    experiment: vec![0.01, f64::NAN, 0.02],
                    control: vec![0.01, 0.01, 0.02],
                },
            ],
            sources: Vec::new(),
            by: "rita".into(),
            at: Timestamp(1_764_547_200_000_000),
        };
        let d = RiskValidation::default()
            .decide(Command::JudgeCanary(c))
            .expect("judged");
        d.events.into_iter().next().expect("one event")
    }

    /// One event of every type, as the domain decides them.
    fn every_type() -> Vec<Event> {
        use crate::domain::validation::{Evidence, NamedCheck};
        let at = Timestamp(1_764_547_200_000_000);
        let mut s = flotilla_core::testing::Scenario::<RiskValidation>::default();
        let mut events = vec![judged()];
        let mut run = |c: Command| {
            let d = s.apply(c).expect("accepted");
            events.extend(d.events);
        };
        run(NoteCatalogService {
            entry: CatalogEntry {
                service: "payments-ledger".into(),
                business_unit: "payments".into(),
                tier: 1,
                personal_data: true,
            },
            seed: uuid::Uuid::from_u128(0x2a),
            at,
        }
        .into());
        run(NotePromotionPath {
            business_unit: "payments".into(),
            environments: vec!["staging".into(), "prod".into()],
            seed: uuid::Uuid::from_u128(0x2b),
            at,
        }
        .into());
        run(NoteDeployment {
            note: DeploymentNote {
                deployment: "0190d5a2-7b3c-7d4e-8f10-aa11bb22cc34".into(),
                release: "payments-1.9.0".into(),
                service: "payments-ledger".into(),
                environment: "prod".into(),
                outcome: Outcome::RolledBack,
                finished_at: at,
            },
        }
        .into());
        run(NoteRelease {
            release: NotedRelease {
                id: "0190d5a2-7b3c-7d4e-8f10-aa11bb22cc35".into(),
                name: "payments-2.0.1".into(),
                business_unit: "payments".into(),
                emergency: false,
                created_by: "rita".into(),
                items: vec![NotedItem {
                    service: "payments-ledger".into(),
                    version: "2.0.1".into(),
                    migrations: 2,
                    schema_changes: 1,
                }],
                created_at: at,
            },
        }
        .into());
        run(AssessRelease {
            release_id: "0190d5a2-7b3c-7d4e-8f10-aa11bb22cc35".into(),
            impact: vec!["payments-api".into(), "payments-web".into()],
            seed: uuid::Uuid::from_u128(0x2c),
            at,
        }
        .into());
        run(SetRiskWeights {
            weights: RiskWeights {
                emergency: 20,
                ..RiskWeights::default()
            },
            by: "admin".into(),
            seed: uuid::Uuid::from_u128(0x2d),
            at,
        }
        .into());
        run(RecordFmea {
            release: "payments-2.0.1".into(),
            modes: vec![FailureMode {
                name: "double charge".into(),
                effect: "customers pay twice".into(),
                severity: 9,
                occurrence: 4,
                detection: 3,
                action: "idempotency keys on capture".into(),
                action_owner: "sam".into(),
                closed: None,
            }],
            by: "quinn".into(),
            seed: uuid::Uuid::from_u128(0x2e),
            at,
        }
        .into());
        run(RecordValidation {
            id: uuid::Uuid::from_u128(0x2f),
            release: "payments-2.0.1".into(),
            environment: "staging".into(),
            evidence: Evidence::SecurityControls(vec![NamedCheck {
                name: "tls".into(),
                passed: false,
                detail: "TLS 1.0 accepted".into(),
            }]),
            refs: vec!["https://scan.example.com/7".into()],
            by: "sam".into(),
            at,
        }
        .into());
        events
    }

    #[test]
    fn every_event_type_encodes_as_recorded_and_decodes() {
        let mut seen = std::collections::BTreeSet::new();
        for event in every_type() {
            let (ty, version, payload) = RiskEvents.encode(&event);
            // One golden file per type: the first event of each type.
            if !seen.insert(ty.clone()) {
                continue;
            }
            let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/golden/{ty}.v{version}.bin"));
            flotilla_core::testing::golden(&file, &payload);
            let stored = std::fs::read(&file).expect("golden file");
            let decoded = RiskEvents
                .decode(&ty, version, &stored)
                .expect("decodes")
                .expect("its own type");
            // NaN fields compare unequal: compare the re-encoding instead.
            assert_eq!(RiskEvents.encode(&decoded).2, stored, "{ty} round-trips");
            if let Event::CanaryJudged(j) = &decoded {
                assert_eq!(j.judgement.label, JudgementLabel::Fail);
                assert!(j.judgement.metrics[0].critical_failure);
            }
        }
        let expected = [
            "CanaryJudged",
            "CatalogServiceNoted",
            "DeploymentNoted",
            "FmeaRecorded",
            "PlanNoted",
            "PromotionPathNoted",
            "ReleaseNoted",
            "RiskAssessed",
            "RiskWeightsSet",
            "ValidationRecorded",
        ];
        assert_eq!(
            seen.iter()
                .map(|t| t.trim_start_matches(PREFIX))
                .collect::<Vec<_>>(),
            expected,
            "every stored type has a golden file"
        );
    }
}
