//! P8: CheckGate with one and with three `flotilla serve governance` replica processes on one
//! PostgreSQL store and NATS (the same total client load spread over the replicas), then the
//! time until another replica takes the duty lease over after the holder is killed with SIGKILL
//! (failover_secs at its default, 10).
//!
//! `cargo bench -p flotilla-cli --bench replicas` (FLOTILLA_REPLICAS_BENCH_SECS, default 10;
//! FLOTILLA_REPLICAS_BENCH_CONCURRENCY, default 64; FLOTILLA_REPLICAS_BENCH_RELEASES, default
//! 2,000). Needs PostgreSQL and NATS (FLOTILLA_TEST_POSTGRES_URL, FLOTILLA_TEST_NATS_URL).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flotilla_auth::Bearer;
use flotilla_proto::governance::v1 as pb;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::testkit;
use tonic::transport::Channel;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn serve(config: &Path, port: u16, replica: usize, log: &Path) -> anyhow::Result<Child> {
    Ok(Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args([
            "serve",
            "governance",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(config)
        .env_remove("FLOTILLA_CONFIG")
        .env("FLOTILLA_REPLICA", format!("replica-{replica}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?)
}

async fn connect(port: u16) -> anyhow::Result<Channel> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(ch) = Channel::from_shared(format!("http://127.0.0.1:{port}"))?
            .connect()
            .await
        {
            let mut c = GovernanceServiceClient::with_interceptor(
                ch.clone(),
                Bearer::new(&testkit::token("probe", &["auditor"], "central")),
            );
            if c.list_freeze_windows(pb::ListFreezeWindowsRequest::default())
                .await
                .is_ok()
            {
                return Ok(ch);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the replica on {port} never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Run {
    checks: usize,
    rate: f64,
    p50: f64,
    p99: f64,
    failover: Option<Duration>,
}

async fn run(
    replicas: usize,
    secs: u64,
    concurrency: usize,
    releases: usize,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let namespace = flotilla_tests::fresh_namespace();
    let postgres = flotilla_tests::postgres_url();
    let config = dir.path().join("flotilla.toml");
    std::fs::write(
        &config,
        format!(
            "namespace = \"{namespace}\"\nstore_url = \"{postgres}\"\nnats_url = \"{}\"\nbuses = [\"nats\"]\n\
             auth_hs256_secret = \"{}\"\naccess_policy_source = \"none\"\ndata_dir = \"{}\"\n",
            flotilla_tests::nats_url(),
            String::from_utf8_lossy(testkit::TEST_SECRET),
            dir.path().join("data").display(),
        ),
    )?;
    // Governance knows the catalog as it would from dependency-mapping's events.
    let schema = flotilla_store::schema_for(&namespace, "governance");
    let store = flotilla_store::open(&postgres, &schema).await?;
    flotilla_governance::testing::seed_catalog(
        &store,
        flotilla_governance::testing::every_kind(&flotilla_governance::testing::UNITS),
    )
    .await?;
    let mut children = Vec::new();
    let mut ports = Vec::new();
    for r in 0..replicas {
        let port = free_port()?;
        children.push(Some(serve(
            &config,
            port,
            r,
            &dir.path().join(format!("replica-{r}.log")),
        )?));
        ports.push(port);
    }
    let mut channels = Vec::new();
    for p in &ports {
        channels.push(connect(*p).await?);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let started = Instant::now();
    flotilla_governance::testing::seed_gate_state(
        channels[0].clone(),
        testkit::token,
        releases,
        now,
        |done| {
            if done % 1_000 == 0 {
                eprintln!(
                    "seeded {done} / {releases} releases ({:.1}s)",
                    started.elapsed().as_secs_f64()
                );
            }
        },
    )
    .await?;
    // Every replica serves the seeded state before the load starts (read-your-writes).
    let head = store.head().await?.position;
    for ch in &channels {
        let mut c = GovernanceServiceClient::with_interceptor(
            ch.clone(),
            Bearer::new(&testkit::token("probe", &["auditor"], "central")),
        );
        let mut request = tonic::Request::new(pb::ListFreezeWindowsRequest::default());
        request
            .metadata_mut()
            .insert("x-flotilla-min-position", head.to_string().parse()?);
        request
            .metadata_mut()
            .insert("x-flotilla-wait-ms", "30000".parse()?);
        c.list_freeze_windows(request).await?;
    }
    eprintln!("{replicas} replica(s): checking for {secs}s with {concurrency} callers over them");
    // The same load as with one: 8 connections per replica... split so that the total is 8.
    let mut conns = Vec::new();
    for i in 0..8 {
        let port = ports[i % ports.len()];
        conns.push(
            Channel::from_shared(format!("http://127.0.0.1:{port}"))?
                .connect()
                .await?,
        );
    }
    let load = flotilla_governance::testing::check_gate_load(
        &conns,
        testkit::token,
        concurrency,
        Duration::from_secs(secs),
        releases,
    )
    .await?;
    let n = load.latencies_us.len();
    let pct = |q: f64| load.ms(q);
    let mut failover = None;
    if replicas > 1 {
        let lease = flotilla_runtime::duty::lease_name("governance");
        let holder = store.lease(&lease).await?.filter(|l| !l.expired());
        let holder = holder.ok_or_else(|| anyhow::anyhow!("nobody holds {lease}"))?;
        let victim: usize = holder
            .holder
            .strip_prefix("replica-")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("holder {}", holder.holder))?;
        if let Some(mut c) = children[victim].take() {
            c.kill()?;
            let killed = Instant::now();
            let _ = c.wait();
            loop {
                if let Some(l) = store.lease(&lease).await?
                    && !l.expired()
                    && l.holder != holder.holder
                {
                    failover = Some(killed.elapsed());
                    break;
                }
                anyhow::ensure!(
                    killed.elapsed() < Duration::from_secs(60),
                    "no replica took {lease} over"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    for c in children.iter_mut().filter_map(Option::take) {
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let mut c = c;
        let _ = c.wait();
    }
    let _ = flotilla_store::PgStore::drop_schema(&postgres, &schema).await;
    Ok(Run {
        checks: n,
        rate: n as f64 / secs as f64,
        p50: pct(0.5),
        p99: pct(0.99),
        failover,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs = env_num("FLOTILLA_REPLICAS_BENCH_SECS", 10);
    let concurrency = env_num("FLOTILLA_REPLICAS_BENCH_CONCURRENCY", 64) as usize;
    let releases = env_num("FLOTILLA_REPLICAS_BENCH_RELEASES", 2_000) as usize;
    for replicas in [1, 3] {
        let r = run(replicas, secs, concurrency, releases).await?;
        println!(
            "CheckGate, {replicas} replica(s): {} checks in {secs}s = {:.0} checks/s; p50 {:.2} ms p99 {:.2} ms{}",
            r.checks,
            r.rate,
            r.p50,
            r.p99,
            r.failover
                .map(|f| format!(
                    "; lease taken over {:.2} s after SIGKILL of its holder",
                    f.as_secs_f64()
                ))
                .unwrap_or_default()
        );
        println!(
            "{}",
            serde_json::json!({"bench": "replicas_check_gate", "replicas": replicas, "concurrency": concurrency, "checks_per_second": r.rate.round(), "p50_ms": r.p50, "p99_ms": r.p99, "failover_s": r.failover.map(|f| f.as_secs_f64())})
        );
    }
    Ok(())
}
