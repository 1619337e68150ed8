//! The event store conformance suite. Every backend runs it through
//! [`store_conformance_tests!`](crate::store_conformance_tests), which expands to one
//! `#[tokio::test]` per check so a failure names the broken rule.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::event::{Metadata, NewEvent, Snapshot};
use crate::ids::StreamId;
use crate::store::{AppendRequest, Direction, EventStore, StoreError};
use crate::subscription::{SubscribeOptions, SubscriptionItem, subscribe_all};
use crate::version::ExpectedVersion;

/// A change an insider might make to a stored event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tampering {
    /// Flip one byte of the payload.
    PayloadByte,
    /// Change one character of the actor.
    MetadataByte,
    /// Flip one byte of the stored hash.
    HashByte,
    /// Delete the row.
    DeleteRow,
}

/// Reaches the store it was created with from behind its back: an insider editing rows, or
/// another process opening the same database.
#[async_trait]
pub trait Tamper: Send + Sync {
    async fn apply(&self, position: u64, what: Tampering);

    /// A second, independent handle on the same store (as another process would open), or None
    /// for stores that live in one handle (memory).
    async fn second_handle(&self) -> Option<Arc<dyn EventStore>> {
        None
    }
}

/// A fresh, empty store and a way to tamper with it. Keep `tamper` alive while the store is in
/// use: harnesses release the store's resources (schema, temp dir) when it drops.
pub struct Fresh {
    pub store: Arc<dyn EventStore>,
    pub tamper: Box<dyn Tamper>,
}

/// Makes fresh stores for the suite.
#[async_trait]
pub trait StoreHarness: Send + Sync {
    async fn fresh(&self) -> Fresh;
}

fn stream(prefix: &str) -> StreamId {
    StreamId::new_for(prefix)
}

/// A synthetic event whose payload records its writer and sequence.
pub fn synthetic(writer: u32, seq: u32) -> NewEvent {
    let mut payload = Vec::with_capacity(8);
    payload.extend_from_slice(&writer.to_be_bytes());
    payload.extend_from_slice(&seq.to_be_bytes());
    NewEvent::new(
        "flotilla.eventstore.v1.SyntheticEventRecorded",
        1,
        payload,
        Metadata::by(format!("writer-{writer}"), "bu-test"),
    )
}

fn events(n: u32) -> Vec<NewEvent> {
    (0..n).map(|i| synthetic(0, i)).collect()
}

async fn append(
    store: &Arc<dyn EventStore>,
    s: &StreamId,
    expected: ExpectedVersion,
    n: u32,
) -> crate::store::Result<crate::store::AppendOutcome> {
    store
        .append(AppendRequest::new(s.clone(), expected, events(n)))
        .await
}

/// Reads forwards and backwards, by stream and by position.
pub async fn reads_streams_and_all(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let a = stream("order");
    let b = stream("order");
    let o1 = append(&store, &a, ExpectedVersion::NoStream, 3)
        .await
        .expect("append a");
    assert_eq!(
        (
            o1.first_position,
            o1.last_position,
            o1.stream_version,
            o1.deduplicated
        ),
        (1, 3, 2, false)
    );
    let o2 = append(&store, &b, ExpectedVersion::Any, 2)
        .await
        .expect("append b");
    assert_eq!(
        (o2.first_position, o2.last_position, o2.stream_version),
        (4, 5, 1)
    );
    append(&store, &a, ExpectedVersion::Exact(2), 1)
        .await
        .expect("append a again");

    let fwd = store
        .read_stream(&a, None, Direction::Forwards, 100)
        .await
        .expect("read");
    assert_eq!(
        fwd.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(
        fwd.iter().map(|e| e.global_position).collect::<Vec<_>>(),
        vec![1, 2, 3, 6]
    );
    let bwd = store
        .read_stream(&a, None, Direction::Backwards, 2)
        .await
        .expect("read");
    assert_eq!(
        bwd.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        vec![3, 2]
    );
    let bwd_from = store
        .read_stream(&a, Some(1), Direction::Backwards, 10)
        .await
        .expect("read");
    assert_eq!(
        bwd_from
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        vec![1, 0]
    );
    let fwd_from = store
        .read_stream(&a, Some(2), Direction::Forwards, 1)
        .await
        .expect("read");
    assert_eq!(
        fwd_from
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        vec![2]
    );
    assert!(
        store
            .read_stream(&stream("none"), None, Direction::Forwards, 10)
            .await
            .expect("read")
            .is_empty()
    );

    let all = store.read_all(1, 100).await.expect("read all");
    assert_eq!(
        all.iter().map(|e| e.global_position).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(store.read_all(5, 1).await.expect("read").len(), 1);
    assert!(store.read_all(7, 10).await.expect("read").is_empty());
    // Everything written is read back as written.
    let sent = synthetic(0, 0);
    assert_eq!(all[0].event_type, sent.event_type);
    assert_eq!(all[0].payload, sent.payload);
    assert_eq!(all[0].metadata, sent.metadata);
    assert_eq!(store.stream_version(&a).await.expect("version"), Some(3));
    assert_eq!(
        store
            .stream_version(&stream("none"))
            .await
            .expect("version"),
        None
    );
    let head = store.head().await.expect("head");
    assert_eq!(head.position, 6);
    assert_eq!(head.hash, all[5].hash);
}

/// Metadata of every kind survives the round trip.
pub async fn metadata_round_trips(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("meta");
    let md = Metadata {
        actor: "alice@example.com".into(),
        business_unit: "payments".into(),
        correlation_id: Some(Uuid::now_v7()),
        causation_id: Some(Uuid::now_v7()),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        command_id: Some(Uuid::now_v7()),
    };
    let e = NewEvent::new("flotilla.test.v1.Meta", 7, vec![0, 255, 1], md.clone());
    let id = e.event_id;
    store
        .append(AppendRequest::new(
            s.clone(),
            ExpectedVersion::NoStream,
            vec![e],
        ))
        .await
        .expect("append");
    let got = store
        .read_stream(&s, None, Direction::Forwards, 1)
        .await
        .expect("read");
    assert_eq!(got[0].metadata, md);
    assert_eq!(got[0].event_id, id);
    assert_eq!(got[0].schema_version, 7);
    assert_eq!(got[0].payload, vec![0, 255, 1]);
    assert_eq!(got[0].hash, got[0].compute_hash());
}

/// The four expectations behave as KurrentDB's; conflicts name expected and actual versions.
pub async fn expected_versions_are_enforced(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("ev");
    let err = append(&store, &s, ExpectedVersion::StreamExists, 1)
        .await
        .expect_err("must conflict");
    assert_eq!(
        err,
        StoreError::WrongExpectedVersion {
            stream_id: s.clone(),
            expected: ExpectedVersion::StreamExists,
            actual: None
        }
    );
    let err = append(&store, &s, ExpectedVersion::Exact(0), 1)
        .await
        .expect_err("must conflict");
    assert!(matches!(
        err,
        StoreError::WrongExpectedVersion { actual: None, .. }
    ));
    append(&store, &s, ExpectedVersion::NoStream, 2)
        .await
        .expect("create");
    let err = append(&store, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect_err("must conflict");
    assert_eq!(
        err,
        StoreError::WrongExpectedVersion {
            stream_id: s.clone(),
            expected: ExpectedVersion::NoStream,
            actual: Some(1)
        }
    );
    let err = append(&store, &s, ExpectedVersion::Exact(0), 1)
        .await
        .expect_err("must conflict");
    assert_eq!(
        err.to_string(),
        format!("wrong expected version on stream {s}: expected version 0, stream is at version 1")
    );
    append(&store, &s, ExpectedVersion::StreamExists, 1)
        .await
        .expect("exists");
    append(&store, &s, ExpectedVersion::Exact(2), 1)
        .await
        .expect("exact");
    append(&store, &s, ExpectedVersion::Any, 1)
        .await
        .expect("any");
    assert_eq!(store.stream_version(&s).await.expect("version"), Some(4));
    // Failed appends wrote nothing.
    assert_eq!(store.head().await.expect("head").position, 5);
}

/// An append conditional on other streams' versions is written only while they are there,
/// also when another handle (process) moved them; a failed condition names its stream.
pub async fn conditions_on_other_streams_hold(h: &dyn StoreHarness) {
    let Fresh { store, tamper } = h.fresh().await;
    let target = stream("target");
    let read = stream("read");
    append(&store, &read, ExpectedVersion::NoStream, 1)
        .await
        .expect("create the stream read");
    let conditional = |expected: ExpectedVersion| {
        AppendRequest::new(target.clone(), ExpectedVersion::Any, events(1))
            .provided(read.clone(), expected)
    };
    store
        .append(conditional(ExpectedVersion::Exact(0)))
        .await
        .expect("condition holds");
    // Someone appends to the stream that was read: the same decision no longer holds.
    let other = tamper
        .second_handle()
        .await
        .unwrap_or_else(|| store.clone());
    append(&other, &read, ExpectedVersion::Exact(0), 1)
        .await
        .expect("moved");
    let err = store
        .append(conditional(ExpectedVersion::Exact(0)))
        .await
        .expect_err("condition broken");
    assert_eq!(
        err,
        StoreError::WrongExpectedVersion {
            stream_id: read.clone(),
            expected: ExpectedVersion::Exact(0),
            actual: Some(1),
        }
    );
    assert_eq!(
        store.stream_version(&target).await.expect("version"),
        Some(0)
    );
    let err = store
        .append(
            AppendRequest::new(target.clone(), ExpectedVersion::Any, events(1))
                .provided(stream("never"), ExpectedVersion::StreamExists),
        )
        .await
        .expect_err("absent stream");
    assert!(matches!(
        err,
        StoreError::WrongExpectedVersion { actual: None, .. }
    ));
    store
        .append(conditional(ExpectedVersion::Exact(1)))
        .await
        .expect("decided again on what is there");
    assert_eq!(
        store.stream_version(&target).await.expect("version"),
        Some(1)
    );
}

/// 16 appenders with the same expectation: exactly one wins, the rest get typed conflicts.
pub async fn concurrent_appenders_one_wins(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("race");
    append(&store, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for w in 0..16u32 {
        let store = store.clone();
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(AppendRequest::new(
                    s,
                    ExpectedVersion::Exact(0),
                    vec![synthetic(w, 0), synthetic(w, 1)],
                ))
                .await
        }));
    }
    let mut wins = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(o) => {
                wins += 1;
                assert_eq!(o.stream_version, 2);
            }
            Err(StoreError::WrongExpectedVersion {
                expected,
                actual,
                stream_id,
            }) => {
                conflicts += 1;
                assert_eq!(stream_id, s);
                assert_eq!(expected, ExpectedVersion::Exact(0));
                assert_eq!(actual, Some(2));
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!((wins, conflicts), (1, 15));
    assert_eq!(store.stream_version(&s).await.expect("version"), Some(2));
    assert_eq!(store.head().await.expect("head").position, 3);
}

/// A zero-event append is refused and the stream stays usable.
pub async fn empty_append_is_rejected(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("empty");
    append(&store, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect("create");
    let err = store
        .append(AppendRequest::new(
            s.clone(),
            ExpectedVersion::Exact(0),
            vec![],
        ))
        .await
        .expect_err("empty");
    assert_eq!(
        err,
        StoreError::EmptyAppend {
            stream_id: s.clone()
        }
    );
    assert!(err.to_string().contains("carries no events"));
    let o = append(&store, &s, ExpectedVersion::Exact(0), 1)
        .await
        .expect("still usable");
    assert_eq!(o.stream_version, 1);
    let t = stream("empty");
    store
        .append(AppendRequest::new(
            t.clone(),
            ExpectedVersion::NoStream,
            vec![],
        ))
        .await
        .expect_err("empty");
    assert_eq!(store.stream_version(&t).await.expect("version"), None);
}

/// One append of 20,000 events (no bind-parameter overflow).
pub async fn large_append_succeeds(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("big");
    append(&store, &stream("other"), ExpectedVersion::Any, 1)
        .await
        .expect("first");
    let o = append(&store, &s, ExpectedVersion::NoStream, 20_000)
        .await
        .expect("20k append");
    assert_eq!(
        (o.first_position, o.last_position, o.stream_version),
        (2, 20_001, 19_999)
    );
    let tail = store
        .read_stream(&s, None, Direction::Backwards, 1)
        .await
        .expect("read");
    assert_eq!(tail[0].stream_version, 19_999);
    let report = store.verify(&|_| {}).await.expect("verify");
    assert!(report.holds(), "{report:?}");
    assert_eq!(report.checked, 20_001);
}

/// An idempotent retry with the same command id does not append twice.
pub async fn idempotent_retry_appends_once(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("idem");
    let cmd = Uuid::now_v7();
    let mk = || {
        let mut e = synthetic(1, 1);
        e.metadata.command_id = Some(cmd);
        AppendRequest::new(s.clone(), ExpectedVersion::Any, vec![e, synthetic(1, 2)])
    };
    let first = store.append(mk()).await.expect("first");
    let retry = store.append(mk()).await.expect("retry");
    assert!(!first.deduplicated);
    assert!(retry.deduplicated);
    assert_eq!(
        (
            retry.first_position,
            retry.last_position,
            retry.stream_version
        ),
        (
            first.first_position,
            first.last_position,
            first.stream_version
        )
    );
    // Concurrent retries also append once.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let r = mk();
        tasks.push(tokio::spawn(async move { store.append(r).await }));
    }
    for t in tasks {
        assert!(t.await.expect("task").expect("retry").deduplicated);
    }
    assert_eq!(store.head().await.expect("head").position, 2);
    // Retries of commands that stated exact expectations get the first outcome, not a conflict.
    let created = stream("idem");
    let mk_exact = |expected: ExpectedVersion, cmd: Uuid| {
        let mut e = synthetic(2, 1);
        e.metadata.command_id = Some(cmd);
        AppendRequest::new(created.clone(), expected, vec![e])
    };
    let (c1, c2) = (Uuid::now_v7(), Uuid::now_v7());
    let first_create = store
        .append(mk_exact(ExpectedVersion::NoStream, c1))
        .await
        .expect("create");
    let retry_create = store
        .append(mk_exact(ExpectedVersion::NoStream, c1))
        .await
        .expect("retried create is not a conflict");
    assert!(retry_create.deduplicated);
    assert_eq!(retry_create.last_position, first_create.last_position);
    let first_next = store
        .append(mk_exact(ExpectedVersion::Exact(0), c2))
        .await
        .expect("next");
    let retry_next = store
        .append(mk_exact(ExpectedVersion::Exact(0), c2))
        .await
        .expect("retried next is not a conflict");
    assert!(retry_next.deduplicated);
    assert_eq!(
        (retry_next.last_position, retry_next.stream_version),
        (first_next.last_position, 1)
    );
    // A different command with the stale expectation is still a conflict.
    let err = store
        .append(mk_exact(ExpectedVersion::Exact(0), Uuid::now_v7()))
        .await
        .expect_err("conflict");
    assert!(
        matches!(
            err,
            StoreError::WrongExpectedVersion {
                actual: Some(1),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.head().await.expect("head").position, 4);
    // The inbox: consuming the same event twice applies once.
    let source = Uuid::now_v7();
    let inbox = |n| {
        AppendRequest::new(stream("inbox"), ExpectedVersion::Any, events(n))
            .consuming("relay-test", source)
    };
    assert!(!store.append(inbox(1)).await.expect("consume").deduplicated);
    assert!(
        store
            .append(inbox(1))
            .await
            .expect("consume again")
            .deduplicated
    );
    assert_eq!(store.head().await.expect("head").position, 5);
    let key = crate::store::inbox_key("relay-test", Uuid::now_v7());
    assert!(!store.is_processed(&key).await.expect("lookup"));
    assert!(store.record_processed(&key).await.expect("record"));
    assert!(!store.record_processed(&key).await.expect("record again"));
    assert!(store.is_processed(&key).await.expect("lookup"));
}

/// 8 concurrent writers and one live subscriber: 10,000 events, each once, in order, no gap.
pub async fn live_subscriber_sees_every_event_once(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let mut sub = subscribe_all(
        store.clone(),
        1,
        SubscribeOptions {
            page: 500,
            poll_interval: Duration::from_millis(50),
        },
    );
    match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
        Ok(Some(Ok(SubscriptionItem::CaughtUp { position: 0 }))) => {}
        other => panic!("expected caught-up on an empty store, got {other:?}"),
    }
    const WRITERS: u32 = 8;
    const PER_WRITER: u32 = 1_250;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = StreamId::new_for("live");
            let mut expected = ExpectedVersion::NoStream;
            let mut seq = 0;
            while seq < PER_WRITER {
                // Mixed batch sizes: 1 to 5 events per append.
                let n = (1 + seq % 5).min(PER_WRITER - seq);
                let evs = (seq..seq + n).map(|i| synthetic(w, i)).collect();
                let o = store
                    .append(AppendRequest::new(s.clone(), expected, evs))
                    .await
                    .expect("append");
                expected = o.next_expected();
                seq += n;
            }
        }));
    }
    let total = (WRITERS * PER_WRITER) as u64;
    let mut seen = HashSet::new();
    let mut last = 0u64;
    let mut per_writer = vec![0u32; WRITERS as usize];
    while last < total {
        let item = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .unwrap_or_else(|_| panic!("subscriber stalled at position {last}"))
            .expect("subscription open")
            .expect("subscription item");
        if let SubscriptionItem::Event(e) = item {
            assert_eq!(e.global_position, last + 1, "gap or reorder");
            assert!(seen.insert(e.event_id), "duplicate event {}", e.event_id);
            let w = u32::from_be_bytes(e.payload[0..4].try_into().expect("4 bytes"));
            let seq = u32::from_be_bytes(e.payload[4..8].try_into().expect("4 bytes"));
            assert_eq!(seq, per_writer[w as usize], "writer {w} out of order");
            per_writer[w as usize] += 1;
            last = e.global_position;
        }
    }
    for t in tasks {
        t.await.expect("writer");
    }
    assert_eq!(seen.len() as u64, total);
    // Nothing beyond the total arrives.
    if let Ok(Some(Ok(SubscriptionItem::Event(e)))) =
        tokio::time::timeout(Duration::from_millis(300), sub.next()).await
    {
        panic!("unexpected extra event at {}", e.global_position);
    }
}

/// Changing one byte of any stored event, or deleting one, makes `verify` fail there.
pub async fn verify_detects_tampering(h: &dyn StoreHarness) {
    for (what, position) in [
        (Tampering::PayloadByte, 7),
        (Tampering::MetadataByte, 3),
        (Tampering::HashByte, 10),
        (Tampering::DeleteRow, 5),
        (Tampering::DeleteRow, 12),
    ] {
        let Fresh { store, tamper } = h.fresh().await;
        for i in 0..4 {
            append(&store, &stream("audit"), ExpectedVersion::NoStream, 3)
                .await
                .unwrap_or_else(|e| panic!("append {i}: {e}"));
        }
        let ok = store.verify(&|_| {}).await.expect("verify");
        assert!(ok.holds(), "{ok:?}");
        assert_eq!(ok.checked, 12);
        tamper.apply(position, what).await;
        let report = store.verify(&|_| {}).await.expect("verify runs");
        let broken = report
            .broken
            .unwrap_or_else(|| panic!("{what:?} at {position} not detected"));
        assert_eq!(broken.position, position, "{what:?}: {}", broken.reason);
    }
}

/// `verify` while appends continue checks up to the head it started from and holds.
pub async fn verify_while_appending_holds(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    append(&store, &stream("busy"), ExpectedVersion::Any, 500)
        .await
        .expect("seed");
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..200 {
                append(&store, &stream("busy"), ExpectedVersion::Any, 3)
                    .await
                    .expect("append");
            }
        })
    };
    for _ in 0..5 {
        let report = store.verify(&|_| {}).await.expect("verify");
        assert!(report.holds(), "verify under load: {report:?}");
        assert_eq!(report.checked, report.head.position);
    }
    writer.await.expect("writer");
    let report = store.verify(&|_| {}).await.expect("verify");
    assert!(report.holds() && report.checked == 1_100, "{report:?}");
}

/// Two handles on one store (two processes): one chain, gap-free, conflicts still typed, each
/// sees the other's appends.
pub async fn two_handles_share_one_chain(h: &dyn StoreHarness) {
    let Fresh { store: a, tamper } = h.fresh().await;
    let Some(b) = tamper.second_handle().await else {
        return;
    };
    let shared = stream("shared");
    append(&a, &shared, ExpectedVersion::NoStream, 1)
        .await
        .expect("create via a");
    let err = append(&b, &shared, ExpectedVersion::NoStream, 1)
        .await
        .expect_err("b sees a's stream");
    assert!(
        matches!(
            err,
            StoreError::WrongExpectedVersion {
                actual: Some(0),
                ..
            }
        ),
        "{err}"
    );
    append(&b, &shared, ExpectedVersion::Exact(0), 1)
        .await
        .expect("b appends after a");
    let err = append(&a, &shared, ExpectedVersion::Exact(0), 1)
        .await
        .expect_err("a's cache is stale, the store is not");
    assert!(
        matches!(
            err,
            StoreError::WrongExpectedVersion {
                actual: Some(1),
                ..
            }
        ),
        "{err}"
    );
    let mut tasks = Vec::new();
    for (i, s) in [a.clone(), b.clone()]
        .into_iter()
        .cycle()
        .take(8)
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            for j in 0..50u32 {
                s.append(AppendRequest::new(
                    StreamId::new_for("both"),
                    ExpectedVersion::NoStream,
                    vec![synthetic(i as u32, j)],
                ))
                .await
                .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let all = b.read_all(1, usize::MAX).await.expect("read");
    assert_eq!(all.len(), 402);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.global_position == i as u64 + 1),
        "positions are gap-free"
    );
    let report = a.verify(&|_| {}).await.expect("verify");
    assert!(report.holds() && report.checked == 402, "{report:?}");
}

/// Snapshots and checkpoints are stored and replaced.
pub async fn snapshots_and_checkpoints(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("snap");
    assert_eq!(store.load_snapshot(&s).await.expect("load"), None);
    let snap = Snapshot {
        stream_id: s.clone(),
        stream_version: 4,
        schema_version: 1,
        payload: vec![1, 2, 3],
    };
    store.save_snapshot(snap.clone()).await.expect("save");
    assert_eq!(
        store.load_snapshot(&s).await.expect("load"),
        Some(snap.clone())
    );
    let newer = Snapshot {
        stream_version: 9,
        payload: vec![9],
        ..snap
    };
    store.save_snapshot(newer.clone()).await.expect("save");
    assert_eq!(store.load_snapshot(&s).await.expect("load"), Some(newer));
    assert_eq!(store.load_checkpoint("relay").await.expect("load"), None);
    store.save_checkpoint("relay", 42).await.expect("save");
    store.save_checkpoint("relay", 43).await.expect("save");
    assert_eq!(
        store.load_checkpoint("relay").await.expect("load"),
        Some(43)
    );
}

/// Runs one store through the whole conformance suite, one test per check.
#[macro_export]
macro_rules! store_conformance_tests {
    ($harness:expr) => {
        mod store_conformance {
            #[allow(unused_imports)]
            use super::*;
            use $crate::conformance as c;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn reads_streams_and_all() {
                c::reads_streams_and_all(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn metadata_round_trips() {
                c::metadata_round_trips(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn expected_versions_are_enforced() {
                c::expected_versions_are_enforced(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn conditions_on_other_streams_hold() {
                c::conditions_on_other_streams_hold(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_appenders_one_wins() {
                c::concurrent_appenders_one_wins(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn empty_append_is_rejected() {
                c::empty_append_is_rejected(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn large_append_succeeds() {
                c::large_append_succeeds(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn idempotent_retry_appends_once() {
                c::idempotent_retry_appends_once(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn live_subscriber_sees_every_event_once() {
                c::live_subscriber_sees_every_event_once(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn verify_detects_tampering() {
                c::verify_detects_tampering(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn verify_while_appending_holds() {
                c::verify_while_appending_holds(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn two_handles_share_one_chain() {
                c::two_handles_share_one_chain(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn snapshots_and_checkpoints() {
                c::snapshots_and_checkpoints(&$harness).await
            }
        }
    };
}

/// The in-memory store's harness.
pub struct MemoryHarness;

struct MemoryTamper(Arc<crate::memory::MemoryStore>);

#[async_trait]
impl Tamper for MemoryTamper {
    async fn apply(&self, position: u64, what: Tampering) {
        let done = match what {
            Tampering::PayloadByte => self.0.tamper(position, |e| e.payload[0] ^= 0x01),
            Tampering::MetadataByte => self
                .0
                .tamper(position, |e| e.metadata.actor.replace_range(0..1, "X")),
            Tampering::HashByte => self.0.tamper(position, |e| e.hash.0[0] ^= 0x01),
            Tampering::DeleteRow => self.0.remove(position),
        };
        assert!(done, "no event at position {position}");
    }
}

#[async_trait]
impl StoreHarness for MemoryHarness {
    async fn fresh(&self) -> Fresh {
        let store = Arc::new(crate::memory::MemoryStore::new());
        Fresh {
            store: store.clone(),
            tamper: Box::new(MemoryTamper(store)),
        }
    }
}

#[cfg(test)]
mod memory_suite {
    crate::store_conformance_tests!(crate::conformance::MemoryHarness);
}
