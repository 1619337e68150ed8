//! Restart time of dependency-mapping with 1,000,000 events in its store, without and with a
//! snapshot: the catalog of 10,000 services and 40,000 dependencies, then 950,000 finished
//! deployments across 10 environments (the footprint history). A restart reads, checks (hash
//! chain) and decodes every event after the snapshot; with none, every event.
//!
//! Run: `cargo bench -p flotilla-dependency-mapping --bench restart` (SQLite in a temp folder,
//! or PostgreSQL when FLOTILLA_BENCH_POSTGRES_URL is set). EVENTS overrides the count.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use flotilla_core::ExpectedVersion;
use flotilla_core::decider::StoredEvents;
use flotilla_core::event::{Metadata, NewEvent, Timestamp};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_dependency_mapping::app::CatalogApp;
use flotilla_dependency_mapping::codec::CatalogEvents;
use flotilla_dependency_mapping::domain::*;

const SERVICES: usize = 10_000;
const EDGES: usize = 40_000;

fn name(i: usize) -> ServiceName {
    ServiceName::stored(&format!("svc-{i:05}"))
}

/// The `n`-th event of the synthetic store.
fn event(n: usize) -> Event {
    if n < SERVICES {
        return Event::ServiceRegistered(ServiceSpec {
            name: name(n),
            owner_team: format!("team-{}", n % 300),
            business_unit: format!("bu-{}", n % 12),
            tier: Tier::stored((n % 4) as u32 + 1),
            handles_personal_data: n.is_multiple_of(7),
            classification: DataClassification::Internal,
            runtime: RuntimeKind::Microservice,
        });
    }
    if n < SERVICES + EDGES {
        let e = n - SERVICES;
        let consumer = 1 + e % (SERVICES - 1);
        let provider = (consumer + SERVICES - 1 - e / (SERVICES - 1) % 300) % consumer.max(1);
        return Event::DependencyDeclared(Dependency {
            consumer: name(consumer),
            provider: name(provider.min(consumer - 1)),
            kind: EdgeKind::SyncApi,
            data_flows: BTreeSet::new(),
        });
    }
    let d = n - SERVICES - EDGES;
    Event::DeploymentRecorded(Deployment {
        environment: format!("env-{}", d % 10),
        service: name(d % SERVICES),
        version: semver::Version::new(1, (d / SERVICES) as u64, 0),
        at: Timestamp(1_790_000_000_000_000 + d as i64 * 1_000_000),
    })
}

async fn restart(ctx: &flotilla_runtime::ServiceContext) -> anyhow::Result<(f64, Arc<CatalogApp>)> {
    let t = Instant::now();
    let (app, _follower) = CatalogApp::start(ctx).await?;
    Ok((t.elapsed().as_secs_f64(), app))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let schema = format!("flotilla_restartbench_{}", std::process::id());
    let (store, label): (Arc<dyn EventStore>, &str) =
        match std::env::var("FLOTILLA_BENCH_POSTGRES_URL") {
            Ok(url) => (flotilla_store::open(&url, &schema).await?, "postgres"),
            Err(_) => (
                flotilla_store::open(
                    &format!("sqlite://{}", dir.path().join("dep.db").display()),
                    "unused",
                )
                .await?,
                "sqlite",
            ),
        };
    let stream = StreamId::singleton(CATALOG_STREAM);
    let mut expected = ExpectedVersion::NoStream;
    let t = Instant::now();
    for start in (0..total).step_by(5_000) {
        let batch = (start..(start + 5_000).min(total))
            .map(|n| {
                let (ty, v, payload) = CatalogEvents.encode(&event(n));
                NewEvent::new(ty, v, payload, Metadata::by("bench", "bench"))
            })
            .collect();
        expected = store
            .append(AppendRequest::new(stream.clone(), expected, batch))
            .await?
            .next_expected();
    }
    println!(
        "{total} events written to {label} in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let authorizer = Arc::new(flotilla_auth::Authorizer::with_default_policy()?);
    let ctx = flotilla_runtime::ServiceContext::new(
        flotilla_dependency_mapping::NAME,
        store.clone(),
        authorizer,
    );
    let (cold, app) = restart(&ctx).await?;
    let deployments = app.query(|c| {
        c.deployments
            .values()
            .flat_map(|e| e.values())
            .map(Vec::len)
            .sum::<usize>()
    });
    println!(
        "restart without a snapshot: {cold:.2} s ({:.0} events/s; {deployments} deployments in the footprint history)",
        total as f64 / cold
    );
    let t = Instant::now();
    let at = app.snapshot_now().await?;
    let took = t.elapsed().as_secs_f64();
    let size = store
        .load_snapshot(&StreamId::singleton(
            flotilla_runtime::kit::app::SNAPSHOT_STREAM,
        ))
        .await?
        .map_or(0, |s| s.payload.len());
    println!(
        "snapshot at position {at}: {:.1} MB, written in {took:.2} s",
        size as f64 / 1e6
    );
    let (warm, again) = restart(&ctx).await?;
    assert_eq!(
        again.query(|c| c.clone()),
        app.query(|c| c.clone()),
        "the snapshot holds the same catalog"
    );
    println!(
        "restart from the snapshot: {warm:.2} s ({:.1}x faster)",
        cold / warm
    );
    if label == "postgres"
        && let Ok(url) = std::env::var("FLOTILLA_BENCH_POSTGRES_URL")
    {
        flotilla_store::PgStore::drop_schema(&url, &schema).await?;
    }
    Ok(())
}
