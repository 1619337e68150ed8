//! Runs the bus conformance suite against the real NATS JetStream (FLOTILLA_TEST_NATS_URL,
//! default nats://127.0.0.1:4222) and a real Kafka-API broker (FLOTILLA_TEST_KAFKA_BROKERS,
//! default 127.0.0.1:9092; `./scripts/test.sh` starts tansu there).

use std::sync::Arc;

use async_trait::async_trait;
use flotilla_bus::conformance::BusHarness;
use flotilla_bus::kafka::KafkaBus;
use flotilla_bus::nats::{NatsBus, StreamLimits};
use flotilla_bus::{Bus, Namespace};

/// A namespace of its own for each bus, so runs (and other deployments on the same brokers)
/// never share a stream, consumer, topic or group.
fn namespace() -> Namespace {
    Namespace::new(&format!(
        "t{}",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    ))
    .expect("valid namespace")
}

pub struct NatsHarness;

#[async_trait]
impl BusHarness for NatsHarness {
    async fn fresh(&self) -> Arc<dyn Bus> {
        let url = std::env::var("FLOTILLA_TEST_NATS_URL")
            .unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        Arc::new(
            NatsBus::connect(&url, namespace())
                .await
                .unwrap_or_else(|e| panic!("NATS with JetStream at {url} is needed ({e}); run ./scripts/test.sh, which starts it"))
                .with_ack_wait(std::time::Duration::from_secs(2))
                .with_limits(StreamLimits {
                    max_age: std::time::Duration::from_secs(600),
                    ..StreamLimits::default()
                }),
        )
    }
}

pub struct KafkaHarness;

fn init_logs() {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
}

#[async_trait]
impl BusHarness for KafkaHarness {
    async fn fresh(&self) -> Arc<dyn Bus> {
        init_logs();
        let brokers = std::env::var("FLOTILLA_TEST_KAFKA_BROKERS")
            .unwrap_or_else(|_| "127.0.0.1:9092".into());
        Arc::new(
            KafkaBus::connect(
                &brokers,
                namespace(),
                &[("batch.num.messages".into(), "1".into())],
            )
            .unwrap_or_else(|e| {
                panic!(
                    "Kafka at {brokers} is needed ({e}); run ./scripts/test.sh, which starts tansu"
                )
            }),
        )
    }
}

mod nats {
    flotilla_bus::bus_conformance_tests!(crate::NatsHarness);
}

mod kafka {
    flotilla_bus::bus_conformance_tests!(crate::KafkaHarness);
}
