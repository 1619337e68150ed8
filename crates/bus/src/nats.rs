//! NATS JetStream: one stream per service (`FLOTILLA_<SERVICE>` over `flotilla.<service>.>`),
//! `Nats-Msg-Id` = event id so the server drops republished duplicates within its window,
//! durable pull consumers with explicit acks for groups.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::{
    self, consumer::AckPolicy, consumer::pull, message::PublishMessage, stream,
};
use async_trait::async_trait;
use flotilla_core::event::RecordedEvent;
use futures::StreamExt;

use crate::cloudevents::{Binding, CloudEvent, nats_subject};
use crate::{Acker, BusError, Deliveries, Delivery, Publisher, Result, Subscriber};

/// How long JetStream remembers message ids for dedupe.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Name of a service's JetStream stream.
pub fn stream_name(service: &str) -> String {
    format!(
        "FLOTILLA_{}",
        service.to_ascii_uppercase().replace(['-', '.'], "_")
    )
}

/// A NATS JetStream bus.
#[derive(Clone)]
pub struct NatsBus {
    js: jetstream::Context,
    /// Prefix for stream names (tests isolate themselves with it).
    namespace: String,
    ack_wait: Duration,
    max_age: Duration,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl NatsBus {
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_namespaced(url, "").await
    }

    /// Connects with a namespace: streams become `<NS>_FLOTILLA_<SERVICE>` and subjects
    /// `<ns>.flotilla.<service>...`, so parallel test runs do not share streams.
    pub async fn connect_namespaced(url: &str, namespace: &str) -> Result<Self> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| BusError::Connect(format!("nats at {url}: {e}")))?;
        Ok(Self {
            js: jetstream::new(client),
            namespace: namespace.to_owned(),
            ack_wait: Duration::from_secs(30),
            max_age: Duration::ZERO,
        })
    }

    /// How long the server waits for an ack before redelivering (default 30 s).
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// How long streams keep messages (default forever; tests use a short age).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    fn subject_root(&self, service: &str) -> String {
        if self.namespace.is_empty() {
            format!("flotilla.{service}")
        } else {
            format!("{}.flotilla.{service}", self.namespace)
        }
    }

    fn subject(&self, service: &str, e: &RecordedEvent) -> String {
        let s = nats_subject(service, e);
        if self.namespace.is_empty() {
            s
        } else {
            format!("{}.{s}", self.namespace)
        }
    }

    fn stream_name(&self, service: &str) -> String {
        let base = stream_name(service);
        if self.namespace.is_empty() {
            base
        } else {
            format!(
                "{}_{base}",
                self.namespace.to_ascii_uppercase().replace(['-', '.'], "_")
            )
        }
    }

    /// Creates the service's stream if it does not exist.
    pub async fn ensure_stream(&self, service: &str) -> Result<stream::Stream> {
        self.js
            .get_or_create_stream(stream::Config {
                name: self.stream_name(service),
                subjects: vec![format!("{}.>", self.subject_root(service))],
                duplicate_window: DUPLICATE_WINDOW,
                max_age: self.max_age,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                BusError::Connect(format!(
                    "jetstream stream {}: {e}",
                    self.stream_name(service)
                ))
            })
    }

    /// Deletes the service's stream (tests).
    pub async fn delete_stream(&self, service: &str) -> Result<()> {
        self.js
            .delete_stream(self.stream_name(service))
            .await
            .map(|_| ())
            .map_err(|e| BusError::Connect(e.to_string()))
    }
}

#[async_trait]
impl Publisher for NatsBus {
    fn name(&self) -> &str {
        "nats"
    }

    async fn publish(&self, service: &str, events: &[RecordedEvent]) -> Result<()> {
        self.ensure_stream(service).await?;
        let mut acks = Vec::with_capacity(events.len());
        for e in events {
            let ce = CloudEvent::from_recorded(service, e);
            let mut headers = async_nats::HeaderMap::new();
            for (k, v) in ce.to_headers(Binding::Nats) {
                headers.insert(k.as_str(), v.as_str());
            }
            // `headers` replaces the whole map, so it goes before `message_id`.
            let publish = PublishMessage::build()
                .payload(ce.data.into())
                .headers(headers)
                .message_id(e.event_id.to_string());
            let ack = self
                .js
                .send_publish(self.subject(service, e), publish)
                .await
                .map_err(|err| {
                    BusError::Publish(format!("nats publish of {}: {err}", e.event_id))
                })?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|err| BusError::Publish(format!("nats publish ack: {err}")))?;
        }
        Ok(())
    }
}

struct NatsDeliveries {
    consumer: jetstream::consumer::Consumer<pull::Config>,
    buffer: VecDeque<jetstream::Message>,
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
            while let Some(m) = self.buffer.pop_front() {
                match to_cloudevent(&m) {
                    Ok(ce) => return Ok(Delivery::new(ce, Box::new(NatsAck(m)))),
                    Err(e) => {
                        // A message that is not a Flotilla CloudEvent is terminated, not redelivered forever.
                        tracing::warn!(subject = %m.subject, error = %e, "dropping malformed message");
                        let _ = m.ack_with(jetstream::AckKind::Term).await;
                    }
                }
            }
            let mut batch = self
                .consumer
                .fetch()
                .max_messages(256)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .map_err(|e| BusError::Consume(format!("nats fetch: {e}")))?;
            while let Some(m) = batch.next().await {
                self.buffer
                    .push_back(m.map_err(|e| BusError::Consume(format!("nats fetch: {e}")))?);
            }
        }
    }
}

#[async_trait]
impl Subscriber for NatsBus {
    async fn subscribe(&self, service: &str, group: &str) -> Result<Box<dyn Deliveries>> {
        let stream = self.ensure_stream(service).await?;
        let durable = group.replace(['.', '*', '>', ' '], "_");
        let consumer = stream
            .get_or_create_consumer(
                &durable,
                pull::Config {
                    durable_name: Some(durable.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.ack_wait,
                    filter_subject: format!("{}.>", self.subject_root(service)),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| BusError::Consume(format!("jetstream consumer {durable}: {e}")))?;
        Ok(Box::new(NatsDeliveries {
            consumer,
            buffer: VecDeque::new(),
        }))
    }
}
