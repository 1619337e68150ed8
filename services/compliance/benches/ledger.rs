//! The ledger's rates on this machine:
//! - chain verification: each event's hash recomputed from its fields and its link to the
//!   previous one checked, on one core (EVENTS, default 1,000,000, of 200-byte payloads);
//! - ledger ingest in the domain: decide and evolve per event (the verification, the alert
//!   checks, the Merkle leaf, the indexes), one core;
//! - ledger ingest through the app into a store (one append per event, as the consumers do):
//!   SQLite in a temp folder, or PostgreSQL when FLOTILLA_BENCH_POSTGRES_URL is set
//!   (APP_EVENTS, default 20,000);
//! - replay to JSON lines: the store read page by page, decoded, made CloudEvents and written
//!   as JSON lines (as `flotilla audit replay` prints them) to a sink.
//!
//! Run: `cargo bench -p flotilla-compliance --bench ledger`.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use flotilla_compliance::app::{Ledger, Settings};
use flotilla_compliance::domain::*;
use flotilla_compliance::grpc::replay::{Filter, Walk, cloud_event};
use flotilla_core::chain::Hash;
use flotilla_core::decider::{Decider, Recorded};
use flotilla_core::event::Metadata;
use flotilla_core::store::EventStore;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A chain of `n` events of one service, each hashed as the stores hash it.
fn chain(n: usize) -> Vec<SourceEvent> {
    let mut out: Vec<SourceEvent> = Vec::with_capacity(n);
    let mut prev = Hash::GENESIS;
    for i in 0..n {
        let mut e = SourceEvent {
            service: "governance".into(),
            source: "/flotilla/bench/governance".into(),
            aggregate_type: "approval".into(),
            position: i as u64 + 1,
            stream: format!("approval-{}", uuid::Uuid::from_u128(i as u128 / 4)),
            stream_version: (i % 4) as u64,
            id: uuid::Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 | i as u128),
            event_type: "flotilla.governance.v1.ApprovalGranted".into(),
            schema_version: 1,
            payload: vec![(i % 251) as u8; 200],
            metadata: Metadata::by(format!("approver-{}", i % 50), "payments"),
            recorded_at: Timestamp(1_767_225_600_000_000 + i as i64),
            prev_hash: prev,
            hash: Hash::default(),
            withheld: false,
        };
        e.hash = e.recomputed_hash();
        prev = e.hash;
        out.push(e);
    }
    out
}

fn verify(events: &[SourceEvent]) -> usize {
    let mut prev = Hash::GENESIS;
    let mut ok = 0;
    for e in events {
        if e.prev_hash == prev && e.recomputed_hash() == e.hash {
            ok += 1;
        }
        prev = e.hash;
    }
    ok
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = count("EVENTS", 1_000_000);
    let events = chain(n);

    let t = Instant::now();
    let ok = verify(&events);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(ok, n, "every link holds");
    println!(
        "chain verification: {n} events in {secs:.2} s = {:.0} events/s on one core",
        n as f64 / secs
    );

    let mut state = Compliance::default();
    let t = Instant::now();
    for (i, e) in events.iter().enumerate() {
        let d = state.decide(Command::Ledger(Box::new(LedgerEvent {
            event: e.clone(),
            now: e.recorded_at,
        })))?;
        for ev in d.events {
            state.evolve(&Recorded {
                event: ev,
                stream_id: d.stream_id.clone(),
                stream_version: i as u64,
                position: i as u64 + 1,
                recorded_at: e.recorded_at,
                metadata: Metadata::default(),
            });
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(state.alerts.len(), 0);
    assert_eq!(state.tree.size(), n);
    println!(
        "ledger ingest (domain: verify, check links, Merkle leaf, indexes): {n} events in {secs:.2} s = {:.0} events/s",
        n as f64 / secs
    );
    drop(state);

    let app_n = count("APP_EVENTS", 20_000).min(n);
    let dir = tempfile::tempdir()?;
    let schema = format!("flotilla_ledgerbench_{}", std::process::id());
    let (store, label): (Arc<dyn EventStore>, &str) =
        match std::env::var("FLOTILLA_BENCH_POSTGRES_URL") {
            Ok(url) => (flotilla_store::open(&url, &schema).await?, "postgres"),
            Err(_) => (
                flotilla_store::open(
                    &format!("sqlite://{}", dir.path().join("ledger.db").display()),
                    "unused",
                )
                .await?,
                "sqlite",
            ),
        };
    let authorizer = Arc::new(flotilla_auth::Authorizer::with_default_policy()?);
    let mut ctx =
        flotilla_runtime::ServiceContext::new(flotilla_compliance::NAME, store.clone(), authorizer);
    ctx.data_dir = dir.path().to_path_buf();
    let (ledger, follower) = Ledger::open(&ctx, &Settings::default())
        .await
        .map_err(anyhow::Error::msg)?;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let following = tokio::spawn(follower(flotilla_runtime::kit::Shutdown::new(rx)));
    let t = Instant::now();
    for e in &events[..app_n] {
        ledger.take(e.clone(), e.recorded_at).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "ledger ingest (app, {label}, one append per event): {app_n} events in {secs:.2} s = {:.0} events/s",
        app_n as f64 / secs
    );

    let filter = Filter::default();
    let mut walk = Walk::new(&ledger, &filter, |_| true);
    let mut sink = std::io::sink();
    let mut lines = 0usize;
    let t = Instant::now();
    while let Some(page) = walk.page().await.map_err(|s| anyhow::anyhow!("{s}"))? {
        for l in page {
            let ce = cloud_event(&l.event);
            let line = serde_json::json!({
                "specversion": "1.0",
                "id": ce.id,
                "source": ce.source,
                "type": ce.r#type,
                "subject": ce.subject,
                "time": ce.time,
                "datacontenttype": ce.datacontenttype,
                "extensions": ce.extensions,
                "data_base64": base64_len(&ce.data),
                "ledgerindex": l.index,
            });
            serde_json::to_writer(&mut sink, &line)?;
            sink.write_all(b"\n")?;
            lines += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(lines, app_n);
    println!(
        "replay to JSON lines ({label}): {lines} events in {secs:.2} s = {:.0} events/s",
        lines as f64 / secs
    );
    let _ = stop.send(true);
    let _ = following.await;
    if label == "postgres"
        && let Ok(url) = std::env::var("FLOTILLA_BENCH_POSTGRES_URL")
    {
        flotilla_store::PgStore::drop_schema(&url, &schema).await?;
    }
    Ok(())
}

/// The payload as the JSON line carries it.
fn base64_len(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}
