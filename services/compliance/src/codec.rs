//! Compliance's events as stored: protobuf payloads of `flotilla.compliance.v1.*`, schema
//! version 1. Decoding takes what was recorded as it is: a ledgered event keeps every field as
//! the service published it, valid or not.

use flotilla_core::chain::Hash;
use flotilla_core::decider::{StoredEvents, own_type};
use flotilla_core::event::Metadata;
use flotilla_proto::compliance::v1 as pb;
use flotilla_proto::eventstore::v1 as es;
use flotilla_runtime::kit::time::{stored, to_proto};
use prost::Message;

use crate::domain::*;
use crate::retention_pb::*;

pub const PREFIX: &str = "flotilla.compliance.v1.";
/// Schema version of every compliance event today.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, Default)]
pub struct ComplianceEvents;

fn opt_uuid(u: Option<uuid::Uuid>) -> String {
    u.map(|u| u.to_string()).unwrap_or_default()
}

/// A ledgered event as the eventstore message (what replays and bundles carry).
pub fn recorded_pb(e: &SourceEvent) -> es::RecordedEvent {
    es::RecordedEvent {
        global_position: e.position,
        stream_id: e.stream.clone(),
        stream_version: e.stream_version,
        event_id: e.id.to_string(),
        event_type: e.event_type.clone(),
        schema_version: e.schema_version,
        payload: e.payload.clone(),
        metadata: Some(es::EventMetadata {
            actor: e.metadata.actor.clone(),
            business_unit: e.metadata.business_unit.clone(),
            correlation_id: opt_uuid(e.metadata.correlation_id),
            causation_id: opt_uuid(e.metadata.causation_id),
            traceparent: e.metadata.traceparent.clone().unwrap_or_default(),
            command_id: opt_uuid(e.metadata.command_id),
        }),
        recorded_at: Some(to_proto(e.recorded_at)),
        prev_hash: e.prev_hash.0.to_vec(),
        hash: e.hash.0.to_vec(),
    }
}

/// A ledgered event back from its message; fields that do not parse are kept as near as they
/// can be (an unparsable id is the nil uuid) so what was recorded always replays.
pub fn source_event_of(m: pb::EventLedgered) -> SourceEvent {
    let empty_traceparent = m.empty_traceparent;
    let r = m.event.unwrap_or_default();
    let md = r.metadata.unwrap_or_default();
    let uuid = |s: &str| s.parse::<uuid::Uuid>().ok();
    let hash = |b: &[u8]| Hash::from_slice(b).unwrap_or_default();
    SourceEvent {
        service: m.service,
        source: m.source,
        aggregate_type: m.aggregate_type,
        position: r.global_position,
        stream: r.stream_id,
        stream_version: r.stream_version,
        id: uuid(&r.event_id).unwrap_or_default(),
        event_type: r.event_type,
        schema_version: r.schema_version,
        payload: r.payload,
        metadata: Metadata {
            actor: md.actor,
            business_unit: md.business_unit,
            correlation_id: uuid(&md.correlation_id),
            causation_id: uuid(&md.causation_id),
            traceparent: (empty_traceparent || !md.traceparent.is_empty())
                .then_some(md.traceparent),
            command_id: uuid(&md.command_id),
        },
        recorded_at: stored(r.recorded_at.as_ref()),
        prev_hash: hash(&r.prev_hash),
        hash: hash(&r.hash),
        withheld: m.withheld,
    }
}

pub fn kind_pb(k: AlertKind) -> pb::AlertKind {
    match k {
        AlertKind::Gap => pb::AlertKind::Gap,
        AlertKind::Fork => pb::AlertKind::Fork,
        AlertKind::Mismatch => pb::AlertKind::Mismatch,
        AlertKind::Altered => pb::AlertKind::Altered,
    }
}

pub fn alert_pb(a: &Alert) -> pb::ChainAlertRaised {
    pb::ChainAlertRaised {
        number: a.number,
        kind: kind_pb(a.kind) as i32,
        service: a.service.clone(),
        sequence: a.sequence,
        last: a.last,
        expected: a.expected.clone(),
        found: a.found.clone(),
        detail: a.detail.clone(),
        event_id: opt_uuid(a.event_id),
        raised_at: Some(to_proto(a.raised_at)),
    }
}

pub fn checkpoint_pb(c: &Checkpoint) -> pb::CheckpointSigned {
    pb::CheckpointSigned {
        size: c.size,
        root: c.root.to_vec(),
        note: c.note.clone(),
        signed_at: Some(to_proto(c.signed_at)),
    }
}

impl StoredEvents<Event> for ComplianceEvents {
    fn encode(&self, event: &Event) -> (String, u32, Vec<u8>) {
        let (name, payload) = match event {
            Event::Ledgered(l) => (
                "EventLedgered",
                pb::EventLedgered {
                    index: l.index,
                    service: l.event.service.clone(),
                    source: l.event.source.clone(),
                    aggregate_type: l.event.aggregate_type.clone(),
                    event: Some(recorded_pb(&l.event)),
                    withheld: l.event.withheld,
                    content_matches: l.content_matches,
                    ledgered_at: Some(to_proto(l.at)),
                    empty_traceparent: l.event.metadata.traceparent.as_deref() == Some(""),
                }
                .encode_to_vec(),
            ),
            Event::AlertRaised(a) => ("ChainAlertRaised", alert_pb(a).encode_to_vec()),
            Event::CheckpointSigned(c) => ("CheckpointSigned", checkpoint_pb(c).encode_to_vec()),
            Event::RetentionPolicySet(p) => (
                "RetentionPolicySet",
                pb::RetentionPolicySet {
                    policy: Some(policy_pb(p)),
                }
                .encode_to_vec(),
            ),
            Event::LegalHoldPlaced(h) => (
                "LegalHoldPlaced",
                pb::LegalHoldPlaced {
                    hold: Some(hold_pb(h)),
                }
                .encode_to_vec(),
            ),
            Event::LegalHoldReleased(r) => ("LegalHoldReleased", released_pb(r).encode_to_vec()),
            Event::SubjectErased(e) => (
                "SubjectErased",
                pb::SubjectErased {
                    erasure: Some(erasure_pb(e)),
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
        Ok(Some(match name {
            "EventLedgered" => {
                let m: pb::EventLedgered = message(payload)?;
                let (index, content_matches, at) =
                    (m.index, m.content_matches, stored(m.ledgered_at.as_ref()));
                Event::Ledgered(Box::new(Ledgered {
                    index,
                    event: source_event_of(m),
                    content_matches,
                    at,
                }))
            }
            "ChainAlertRaised" => {
                let m: pb::ChainAlertRaised = message(payload)?;
                Event::AlertRaised(Alert {
                    number: m.number,
                    kind: match pb::AlertKind::try_from(m.kind) {
                        Ok(pb::AlertKind::Gap) => AlertKind::Gap,
                        Ok(pb::AlertKind::Fork) => AlertKind::Fork,
                        Ok(pb::AlertKind::Altered) => AlertKind::Altered,
                        _ => AlertKind::Mismatch,
                    },
                    service: m.service,
                    sequence: m.sequence,
                    last: m.last,
                    expected: m.expected,
                    found: m.found,
                    detail: m.detail,
                    event_id: m.event_id.parse().ok(),
                    raised_at: stored(m.raised_at.as_ref()),
                })
            }
            "CheckpointSigned" => {
                let m: pb::CheckpointSigned = message(payload)?;
                Event::CheckpointSigned(Checkpoint {
                    size: m.size,
                    root: <[u8; 32]>::try_from(m.root.as_slice()).unwrap_or_default(),
                    note: m.note,
                    signed_at: stored(m.signed_at.as_ref()),
                })
            }
            "RetentionPolicySet" => {
                let m: pb::RetentionPolicySet = message(payload)?;
                Event::RetentionPolicySet(policy_of(m.policy.unwrap_or_default()))
            }
            "LegalHoldPlaced" => {
                let m: pb::LegalHoldPlaced = message(payload)?;
                Event::LegalHoldPlaced(hold_of(m.hold.unwrap_or_default()))
            }
            "LegalHoldReleased" => Event::LegalHoldReleased(released_of(message(payload)?)),
            "SubjectErased" => {
                let m: pb::SubjectErased = message(payload)?;
                Event::SubjectErased(erasure_of(m.erasure.unwrap_or_default()))
            }
            other => return Err(format!("{PREFIX}{other} is not known to this build")),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::domain::tests::event_at;

    fn every_type() -> Vec<Event> {
        let at = Timestamp(1_767_225_600_000_000);
        vec![
            Event::Ledgered(Box::new(Ledgered {
                index: 0,
                event: event_at("governance", 1, flotilla_core::chain::Hash::GENESIS),
                content_matches: true,
                at,
            })),
            Event::AlertRaised(Alert {
                number: 1,
                kind: AlertKind::Mismatch,
                service: "governance".into(),
                sequence: 7,
                last: 7,
                expected: "ab".repeat(32),
                found: "cd".repeat(32),
                detail: "position 7 names a previous hash that is not position 6's".into(),
                event_id: Some(uuid::Uuid::from_u128(7)),
                raised_at: at,
            }),
            Event::CheckpointSigned(Checkpoint {
                size: 1,
                root: [9; 32],
                note: "flotilla.example/ledger\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n\n— flotilla.example/ledger AAAAAA==\n".into(),
                signed_at: at,
            }),
            Event::RetentionPolicySet(RetentionPolicy {
                name: "sox-change-records".into(),
                regulation: Regulation::Sox,
                data_class: DataClass {
                    services: vec!["governance".into(), "orchestration".into()],
                    event_types: vec!["flotilla.governance.v1.".into()],
                    business_unit: "payments".into(),
                },
                keep_days: 2557,
                personal_data_days: 0,
                set_by: "pii:v1:00000000000000000000000000000001:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
                set_at: at,
            }),
            Event::LegalHoldPlaced(LegalHold {
                id: "hold-1".into(),
                matter: "Doe v. Bank".into(),
                data_class: DataClass::default(),
                subjects: vec![uuid::Uuid::from_u128(1)],
                placed_by: "compliance".into(),
                placed_at: at,
                released_by: String::new(),
                released_at: None,
            }),
            Event::LegalHoldReleased(ReleaseLegalHold {
                id: "hold-1".into(),
                by: "compliance".into(),
                at,
            }),
            Event::SubjectErased(Erasure {
                subject: uuid::Uuid::from_u128(1),
                reason: "GDPR art. 17 request".into(),
                request_ref: "DSR-7".into(),
                erased_by: "compliance".into(),
                erased_at: at,
                automatic: false,
            }),
        ]
    }

    #[test]
    fn every_event_type_encodes_as_recorded_and_decodes() {
        let mut seen = Vec::new();
        for event in every_type() {
            let (ty, version, payload) = ComplianceEvents.encode(&event);
            let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/golden/{ty}.v{version}.bin"));
            flotilla_core::testing::golden(&file, &payload);
            let stored = std::fs::read(&file).expect("golden file");
            let decoded = ComplianceEvents
                .decode(&ty, version, &stored)
                .expect("decodes")
                .expect("its own type");
            assert_eq!(decoded, event, "{ty} round-trips");
            seen.push(ty.trim_start_matches(PREFIX).to_owned());
        }
        assert_eq!(
            seen,
            [
                "EventLedgered",
                "ChainAlertRaised",
                "CheckpointSigned",
                "RetentionPolicySet",
                "LegalHoldPlaced",
                "LegalHoldReleased",
                "SubjectErased"
            ],
            "every stored type has a golden file"
        );
    }

    /// The chain hash tells an empty traceparent from none: so does the ledger's record.
    #[test]
    fn an_empty_traceparent_stays_empty_not_absent() {
        let mut e = event_at("governance", 1, flotilla_core::chain::Hash::GENESIS);
        e.metadata.traceparent = Some(String::new());
        e.hash = e.recomputed_hash();
        let l = Event::Ledgered(Box::new(Ledgered {
            index: 0,
            event: e.clone(),
            content_matches: true,
            at: Timestamp(1),
        }));
        let (ty, v, payload) = ComplianceEvents.encode(&l);
        let Some(Event::Ledgered(back)) =
            ComplianceEvents.decode(&ty, v, &payload).expect("decodes")
        else {
            panic!("not ledgered")
        };
        assert_eq!(back.event.metadata.traceparent.as_deref(), Some(""));
        assert_eq!(back.event.recomputed_hash(), e.hash);
        let ce = crate::grpc::replay::cloud_event(&back.event);
        assert_eq!(
            ce.extensions.get("traceparent").map(String::as_str),
            Some("")
        );
    }

    #[test]
    fn a_ledgered_event_with_fields_that_do_not_parse_still_decodes() {
        let m = pb::EventLedgered {
            service: "governance".into(),
            event: Some(es::RecordedEvent {
                event_id: "not-a-uuid".into(),
                prev_hash: vec![1, 2],
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = ComplianceEvents
            .decode(&format!("{PREFIX}EventLedgered"), 1, &m.encode_to_vec())
            .expect("decodes");
        assert!(matches!(e, Some(Event::Ledgered(_))));
    }
}
