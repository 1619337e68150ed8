//! Flotilla's event buses.
//!
//! No dual writes: services append to their store and the [`relay::Relay`] tails the store from a
//! persisted checkpoint and publishes every event, at least once, as a [`CloudEvent`]. Consumers
//! apply each event once through the [`inbox::Inbox`], which records the event id in the same
//! transaction as the consumer's own append. Every bus (NATS JetStream, Kafka, in-process) runs
//! the same conformance suite ([`conformance`]).

pub mod cloudevents;
pub mod conformance;
pub mod inbox;
pub mod inprocess;
pub mod kafka;
pub mod naming;
pub mod nats;
pub mod relay;
pub mod trace_context;

use async_trait::async_trait;

pub use cloudevents::{CloudEvent, EventParts};
pub use naming::Namespace;

/// Errors of the bus boundary.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus connection failed: {0}")]
    Connect(String),
    #[error("publish failed: {0}")]
    Publish(String),
    #[error("consume failed: {0}")]
    Consume(String),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] flotilla_core::StoreError),
    #[error("bus is closed")]
    Closed,
}

pub type Result<T, E = BusError> = std::result::Result<T, E>;

/// Publishes a service's events as CloudEvents. `publish` returns once the bus has durably
/// accepted every event of the batch; each stream's events are sent in order.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Bus name for checkpoints and logs: "nats", "kafka" or "inprocess".
    fn name(&self) -> &str;
    /// The deployment namespace every name on this bus starts from.
    fn namespace(&self) -> &Namespace;
    async fn publish(&self, service: &str, events: &[CloudEvent]) -> Result<()>;
}

/// One delivered event; acknowledge it once it is applied, or it is delivered again.
pub struct Delivery {
    pub event: CloudEvent,
    ack: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("event", &self.event.id)
            .finish()
    }
}

impl Delivery {
    pub fn new(event: CloudEvent, ack: Box<dyn Acker>) -> Self {
        Self { event, ack }
    }

    pub async fn ack(self) -> Result<()> {
        self.ack.ack().await
    }
}

/// Acknowledges one delivery.
#[async_trait]
pub trait Acker: Send + Sync {
    async fn ack(self: Box<Self>) -> Result<()>;
}

/// A stream of deliveries for one consumer group.
#[async_trait]
pub trait Deliveries: Send {
    /// The next delivery; waits until one arrives.
    async fn next(&mut self) -> Result<Delivery>;
}

/// Consumes a service's events as a named, durable group: each group gets every event, at
/// least once; unacknowledged events are delivered again (to the group's next subscriber).
#[async_trait]
pub trait Subscriber: Send + Sync {
    async fn subscribe(&self, service: &str, group: &str) -> Result<Box<dyn Deliveries>>;

    /// How many of `service`'s events the durable group `group` has not yet acknowledged, as
    /// the bus counts them (None: this bus does not say, or the group or log does not exist
    /// yet).
    async fn consumer_lag(&self, _service: &str, _group: &str) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// A bus both publishes and consumes.
pub trait Bus: Publisher + Subscriber {}
impl<T: Publisher + Subscriber> Bus for T {}
