//! Kafka: topic `<namespace>.<service>.events`, key = stream id (so a stream's events stay in
//! order on one partition), idempotent producer with `acks=all` (so librdkafka's retries never
//! duplicate or reorder), consumer groups `<namespace>.<group>` with manual offset commits
//! after each applied event. A publish call enqueues its whole batch before waiting for any
//! delivery report, so librdkafka sends it in as few produce requests as its batching allows.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::cloudevents::{Binding, CloudEvent};
use crate::naming::Namespace;
use crate::{Acker, BusError, Deliveries, Delivery, Publisher, Result, Subscriber};

/// A Kafka bus (any Kafka-API broker).
#[derive(Clone)]
pub struct KafkaBus {
    brokers: String,
    producer: FutureProducer,
    namespace: Namespace,
    partitions: i32,
    /// Topics known to exist.
    ensured: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Per consumer group, a client that reads its committed offsets (not a member of it).
    lag_readers: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<BaseConsumer>>>>,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("brokers", &self.brokers)
            .finish()
    }
}

impl KafkaBus {
    /// Connects for a deployment namespace with extra librdkafka producer settings, e.g.
    /// `batch.num.messages=1` for tansu 0.6, which returns nothing when a fetch starts inside a
    /// multi-record batch.
    pub fn connect(
        brokers: &str,
        namespace: Namespace,
        producer_options: &[(String, String)],
    ) -> Result<Self> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "2");
        for (k, v) in producer_options {
            config.set(k, v);
        }
        let producer: FutureProducer = config
            .create()
            .map_err(|e| BusError::Connect(format!("kafka producer for {brokers}: {e}")))?;
        Ok(Self {
            brokers: brokers.to_owned(),
            producer,
            namespace,
            partitions: 3,
            ensured: Arc::default(),
            lag_readers: Arc::default(),
        })
    }

    /// The topic a service's events go to.
    pub fn topic(&self, service: &str) -> String {
        self.namespace.topic(service)
    }

    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// Creates the service's topic if it does not exist.
    pub async fn ensure_topic(&self, service: &str) -> Result<()> {
        let topic = self.topic(service);
        if self
            .ensured
            .lock()
            .map(|s| s.contains(&topic))
            .unwrap_or(false)
        {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .map_err(|e| BusError::Connect(format!("kafka admin: {e}")))?;
        let results = admin
            .create_topics(
                &[NewTopic::new(
                    &topic,
                    self.partitions,
                    TopicReplication::Fixed(1),
                )],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .map_err(|e| BusError::Connect(format!("kafka create topic {topic}: {e}")))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(BusError::Connect(format!("kafka create topic {t}: {code}")));
                }
            }
        }
        if let Ok(mut s) = self.ensured.lock() {
            s.insert(topic);
        }
        Ok(())
    }
}

#[async_trait]
impl Publisher for KafkaBus {
    fn name(&self) -> &str {
        "kafka"
    }

    fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    async fn publish(&self, service: &str, events: &[CloudEvent]) -> Result<()> {
        self.ensure_topic(service).await?;
        let topic = self.topic(service);
        let mut pending = Vec::with_capacity(events.len());
        for ce in events {
            let mut headers = OwnedHeaders::new_with_capacity(24);
            ce.each_header(Binding::Kafka, |k, v| {
                headers = std::mem::replace(&mut headers, OwnedHeaders::new()).insert(Header {
                    key: &k,
                    value: Some(v.as_bytes()),
                });
            });
            let record = FutureRecord::to(&topic)
                .key(ce.subject.as_deref().unwrap_or_default())
                .payload(&ce.data)
                .headers(headers);
            let fut = self.producer.send_result(record).map_err(|(err, _)| {
                BusError::Publish(format!("kafka enqueue of {}: {err}", ce.id))
            })?;
            pending.push((ce.id.as_str(), fut));
        }
        for (id, fut) in pending {
            match fut.await {
                Ok(Ok(_)) => {}
                Ok(Err((err, _))) => {
                    return Err(BusError::Publish(format!("kafka delivery of {id}: {err}")));
                }
                Err(_) => {
                    return Err(BusError::Publish(format!(
                        "kafka delivery of {id} was cancelled"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Per partition: the next offset to commit and the acknowledged offsets beyond it. Kafka keeps
/// one committed offset per partition, so an offset is committed only once everything before it
/// was acknowledged; an event acknowledged out of order never hides an unacknowledged one.
#[derive(Default)]
struct PartitionAcks {
    next: i64,
    acked: std::collections::BTreeSet<i64>,
}

type AckBook = Arc<std::sync::Mutex<std::collections::HashMap<(String, i32), PartitionAcks>>>;

struct KafkaDeliveries {
    consumer: Arc<StreamConsumer>,
    book: AckBook,
}

struct KafkaAck {
    consumer: Arc<StreamConsumer>,
    book: AckBook,
    topic: String,
    partition: i32,
    offset: i64,
}

#[async_trait]
impl Acker for KafkaAck {
    async fn ack(self: Box<Self>) -> Result<()> {
        let commit_to = {
            let mut book = self
                .book
                .lock()
                .map_err(|_| BusError::Consume("kafka ack book poisoned".into()))?;
            let p = book
                .entry((self.topic.clone(), self.partition))
                .or_insert_with(|| PartitionAcks {
                    next: self.offset,
                    ..PartitionAcks::default()
                });
            if self.offset >= p.next {
                p.acked.insert(self.offset);
            }
            let before = p.next;
            while p.acked.remove(&p.next) {
                p.next += 1;
            }
            (p.next > before).then_some(p.next)
        };
        let Some(next) = commit_to else { return Ok(()) };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, self.partition, Offset::Offset(next))
            .map_err(|e| BusError::Consume(format!("kafka commit: {e}")))?;
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
            .await
            .map_err(|e| BusError::Consume(format!("kafka commit: {e}")))?
            .map_err(|e| BusError::Consume(format!("kafka commit: {e}")))
    }
}

#[async_trait]
impl Deliveries for KafkaDeliveries {
    async fn next(&mut self) -> Result<Delivery> {
        loop {
            let m = self
                .consumer
                .recv()
                .await
                .map_err(|e| BusError::Consume(format!("kafka receive: {e}")))?;
            let pairs: Vec<(String, String)> = m
                .headers()
                .map(|h| {
                    h.iter()
                        .filter_map(|h| {
                            h.value.map(|v| {
                                (h.key.to_owned(), String::from_utf8_lossy(v).into_owned())
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            if let Ok(mut book) = self.book.lock() {
                // The first delivery of a partition (or one before what this consumer tracked,
                // after a rebalance) sets where committing resumes.
                let p = book
                    .entry((m.topic().to_owned(), m.partition()))
                    .or_insert_with(|| PartitionAcks {
                        next: m.offset(),
                        ..PartitionAcks::default()
                    });
                if m.offset() < p.next {
                    p.next = m.offset();
                    p.acked.clear();
                }
            }
            let ack = KafkaAck {
                book: self.book.clone(),
                consumer: self.consumer.clone(),
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
            };
            match CloudEvent::from_headers(
                Binding::Kafka,
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                m.payload().unwrap_or_default().to_vec(),
            ) {
                Ok(ce) => return Ok(Delivery::new(ce, Box::new(ack))),
                Err(e) => {
                    tracing::warn!(topic = m.topic(), partition = m.partition(), offset = m.offset(), error = %e, "skipping malformed message");
                    drop(m);
                    Box::new(ack).ack().await?;
                }
            }
        }
    }
}

#[async_trait]
impl Subscriber for KafkaBus {
    async fn subscribe(&self, service: &str, group: &str) -> Result<Box<dyn Deliveries>> {
        self.ensure_topic(service).await?;
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", self.namespace.group(group))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000");
        // librdkafka debug contexts (e.g. "cgrp,fetch"), logged through tracing.
        if let Ok(debug) = std::env::var("FLOTILLA_KAFKA_DEBUG") {
            config.set("debug", debug);
        }
        let consumer: StreamConsumer = config
            .create()
            .map_err(|e| BusError::Connect(format!("kafka consumer: {e}")))?;
        consumer
            .subscribe(&[&self.topic(service)])
            .map_err(|e| BusError::Consume(format!("kafka subscribe: {e}")))?;
        Ok(Box::new(KafkaDeliveries {
            consumer: Arc::new(consumer),
            book: AckBook::default(),
        }))
    }

    async fn consumer_lag(&self, service: &str, group: &str) -> Result<Option<u64>> {
        let group = self.namespace.group(group);
        let reader = {
            let mut readers = self
                .lag_readers
                .lock()
                .map_err(|_| BusError::Consume("kafka lag readers lock poisoned".into()))?;
            match readers.get(&group) {
                Some(r) => r.clone(),
                None => {
                    let r: Arc<BaseConsumer> = Arc::new(
                        ClientConfig::new()
                            .set("bootstrap.servers", &self.brokers)
                            .set("group.id", &group)
                            .set("enable.auto.commit", "false")
                            .create()
                            .map_err(|e| BusError::Connect(format!("kafka consumer: {e}")))?,
                    );
                    readers.insert(group.clone(), r.clone());
                    r
                }
            }
        };
        let topic = self.topic(service);
        // librdkafka's calls block: off the runtime's threads.
        tokio::task::spawn_blocking(move || group_lag(&reader, &group, &topic))
            .await
            .map_err(|e| BusError::Consume(format!("kafka lag: {e}")))?
    }
}

/// A group's lag on a topic: per partition, the high watermark less the group's committed
/// offset (the low watermark where it committed nothing, and never below it: what retention
/// deleted is not lag). None when the topic does not exist. (Kafka cannot tell a group that
/// never subscribed from one that has not committed yet: both lag by the whole log.)
fn group_lag(reader: &BaseConsumer, group: &str, topic: &str) -> Result<Option<u64>> {
    const WAIT: Duration = Duration::from_secs(2);
    // The reader never joins the group, but its queue gathers the client's events (errors
    // while the broker is away): drained at each use, logged.
    while let Some(event) = reader.poll(Duration::ZERO) {
        if let Err(e) = event {
            tracing::debug!(group, error = %e, "kafka lag reader");
        }
    }
    let metadata = reader
        .fetch_metadata(Some(topic), WAIT)
        .map_err(|e| BusError::Consume(format!("kafka metadata of {topic}: {e}")))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match found.error() {
        None => {}
        Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => {
            return Ok(None);
        }
        Some(e) => {
            return Err(BusError::Consume(format!(
                "kafka metadata of {topic}: {:?}",
                RDKafkaErrorCode::from(e)
            )));
        }
    }
    let partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    let mut wanted = TopicPartitionList::new();
    for p in &partitions {
        wanted.add_partition(topic, *p);
    }
    let committed = reader
        .committed_offsets(wanted, WAIT)
        .map_err(|e| BusError::Consume(format!("kafka committed offsets of {group}: {e}")))?;
    let committed_at = |p: i32| match committed.find_partition(topic, p).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => Some(o),
        _ => None,
    };
    let mut lag = 0u64;
    for p in partitions {
        let (low, high) = reader
            .fetch_watermarks(topic, p, WAIT)
            .map_err(|e| BusError::Consume(format!("kafka watermarks of {topic}/{p}: {e}")))?;
        let from = committed_at(p).unwrap_or(low).max(low);
        lag += u64::try_from(high.saturating_sub(from)).unwrap_or(0);
    }
    Ok(Some(lag))
}
