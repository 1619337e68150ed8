//! Dependency-mapping benchmark (issue 3): a synthetic catalog of 10,000 services and 50,000
//! edges, built through the real command path into a real store; then impact analysis p50/p99,
//! co-deployment groups, a 100-item release plan, and replaying every event that built it.
//!
//! Run: `cargo bench -p flotilla-dependency-mapping --bench graph` (SQLite in a temp folder, or
//! PostgreSQL when FLOTILLA_BENCH_POSTGRES_URL is set).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_core::ExpectedVersion;
use flotilla_core::decider::StoredEvents;
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_dependency_mapping::app::CatalogApp;
use flotilla_dependency_mapping::codec::CatalogEvents;
use flotilla_dependency_mapping::domain::graph::Graph;
use flotilla_dependency_mapping::domain::*;

const SERVICES: usize = 10_000;
const EDGES: usize = 50_000;

/// A small deterministic generator (no external randomness: the figures are repeatable).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn name(i: usize) -> ServiceName {
    ServiceName::parse(&format!("svc-{i:05}")).expect("valid")
}

fn events() -> Vec<Event> {
    let mut rng = Lcg(42);
    let mut out = Vec::with_capacity(SERVICES + EDGES + 10);
    for i in 0..SERVICES {
        out.push(Event::ServiceRegistered(ServiceSpec {
            name: name(i),
            owner_team: format!("team-{}", i % 300),
            business_unit: format!("bu-{}", i % 12),
            tier: Tier::new((i % 4) as u32 + 1).expect("tier"),
            handles_personal_data: i % 7 == 0,
            classification: DataClassification::Internal,
            runtime: if i % 50 == 0 {
                RuntimeKind::Database
            } else {
                RuntimeKind::Microservice
            },
        }));
    }
    // Mostly layered (consumers call lower-numbered providers), with a few back edges that make
    // synchronous cycles, as real estates have.
    let mut seen = BTreeSet::new();
    while seen.len() < EDGES {
        let c = 1 + rng.below(SERVICES - 1);
        let back = rng.below(200) == 0;
        let p = if back {
            (c + 1 + rng.below(20)).min(SERVICES - 1)
        } else {
            c.saturating_sub(1 + rng.below(c.min(400)))
        };
        if p == c || !seen.insert((c, p)) {
            continue;
        }
        let kind = match rng.below(10) {
            0..=5 => EdgeKind::SyncApi,
            6..=7 => EdgeKind::AsyncMessage,
            8 => EdgeKind::Database,
            _ => EdgeKind::SharedInfrastructure,
        };
        out.push(Event::DependencyDeclared(Dependency {
            consumer: name(c),
            provider: name(p),
            kind,
            data_flows: BTreeSet::from([format!("class-{}", rng.below(20))]),
        }));
    }
    for g in 0..10 {
        out.push(Event::CoDeploymentPinned(CoDeploymentPin {
            group: format!("pin-{g}"),
            services: vec![name(g * 900 + 1), name(g * 900 + 2), name(g * 900 + 3)],
            reason: "shared schema".into(),
        }));
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let evs = events();
    println!(
        "synthetic catalog: {SERVICES} services, {EDGES} edges, {} events",
        evs.len()
    );
    let mut catalog = Catalog::default();
    for e in &evs {
        catalog.apply(e);
    }
    let t = Instant::now();
    let graph = Graph::build(&catalog);
    println!(
        "index build (once per catalog version): {:.2} ms",
        ms(t.elapsed())
    );

    let mut rng = Lcg(7);
    let mut times = Vec::with_capacity(2_000);
    let mut reached = 0usize;
    for _ in 0..2_000 {
        let s = name(rng.below(SERVICES));
        let t = Instant::now();
        reached += graph.impact(&s)?.len();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "impact analysis (2,000 random services, mean {} reached): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        reached / 2_000,
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times[times.len() - 1])
    );

    // Groups are computed once per catalog version and kept: time the computation on fresh
    // indexes (cold), not the cached answer.
    let mut times = Vec::new();
    let mut groups = Vec::new();
    for _ in 0..5 {
        let fresh = Graph::build(&catalog);
        let t = Instant::now();
        groups = fresh.co_deployment_groups();
        times.push(t.elapsed());
    }
    times.sort();
    let largest = groups.iter().map(|g| g.members.len()).max().unwrap_or(0);
    println!(
        "co-deployment groups, computed cold ({} groups, largest {largest}): median {:.2} ms, max {:.2} ms",
        groups.len(),
        ms(percentile(&times, 0.5)),
        ms(times[times.len() - 1])
    );

    // The first plan after a catalog change also layers the whole graph; later plans reuse it.
    let fresh = Graph::build(&catalog);
    let items: Vec<(ServiceName, String)> = (0..100)
        .map(|i| (name(i * 97 % SERVICES), "2.0.0".to_owned()))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let t = Instant::now();
    fresh.plan_release(&items)?;
    println!(
        "first release plan on a fresh index (100 items): {:.2} ms",
        ms(t.elapsed())
    );

    let mut times = Vec::new();
    let mut waves = 0;
    for round in 0..20 {
        let mut r = Lcg(100 + round);
        let items: Vec<(ServiceName, String)> = (0..100)
            .map(|_| r.below(SERVICES))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|i| (name(i), "2.0.0".to_owned()))
            .collect();
        let t = Instant::now();
        let plan = graph.plan_release(&items)?;
        times.push(t.elapsed());
        waves = plan.waves.len();
    }
    times.sort();
    println!(
        "release plan (100 items, {waves} waves in the last): median {:.2} ms, p99 {:.2} ms",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99))
    );

    // Write the events through the store in appends of 1,000, then replay them cold.
    let dir = tempfile::tempdir()?;
    let (store, label): (Arc<dyn EventStore>, &str) =
        match std::env::var("FLOTILLA_BENCH_POSTGRES_URL") {
            Ok(url) => {
                let schema = format!("flotilla_depbench_{}", std::process::id());
                (flotilla_store::open(&url, &schema).await?, "postgres")
            }
            Err(_) => (
                flotilla_store::open(
                    &format!("sqlite://{}", dir.path().join("dep.db").display()),
                    "unused",
                )
                .await?,
                "sqlite",
            ),
        };
    let stream = StreamId::parse(CATALOG_STREAM).map_err(anyhow::Error::msg)?;
    let mut expected = ExpectedVersion::NoStream;
    for chunk in evs.chunks(1_000) {
        let batch = chunk
            .iter()
            .map(|e| {
                let (ty, v, payload) = CatalogEvents.encode(e);
                NewEvent::new(ty, v, payload, Metadata::by("bench", "bench"))
            })
            .collect();
        expected = store
            .append(AppendRequest::new(stream.clone(), expected, batch))
            .await?
            .next_expected();
    }
    let authorizer = Arc::new(flotilla_auth::Authorizer::with_default_policy()?);
    let ctx = flotilla_runtime::ServiceContext::new(
        flotilla_dependency_mapping::NAME,
        store.clone(),
        authorizer,
    );
    let t = Instant::now();
    let (app, _follower) = CatalogApp::start(&ctx).await?;
    let rebuilt = app.query(|c| (c.services.len(), c.dependencies.len()));
    let elapsed = t.elapsed();
    println!(
        "replay on {label} ({} events, read + check + decode + evolve): {:.2} s, {:.0} events/s; rebuilt {} services, {} edges",
        evs.len(),
        elapsed.as_secs_f64(),
        evs.len() as f64 / elapsed.as_secs_f64(),
        rebuilt.0,
        rebuilt.1
    );
    if label == "postgres"
        && let Ok(url) = std::env::var("FLOTILLA_BENCH_POSTGRES_URL")
    {
        flotilla_store::PgStore::drop_schema(
            &url,
            &format!("flotilla_depbench_{}", std::process::id()),
        )
        .await?;
    }
    Ok(())
}
