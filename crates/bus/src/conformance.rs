//! The bus conformance suite. Every bus runs it through
//! [`bus_conformance_tests!`](crate::bus_conformance_tests), one test per check.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use flotilla_core::conformance::synthetic;
use flotilla_core::event::{Metadata, NewEvent, RecordedEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_core::{ExpectedVersion, MemoryStore};

use crate::inbox::{Applied, Inbox};
use crate::relay::Relay;
use crate::{Bus, CloudEvent, Deliveries, Delivery, Namespace, Publisher, Result};

/// Makes a fresh, isolated bus (its own streams or topics) for one check.
#[async_trait]
pub trait BusHarness: Send + Sync {
    async fn fresh(&self) -> Arc<dyn Bus>;
}

const WAIT: Duration = Duration::from_secs(60);

fn service() -> String {
    format!("conf{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
}

async fn next(d: &mut Box<dyn Deliveries>) -> Delivery {
    match tokio::time::timeout(WAIT, d.next()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => panic!("delivery failed: {e}"),
        Err(_) => panic!("no delivery within {WAIT:?}"),
    }
}

/// The CloudEvents a relay of `bus` would publish for `events`.
pub fn outgoing(bus: &dyn Bus, service: &str, events: &[RecordedEvent]) -> Vec<CloudEvent> {
    events
        .iter()
        .map(|e| CloudEvent::from_recorded(bus.namespace(), service, e.stream_id.aggregate(), e))
        .collect()
}

/// Fills a store with `streams` x `per_stream` events and returns them in position order.
async fn fill(store: &Arc<dyn EventStore>, streams: usize, per_stream: u32) -> Vec<RecordedEvent> {
    for s in 0..streams {
        let id = StreamId::new_for("conformance-item");
        for i in 0..per_stream {
            let mut e = synthetic(s as u32, i);
            e.metadata.correlation_id = Some(uuid::Uuid::now_v7());
            // Header values that need care on every binding: spaces, quotes, non-ASCII.
            e.metadata.business_unit = "Paiements & Crédit \"EU\"".into();
            e.metadata.traceparent =
                Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
            store
                .append(AppendRequest::new(
                    id.clone(),
                    ExpectedVersion::Any,
                    vec![e],
                ))
                .await
                .expect("append");
        }
    }
    store.read_all(1, usize::MAX).await.expect("read")
}

/// Published events arrive with their CloudEvents attributes, each stream in order.
pub async fn publish_and_consume(h: &dyn BusHarness) {
    let bus = h.fresh().await;
    let svc = service();
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let events = fill(&store, 3, 5).await;
    let mut deliveries = bus.subscribe(&svc, "readers").await.expect("subscribe");
    bus.publish(&svc, &outgoing(&*bus, &svc, &events))
        .await
        .expect("publish");
    let by_id: HashMap<String, &RecordedEvent> =
        events.iter().map(|e| (e.event_id.to_string(), e)).collect();
    let mut last_version: HashMap<String, u64> = HashMap::new();
    for _ in 0..events.len() {
        let d = next(&mut deliveries).await;
        let ce = d.event.clone();
        let src = by_id
            .get(&ce.id)
            .unwrap_or_else(|| panic!("unknown event {}", ce.id));
        assert_eq!(ce.ty, src.event_type);
        assert_eq!(ce.source, bus.namespace().source(&svc));
        assert_eq!(ce.extension("aggregatetype"), Some("conformance-item"));
        assert_eq!(ce.subject.as_deref(), Some(src.stream_id.as_str()));
        assert_eq!(ce.data, src.payload);
        assert_eq!(ce.sequence(), Some(src.global_position));
        assert_eq!(
            ce.extension("businessunit"),
            Some(src.metadata.business_unit.as_str())
        );
        assert_eq!(
            ce.extension("traceparent"),
            src.metadata.traceparent.as_deref()
        );
        assert_eq!(ce.extension("eventhash"), Some(src.hash.to_hex().as_str()));
        let subject = src.stream_id.as_str().to_owned();
        if let Some(prev) = last_version.get(&subject) {
            assert!(src.stream_version > *prev, "stream {subject} out of order");
        }
        last_version.insert(subject, src.stream_version);
        d.ack().await.expect("ack");
    }
}

/// A group's lag is what it has not acknowledged: every event before it takes any, fewer as it
/// acknowledges, none once it acknowledged all (buses commit asynchronously: it is waited for).
pub async fn consumer_lag_counts_what_a_group_has_not_acknowledged(h: &dyn BusHarness) {
    let bus = h.fresh().await;
    let svc = service();
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let events = fill(&store, 1, 6).await;
    assert_eq!(
        bus.consumer_lag(&svc, "laggards")
            .await
            .expect("a log nobody wrote to is no error"),
        None
    );
    let mut deliveries = bus.subscribe(&svc, "laggards").await.expect("subscribe");
    bus.publish(&svc, &outgoing(&*bus, &svc, &events))
        .await
        .expect("publish");
    let lag_becomes = |want: u64| {
        let bus = bus.clone();
        let svc = svc.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let lag = bus.consumer_lag(&svc, "laggards").await.expect("lag");
                if lag == Some(want) {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "lag {lag:?}, expected {want}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    lag_becomes(6).await;
    // A group that never subscribed to a log others read has no lag to tell, on every bus but
    // Kafka (which cannot tell it from a group that has not committed yet: the whole log).
    let stranger = bus.consumer_lag(&svc, "strangers").await.expect("lag");
    if bus.name() == "kafka" {
        assert_eq!(stranger, Some(6));
    } else {
        assert_eq!(stranger, None);
    }
    for _ in 0..2 {
        next(&mut deliveries).await.ack().await.expect("ack");
    }
    lag_becomes(4).await;
    for _ in 0..4 {
        next(&mut deliveries).await.ack().await.expect("ack");
    }
    lag_becomes(0).await;
}

/// What a group did not acknowledge is delivered again to its next subscriber; another group
/// gets everything independently.
pub async fn unacknowledged_are_redelivered(h: &dyn BusHarness) {
    let bus = h.fresh().await;
    let svc = service();
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let events = fill(&store, 1, 6).await;
    bus.publish(&svc, &outgoing(&*bus, &svc, &events))
        .await
        .expect("publish");
    let mut acked = HashSet::new();
    {
        let mut d = bus.subscribe(&svc, "workers").await.expect("subscribe");
        for _ in 0..3 {
            let x = next(&mut d).await;
            acked.insert(x.event.id.clone());
            x.ack().await.expect("ack");
        }
        // The fourth is received but never acknowledged (its handler failed); the fifth is
        // acknowledged after it; then the consumer "crashes".
        let lost = next(&mut d).await;
        let fifth = next(&mut d).await;
        assert_ne!(lost.event.id, fifth.event.id);
        acked.insert(fifth.event.id.clone());
        fifth.ack().await.expect("ack");
        drop(lost);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut d = bus.subscribe(&svc, "workers").await.expect("resubscribe");
    let mut rest = HashSet::new();
    // The unacknowledged fourth must come again, whatever was acknowledged after it.
    while acked.len() + rest.len() < events.len() {
        let x = next(&mut d).await;
        if !acked.contains(&x.event.id) {
            rest.insert(x.event.id.clone());
        }
        x.ack().await.expect("ack");
    }
    let all: HashSet<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    let got: HashSet<String> = acked.union(&rest).cloned().collect();
    assert_eq!(got, all);
    let mut other = bus
        .subscribe(&svc, "auditors")
        .await
        .expect("subscribe other group");
    let mut seen = HashSet::new();
    while seen.len() < events.len() {
        let x = next(&mut other).await;
        seen.insert(x.event.id.clone());
        x.ack().await.expect("ack");
    }
}

/// Two deployments (namespaces) on the same broker share nothing: the same service and group
/// names in each see only their own events.
pub async fn namespaces_see_only_their_own_events(h: &dyn BusHarness) {
    let a = h.fresh().await;
    let b = h.fresh().await;
    assert_ne!(
        a.namespace(),
        b.namespace(),
        "the harness gives each bus its own namespace"
    );
    let svc = service();
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let events = fill(&store, 1, 3).await;
    let mut in_a = a.subscribe(&svc, "readers").await.expect("subscribe a");
    let mut in_b = b.subscribe(&svc, "readers").await.expect("subscribe b");
    a.publish(&svc, &outgoing(&*a, &svc, &events))
        .await
        .expect("publish");
    for e in &events {
        let d = next(&mut in_a).await;
        assert_eq!(d.event.id, e.event_id.to_string());
        assert_eq!(d.event.source, a.namespace().source(&svc));
        d.ack().await.expect("ack");
    }
    if let Ok(Ok(d)) = tokio::time::timeout(Duration::from_secs(3), in_b.next()).await {
        panic!(
            "namespace {} received {} published in namespace {}",
            b.namespace(),
            d.event.id,
            a.namespace()
        );
    }
}

/// Publishes part of a batch, then never returns: the relay is killed there.
struct StallingPublisher {
    inner: Arc<dyn Bus>,
    after: usize,
    published: AtomicUsize,
}

#[async_trait]
impl Publisher for StallingPublisher {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn namespace(&self) -> &Namespace {
        self.inner.namespace()
    }
    async fn publish(&self, service: &str, events: &[CloudEvent]) -> Result<()> {
        let done = self.published.load(Ordering::SeqCst);
        if done + events.len() > self.after {
            let take = self.after.saturating_sub(done);
            self.inner.publish(service, &events[..take]).await?;
            self.published.fetch_add(take, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        self.inner.publish(service, events).await?;
        self.published.fetch_add(events.len(), Ordering::SeqCst);
        Ok(())
    }
}

/// The relay is killed mid-batch and restarted; every event still arrives and the consumer,
/// which itself crashes once between applying and acknowledging, applies each exactly once.
pub async fn relay_killed_mid_batch_delivers_everything_once(h: &dyn BusHarness) {
    let bus = h.fresh().await;
    let svc = service();
    let source: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let events = fill(&source, 4, 50).await;
    let total = events.len();
    // First relay: publishes 130 events (mid-batch of 50) and is then killed.
    let stalling = Arc::new(StallingPublisher {
        inner: bus.clone(),
        after: 130,
        published: AtomicUsize::new(0),
    });
    let mut relay = Relay::new(source.clone(), svc.clone(), stalling.clone());
    relay.batch = 50;
    let checkpoint = relay.checkpoint_name();
    let task = tokio::spawn(relay.run(std::future::pending()));
    let deadline = tokio::time::Instant::now() + WAIT;
    while stalling.published.load(Ordering::SeqCst) < 130 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "relay did not publish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    let _ = task.await;
    let saved = source
        .load_checkpoint(&checkpoint)
        .await
        .expect("checkpoint")
        .unwrap_or(0);
    assert!(
        saved < 130,
        "checkpoint {saved} must not cover the unfinished batch"
    );

    // The consumer applies into its own store through the inbox.
    let sink: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let inbox = Inbox::new(sink.clone(), "conformance-consumer");
    let apply = |d: Delivery| {
        let inbox = &inbox;
        async move {
            inbox
                .apply(d, |ce| {
                    let e = NewEvent::new(
                        "flotilla.test.v1.Mirrored",
                        1,
                        ce.id.as_bytes().to_vec(),
                        Metadata::by("consumer", "bu-test"),
                    );
                    Some(AppendRequest::new(
                        StreamId::parse("mirror").expect("valid"),
                        ExpectedVersion::Any,
                        vec![e],
                    ))
                })
                .await
                .expect("apply")
        }
    };
    let mut applied = 0usize;
    {
        let mut d = bus.subscribe(&svc, "mirror").await.expect("subscribe");
        for _ in 0..20 {
            if apply(next(&mut d).await).await == Applied::Applied {
                applied += 1;
            }
        }
        // Crash between applying and acknowledging: append through the inbox, drop the delivery.
        let x = next(&mut d).await;
        let id = x.event.event_id().expect("id");
        let e = NewEvent::new(
            "flotilla.test.v1.Mirrored",
            1,
            x.event.id.as_bytes().to_vec(),
            Metadata::by("consumer", "bu-test"),
        );
        let o = sink
            .append(
                AppendRequest::new(
                    StreamId::parse("mirror").expect("valid"),
                    ExpectedVersion::Any,
                    vec![e],
                )
                .consuming("conformance-consumer", id),
            )
            .await
            .expect("append");
        if !o.deduplicated {
            applied += 1;
        }
        drop(x);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Restart the relay with the real bus.
    let relay = Relay::new(source.clone(), svc.clone(), bus.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay.run(async {
        let _ = stop_rx.await;
    }));
    let mut d = bus.subscribe(&svc, "mirror").await.expect("resubscribe");
    let mut duplicates = 0usize;
    while applied < total {
        match apply(next(&mut d).await).await {
            Applied::Applied => applied += 1,
            Applied::Duplicate => duplicates += 1,
        }
    }
    let mirrored = sink.read_all(1, usize::MAX).await.expect("read sink");
    assert_eq!(
        mirrored.len(),
        total,
        "each event applied exactly once ({duplicates} duplicates skipped)"
    );
    let ids: HashSet<Vec<u8>> = mirrored.iter().map(|e| e.payload.clone()).collect();
    let want: HashSet<Vec<u8>> = events
        .iter()
        .map(|e| e.event_id.to_string().into_bytes())
        .collect();
    assert_eq!(ids, want);
    // Let the relay checkpoint its last batch, then stop it cleanly.
    let deadline = tokio::time::Instant::now() + WAIT;
    while source
        .load_checkpoint(&checkpoint)
        .await
        .expect("checkpoint")
        != Some(total as u64)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "relay did not checkpoint the end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(());
    relay_task
        .await
        .expect("relay task")
        .expect("relay ends cleanly");
    // Nothing further is delivered beyond redeliveries of what was applied.
    if let Ok(Ok(x)) = tokio::time::timeout(Duration::from_millis(500), d.next()).await {
        assert_eq!(apply(x).await, Applied::Duplicate);
    }
    assert_eq!(
        sink.read_all(1, usize::MAX).await.expect("read sink").len(),
        total
    );
}

/// Runs one bus through the whole conformance suite, one test per check.
#[macro_export]
macro_rules! bus_conformance_tests {
    ($harness:expr) => {
        mod bus_conformance {
            #[allow(unused_imports)]
            use super::*;
            use $crate::conformance as c;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn publish_and_consume() {
                c::publish_and_consume(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn unacknowledged_are_redelivered() {
                c::unacknowledged_are_redelivered(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn namespaces_see_only_their_own_events() {
                c::namespaces_see_only_their_own_events(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn consumer_lag_counts_what_a_group_has_not_acknowledged() {
                c::consumer_lag_counts_what_a_group_has_not_acknowledged(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn relay_killed_mid_batch_delivers_everything_once() {
                c::relay_killed_mid_batch_delivers_everything_once(&$harness).await
            }
        }
    };
}

/// The in-process bus's harness.
pub struct InProcessHarness;

#[async_trait]
impl BusHarness for InProcessHarness {
    async fn fresh(&self) -> Arc<dyn Bus> {
        let ns = format!("t{}", &uuid::Uuid::now_v7().simple().to_string()[16..]);
        Arc::new(crate::inprocess::InProcessBus::with_namespace(
            Namespace::new(&ns).unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod inprocess_suite {
    crate::bus_conformance_tests!(crate::conformance::InProcessHarness);
}
