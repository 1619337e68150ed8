//! The event-sourced app of the service kit, on a small decider (named counters): rebuilt from
//! snapshots that match the chain and from events otherwise, kept current from what another
//! instance appends, one writer with exact expected versions and cross-stream conditions,
//! bounded retries then ABORTED, command-id and inbox deduplication, read-your-writes.

use std::sync::Arc;
use std::time::Duration;

use flotilla_core::MemoryStore;
use flotilla_core::decider::StoredEvents;
use flotilla_core::event::Snapshot;
use flotilla_core::ids::StreamId;
use flotilla_core::store::EventStore;
use flotilla_runtime::kit::{AppError, AppOptions};

mod counters;
use counters::*;

#[tokio::test]
async fn commands_are_read_back_at_once_and_by_another_instance() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let (one, _a) = app(&store, AppOptions::default()).await;
    let (two, _b) = app(&store, AppOptions::default()).await;
    one.execute(add("a", 2), md("ann")).await.expect("add");
    // Read-your-writes: the answer's state includes the command.
    assert_eq!(one.query(|c| c.values["a"]), 2);
    assert_eq!(
        one.query(|c| c.by["a"].clone()),
        "ann",
        "evolve sees the envelope"
    );
    // The other instance follows the store's subscription.
    eventually("the second instance sees it", || {
        two.query(|c| c.values.get("a").copied()) == Some(2)
    })
    .await;
    // Both write to one stream: the stale one conflicts, catches up and decides again.
    let (x, y) = tokio::join!(
        one.execute(add("a", 1), md("ann")),
        two.execute(add("a", 10), md("bob"))
    );
    x.expect("one");
    y.expect("two");
    eventually("both see both", || {
        one.query(|c| c.values["a"]) == 13 && two.query(|c| c.values["a"]) == 13
    })
    .await;
}

#[tokio::test]
async fn a_decision_that_read_another_stream_is_decided_again_when_it_changed() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("counters.db").display());
    let store = flotilla_store::open(&url, "counters").await.expect("open");
    let (one, _a) = app(&store, AppOptions::default()).await;
    one.execute(add("source", 5), md("ann")).await.expect("add");
    one.execute(add("target", 0), md("ann")).await.expect("add");
    // Another process changes the source (its own handle: this app hears of it only at its
    // next poll, so it decides the copy on the value it knew).
    let other = flotilla_store::open(&url, "counters").await.expect("open");
    let (ty, v, payload) = Codec.encode(&Event::Added {
        counter: "source".into(),
        n: 1,
    });
    other
        .append(flotilla_core::store::AppendRequest::new(
            stream("source"),
            flotilla_core::ExpectedVersion::Exact(0),
            vec![flotilla_core::event::NewEvent::new(
                ty,
                v,
                payload,
                md("mallory"),
            )],
        ))
        .await
        .expect("append");
    assert_eq!(one.query(|c| c.values["source"]), 5, "not seen yet");
    // The append is conditional on the source's version: the stale decision is refused and the
    // copy decided again on the value the store holds.
    one.execute(
        Command::Copy {
            target: "target".into(),
            source: "source".into(),
        },
        md("ann"),
    )
    .await
    .expect("copy");
    assert_eq!(one.query(|c| c.values["target"]), 6);
}

#[tokio::test]
async fn a_command_is_decided_on_what_other_processes_wrote_before_it() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("counters.db").display());
    let store = flotilla_store::open(&url, "counters").await.expect("open");
    let (one, _a) = app(&store, AppOptions::default()).await;
    let set = |value| Command::Set {
        counter: "a".into(),
        value,
    };
    one.execute(set(5), md("ann")).await.expect("set");
    // Another process sets it to 7; this one has not heard of it yet.
    let other = flotilla_store::open(&url, "counters").await.expect("open");
    let (ty, v, payload) = Codec.encode(&Event::Set {
        counter: "a".into(),
        value: 7,
    });
    other
        .append(flotilla_core::store::AppendRequest::new(
            stream("a"),
            flotilla_core::ExpectedVersion::Exact(0),
            vec![flotilla_core::event::NewEvent::new(
                ty,
                v,
                payload,
                md("bob"),
            )],
        ))
        .await
        .expect("append");
    assert_eq!(one.query(|c| c.values["a"]), 5, "not heard of yet");
    // Setting 5 again is not "nothing to do": the store says 7.
    let done = one.execute(set(5), md("ann")).await.expect("set");
    assert_eq!(done.events.len(), 1, "decided on the store as it was");
    assert_eq!(one.query(|c| c.values["a"]), 5);
}

#[tokio::test]
async fn retries_and_redeliveries_change_nothing_twice() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let (one, _a) = app(&store, AppOptions::default()).await;
    let mut m = md("ann");
    m.command_id = Some(uuid::Uuid::now_v7());
    let limited = Command::AddBelow {
        counter: "a".into(),
        n: 1,
        limit: 1,
    };
    let first = one
        .execute(limited.clone(), m.clone())
        .await
        .expect("first");
    assert!(!first.deduplicated);
    // The retry would be refused if decided again (the counter reached its limit): it is
    // answered as applied.
    let again = one.execute(limited, m).await.expect("retry");
    assert!(again.deduplicated && again.events.is_empty());
    let event = uuid::Uuid::now_v7();
    one.consume("tests", event, add("b", 1), md("feed"))
        .await
        .expect("consume");
    let again = one
        .consume("tests", event, add("b", 1), md("feed"))
        .await
        .expect("again");
    assert!(again.deduplicated);
    assert_eq!(one.query(|c| (c.values["a"], c.values["b"])), (1, 1));
    let refused: tonic::Status = one
        .execute(
            Command::AddBelow {
                counter: "a".into(),
                n: 1,
                limit: 1,
            },
            md("ann"),
        )
        .await
        .expect_err("refused")
        .into();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_that_keep_conflicting_are_aborted() {
    let slow = flotilla_runtime::testkit::ReadsSwitch::over(Arc::new(MemoryStore::new()));
    let store: Arc<dyn EventStore> = slow.clone();
    // One attempt: a conflict is not decided again.
    let options = AppOptions {
        attempts: 1,
        ..AppOptions::default()
    };
    let (one, _a) = app(&store, options).await;
    let (two, _b) = app(&store, options).await;
    one.execute(add("a", 1), md("ann")).await.expect("add");
    eventually("two sees it", || {
        two.query(|c| c.values.get("a").copied()) == Some(1)
    })
    .await;
    // Both decide on version 0 before either append lands: one of them conflicts.
    slow.delay_appends(Duration::from_millis(100));
    let (x, y) = tokio::join!(
        one.execute(add("a", 1), md("ann")),
        two.execute(add("a", 1), md("bob"))
    );
    let errors: Vec<_> = [x.err(), y.err()].into_iter().flatten().collect();
    assert_eq!(errors.len(), 1, "exactly one writer lost the race");
    assert!(
        matches!(errors[0], AppError::Contended { .. }),
        "{:?}",
        errors[0]
    );
    let status: tonic::Status = errors.into_iter().next().expect("one").into();
    assert_eq!(status.code(), tonic::Code::Aborted);
    // With attempts to spare, the loser catches up and decides again: both land.
    slow.delay_appends(Duration::ZERO);
    let (three, _c) = app(&store, AppOptions::default()).await;
    let (four, _d) = app(&store, AppOptions::default()).await;
    slow.delay_appends(Duration::from_millis(100));
    let (x, y) = tokio::join!(
        three.execute(add("a", 10), md("cid")),
        four.execute(add("a", 10), md("dee"))
    );
    x.expect("three");
    y.expect("four");
    eventually("all see both", || three.query(|c| c.values["a"]) == 22).await;
}

#[tokio::test]
async fn snapshots_are_used_when_they_match_the_chain_and_ignored_when_not() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let every = AppOptions {
        snapshot_every: 10,
        ..AppOptions::default()
    };
    let (one, running) = app(&store, every).await;
    for i in 0..25 {
        one.execute(add("a", i), md("ann")).await.expect("add");
    }
    let snapshot_stream = StreamId::parse(flotilla_runtime::kit::app::SNAPSHOT_STREAM).expect("id");
    let mut saved = None;
    for _ in 0..200 {
        if let Some(s) = store.load_snapshot(&snapshot_stream).await.expect("load")
            && s.stream_version >= 20
        {
            saved = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let saved = saved.expect("snapshot at 20 or later");
    drop(running);
    let expected = one.query(|c| c.clone());
    // Restarted from the snapshot plus the events after it.
    let (again, _r) = app(&store, every).await;
    assert_eq!(again.query(|c| c.clone()), expected);
    // A snapshot is really what the state starts from: one at the right position and hash,
    // with a record in the chain that vouches for its bytes, is taken as it is.
    let at = store
        .read_all(saved.stream_version, 1)
        .await
        .expect("read")
        .remove(0);
    let mut forged = Counters::default();
    forged.values.insert("a".into(), 1_000_000);
    let with = |hash: [u8; 32], version: u32| Snapshot {
        stream_id: snapshot_stream.clone(),
        stream_version: saved.stream_version,
        schema_version: version,
        payload: snapshot_of(&forged, saved.stream_version, hash),
    };
    let vouched = with(at.hash.0, 1);
    store.save_snapshot(vouched.clone()).await.expect("save");
    record(&store, &vouched).await;
    let (trusted, _r) = app(&store, AppOptions::default()).await;
    assert!(
        trusted.query(|c| c.values["a"]) > 1_000_000,
        "started from the snapshot"
    );
    // Edited beside the chain (its record no longer vouches for it), at another hash, or of
    // another state version: ignored, every event is replayed.
    let mut edited = vouched.clone();
    let mut other = forged.clone();
    other.values.insert("a".into(), 2_000_000);
    edited.payload = snapshot_of(&other, saved.stream_version, at.hash.0);
    for snapshot in [edited, with([7; 32], 1), with(at.hash.0, 2)] {
        store.save_snapshot(snapshot).await.expect("save");
        let (replayed, _r) = app(&store, AppOptions::default()).await;
        assert_eq!(replayed.query(|c| c.values["a"]), expected.values["a"]);
    }
}

/// Records a snapshot in the chain as the app does.
async fn record(store: &Arc<dyn EventStore>, s: &Snapshot) {
    use prost::Message;
    use sha2::Digest;
    let r = flotilla_proto::common::v1::SnapshotRecorded {
        position: s.stream_version,
        sha256: flotilla_core::chain::Hash(sha2::Sha256::digest(&s.payload).into()).to_hex(),
        state_version: s.schema_version,
    };
    store
        .append(flotilla_core::store::AppendRequest::new(
            StreamId::singleton(flotilla_runtime::kit::app::SNAPSHOT_STREAM),
            flotilla_core::ExpectedVersion::Any,
            vec![flotilla_core::event::NewEvent::new(
                flotilla_runtime::kit::snapshot::SNAPSHOT_RECORDED,
                1,
                r.encode_to_vec(),
                md("insider"),
            )],
        ))
        .await
        .expect("record");
}

/// A snapshot payload of `state` at `position` with `hash`.
fn snapshot_of(state: &Counters, position: u64, hash: [u8; 32]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Versioned<'a> {
        state: &'a Counters,
        versions: std::collections::HashMap<StreamId, u64>,
        position: u64,
        hash: [u8; 32],
    }
    postcard::to_allocvec(&Versioned {
        state,
        versions: Default::default(),
        position,
        hash,
    })
    .expect("encode")
}

/// A service shutting down stops its follower: a command waiting to see its events in the
/// state stops waiting then, instead of holding the stop for the whole wait.
#[tokio::test]
async fn waiting_for_a_position_ends_when_following_stops() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let (app, follower) = app(&store, AppOptions::default()).await;
    app.execute(add("a", 1), md("ann")).await.expect("add");
    let here = app.position();
    assert!(app.wait_for(here, Duration::from_secs(10)).await);
    // Waits for an hour unless following stopping ends it.
    let waiting = {
        let app = app.clone();
        tokio::spawn(async move { app.wait_for(here + 1, Duration::from_secs(3600)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(follower);
    let reached = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("the wait ended with the follower")
        .expect("joined");
    assert!(!reached, "the position never came");
}
