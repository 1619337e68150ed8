//! The long-running tasks a node (and the testkit) runs beside its services: each service's
//! relays to the buses, its consumers of other services' events, and the check of its store's
//! hash chain.

use std::sync::Arc;
use std::time::Duration;

use flotilla_bus::relay::Relay;
use flotilla_bus::{Bus, Publisher};
use flotilla_core::lease::Fence;
use flotilla_core::store::EventStore;
use flotilla_core::subscription::{SubscribeOptions, SubscriptionItem, subscribe_all};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::integrity::ChainGuard;
use crate::module::{Consumer, HandlerError, ServiceModule};
use crate::outbound::ServiceOutbound;

/// Consumes `source`'s events as the durable group `group` until stopped; failures resubscribe
/// after a pause, so what was not acknowledged is delivered again. While the consuming
/// service's chain is broken nothing is taken in.
pub(crate) async fn run_consumer(
    bus: Arc<dyn Bus>,
    group: String,
    consumer: Consumer,
    chain: Arc<ChainGuard>,
    mut stop: watch::Receiver<bool>,
) {
    let source = bus.namespace().source(&consumer.source);
    // The CDEvents log carries other tools' events (CI pipelines): any source may speak there,
    // and its handlers check everything they take as they would a request.
    let open_log = consumer.source == flotilla_bus::naming::CDEVENTS;
    let mut pause = Duration::from_millis(500);
    loop {
        let mut deliveries = match bus.subscribe(&consumer.source, &group).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(group = %group, source = %consumer.source, error = %e, "subscribe failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                pause = (pause * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        loop {
            let delivery = tokio::select! {
                d = deliveries.next() => d,
                _ = stop.wait_for(|s| *s) => return,
            };
            let delivery = match delivery {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(group = %group, error = %e, "delivery failed; resubscribing");
                    break;
                }
            };
            if !open_log && delivery.event.source != source {
                // Only the service subscribed to speaks on its stream: anything else is forged
                // or misrouted, acknowledged and never applied.
                tracing::error!(group = %group, event = %delivery.event.id, source = %flotilla_core::names::shown(&delivery.event.source), expected = %source, "event from an unexpected source refused");
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(group = %group, error = %e, "ack failed");
                }
                continue;
            }
            if chain.broken().is_some() {
                tracing::warn!(group = %group, "the store's chain is broken; consuming waits");
                let mut changes = chain.watch();
                tokio::select! {
                    _ = changes.wait_for(|b| b.is_none()) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                // Not acknowledged: delivered again after resubscribing.
                break;
            }
            let span = tracing::info_span!(
                "consume",
                otel.name = %format_args!("process {}", consumer.source),
                otel.kind = "consumer",
                messaging.system = bus.name(),
                messaging.operation.type = "process",
                messaging.destination.name = %consumer.source,
                messaging.consumer.group.name = %group,
                messaging.message.id = %delivery.event.id,
                cloudevents.event_type = %delivery.event.ty,
            );
            flotilla_bus::trace_context::follow(&span, delivery.event.extension("traceparent"));
            match consumer
                .handler
                .handle(&delivery.event)
                .instrument(span)
                .await
            {
                Ok(()) => {}
                Err(HandlerError::Reject(reason)) => {
                    tracing::warn!(group = %group, event = %delivery.event.id, ty = %delivery.event.ty, %reason, "event rejected")
                }
                Err(HandlerError::Retry(reason)) => {
                    tracing::warn!(group = %group, event = %delivery.event.id, %reason, "event not applied; it will be delivered again");
                    break;
                }
            }
            if let Err(e) = delivery.ack().await {
                tracing::warn!(group = %group, error = %e, "ack failed; the event will be delivered again");
            }
            pause = Duration::from_millis(500);
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Runs a service's relay to one bus until stopped. A relay that fails (the store or the bus
/// was unreachable) starts again from its checkpoint after a pause that grows to 30 s; while
/// the store's chain is broken it publishes nothing.
pub(crate) async fn run_relay(
    store: Arc<dyn EventStore>,
    module: Arc<dyn ServiceModule>,
    publisher: Arc<dyn Publisher>,
    chain: Arc<ChainGuard>,
    fence: Option<Fence>,
    stop: watch::Receiver<bool>,
) {
    let outbound = Arc::new(ServiceOutbound {
        module: module.clone(),
    });
    run_relay_to(
        store,
        module.name(),
        (None, outbound),
        publisher,
        chain,
        fence,
        stop,
    )
    .await;
}

/// A relay of `service`'s store to `destination` (None: the service's own log), its events
/// mapped by `outbound`.
pub(crate) async fn run_relay_to(
    store: Arc<dyn EventStore>,
    service: &'static str,
    (destination, outbound): (Option<&'static str>, Arc<dyn flotilla_bus::relay::Outbound>),
    publisher: Arc<dyn Publisher>,
    chain: Arc<ChainGuard>,
    fence: Option<Fence>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pause = Duration::from_millis(500);
    loop {
        let mut intact = chain.watch();
        tokio::select! {
            _ = intact.wait_for(|b| b.is_none()) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let mut relay = Relay::new(store.clone(), service, publisher.clone())
            .with_outbound(outbound.clone())
            .with_gate(Arc::new(ChainGate(chain.clone())));
        if let Some(d) = destination {
            relay = relay.to(d);
        }
        if let Some(f) = &fence {
            relay = relay.fenced(f.clone());
        }
        let mut stop_this = stop.clone();
        let mut broken = chain.watch();
        let result = relay
            .run(async move {
                tokio::select! {
                    _ = stop_this.wait_for(|s| *s) => {}
                    _ = broken.wait_for(|b| b.is_some()) => {}
                }
            })
            .await;
        if *stop.borrow() {
            return;
        }
        match result {
            Ok(()) if chain.broken().is_some() => {
                tracing::error!(
                    service,
                    bus = publisher.name(),
                    "relay stopped: the store's hash chain is broken"
                );
                continue;
            }
            Ok(()) => return,
            Err(flotilla_bus::BusError::Store(e @ flotilla_core::StoreError::Fenced { .. })) => {
                tracing::warn!(service, bus = publisher.name(), error = %e, "relay stopped: another replica took its lease over");
                return;
            }
            Err(e) => {
                tracing::error!(service, bus = publisher.name(), error = %e, retry_in_ms = pause.as_millis() as u64, "relay failed; restarting from its checkpoint")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// The relay publishes only events whose link and hash were checked, and checks each one's own
/// hash again as it is read (an event altered after it was checked is not published).
struct ChainGate(Arc<ChainGuard>);

#[async_trait::async_trait]
impl flotilla_bus::relay::PublishGate for ChainGate {
    async fn admit(&self, events: &[flotilla_core::event::RecordedEvent]) -> Result<(), String> {
        let Some(last) = events.last().map(|e| e.global_position) else {
            return Ok(());
        };
        let mut verified = self.0.watch_verified();
        let mut broken = self.0.watch();
        loop {
            if let Some(b) = self.0.broken() {
                return Err(b.to_string());
            }
            if *verified.borrow_and_update() >= last {
                break;
            }
            tokio::select! {
                changed = verified.changed() => if changed.is_err() { return Err("the chain check stopped".into()) },
                _ = broken.changed() => {}
            }
        }
        for e in events {
            self.0.check_one(e).map_err(|b| b.to_string())?;
        }
        Ok(())
    }
}

/// Checks a store's chain from its first event and keeps checking what is appended, until
/// stopped; marks the guard caught up once the events present at start were all checked.
pub(crate) async fn run_chain_check(
    store: Arc<dyn EventStore>,
    chain: Arc<ChainGuard>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let mut intact = chain.watch();
        tokio::select! {
            _ = intact.wait_for(|b| b.is_none()) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let from = chain.verified_to() + 1;
        let mut sub = subscribe_all(
            store.clone(),
            from,
            SubscribeOptions {
                page: 5_000,
                poll_interval: Duration::from_millis(250),
            },
        );
        let mut next = from;
        loop {
            let item = tokio::select! {
                i = sub.next() => i,
                _ = stop.wait_for(|s| *s) => return,
            };
            match item {
                Some(Ok(SubscriptionItem::Event(e))) => {
                    if chain.check_from(next, std::slice::from_ref(&e)).is_err() {
                        break;
                    }
                    next = e.global_position + 1;
                }
                Some(Ok(SubscriptionItem::CaughtUp { .. })) => {
                    if !chain.is_caught_up() {
                        match head_reached(&*store, &chain).await {
                            Ok(true) => {}
                            Ok(false) => break,
                            Err(e) => {
                                tracing::warn!(service = chain.service(), error = %e, "reading the store head failed; checking again");
                                break;
                            }
                        }
                        tracing::info!(
                            service = chain.service(),
                            verified = chain.verified_to(),
                            "hash chain checked"
                        );
                        chain.set_caught_up();
                    }
                }
                Some(Err(e)) => {
                    chain.read_failed(&e);
                    tracing::warn!(service = chain.service(), error = %e, "reading the store to check its chain failed");
                    break;
                }
                None => break,
            }
        }
        drop(sub);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Whether the check reached the head the store records (false: a break was recorded).
pub(crate) async fn head_reached(
    store: &dyn EventStore,
    chain: &ChainGuard,
) -> Result<bool, flotilla_core::StoreError> {
    let head = store.head().await?;
    if head.position > chain.verified_to() {
        // Appended since, or removed? Removed events leave nothing to read.
        if !store.read_all(chain.verified_to() + 1, 1).await?.is_empty() {
            return Ok(true);
        }
    }
    Ok(chain.check_head(head).is_ok())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use flotilla_bus::CloudEvent;
    use flotilla_core::conformance::synthetic;
    use flotilla_core::store::AppendRequest;
    use flotilla_core::{ExpectedVersion, MemoryStore};

    use super::*;
    use crate::module::EventHandler;
    use flotilla_bus::Namespace;
    use flotilla_bus::inprocess::InProcessBus;

    struct Counting(AtomicUsize);

    #[async_trait::async_trait]
    impl EventHandler for Counting {
        async fn handle(&self, _event: &CloudEvent) -> Result<(), HandlerError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// A consumer takes events only from the service it subscribed to, in its own namespace:
    /// one published on that stream with another source is refused.
    #[tokio::test]
    async fn consumers_refuse_events_of_another_source() {
        let ns = Namespace::new("acme").expect("ns");
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::with_namespace(ns.clone()));
        let store = MemoryStore::new();
        store
            .append(AppendRequest::new(
                flotilla_core::ids::StreamId::new_for("item"),
                ExpectedVersion::NoStream,
                vec![synthetic(1, 0), synthetic(1, 1)],
            ))
            .await
            .expect("append");
        let events = store.read_all(1, 10).await.expect("read");
        let genuine = CloudEvent::from_recorded(&ns, "catalog", "item", &events[0]);
        let forged = CloudEvent::from_recorded(
            &Namespace::new("other").expect("ns"),
            "catalog",
            "item",
            &events[1],
        );
        bus.publish("catalog", &[forged, genuine])
            .await
            .expect("publish");
        let handler = Arc::new(Counting(AtomicUsize::new(0)));
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run_consumer(
            bus,
            "reader".into(),
            Consumer {
                source: "catalog".into(),
                handler: handler.clone(),
            },
            ChainGuard::trusting("reader"),
            stop_rx,
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop_tx.send(true);
        task.await.expect("consumer stops");
        assert_eq!(
            handler.0.load(Ordering::SeqCst),
            1,
            "only the genuine event"
        );
    }
}
