//! Group-commit planning, shared by every backend. A writer collects many appends, reads the
//! current versions of their streams and the idempotency keys already recorded, and this pure
//! function decides each append's verdict, assigns positions and versions, and chains hashes.
//! The backend then writes the rows in one transaction.

use std::collections::HashMap;

use crate::chain::{ChainHead, HashInput, event_hash};
use crate::event::{RecordedEvent, Timestamp};
use crate::ids::StreamId;
use crate::store::{AppendOutcome, AppendRequest, Result, StoreError};

/// What a batch will write, and each append's verdict (in request order).
#[derive(Debug, Default)]
pub struct BatchPlan {
    pub rows: Vec<RecordedEvent>,
    pub verdicts: Vec<Result<AppendOutcome>>,
    /// Head after the batch.
    pub head: ChainHead,
    /// Final version of every stream the batch writes to.
    pub stream_versions: Vec<(StreamId, u64)>,
    /// Idempotency keys first recorded by this batch.
    pub keys: Vec<(String, StreamId, AppendOutcome)>,
}

/// Plans a batch. `versions` holds the current version of every stream named in `requests`
/// (None = no stream; a stream missing from the map is taken as absent); `known_keys` holds the
/// recorded outcome of any of the requests' idempotency keys already in the store.
pub fn plan_batch(
    head: ChainHead,
    versions: &HashMap<StreamId, Option<u64>>,
    known_keys: &HashMap<String, AppendOutcome>,
    requests: Vec<AppendRequest>,
    recorded_at: Timestamp,
) -> BatchPlan {
    let mut plan = BatchPlan {
        head,
        ..BatchPlan::default()
    };
    let mut current: HashMap<StreamId, Option<u64>> = HashMap::new();
    let mut new_keys: HashMap<String, AppendOutcome> = HashMap::new();
    let mut touched: Vec<StreamId> = Vec::new();
    let mut touched_set: std::collections::HashSet<StreamId> = std::collections::HashSet::new();
    plan.rows
        .reserve(requests.iter().map(|r| r.events.len()).sum());
    for request in requests {
        if let Err(e) = request.validate() {
            plan.verdicts.push(Err(e));
            continue;
        }
        if let Some(key) = &request.idempotency_key
            && let Some(done) = known_keys.get(key).or_else(|| new_keys.get(key))
        {
            plan.verdicts.push(Ok(AppendOutcome {
                deduplicated: true,
                ..*done
            }));
            continue;
        }
        let mut condition_failed = None;
        for (stream, expected) in &request.conditions {
            let v = *current
                .entry(stream.clone())
                .or_insert_with(|| versions.get(stream).copied().flatten());
            if !expected.admits(v) {
                condition_failed = Some(StoreError::WrongExpectedVersion {
                    stream_id: stream.clone(),
                    expected: *expected,
                    actual: v,
                });
                break;
            }
        }
        if let Some(e) = condition_failed {
            plan.verdicts.push(Err(e));
            continue;
        }
        let stream_current = *current
            .entry(request.stream_id.clone())
            .or_insert_with(|| versions.get(&request.stream_id).copied().flatten());
        if !request.expected.admits(stream_current) {
            plan.verdicts.push(Err(StoreError::WrongExpectedVersion {
                stream_id: request.stream_id,
                expected: request.expected,
                actual: stream_current,
            }));
            continue;
        }
        let first_position = plan.head.position + 1;
        let mut version = stream_current.map_or(0, |v| v + 1);
        for e in request.events {
            let global_position = plan.head.position + 1;
            let hash = event_hash(&HashInput {
                prev_hash: &plan.head.hash,
                global_position,
                stream_id: request.stream_id.as_str(),
                stream_version: version,
                event_id: &e.event_id,
                event_type: &e.event_type,
                schema_version: e.schema_version,
                payload: &e.payload,
                metadata: &e.metadata,
                recorded_at,
            });
            plan.rows.push(RecordedEvent {
                global_position,
                stream_id: request.stream_id.clone(),
                stream_version: version,
                event_id: e.event_id,
                event_type: e.event_type,
                schema_version: e.schema_version,
                payload: e.payload,
                metadata: e.metadata,
                recorded_at,
                prev_hash: plan.head.hash,
                hash,
            });
            plan.head = ChainHead {
                position: global_position,
                hash,
            };
            version += 1;
        }
        let last_version = version - 1;
        if touched_set.insert(request.stream_id.clone()) {
            touched.push(request.stream_id.clone());
        }
        current.insert(request.stream_id.clone(), Some(last_version));
        let outcome = AppendOutcome {
            first_position,
            last_position: plan.head.position,
            stream_version: last_version,
            deduplicated: false,
        };
        if let Some(key) = request.idempotency_key {
            new_keys.insert(key.clone(), outcome);
            plan.keys.push((key, request.stream_id, outcome));
        }
        plan.verdicts.push(Ok(outcome));
    }
    plan.stream_versions = touched
        .into_iter()
        .filter_map(|s| current.get(&s).copied().flatten().map(|v| (s, v)))
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Metadata, NewEvent};
    use crate::version::ExpectedVersion;

    fn req(stream: &str, expected: ExpectedVersion, n: usize) -> AppendRequest {
        let events = (0..n)
            .map(|i| NewEvent::new("t.v1.E", 1, vec![i as u8], Metadata::by("a", "bu")))
            .collect();
        AppendRequest::new(StreamId::parse(stream).expect("valid"), expected, events)
    }

    #[test]
    fn each_request_gets_its_own_verdict_and_positions_stay_contiguous() {
        let plan = plan_batch(
            ChainHead::default(),
            &HashMap::new(),
            &HashMap::new(),
            vec![
                req("s-1", ExpectedVersion::NoStream, 2),
                req("s-1", ExpectedVersion::NoStream, 1),
                req("s-1", ExpectedVersion::Exact(1), 1),
                req("s-2", ExpectedVersion::Any, 3),
            ],
            Timestamp(1),
        );
        assert!(plan.verdicts[0].is_ok());
        assert!(matches!(
            plan.verdicts[1],
            Err(StoreError::WrongExpectedVersion {
                actual: Some(1),
                ..
            })
        ));
        assert_eq!(plan.verdicts[2].as_ref().map(|o| o.stream_version), Ok(2));
        let positions: Vec<u64> = plan.rows.iter().map(|r| r.global_position).collect();
        assert_eq!(positions, vec![1, 2, 3, 4, 5, 6]);
        for w in plan.rows.windows(2) {
            assert_eq!(w[1].prev_hash, w[0].hash);
        }
        let mut sv = plan.stream_versions.clone();
        sv.sort();
        assert_eq!(
            sv,
            vec![
                (StreamId::parse("s-1").expect("valid"), 2),
                (StreamId::parse("s-2").expect("valid"), 2)
            ]
        );
    }

    #[test]
    fn duplicate_keys_in_one_batch_append_once() {
        let cmd = uuid::Uuid::now_v7();
        let mut a = req("s-1", ExpectedVersion::Any, 1);
        a.idempotency_key = Some(crate::store::command_key(cmd));
        let b = a.clone();
        let plan = plan_batch(
            ChainHead::default(),
            &HashMap::new(),
            &HashMap::new(),
            vec![a, b],
            Timestamp(1),
        );
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.verdicts[1].as_ref().map(|o| o.deduplicated), Ok(true));
    }
}
