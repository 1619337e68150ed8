//! Three replicas of one service, as `flotilla serve` processes on one PostgreSQL store and one
//! NATS: conflicting commands sent to all three are serialised by the store's expected versions
//! (every acknowledged one recorded exactly once, every refused one `ABORTED`); any replica
//! answers a read after a position as the one that took the command; one replica at a time
//! runs the relay, and when it is killed with SIGKILL another takes its lease over within the
//! failover time and publishes everything, nothing missed.

use std::collections::{BTreeSet, HashMap};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_auth::Bearer;
use flotilla_proto::dependency::v1 as pb;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use prost::Message;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

mod support;
use support::{
    catalog_client, catalog_entry, flotilla, free_port, serve_with, served_config, stop, text,
    token_for_config,
};

const SERVICE: &str = "dependency-mapping";
const LEASE: &str = "duty:dependency-mapping";
type Client = DependencyMappingServiceClient<InterceptedService<Channel, Bearer>>;

/// Replica processes, stopped when dropped (when an assertion fails too).
struct Replicas {
    children: Vec<Option<Child>>,
    ports: Vec<u16>,
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for c in self.children.iter_mut().filter_map(Option::take) {
            stop(c);
        }
    }
}

struct Deployment {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    namespace: String,
    postgres: String,
}

impl Deployment {
    fn new(failover_secs: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, namespace) =
            served_config(dir.path(), &format!("failover_secs = {failover_secs}\n"));
        let postgres = flotilla_tests::postgres_url();
        Self {
            dir,
            config,
            namespace,
            postgres,
        }
    }

    fn replicas(&self, n: usize) -> Replicas {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let children = ports
            .iter()
            .enumerate()
            .map(|(i, port)| Some(self.replica(i, *port)))
            .collect();
        Replicas { children, ports }
    }

    fn replica(&self, i: usize, port: u16) -> Child {
        let name = format!("replica-{i}");
        serve_with(
            &self.config,
            SERVICE,
            port,
            &self.log(i),
            &[("FLOTILLA_REPLICA", name.as_str())],
        )
    }

    fn log(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(format!("replica-{i}.log"))
    }

    fn logs(&self, n: usize) -> String {
        (0..n)
            .map(|i| {
                let log = std::fs::read_to_string(self.log(i)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                format!(
                    "---- replica-{i} ----\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn token(&self) -> String {
        token_for_config(&self.config, "ops", "admin", "central")
    }

    /// The entry `name` of `flotilla doctor --output json` for the service.
    fn doctor(&self, name: &str) -> serde_json::Value {
        let out = flotilla()
            .args([
                "doctor",
                "--service",
                SERVICE,
                "--output",
                "json",
                "--config",
            ])
            .arg(&self.config)
            .output()
            .expect("doctor");
        let checks: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        checks
            .as_array()
            .and_then(|a| a.iter().find(|c| c["check"] == name).cloned())
            .unwrap_or_else(|| panic!("no {name} check in {checks}"))
    }

    fn schema(&self) -> String {
        flotilla_store::schema_for(&self.namespace, SERVICE)
    }

    async fn store(&self) -> Arc<dyn flotilla_core::store::EventStore> {
        flotilla_store::open_existing(&self.postgres, &self.schema())
            .await
            .expect("the store")
    }

    /// Who holds the service's duty lease now (None: nobody, or it lapsed).
    async fn holder(&self) -> Option<(String, u64)> {
        let store = self.store().await;
        store
            .lease(LEASE)
            .await
            .expect("read the lease")
            .filter(|l| !l.expired())
            .map(|l| (l.holder, l.token))
    }
}

fn position_of<T>(r: &tonic::Response<T>) -> u64 {
    r.metadata()
        .get("x-flotilla-position")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("every answer carries the position its state included")
}

/// What the registrations came to.
#[derive(Default)]
struct Outcomes {
    acknowledged: BTreeSet<String>,
    refused: BTreeSet<String>,
    /// Answers other than OK or ABORTED (there must be none).
    other: Vec<(String, tonic::Status)>,
    /// The highest position an answer carried.
    highest: u64,
}

impl Outcomes {
    fn only_ok_or_aborted(&self, d: &Deployment) {
        assert!(
            self.other.is_empty(),
            "only OK or ABORTED may answer a conflicting command: {:?}\n{}",
            &self.other[..self.other.len().min(3)],
            d.logs(3)
        );
    }
}

/// Registers `names` through the replicas, `per_replica` at once on each, round robin.
async fn register_all(clients: &[Client], names: Vec<String>, per_replica: usize) -> Outcomes {
    let mut queues: Vec<Vec<String>> = vec![Vec::new(); clients.len() * per_replica];
    let lanes = queues.len();
    for (i, n) in names.into_iter().enumerate() {
        queues[i % lanes].push(n);
    }
    let workers = queues.into_iter().enumerate().map(|(w, queue)| {
        let mut c = clients[w % clients.len()].clone();
        async move {
            let mut out = Vec::new();
            for name in queue {
                let r = c
                    .register_service(pb::RegisterServiceRequest {
                        service: Some(catalog_entry(&name)),
                    })
                    .await;
                out.push((name, r.map(|r| position_of(&r))));
            }
            out
        }
    });
    let mut out = Outcomes::default();
    let answers = futures::future::join_all(workers).await;
    for (name, r) in answers.into_iter().flatten() {
        match r {
            Ok(p) => {
                out.highest = out.highest.max(p);
                out.acknowledged.insert(name);
            }
            Err(s) if s.code() == tonic::Code::Aborted => {
                out.refused.insert(name);
            }
            Err(s) => out.other.push((name, s)),
        }
    }
    out
}

/// How many times each service name was registered in the store.
async fn registered_in_store(d: &Deployment) -> HashMap<String, usize> {
    let store = d.store().await;
    let mut counts = HashMap::new();
    let mut from = 1;
    loop {
        let page = store.read_all(from, 5_000).await.expect("read the store");
        let Some(last) = page.last().map(|e| e.global_position) else {
            break;
        };
        for e in &page {
            if e.event_type == "flotilla.dependency.v1.ServiceRegistered" {
                let r = flotilla_proto::dependency::v1::ServiceRegistered::decode(&e.payload[..])
                    .expect("a recorded registration");
                *counts
                    .entry(r.service.map(|s| s.name).unwrap_or_default())
                    .or_insert(0) += 1;
            }
        }
        from = last + 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_serialise_conflicting_commands_and_read_their_writes() {
    let d = Deployment::new(10);
    let replicas = d.replicas(3);
    let token = d.token();
    let mut clients = Vec::new();
    for port in &replicas.ports {
        clients.push(catalog_client(*port, &token, || d.logs(3)).await);
    }
    // Every registration changes the one catalog stream: 3,000 commands that all conflict.
    let names: Vec<String> = (0..3_000).map(|i| format!("svc-{i:04}")).collect();
    let started = Instant::now();
    let outcomes = register_all(&clients, names, 8).await;
    let took = started.elapsed();
    outcomes.only_ok_or_aborted(&d);
    let Outcomes {
        acknowledged,
        refused,
        highest,
        ..
    } = outcomes;
    eprintln!(
        "3,000 conflicting commands on three replicas: {} acknowledged, {} ABORTED, in {:.1} s",
        acknowledged.len(),
        refused.len(),
        took.as_secs_f64()
    );
    assert_eq!(acknowledged.len() + refused.len(), 3_000);
    assert!(
        acknowledged.len() >= 1_500,
        "most commands get through: {} of 3,000\n{}",
        acknowledged.len(),
        d.logs(3)
    );
    // In the store: every acknowledged command exactly once, no refused one.
    let counts = registered_in_store(&d).await;
    for name in &acknowledged {
        assert_eq!(counts.get(name), Some(&1), "{name} acknowledged");
    }
    for name in &refused {
        assert_eq!(counts.get(name), None, "{name} was answered ABORTED");
    }
    assert_eq!(counts.len(), acknowledged.len());
    // Read-your-writes: every replica, asked to read after the highest position any answer
    // carried, lists exactly the acknowledged services.
    for c in &clients {
        let mut request = tonic::Request::new(pb::ListServicesRequest::default());
        request.metadata_mut().insert(
            "x-flotilla-min-position",
            highest.to_string().parse().expect("ascii"),
        );
        let listed = c.clone().list_services(request).await.expect("list");
        assert!(position_of(&listed) >= highest);
        let listed: BTreeSet<String> = listed
            .into_inner()
            .services
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(listed, acknowledged);
    }
    // A position no replica has reached yet is waited for, then refused UNAVAILABLE; a
    // malformed one is INVALID_ARGUMENT.
    let mut ahead = tonic::Request::new(pb::ListServicesRequest::default());
    ahead.metadata_mut().insert(
        "x-flotilla-min-position",
        (highest + 1_000_000).to_string().parse().expect("ascii"),
    );
    ahead
        .metadata_mut()
        .insert("x-flotilla-wait-ms", "200".parse().expect("ascii"));
    let e = clients[0]
        .clone()
        .list_services(ahead)
        .await
        .expect_err("not reached");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains("not yet at"), "{e:?}");
    let mut bad = tonic::Request::new(pb::ListServicesRequest::default());
    bad.metadata_mut()
        .insert("x-flotilla-min-position", "soon".parse().expect("ascii"));
    let e = clients[1]
        .clone()
        .list_services(bad)
        .await
        .expect_err("malformed");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    // One replica holds the duty lease.
    let (holder, _) = d.holder().await.expect("a replica holds the lease");
    assert!(holder.starts_with("replica-"), "{holder}");
}

/// Every event id JetStream holds for the service's stream, read by a consumer of the test's
/// own (`flotilla_bus` subscribes as any service would).
async fn published_ids(d: &Deployment, want: usize) -> Vec<String> {
    use flotilla_bus::Subscriber;
    let ns = flotilla_bus::Namespace::new(&d.namespace).expect("namespace");
    let bus = flotilla_bus::nats::NatsBus::connect(&flotilla_tests::nats_url(), ns)
        .await
        .expect("nats");
    let mut deliveries = bus
        .subscribe(
            SERVICE,
            &format!("reader-{}", uuid::Uuid::new_v4().simple()),
        )
        .await
        .expect("subscribe");
    let mut ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.len() < want && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), deliveries.next()).await {
            Ok(Ok(d)) => {
                ids.push(d.event.id.clone());
                let _ = d.ack().await;
            }
            Ok(Err(e)) => panic!("delivery: {e}"),
            Err(_) => {}
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lease_holder_killed_is_replaced_within_the_failover_time_and_nothing_is_missed() {
    let failover = Duration::from_secs(6);
    let d = Deployment::new(failover.as_secs());
    let mut replicas = d.replicas(3);
    let token = d.token();
    let mut clients = Vec::new();
    for port in &replicas.ports {
        clients.push(catalog_client(*port, &token, || d.logs(3)).await);
    }
    let before: Vec<String> = (0..200).map(|i| format!("before-{i:03}")).collect();
    let ack_before = register_all(&clients, before, 2).await;
    ack_before.only_ok_or_aborted(&d);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (holder, token_before) = loop {
        if let Some(h) = d.holder().await {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "nobody took the lease\n{}",
            d.logs(3)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // `flotilla doctor` tells who runs the service's relays and schedulers.
    let lease = d.doctor(&format!("lease {SERVICE}"));
    assert_eq!(lease["result"], "ok", "{lease}");
    assert!(
        lease["detail"]
            .as_str()
            .is_some_and(|t| t.contains(&holder)),
        "{lease}"
    );
    let victim: usize = holder
        .strip_prefix("replica-")
        .and_then(|i| i.parse().ok())
        .expect("a replica's name");
    // SIGKILL: no lease given up, no goodbye.
    let mut child = replicas.children[victim].take().expect("running");
    child.kill().expect("kill -9");
    let killed_at = Instant::now();
    let _ = child.wait();
    let survivors: Vec<Client> = clients
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, c)| c.clone())
        .collect();
    // Commands go on through the survivors while the lease lapses.
    let after: Vec<String> = (0..200).map(|i| format!("after-{i:03}")).collect();
    let writing = tokio::spawn({
        let survivors = survivors.clone();
        async move { register_all(&survivors, after, 2).await }
    });
    let taken_over = loop {
        if let Some((h, t)) = d.holder().await
            && h != holder
        {
            assert!(t > token_before, "a new term has a higher token");
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < failover * 3,
            "no replica took the lease over\n{}",
            d.logs(3)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "lease taken over {:.2} s after its holder was killed (failover_secs = {})",
        taken_over.as_secs_f64(),
        failover.as_secs()
    );
    assert!(
        taken_over <= failover,
        "taken over after {taken_over:?}, failover is {failover:?}"
    );
    let ack_after = writing.await.expect("join");
    ack_after.only_ok_or_aborted(&d);
    assert!(!ack_before.acknowledged.is_empty() && !ack_after.acknowledged.is_empty());
    // Everything the store holds is published once the new holder's relay caught up: at least
    // once, nothing missed (JetStream drops republished ids within its window, so once here).
    let store = d.store().await;
    let head = store.head().await.expect("head").position as usize;
    let stored: BTreeSet<String> = store
        .read_all(1, head)
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.event_id.0.to_string())
        .collect();
    let published = published_ids(&d, stored.len()).await;
    let unique: BTreeSet<String> = published.iter().cloned().collect();
    let missed: Vec<&String> = stored.difference(&unique).take(5).collect();
    assert!(
        missed.is_empty(),
        "{} of {} stored events were never published, e.g. {missed:?}\n{}",
        stored.difference(&unique).count(),
        stored.len(),
        d.logs(3)
    );
    assert!(
        unique.is_subset(&stored),
        "only stored events are published"
    );

    // `flotilla doctor` compares the store's schema with this build's: as this build, then
    // migrated by a newer build (a migration this build does not know) — upgrade this one.
    let schema_check = format!("schema {SERVICE}");
    assert_eq!(d.doctor(&schema_check)["result"], "ok");
    let pool = sqlx::PgPool::connect(&d.postgres).await.expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{}\".store_migrations (version, name) VALUES (999, 'from-the-future')",
        d.schema()
    )))
    .execute(&pool)
    .await
    .expect("a newer build's migration");
    let newer = d.doctor(&schema_check);
    assert_eq!(newer["result"], "fail", "{newer}");
    assert!(
        newer["detail"]
            .as_str()
            .is_some_and(|t| t.contains("upgrade")),
        "{newer}"
    );
}
