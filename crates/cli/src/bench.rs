//! `flotilla store bench`: appends synthetic events with concurrent writers and reports
//! events/s and append latency; optionally the raw-INSERT baselines of the same PostgreSQL and
//! replay throughput (read + decode + evolve).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use flotilla_core::ExpectedVersion;
use flotilla_core::event::{Metadata, NewEvent, RecordedEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_proto::eventstore::v1::SyntheticEventRecorded;
use flotilla_runtime::replay::{Projection, replay};
use prost::Message;

use crate::output::{Output, progress, table};

const EVENT_TYPE: &str = "flotilla.eventstore.v1.SyntheticEventRecorded";

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// postgres://…, sqlite://path or memory:
    #[arg(long)]
    url: String,
    /// Events to append in all.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Concurrent writers, each on its own stream.
    #[arg(long, default_value_t = 64)]
    writers: u64,
    /// Events per append.
    #[arg(long, default_value_t = 1)]
    batch: u64,
    /// PostgreSQL schema to use (default: a fresh flotilla_bench_* schema, dropped afterwards).
    #[arg(long)]
    schema: Option<String>,
    /// Keep the benchmark schema.
    #[arg(long)]
    keep: bool,
    /// Also measure raw INSERT baselines on the same PostgreSQL (multi-row, and one row per
    /// transaction from 64 clients).
    #[arg(long)]
    baseline: bool,
    /// Also replay every event in the store (read + decode + evolve).
    #[arg(long)]
    replay: bool,
    /// Skip appending (e.g. to replay a kept store).
    #[arg(long)]
    no_append: bool,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, serde::Serialize)]
struct Figure {
    name: String,
    events: u64,
    seconds: f64,
    per_second: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

fn percentile(sorted: &[Duration], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3)
}

fn synthetic(writer: &str, seq: u64, md: &Metadata) -> NewEvent {
    let payload = SyntheticEventRecorded {
        sequence: seq,
        writer: writer.to_owned(),
        body: vec![0x5a; 64],
    }
    .encode_to_vec();
    NewEvent::new(EVENT_TYPE, 1, payload, md.clone())
}

async fn append_phase(store: Arc<dyn EventStore>, args: &BenchArgs) -> anyhow::Result<Figure> {
    let done = Arc::new(AtomicU64::new(0));
    let bar = progress(args.events, "appending");
    let per_writer = args.events / args.writers;
    let extra = args.events % args.writers;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.writers {
        let store = store.clone();
        let done = done.clone();
        let n = per_writer + u64::from(w < extra);
        let batch = args.batch.max(1);
        tasks.push(tokio::spawn(async move {
            let name = format!("writer-{w}");
            let stream = StreamId::new_for("bench");
            let md = Metadata::by(&name, "bench");
            let mut latencies = Vec::with_capacity((n / batch + 1) as usize);
            let mut expected = ExpectedVersion::NoStream;
            let mut seq = 0;
            while seq < n {
                let k = batch.min(n - seq);
                let command = md.clone().with_command(uuid::Uuid::now_v7());
                let events = (seq..seq + k)
                    .map(|i| synthetic(&name, i, &command))
                    .collect();
                let t = Instant::now();
                let o = store
                    .append(AppendRequest::new(stream.clone(), expected, events))
                    .await?;
                latencies.push(t.elapsed());
                expected = o.next_expected();
                seq += k;
                done.fetch_add(k, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let ticker = {
        let done = done.clone();
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                bar.set_position(done.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = start.elapsed();
    ticker.abort();
    bar.finish_and_clear();
    latencies.sort();
    Ok(Figure {
        name: format!(
            "append: {} writers x {} event(s) per append",
            args.writers, args.batch
        ),
        events: args.events,
        seconds: elapsed.as_secs_f64(),
        per_second: args.events as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    })
}

/// The replayed state: per writer, how many events and the last sequence seen.
#[derive(Default)]
struct WriterProgress {
    writers: HashMap<String, (u64, u64)>,
}

impl Projection for WriterProgress {
    fn apply(&mut self, e: &RecordedEvent) -> Result<(), String> {
        if e.event_type != EVENT_TYPE {
            return Ok(());
        }
        let ev = SyntheticEventRecorded::decode(e.payload.as_slice())
            .map_err(|err| format!("decode: {err}"))?;
        let entry = self.writers.entry(ev.writer).or_insert((0, 0));
        if entry.0 > 0 && ev.sequence <= entry.1 {
            return Err(format!(
                "sequence {} after {} for one writer",
                ev.sequence, entry.1
            ));
        }
        entry.0 += 1;
        entry.1 = ev.sequence;
        Ok(())
    }
}

async fn replay_phase(store: Arc<dyn EventStore>) -> anyhow::Result<Figure> {
    let head = store.head().await?;
    let bar = progress(head.position, "replaying");
    let mut state = WriterProgress::default();
    let start = Instant::now();
    let last = replay(store.as_ref(), &mut state, 1, &|n| bar.set_position(n)).await?;
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    Ok(Figure {
        name: format!(
            "replay: read + decode + evolve ({} writers)",
            state.writers.len()
        ),
        events: last,
        seconds: elapsed.as_secs_f64(),
        per_second: last as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: None,
        p99_ms: None,
    })
}

/// Replay as a node rebuilds a service: every event's link and hash checked as it is applied.
struct Checked<P> {
    chain: Arc<flotilla_runtime::integrity::ChainGuard>,
    next: u64,
    inner: P,
}

impl<P: Projection> Projection for Checked<P> {
    fn apply(&mut self, e: &RecordedEvent) -> Result<(), String> {
        self.chain
            .check_from(self.next, std::slice::from_ref(e))
            .map_err(|b| b.to_string())?;
        self.next = e.global_position + 1;
        self.inner.apply(e)
    }
}

async fn checked_replay_phase(store: Arc<dyn EventStore>) -> anyhow::Result<Figure> {
    let head = store.head().await?;
    let bar = progress(head.position, "replaying, checking the chain");
    let mut state = Checked {
        chain: flotilla_runtime::integrity::ChainGuard::new("bench"),
        next: 1,
        inner: WriterProgress::default(),
    };
    let start = Instant::now();
    let last = replay(store.as_ref(), &mut state, 1, &|n| bar.set_position(n)).await?;
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    Ok(Figure {
        name: "replay with the hash chain checked (link + SHA-256 per event)".into(),
        events: last,
        seconds: elapsed.as_secs_f64(),
        per_second: last as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: None,
        p99_ms: None,
    })
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.writers == 0 || args.batch == 0 {
        anyhow::bail!("--writers and --batch must be at least 1");
    }
    let postgres = args.url.starts_with("postgres");
    let fresh_schema = args.schema.is_none();
    let schema = args.schema.clone().unwrap_or_else(|| {
        format!(
            "flotilla_bench_{}",
            &uuid::Uuid::now_v7().simple().to_string()[24..]
        )
    });
    let store = flotilla_store::open(&args.url, &schema)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open store at {}: {e}", args.url))?;
    let mut figures = Vec::new();
    if !args.no_append && args.events > 0 {
        figures.push(append_phase(store.clone(), &args).await?);
    }
    if args.replay {
        figures.push(replay_phase(store.clone()).await?);
        figures.push(checked_replay_phase(store.clone()).await?);
    }
    if args.baseline {
        if !postgres {
            anyhow::bail!("--baseline measures raw PostgreSQL inserts; use a postgres:// URL");
        }
        let rows = args.events.max(1_000);
        let bar = progress(rows, "raw multi");
        let multi = flotilla_store::baseline::multi_row(&args.url, &schema, rows, 100, &|n| {
            bar.set_position(n)
        })
        .await?;
        bar.finish_and_clear();
        figures.push(Figure {
            name: "baseline: raw multi-row INSERT, 100 rows per transaction, 1 client".into(),
            events: multi.rows,
            seconds: multi.elapsed.as_secs_f64(),
            per_second: multi.rows_per_second(),
            p50_ms: None,
            p99_ms: None,
        });
        let rows = args.events.clamp(1_000, 50_000);
        let bar = progress(rows, "raw single");
        let single =
            flotilla_store::baseline::one_row_per_transaction(&args.url, &schema, rows, 64, &|n| {
                bar.set_position(n)
            })
            .await?;
        bar.finish_and_clear();
        figures.push(Figure {
            name: "baseline: raw INSERT, 1 row per transaction, 64 clients".into(),
            events: single.rows,
            seconds: single.elapsed.as_secs_f64(),
            per_second: single.rows_per_second(),
            p50_ms: None,
            p99_ms: None,
        });
    }
    drop(store);
    if postgres && fresh_schema && !args.keep {
        flotilla_store::PgStore::drop_schema(&args.url, &schema).await?;
    }
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"url_kind": if postgres { "postgres" } else { "other" }, "schema": schema, "figures": figures})
            )?
        ),
        Output::Table => {
            let ms = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_default();
            let rows: Vec<Vec<String>> = figures
                .iter()
                .map(|f| {
                    vec![
                        f.name.clone(),
                        f.events.to_string(),
                        format!("{:.2}", f.seconds),
                        format!("{:.0}", f.per_second),
                        ms(f.p50_ms),
                        ms(f.p99_ms),
                    ]
                })
                .collect();
            table(
                &[
                    "measure", "events", "seconds", "events/s", "p50 ms", "p99 ms",
                ],
                &rows,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
