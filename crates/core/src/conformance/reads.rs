//! Reading: forwards and backwards, by stream and by position; metadata; a live subscriber; snapshots and checkpoints.

use std::collections::HashSet;
use std::time::Duration;

use uuid::Uuid;

use crate::event::{Metadata, NewEvent, Snapshot};
use crate::ids::StreamId;
use crate::store::{AppendRequest, Direction};
use crate::subscription::{SubscribeOptions, SubscriptionItem, subscribe_all};
use crate::version::ExpectedVersion;

use super::*;

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
