//! The buses as a subscribing team reads them, with plain NATS and Kafka clients (not
//! Flotilla's own subscription code).

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::Message as _;
use rdkafka::consumer::Consumer as _;

use crate::{kafka_brokers, nats_url};

/// One message as a plain client saw it: its subject (NATS) or topic (Kafka), key, headers
/// (names in lower case) and payload.
#[derive(Debug, Clone)]
pub struct Seen {
    pub subject: String,
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
    pub data: Vec<u8>,
}

/// Everything on a JetStream stream, read from its start with async-nats; waits (up to 30 s)
/// until there are at least `at_least`.
pub async fn nats_messages(stream_name: &str, at_least: usize) -> Vec<Seen> {
    let client = async_nats::connect(nats_url()).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut out = Vec::new();
        if let Ok(stream) = js.get_stream(stream_name).await {
            let consumer = stream
                .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                    deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
                    ..Default::default()
                })
                .await
                .expect("ordered consumer");
            let mut messages = consumer.messages().await.expect("messages");
            while let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_millis(500), messages.next()).await
            {
                let mut headers = HashMap::new();
                if let Some(h) = &m.headers {
                    for (k, v) in h.iter() {
                        if let Some(v) = v.first() {
                            headers.insert(k.to_string().to_ascii_lowercase(), v.to_string());
                        }
                    }
                }
                out.push(Seen {
                    subject: m.subject.to_string(),
                    key: None,
                    headers,
                    data: m.payload.to_vec(),
                });
            }
        }
        if out.len() >= at_least || tokio::time::Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Everything on a Kafka topic, read from its start with rdkafka; waits (up to 60 s) until
/// there are at least `at_least`.
pub async fn kafka_messages(topic: &str, at_least: usize) -> Vec<Seen> {
    let consumer: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set(
            "group.id",
            format!("probe-{}", uuid::Uuid::now_v7().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("kafka consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while out.len() < at_least && tokio::time::Instant::now() < deadline {
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await else {
            continue;
        };
        let mut headers = HashMap::new();
        if let Some(h) = m.headers() {
            use rdkafka::message::Headers as _;
            for x in h.iter() {
                if let Some(v) = x.value {
                    headers.insert(
                        x.key.to_ascii_lowercase(),
                        String::from_utf8_lossy(v).into_owned(),
                    );
                }
            }
        }
        out.push(Seen {
            subject: m.topic().to_owned(),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            headers,
            data: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        });
    }
    out
}
