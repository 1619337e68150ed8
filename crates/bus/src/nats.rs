//! NATS JetStream: one stream per service and namespace (`<NAMESPACE>_<SERVICE>` over
//! `<namespace>.<service>.>`), `Nats-Msg-Id` = event id so the server drops republished
//! duplicates within its duplicate window, durable pull consumers with explicit acks for groups.
//!
//! Publishing is pipelined: messages go out without waiting for their acks, up to a bounded
//! window of outstanding acks; a batch returns once every ack has come back. Consuming reads a
//! continuous pull stream, so a message is handed over as soon as it arrives.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{
    self, consumer::AckPolicy, consumer::pull, context::PublishAckFuture, message::PublishMessage,
    stream,
};
use async_trait::async_trait;
use futures::StreamExt;

use crate::cloudevents::{Binding, CloudEvent};
use crate::naming::Namespace;
use crate::{Acker, BusError, Deliveries, Delivery, Publisher, Result, Subscriber};

/// Retention of a service's JetStream stream and how it dedupes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// How long the server remembers message ids to drop republished duplicates.
    pub duplicate_window: Duration,
    /// Oldest message kept (zero: no age limit).
    pub max_age: Duration,
    /// Most bytes kept, oldest dropped first (-1: no limit).
    pub max_bytes: i64,
}

impl Default for StreamLimits {
    /// Two minutes of dedupe; seven days kept, with no byte limit (JetStream reserves a
    /// stream's byte limit against the server's storage when the stream is created, so a
    /// default there would fail on small servers). The store is the source of truth: a
    /// subscriber that was away longer replays from it (`flotilla store rewind`).
    fn default() -> Self {
        Self {
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: -1,
        }
    }
}

/// Most publish acks outstanding at once.
pub const ACK_WINDOW: usize = 2_048;

/// A NATS JetStream bus.
#[derive(Clone)]
pub struct NatsBus {
    js: jetstream::Context,
    namespace: Namespace,
    ack_wait: Duration,
    limits: StreamLimits,
    /// Streams known to exist with the configured limits.
    ensured: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl NatsBus {
    /// Connects for a deployment namespace.
    pub async fn connect(url: &str, namespace: Namespace) -> Result<Self> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| BusError::Connect(format!("nats at {url}: {e}")))?;
        Ok(Self {
            js: jetstream::new(client),
            namespace,
            ack_wait: Duration::from_secs(30),
            limits: StreamLimits::default(),
            ensured: Arc::default(),
        })
    }

    /// How long the server waits for an ack before redelivering (default 30 s).
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// Retention and dedupe of the streams this bus creates or updates.
    pub fn with_limits(mut self, limits: StreamLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    fn config(&self, service: &str) -> stream::Config {
        stream::Config {
            name: self.namespace.stream(service),
            subjects: vec![self.namespace.subjects(service)],
            duplicate_window: self.limits.duplicate_window,
            max_age: self.limits.max_age,
            max_bytes: self.limits.max_bytes,
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        }
    }

    /// Creates the service's stream if it does not exist, or brings its limits to the
    /// configured ones.
    pub async fn ensure_stream(&self, service: &str) -> Result<stream::Stream> {
        let config = self.config(service);
        let name = config.name.clone();
        let mut stream = self
            .js
            .get_or_create_stream(config.clone())
            .await
            .map_err(|e| BusError::Connect(format!("jetstream stream {name}: {e}")))?;
        let known = self
            .ensured
            .lock()
            .map(|s| s.contains(&name))
            .unwrap_or(false);
        if !known {
            let info = stream
                .info()
                .await
                .map_err(|e| BusError::Connect(format!("jetstream stream {name}: {e}")))?;
            let c = &info.config;
            if c.max_age != config.max_age
                || c.max_bytes != config.max_bytes
                || c.duplicate_window != config.duplicate_window
            {
                tracing::info!(stream = %name, max_age_s = config.max_age.as_secs(), max_bytes = config.max_bytes, "updating the stream's retention to the configured limits");
                self.js
                    .update_stream(config)
                    .await
                    .map_err(|e| BusError::Connect(format!("jetstream stream {name}: {e}")))?;
            }
            if let Ok(mut s) = self.ensured.lock() {
                s.insert(name);
            }
        }
        Ok(stream)
    }

    /// Deletes the service's stream (tests).
    pub async fn delete_stream(&self, service: &str) -> Result<()> {
        let name = self.namespace.stream(service);
        if let Ok(mut s) = self.ensured.lock() {
            s.remove(&name);
        }
        self.js
            .delete_stream(name)
            .await
            .map(|_| ())
            .map_err(|e| BusError::Connect(e.to_string()))
    }

    async fn ensured(&self, service: &str) -> Result<()> {
        let name = self.namespace.stream(service);
        if self
            .ensured
            .lock()
            .map(|s| s.contains(&name))
            .unwrap_or(false)
        {
            return Ok(());
        }
        self.ensure_stream(service).await.map(|_| ())
    }
}

async fn settle(ack: PublishAckFuture, id: &str) -> Result<()> {
    ack.await
        .map(|_| ())
        .map_err(|err| BusError::Publish(format!("nats publish ack of {id}: {err}")))
}

#[async_trait]
impl Publisher for NatsBus {
    fn name(&self) -> &str {
        "nats"
    }

    fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    async fn publish(&self, service: &str, events: &[CloudEvent]) -> Result<()> {
        self.ensured(service).await?;
        self.publish_in_order(service, events).await
    }
}

impl NatsBus {
    /// Publishes in order, with a bounded window of outstanding acks.
    async fn publish_in_order(&self, service: &str, events: &[CloudEvent]) -> Result<()> {
        let mut outstanding: VecDeque<(PublishAckFuture, &str)> = VecDeque::new();
        for ce in events {
            let mut headers = async_nats::HeaderMap::new();
            ce.each_header(Binding::Nats, |k, v| {
                let name = match k {
                    std::borrow::Cow::Borrowed(s) => async_nats::HeaderName::from_static(s),
                    std::borrow::Cow::Owned(s) => match s.parse() {
                        Ok(n) => n,
                        Err(_) => return,
                    },
                };
                headers.insert(name, v.as_ref());
            });
            let aggregate = ce.extension("aggregatetype").unwrap_or("event");
            let subject = self.namespace.subject(service, aggregate, &ce.ty);
            // `headers` replaces the whole map, so it goes before `message_id`.
            let publish = PublishMessage::build()
                .payload(ce.data.clone().into())
                .headers(headers)
                .message_id(ce.id.as_str());
            let ack = self
                .js
                .send_publish(subject, publish)
                .await
                .map_err(|err| BusError::Publish(format!("nats publish of {}: {err}", ce.id)))?;
            outstanding.push_back((ack, ce.id.as_str()));
            if outstanding.len() >= ACK_WINDOW
                && let Some((ack, id)) = outstanding.pop_front()
            {
                settle(ack, id).await?;
            }
        }
        for (ack, id) in outstanding {
            settle(ack, id).await?;
        }
        Ok(())
    }
}

struct NatsDeliveries {
    messages: pull::Stream,
}

struct NatsAck(jetstream::Message);

#[async_trait]
impl Acker for NatsAck {
    async fn ack(self: Box<Self>) -> Result<()> {
        self.0
            .ack()
            .await
            .map_err(|e| BusError::Consume(format!("nats ack: {e}")))
    }
}

fn to_cloudevent(m: &jetstream::Message) -> Result<CloudEvent> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(h) = &m.headers {
        for (name, values) in h.iter() {
            if let Some(v) = values.first() {
                pairs.push((name.to_string(), v.to_string()));
            }
        }
    }
    CloudEvent::from_headers(
        Binding::Nats,
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        m.payload.to_vec(),
    )
}

#[async_trait]
impl Deliveries for NatsDeliveries {
    async fn next(&mut self) -> Result<Delivery> {
        loop {
            let m = match self.messages.next().await {
                Some(Ok(m)) => m,
                Some(Err(e)) => return Err(BusError::Consume(format!("nats pull: {e}"))),
                None => return Err(BusError::Closed),
            };
            match to_cloudevent(&m) {
                Ok(ce) => return Ok(Delivery::new(ce, Box::new(NatsAck(m)))),
                Err(e) => {
                    // A message that is not a Flotilla CloudEvent is terminated, not redelivered forever.
                    tracing::warn!(subject = %m.subject, error = %e, "dropping malformed message");
                    let _ = m.ack_with(jetstream::AckKind::Term).await;
                }
            }
        }
    }
}

#[async_trait]
impl Subscriber for NatsBus {
    async fn subscribe(&self, service: &str, group: &str) -> Result<Box<dyn Deliveries>> {
        let stream = self.ensure_stream(service).await?;
        let durable = self.namespace.durable(group);
        let consumer = stream
            .get_or_create_consumer(
                &durable,
                pull::Config {
                    durable_name: Some(durable.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.ack_wait,
                    filter_subject: self.namespace.subjects(service),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| BusError::Consume(format!("jetstream consumer {durable}: {e}")))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(256)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| BusError::Consume(format!("jetstream consumer {durable}: {e}")))?;
        Ok(Box::new(NatsDeliveries { messages }))
    }

    async fn consumer_lag(&self, service: &str, group: &str) -> Result<Option<u64>> {
        use async_nats::jetstream::ErrorCode;
        use async_nats::jetstream::context::ConsumerInfoErrorKind;
        use async_nats::jetstream::context::GetStreamErrorKind;
        let name = self.namespace.stream(service);
        let stream = match self.js.get_stream(&name).await {
            Ok(s) => s,
            Err(e) => match e.kind() {
                GetStreamErrorKind::JetStream(j)
                    if j.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    return Ok(None);
                }
                _ => return Err(BusError::Consume(format!("jetstream stream {name}: {e}"))),
            },
        };
        let durable = self.namespace.durable(group);
        let info = match stream.consumer_info(&durable).await {
            Ok(info) => info,
            Err(e) => match e.kind() {
                ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::StreamNotFound => {
                    return Ok(None);
                }
                _ => {
                    return Err(BusError::Consume(format!(
                        "jetstream consumer {durable}: {e}"
                    )));
                }
            },
        };
        // Not yet delivered, and delivered but not acknowledged.
        Ok(Some(info.num_pending + info.num_ack_pending as u64))
    }
}
