//! Risk-validation's events as stored: protobuf payloads of `flotilla.risk.v1.*`, schema
//! version 1; `CanaryJudged` is also the contract orchestration consumes. Decoding takes what
//! was recorded as it is.

use flotilla_core::decider::{StoredEvents, own_type};
use flotilla_proto::risk::v1 as pb;
use prost::Message;

use crate::domain::*;
use crate::messages::{judged_of, judged_pb};

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
        };
        (format!("{PREFIX}{name}"), SCHEMA_VERSION, payload)
    }

    fn decode(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<Option<Event>, String> {
        match own_type(PREFIX, SCHEMA_VERSION, event_type, schema_version)? {
            None => Ok(None),
            Some("CanaryJudged") => {
                let m = pb::CanaryJudged::decode(payload).map_err(|e| e.to_string())?;
                let j = judged_of(m.judgement.unwrap_or_default())?;
                Ok(Some(Event::CanaryJudged(Box::new(j))))
            }
            Some(other) => Err(format!("{PREFIX}{other} is not a risk-validation event")),
        }
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
            by: "rita".into(),
            at: Timestamp(1_764_547_200_000_000),
        };
        let d = RiskValidation::default()
            .decide(Command::JudgeCanary(c))
            .expect("judged");
        d.events.into_iter().next().expect("one event")
    }

    #[test]
    fn every_event_type_encodes_as_recorded_and_decodes() {
        let event = judged();
        let (ty, version, payload) = RiskEvents.encode(&event);
        assert_eq!(ty, "flotilla.risk.v1.CanaryJudged");
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/golden/{ty}.v{version}.bin"));
        flotilla_core::testing::golden(&file, &payload);
        let stored = std::fs::read(&file).expect("golden file");
        let decoded = RiskEvents
            .decode(&ty, version, &stored)
            .expect("decodes")
            .expect("its own type");
        // NaN fields compare unequal: compare the re-encoding instead.
        assert_eq!(RiskEvents.encode(&decoded).2, stored, "round-trips");
        let Event::CanaryJudged(j) = decoded;
        assert_eq!(j.judgement.label, JudgementLabel::Fail);
        assert!(j.judgement.metrics[0].critical_failure);
    }
}
