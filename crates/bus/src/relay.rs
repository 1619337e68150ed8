//! The relay: tails a service's store by global position from a persisted checkpoint and
//! publishes to one bus. Killed at any point, it publishes again from its last checkpoint, so
//! every event arrives at least once; consumers dedupe by event id.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flotilla_core::event::RecordedEvent;
use flotilla_core::ids::StreamId;
use flotilla_core::store::EventStore;
use flotilla_core::subscription::{SubscribeOptions, SubscriptionItem, subscribe_all};
use futures::FutureExt;

use crate::{BusError, CloudEvent, Namespace, Publisher, Result};

/// What a service's events look like on the bus: the aggregate type of each stream (the
/// subject token and `aggregatetype` extension) and which events stay off the bus.
pub trait Outbound: Send + Sync {
    /// The aggregate type a stream's events belong to.
    fn aggregate_type(&self, stream: &StreamId) -> String {
        stream.aggregate().to_owned()
    }

    /// Whether an event is published (those that are not stay in the store only; their
    /// positions are gaps in `sequence`).
    fn publishes(&self, _event: &RecordedEvent) -> bool {
        true
    }

    /// What goes on the bus for a stored event of `service` (none: it stays in the store):
    /// by default the event itself as a CloudEvent, if it [`Outbound::publishes`]. A relay to
    /// another log (CDEvents) maps events to that log's own.
    fn outgoing(
        &self,
        namespace: &Namespace,
        service: &str,
        event: &RecordedEvent,
    ) -> Option<CloudEvent> {
        self.publishes(event).then(|| {
            CloudEvent::from_recorded(
                namespace,
                service,
                &self.aggregate_type(&event.stream_id),
                event,
            )
        })
    }
}

/// What must hold before a batch is published (e.g. the store's hash chain checked up to it).
#[async_trait::async_trait]
pub trait PublishGate: Send + Sync {
    /// Waits until `events` may be published; an error stops the relay before it publishes them.
    async fn admit(&self, events: &[RecordedEvent]) -> std::result::Result<(), String>;
}

/// Every event published; aggregate types by the stream naming rule (`<aggregate>-<uuid>`).
#[derive(Debug, Default, Clone, Copy)]
pub struct PublishAll;

impl Outbound for PublishAll {}

/// Publishes a store's events to one bus.
pub struct Relay {
    store: Arc<dyn EventStore>,
    service: String,
    publisher: Arc<dyn Publisher>,
    outbound: Arc<dyn Outbound>,
    gate: Option<Arc<dyn PublishGate>>,
    /// The log it publishes to (default: the service's own).
    destination: Option<String>,
    /// The term of the lease this relay runs in: its checkpoints are written only while the
    /// term holds (None: unfenced, for a relay alone on its store).
    fence: Option<flotilla_core::lease::Fence>,
    /// Most events per publish call.
    pub batch: usize,
    /// Pause after a failed publish before trying again.
    pub retry_delay: Duration,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("service", &self.service)
            .field("bus", &self.publisher.name())
            .finish()
    }
}

impl Relay {
    pub fn new(
        store: Arc<dyn EventStore>,
        service: impl Into<String>,
        publisher: Arc<dyn Publisher>,
    ) -> Self {
        Self {
            store,
            service: service.into(),
            publisher,
            outbound: Arc::new(PublishAll),
            gate: None,
            destination: None,
            fence: None,
            batch: 5_000,
            retry_delay: Duration::from_millis(500),
        }
    }

    /// Sets what the service's events look like on the bus.
    pub fn with_outbound(mut self, outbound: Arc<dyn Outbound>) -> Self {
        self.outbound = outbound;
        self
    }

    /// Publishes a batch only once `gate` admits it.
    pub fn with_gate(mut self, gate: Arc<dyn PublishGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Publishes to another log than the service's own (e.g. [`crate::naming::CDEVENTS`]),
    /// with a checkpoint of its own.
    pub fn to(mut self, destination: &str) -> Self {
        self.destination = Some(destination.to_owned());
        self
    }

    /// Writes checkpoints only while `fence`'s term holds its lease: once another process took
    /// the relay over, this one ends with [`flotilla_core::StoreError::Fenced`].
    pub fn fenced(mut self, fence: flotilla_core::lease::Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Name of the checkpoint this relay keeps in the store.
    pub fn checkpoint_name(&self) -> String {
        match &self.destination {
            None => format!("relay:{}:{}", self.service, self.publisher.name()),
            Some(d) => format!("relay:{}>{d}:{}", self.service, self.publisher.name()),
        }
    }

    /// Runs until `shutdown` resolves. Publish failures are retried after `retry_delay`;
    /// store failures end the relay with an error.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::select! {
            r = self.run_forever() => r,
            _ = shutdown => Ok(()),
        }
    }

    async fn run_forever(&self) -> Result<()> {
        let name = self.checkpoint_name();
        let published = self.store.load_checkpoint(&name).await?.unwrap_or(0);
        tracing::info!(service = %self.service, bus = self.publisher.name(), from = published + 1, "relay starting");
        let mut sub = subscribe_all(
            self.store.clone(),
            published + 1,
            SubscribeOptions {
                page: self.batch,
                poll_interval: Duration::from_millis(200),
            },
        );
        // Batches are published and checkpointed in order by a task of their own, so the next
        // batch is read and mapped while the previous one waits for its acks.
        let (tx, rx) = tokio::sync::mpsc::channel::<(Vec<CloudEvent>, u64, usize)>(2);
        let publishing = AbortOnDrop(tokio::spawn(publish_in_order(
            self.store.clone(),
            self.publisher.clone(),
            self.destination
                .clone()
                .unwrap_or_else(|| self.service.clone()),
            name,
            self.fence.clone(),
            self.retry_delay,
            rx,
        )));
        let mut pending = Vec::with_capacity(self.batch);
        let mut last = published;
        loop {
            // Take what is ready now, up to a batch; wait only when nothing is pending.
            let item = if pending.is_empty() {
                sub.next().await
            } else {
                // Nothing ready: publish what is pending (receiving is cancel-safe).
                sub.next()
                    .now_or_never()
                    .unwrap_or(Some(Ok(SubscriptionItem::CaughtUp { position: last })))
            };
            match item {
                Some(Ok(SubscriptionItem::Event(e))) => {
                    pending.push(e);
                    if pending.len() < self.batch {
                        continue;
                    }
                }
                Some(Ok(SubscriptionItem::CaughtUp { .. })) => {}
                Some(Err(e)) => return Err(BusError::Store(e)),
                None => return Err(BusError::Closed),
            }
            if pending.is_empty() {
                continue;
            }
            if let Some(gate) = &self.gate {
                gate.admit(&pending).await.map_err(BusError::Publish)?;
            }
            let namespace = self.publisher.namespace();
            let outgoing: Vec<CloudEvent> = pending
                .iter()
                .filter_map(|e| self.outbound.outgoing(namespace, &self.service, e))
                .collect();
            last = pending.last().map_or(last, |e| e.global_position);
            if tx.send((outgoing, last, pending.len())).await.is_err() {
                // The publishing task ended: say why.
                return match publishing.join().await {
                    Ok(Err(e)) => Err(e),
                    _ => Err(BusError::Closed),
                };
            }
            pending.clear();
        }
    }
}

/// Aborts a task when dropped (the relay stopped).
struct AbortOnDrop(tokio::task::JoinHandle<Result<()>>);

impl AbortOnDrop {
    async fn join(mut self) -> std::result::Result<Result<()>, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The spans of publishing the events of a batch that carry a `traceparent`, each a child of
/// the span that appended it (messaging attributes as OpenTelemetry names them).
fn publish_spans(bus: &str, log: &str, outgoing: &[CloudEvent]) -> Vec<tracing::Span> {
    outgoing
        .iter()
        .filter_map(|e| {
            let tp = e.extension("traceparent")?;
            let span = tracing::info_span!(
                "relay.publish",
                otel.name = %format_args!("publish {log}"),
                otel.kind = "producer",
                messaging.system = bus,
                messaging.operation.type = "send",
                messaging.destination.name = log,
                messaging.message.id = %e.id,
                cloudevents.event_type = %e.ty,
                // An i64: OpenTelemetry has no unsigned attribute.
                flotilla.position = e.sequence().map(|p| p as i64),
            );
            crate::trace_context::follow(&span, Some(tp));
            Some(span)
        })
        .collect()
}

/// Publishes batches in the order received, retrying each until the bus accepts it, and
/// records each batch's last position as the checkpoint once it is accepted.
async fn publish_in_order(
    store: Arc<dyn EventStore>,
    publisher: Arc<dyn Publisher>,
    service: String,
    checkpoint: String,
    fence: Option<flotilla_core::lease::Fence>,
    retry_delay: Duration,
    mut batches: tokio::sync::mpsc::Receiver<(Vec<CloudEvent>, u64, usize)>,
) -> Result<()> {
    while let Some((outgoing, last, count)) = batches.recv().await {
        // One span per event that came with a trace, from publishing until the bus accepted it.
        let _spans = publish_spans(publisher.name(), &service, &outgoing);
        while !outgoing.is_empty() {
            match publisher.publish(&service, &outgoing).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(service = %service, bus = publisher.name(), error = %e, "publish failed; retrying");
                    tokio::time::sleep(retry_delay).await;
                }
            }
        }
        match &fence {
            Some(f) => store.save_checkpoint_fenced(&checkpoint, last, f).await?,
            None => store.save_checkpoint(&checkpoint, last).await?,
        }
        tracing::debug!(service = %service, bus = publisher.name(), position = last, count, "published");
    }
    Ok(())
}
