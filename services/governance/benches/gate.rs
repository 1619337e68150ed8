//! CheckGate over gRPC: a governance server (SQLite store, access interceptor with JWT and
//! Cedar) holding 10,000 releases with approval requests, 40 recurring and one-off windows and
//! 500 deviations, asked by concurrent clients in the same process for a fixed time.
//!
//! `cargo bench -p flotilla-governance --bench gate` (FLOTILLA_GATE_BENCH_SECS, default 10;
//! FLOTILLA_GATE_BENCH_CONCURRENCY, default 64). Prints throughput and latency percentiles.

use std::time::{Duration, Instant};

use flotilla_governance::GovernanceModule;
use flotilla_runtime::testkit::{self, TestServer};

const RELEASES: usize = 10_000;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs = env_num("FLOTILLA_GATE_BENCH_SECS", 10);
    let concurrency = env_num("FLOTILLA_GATE_BENCH_CONCURRENCY", 64) as usize;
    let dir = tempfile::tempdir()?;
    let store = flotilla_store::open(
        &format!("sqlite://{}", dir.path().join("governance.db").display()),
        "governance",
    )
    .await?;
    flotilla_governance::testing::seed_catalog(
        &store,
        flotilla_governance::testing::every_kind(&flotilla_governance::testing::UNITS),
    )
    .await?;
    let server = TestServer::start(&GovernanceModule, store).await;
    let ch = server.channel().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;

    // Seed through the API (as production would), with progress.
    let started = Instant::now();
    flotilla_governance::testing::seed_gate_state(
        ch.clone(),
        testkit::token,
        RELEASES,
        now,
        |done| {
            if done % 2_000 == 0 {
                eprintln!(
                    "seeded {done} / {RELEASES} releases ({:.1}s)",
                    started.elapsed().as_secs_f64()
                );
            }
        },
    )
    .await?;
    eprintln!(
        "seeded in {:.1}s; checking for {secs}s with {concurrency} concurrent callers",
        started.elapsed().as_secs_f64()
    );

    // Callers: 8 HTTP/2 connections, each shared by concurrency/8 tasks; central auditors'
    // tokens (so every unit is visible), each caller its own token.
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(server.channel().await);
    }
    let load = flotilla_governance::testing::check_gate_load(
        &channels,
        testkit::token,
        concurrency,
        Duration::from_secs(secs),
        RELEASES,
    )
    .await?;
    let (n, allowed) = (load.latencies_us.len(), load.allowed);
    let pct = |q: f64| load.ms(q);
    let rate = n as f64 / secs as f64;
    println!(
        "CheckGate over gRPC: {n} checks in {secs}s = {rate:.0} checks/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; {allowed} allowed",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "{}",
        serde_json::json!({"bench": "check_gate_grpc", "checks": n, "seconds": secs, "concurrency": concurrency, "checks_per_second": rate.round(), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0), "allowed": allowed})
    );
    server.stop().await;
    Ok(())
}
