//! Relay figures for BENCHMARKS.md: how fast a service's relay drains a backlog from its
//! PostgreSQL store to NATS JetStream and to Kafka (with and without tansu's one-record-batch
//! setting), and the latency from an append to a plain NATS consumer at a steady rate.
//!
//! `cargo bench -p flotilla-tests --bench relay` (PostgreSQL, NATS and Kafka from
//! `./scripts/services.sh`). `FLOTILLA_RELAY_BENCH_EVENTS` sets the backlog (default 100,000),
//! `FLOTILLA_RELAY_BENCH_RATE` the steady append rate (default 1,000/s for 10 s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_bus::kafka::KafkaBus;
use flotilla_bus::nats::NatsBus;
use flotilla_bus::relay::Relay;
use flotilla_bus::{Namespace, Publisher};
use flotilla_core::ExpectedVersion;
use flotilla_core::conformance::synthetic;
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_tests::{fresh_namespace, kafka_brokers, nats_url, postgres_url};
use futures::StreamExt;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn fresh_store(ns: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    Ok(flotilla_store::open(&postgres_url(), &flotilla_store::schema_for(ns, "bench")).await?)
}

/// Fills a store with `n` events over 100 streams, 1,000 per append.
async fn fill(store: &Arc<dyn EventStore>, n: u64) -> anyhow::Result<()> {
    let streams: Vec<StreamId> = (0..100).map(|_| StreamId::new_for("item")).collect();
    let mut versions = vec![None::<u64>; streams.len()];
    let mut done = 0u64;
    let mut i = 0usize;
    while done < n {
        let take = (n - done).min(1_000);
        let s = i % streams.len();
        let events = (0..take).map(|k| synthetic(s as u32, k as u32)).collect();
        let expected = versions[s].map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        let o = store
            .append(AppendRequest::new(streams[s].clone(), expected, events))
            .await?;
        versions[s] = Some(o.stream_version);
        done += take;
        i += 1;
    }
    Ok(())
}

/// Drains the whole store through one relay; events per second.
async fn drain(
    store: Arc<dyn EventStore>,
    publisher: Arc<dyn Publisher>,
    n: u64,
) -> anyhow::Result<f64> {
    let relay = Relay::new(store.clone(), "bench", publisher.clone());
    let checkpoint = relay.checkpoint_name();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    loop {
        if store.load_checkpoint(&checkpoint).await?.unwrap_or(0) >= n {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the relay to {} did not drain in 10 minutes",
            publisher.name()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    task.await??;
    Ok(n as f64 / secs)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Appends one event at a time at `rate` per second while a relay runs; a plain async-nats
/// consumer notes when each arrives. Latency from the append's start to the arrival.
async fn latency(rate: u64, secs: u64) -> anyhow::Result<(usize, f64, f64, f64)> {
    let ns = fresh_namespace();
    let store = fresh_store(&ns).await?;
    let bus = Arc::new(NatsBus::connect(&nats_url(), Namespace::new(&ns)?).await?);
    bus.ensure_stream("bench").await?;
    let client = async_nats::connect(nats_url()).await?;
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(Namespace::new(&ns)?.stream("bench")).await?;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = consumer.messages().await?;
    let sent: Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>> = Arc::default();
    let relay = Relay::new(store.clone(), "bench", bus.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    let total = (rate * secs) as usize;
    let receiver = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut lat = Vec::with_capacity(total);
            while lat.len() < total {
                let Ok(Some(Ok(m))) =
                    tokio::time::timeout(Duration::from_secs(10), messages.next()).await
                else {
                    break;
                };
                let now = Instant::now();
                let id = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("ce-id"))
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                if let Some(t) = sent.lock().ok().and_then(|s| s.get(&id).copied()) {
                    lat.push(now.duration_since(t).as_secs_f64() * 1000.0);
                }
            }
            lat
        })
    };
    let stream_id = StreamId::new_for("item");
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut version = None;
    for i in 0..total {
        tick.tick().await;
        let e = synthetic(0, i as u32);
        let id = e.event_id.to_string();
        let t = Instant::now();
        if let Ok(mut s) = sent.lock() {
            s.insert(id, t);
        }
        let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        let o = store
            .append(AppendRequest::new(stream_id.clone(), expected, vec![e]))
            .await?;
        version = Some(o.stream_version);
    }
    let mut lat = receiver.await?;
    let _ = stop.send(());
    relay_task.await??;
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok((
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_num("FLOTILLA_RELAY_BENCH_EVENTS", 100_000);
    let rate = env_num("FLOTILLA_RELAY_BENCH_RATE", 1_000);
    println!("| bus | measure | events | figure |");
    println!("|---|---|---:|---:|");

    let ns = fresh_namespace();
    let store = fresh_store(&ns).await?;
    fill(&store, n).await?;
    let nats = Arc::new(NatsBus::connect(&nats_url(), Namespace::new(&ns)?).await?);
    if std::env::var("FLOTILLA_RELAY_BENCH_PARTS").is_ok() {
        // Where the time goes: reading the store, mapping to CloudEvents, publishing.
        let t = Instant::now();
        let all = store.read_all(1, n as usize).await?;
        let read = t.elapsed();
        let t = Instant::now();
        let ces: Vec<flotilla_bus::CloudEvent> = all
            .iter()
            .map(|e| flotilla_bus::CloudEvent::from_recorded(nats.namespace(), "bench", "item", e))
            .collect();
        let map = t.elapsed();
        let other =
            Arc::new(NatsBus::connect(&nats_url(), Namespace::new(&fresh_namespace())?).await?);
        let t = Instant::now();
        for chunk in ces.chunks(5_000) {
            other.publish("bench", chunk).await?;
        }
        let publish = t.elapsed();
        println!("parts: read {read:?}, map {map:?}, publish {publish:?}");
        // The same count with only Nats-Msg-Id, raw.
        let ns2 = Namespace::new(&fresh_namespace())?;
        let raw = NatsBus::connect(&nats_url(), ns2.clone()).await?;
        raw.ensure_stream("bench").await?;
        let client = async_nats::connect(nats_url()).await?;
        let js = async_nats::jetstream::new(client);
        let t = Instant::now();
        let mut acks = std::collections::VecDeque::new();
        for e in &all {
            let m = async_nats::jetstream::message::PublishMessage::build()
                .payload(e.payload.clone().into())
                .message_id(e.event_id.to_string());
            acks.push_back(
                js.send_publish(format!("{}.item.X", ns2.subject_root("bench")), m)
                    .await?,
            );
            if acks.len() > 2048
                && let Some(a) = acks.pop_front()
            {
                a.await?;
            }
        }
        for a in acks {
            a.await?;
        }
        println!("raw minimal-header publish: {:?}", t.elapsed());
    }
    let per_sec = drain(store.clone(), nats, n).await?;
    println!(
        "| NATS JetStream | backlog drained (PostgreSQL store) | {n} | {per_sec:.0} events/s |"
    );

    for (label, options) in [
        (
            "Kafka (tansu), batch.num.messages=1",
            vec![("batch.num.messages".to_owned(), "1".to_owned())],
        ),
        ("Kafka (tansu), librdkafka's batching", vec![]),
    ] {
        let ns = fresh_namespace();
        let store = fresh_store(&ns).await?;
        let k = n.min(50_000);
        fill(&store, k).await?;
        let kafka = Arc::new(KafkaBus::connect(
            &kafka_brokers(),
            Namespace::new(&ns)?,
            &options,
        )?);
        let per_sec = drain(store, kafka, k).await?;
        println!("| {label} | backlog drained (PostgreSQL store) | {k} | {per_sec:.0} events/s |");
    }

    let (got, p50, p99, max) = latency(rate, 10).await?;
    println!(
        "| NATS JetStream | append -> plain consumer at {rate}/s | {got} | p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms |"
    );
    Ok(())
}
