//! A node runs one or more services in one process: opens each service's store, checks its hash
//! chain, starts a relay per service and bus and the services' consumers (`tasks`), registers
//! the services' gRPC routes and serves until shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flotilla_bus::inprocess::InProcessBus;
use flotilla_bus::kafka::KafkaBus;
use flotilla_bus::nats::NatsBus;
use flotilla_bus::{Bus, Namespace, Publisher};
use flotilla_core::event::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::RoutesBuilder;

use crate::config::{BusKind, Config};
use crate::duty::{Duty, Job};
use crate::integrity::{self, ChainGuard};
use crate::module::{Consumer, ServiceContext, ServiceModule};
use crate::server::Served;
use crate::tasks::{run_chain_check, run_consumer, run_relay, run_relay_to};
use futures::FutureExt;

/// How long a node waits at start for a store's chain to be checked before it serves anyway
/// (calls to that service wait for nothing: they answer from state being rebuilt).
const VERIFY_AT_START: Duration = Duration::from_secs(600);

/// How often a node looks for an access policy another replica recorded.
const POLICY_FROM_STORE: Duration = Duration::from_secs(2);

/// Where a node keeps data and sends events.
#[derive(Clone, Debug)]
pub enum NodeMode {
    /// `flotilla up`: SQLite files under a folder and the in-process bus.
    Embedded { data_dir: PathBuf },
    /// `flotilla serve`: the configured store URL (a schema per service) and buses.
    Served,
}

/// Services that run together in one process.
pub struct Node {
    config: Config,
    modules: Vec<Arc<dyn ServiceModule>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field(
                "services",
                &self.modules.iter().map(|m| m.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The store URL a service uses in a mode.
pub fn store_url(config: &Config, mode: &NodeMode, service: &str) -> String {
    match mode {
        NodeMode::Embedded { data_dir } => format!(
            "sqlite://{}",
            data_dir.join(format!("{service}.db")).display()
        ),
        NodeMode::Served => config.store_url.clone(),
    }
}

/// The keyring URL a node uses in a mode.
pub fn keyring_url(config: &Config, mode: &NodeMode) -> String {
    match mode {
        NodeMode::Embedded { data_dir } => {
            format!("sqlite://{}", data_dir.join("keyring.db").display())
        }
        NodeMode::Served if config.keyring_url.is_empty() => config.store_url.clone(),
        NodeMode::Served => config.keyring_url.clone(),
    }
}

impl Node {
    pub fn new(config: Config, modules: Vec<Box<dyn ServiceModule>>) -> Self {
        Self {
            config,
            modules: modules.into_iter().map(Arc::from).collect(),
        }
    }

    async fn buses(&self, mode: &NodeMode, ns: &Namespace) -> anyhow::Result<Vec<Arc<dyn Bus>>> {
        if let NodeMode::Embedded { .. } = mode {
            return Ok(vec![Arc::new(InProcessBus::with_namespace(ns.clone()))]);
        }
        let limits = self.config.nats_limits();
        if !limits.max_age.is_zero() && limits.max_age < limits.duplicate_window {
            anyhow::bail!(
                "nats_max_age_secs ({}) is shorter than nats_duplicate_window_secs ({}); JetStream refuses such a stream: keep events at least as long as duplicates are remembered",
                limits.max_age.as_secs(),
                limits.duplicate_window.as_secs()
            );
        }
        let mut out: Vec<Arc<dyn Bus>> = Vec::new();
        for kind in &self.config.buses {
            match kind {
                BusKind::Nats => out.push(Arc::new(
                    NatsBus::connect(&self.config.nats_url, ns.clone())
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}; check nats_url or FLOTILLA_NATS_URL"))?
                        .with_limits(self.config.nats_limits()),
                )),
                BusKind::Kafka => {
                    let opts: Vec<(String, String)> =
                        self.config.kafka_producer.clone().into_iter().collect();
                    out.push(Arc::new(
                        KafkaBus::connect(&self.config.kafka_brokers, ns.clone(), &opts).map_err(
                            |e| {
                                anyhow::anyhow!(
                                    "{e}; check kafka_brokers or FLOTILLA_KAFKA_BROKERS"
                                )
                            },
                        )?,
                    ));
                }
                BusKind::Inprocess => out.push(Arc::new(InProcessBus::with_namespace(ns.clone()))),
            }
        }
        Ok(out)
    }

    /// Runs every service until `shutdown` resolves, then stops the relays and the server.
    pub async fn run(
        self,
        listener: TcpListener,
        mode: NodeMode,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        if let NodeMode::Embedded { data_dir } = &mode {
            std::fs::create_dir_all(data_dir).map_err(|e| {
                anyhow::anyhow!("cannot create data folder {}: {e}", data_dir.display())
            })?;
        }
        let ns = self.config.namespace()?;
        let node_addr = listener.local_addr().ok();
        // TLS is read before anything starts: a wrong file stops the node with what to fix.
        let tls = crate::tls::TlsFiles::from_config(&self.config)?
            .map(crate::tls::ServerTls::load)
            .transpose()?;
        let buses = self.buses(&mode, &ns).await?;
        let embedded_dir = match &mode {
            NodeMode::Embedded { data_dir } => Some(data_dir.as_path()),
            NodeMode::Served => None,
        };
        let verifier = Arc::new(crate::access::verifier(&self.config, embedded_dir).await?);
        let authorizer = Arc::new(
            flotilla_auth::Authorizer::new(crate::access::initial_policy(&self.config)?)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        let keys = crate::access::PolicyKeys::load(&self.config, embedded_dir)?;
        let keyring_at = keyring_url(&self.config, &mode);
        if matches!(mode, NodeMode::Served) && keyring_at.starts_with("memory:") {
            anyhow::bail!(
                "keyring_url {keyring_at} would lose every subject key when this process stops (and with them every sealed value); use the store's database (leave keyring_url empty) or a postgres:// or sqlite:// keyring"
            );
        }
        let keyring = flotilla_store::open_keyring(&keyring_at, ns.as_str())
            .await
            .map_err(|e| {
                anyhow::anyhow!("opening the keyring at {keyring_at}: {e}; check keyring_url or FLOTILLA_KEYRING_URL")
            })?;
        let personal = Arc::new(flotilla_core::personal::PersonalData::new(
            keyring,
            Duration::from_secs(self.config.keyring_ttl_secs),
        ));
        let config = Arc::new(self.config.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let metrics = (!self.config.metrics_listen.is_empty())
            .then(|| Arc::new(crate::metrics::Metrics::default()));
        let mut sampled = Vec::new();
        let mut consumed = Vec::new();
        let mut routes = RoutesBuilder::default();
        let mut served = Vec::new();
        let mut tasks = Vec::new();
        // The metrics address answers from the start (`/healthz` while the stores' chains are
        // checked, which can take minutes; `/readyz` says so).
        if let Some(m) = &metrics {
            let addr = &self.config.metrics_listen;
            let l = TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!("cannot listen for metrics on {addr}: {e}; set metrics_listen (FLOTILLA_METRICS_LISTEN) to a free host:port")
            })?;
            tracing::info!(addr = ?l.local_addr().ok(), "prometheus metrics on /metrics");
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(m.clone().serve(l, async move {
                let _ = stop.wait_for(|s| *s).await;
            })));
        }
        if let Some(t) = &tls {
            let every = Duration::from_secs(self.config.tls_reload_secs.max(1));
            tasks.push(tokio::spawn(t.clone().watch(every, stop_rx.clone())));
        }
        let mut stores_by_grpc = std::collections::HashMap::new();
        let mut first_store = None;
        let mut checks = Vec::new();
        let mut recorded = Vec::new();
        let started_at = Timestamp::now();
        // One name per process among replicas; `flotilla up` is alone on its data folder, so a
        // restart after a crash resumes its own leases at once.
        let holder = match (&mode, self.config.replica.as_str()) {
            (NodeMode::Embedded { .. }, "") => "embedded".to_owned(),
            (_, configured) => crate::duty::replica_name(configured),
        };
        if !(1..=3_600).contains(&self.config.failover_secs) {
            anyhow::bail!(
                "failover_secs = {}: use 1 to 3600 (FLOTILLA_FAILOVER_SECS)",
                self.config.failover_secs
            );
        }
        let timing =
            crate::duty::LeaseTiming::for_failover(Duration::from_secs(self.config.failover_secs));
        tracing::info!(replica = %holder, failover_secs = self.config.failover_secs, "replica");
        let adopted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        for m in &self.modules {
            let url = store_url(&self.config, &mode, m.name());
            let schema = flotilla_store::schema_for(ns.as_str(), m.name());
            let store = flotilla_store::open(&url, &schema)
                .await
                .map_err(|e| anyhow::anyhow!("opening the {} store at {url}: {e}", m.name()))?;
            let head = store.head().await?.position;
            tracing::info!(
                service = m.name(),
                backend = store.backend(),
                schema = %schema,
                head,
                "store open"
            );
            let chain = ChainGuard::new(m.name());
            let accepted = chain.load_accepted(&*store).await?;
            if accepted > 0 {
                tracing::warn!(
                    service = m.name(),
                    accepted,
                    "the store has chain breaks an operator accepted"
                );
            }
            checks.push((m.name(), store.clone(), chain.clone()));
            if let Some(metrics) = &metrics {
                metrics.ready_when(m.name(), chain.clone());
            }
            sampled.push(crate::metrics::sampling::SampledStore {
                service: m.name(),
                store: store.clone(),
                chain: chain.clone(),
            });
            // The access policy this service last adopted (or replaced, for the service that
            // replaces it) is put in force once its store's chain is checked (below).
            let own_version = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            recorded.push((
                store.clone(),
                chain.clone(),
                own_version.clone(),
                m.access_policy_stream(),
            ));
            let position = crate::positions::StatePosition::default();
            for g in m.grpc_services() {
                stores_by_grpc.insert(g.clone(), store.clone());
                served.push(Served {
                    name: g,
                    chain: chain.clone(),
                    position: position.clone(),
                });
            }
            first_store.get_or_insert_with(|| store.clone());
            // The service's duty (its relays and schedulers) runs on one replica at a time.
            let mut jobs: Vec<Job> = Vec::new();
            for b in &buses {
                let (store, m, chain) = (store.clone(), m.clone(), chain.clone());
                let publisher: Arc<dyn Publisher> = b.clone();
                jobs.push(Box::new(move |term, stop| {
                    run_relay(
                        store.clone(),
                        m.clone(),
                        publisher.clone(),
                        chain.clone(),
                        Some(term.fence),
                        stop,
                    )
                    .boxed()
                }));
            }
            let ctx = ServiceContext {
                service: m.name(),
                store,
                started_at,
                authorizer: authorizer.clone(),
                chain: chain.clone(),
                config: config.clone(),
                policy_signer: keys.signer.clone(),
                policy_in_force: adopted.clone(),
                node_addr: node_addr.filter(|a| !a.ip().is_unspecified()).or_else(|| {
                    node_addr.map(|a| std::net::SocketAddr::from(([127, 0, 0, 1], a.port())))
                }),
                data_dir: match &mode {
                    NodeMode::Embedded { data_dir } => data_dir.clone(),
                    NodeMode::Served => config.data_dir.clone(),
                },
                personal: personal.clone(),
                position,
            };
            // The service builds its state (checking its store's chain if its app does) and its
            // routes; its tasks run until shutdown.
            let started = m
                .start(ctx.clone(), &mut routes)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if !started.checks_chain {
                tasks.push(tokio::spawn(run_chain_check(
                    ctx.store.clone(),
                    chain.clone(),
                    stop_rx.clone(),
                )));
            }
            for task in started.tasks {
                tasks.push(tokio::spawn(task(crate::kit::Shutdown::new(
                    stop_rx.clone(),
                ))));
            }
            for r in &started.relays {
                for b in &buses {
                    let (store, service, chain) = (ctx.store.clone(), m.name(), chain.clone());
                    let (destination, outbound) = (r.destination, r.outbound.clone());
                    let publisher: Arc<dyn Publisher> = b.clone();
                    jobs.push(Box::new(move |term, stop| {
                        run_relay_to(
                            store.clone(),
                            service,
                            (Some(destination), outbound.clone()),
                            publisher.clone(),
                            chain.clone(),
                            Some(term.fence),
                            stop,
                        )
                        .boxed()
                    }));
                }
            }
            for scheduler in started.scheduled {
                jobs.push(Box::new(move |term, stop| {
                    crate::duty::in_term(term, scheduler(crate::kit::Shutdown::new(stop))).boxed()
                }));
            }
            let duty = Duty {
                service: m.name(),
                store: ctx.store.clone(),
                lease: crate::duty::lease_name(m.name()),
                holder: holder.clone(),
                timing,
                jobs,
                metrics: metrics.clone(),
                chain: chain.clone(),
            };
            tasks.push(tokio::spawn(duty.run(stop_rx.clone())));
            // Consume from the first configured bus.
            if let (Some(gauges), Some(metrics)) = (started.gauges, &metrics) {
                metrics.add_gauges(m.name(), gauges);
            }
            if let Some(bus) = buses.first() {
                for c in started.consumers {
                    consumed.push((m.name().to_owned(), c.source.to_string()));
                    tasks.push(tokio::spawn(run_consumer(
                        bus.clone(),
                        m.name().to_owned(),
                        c,
                        chain.clone(),
                        stop_rx.clone(),
                    )));
                }
                if let Some(source) = crate::access::policy_source(&self.config, m.name()) {
                    let follower = Arc::new(crate::access::AccessPolicyFollower {
                        store: ctx.store.clone(),
                        authorizer: authorizer.clone(),
                        recorded: own_version,
                        in_force: adopted.clone(),
                        namespace: ns.clone(),
                        source: source.clone(),
                        keys: keys.verifier.clone(),
                    });
                    tasks.push(tokio::spawn(run_consumer(
                        bus.clone(),
                        format!("{}-access-policy", m.name()),
                        Consumer {
                            source: source.into(),
                            handler: follower,
                        },
                        chain.clone(),
                        stop_rx.clone(),
                    )));
                }
            }
        }
        let Some(first_store) = first_store else {
            anyhow::bail!("a node needs at least one service");
        };
        // No service answers before its store's chain is checked; a break the operator named
        // in accept_chain_breaks is accepted (and recorded, once per start), any other stops the
        // service.
        for (service, store, chain) in checks {
            let accept = self.config.accepted_breaks(service)?;
            let mut accepted_now = Vec::new();
            let deadline = tokio::time::Instant::now() + VERIFY_AT_START;
            let mut caught_up = chain.watch_caught_up();
            loop {
                let mut breaks = chain.watch();
                tokio::select! {
                    _ = caught_up.wait_for(|c| *c) => break,
                    _ = breaks.wait_for(|b| b.is_some()) => {}
                    _ = tokio::time::sleep_until(deadline) => {
                        tracing::warn!(service, "the store's chain is still being checked; calls are answered UNAVAILABLE until it is");
                        break;
                    }
                }
                let Some((b, kind)) = chain.found() else {
                    continue;
                };
                if !accept.contains(&b.position) || accepted_now.contains(&b.position) {
                    tracing::error!(service, position = b.position, kind = kind.as_str(), reason = %b.reason, "the service will not serve: its store's hash chain is broken; repair the store or accept the break with accept_chain_breaks = [\"{service}@{}\"]", b.position);
                    break;
                }
                let found = integrity::describe(&*store, b, kind).await?;
                match chain.accept(&*store, &found, &integrity::operator()).await {
                    Ok(p) => accepted_now.push(p),
                    Err(e) => {
                        tracing::error!(service, error = %e, "the break cannot be accepted");
                        break;
                    }
                }
            }
        }
        // Access policies recorded in intact stores are put in force (a broken store's are not);
        // then again whenever another replica of the service recorded a newer one (the
        // replacement event reached that replica only: they share the consumer group).
        for (store, chain, own_version, replaced_in) in recorded {
            let verifier = keys.verifier.clone();
            let (authorizer, adopted) = (authorizer.clone(), adopted.clone());
            let namespace = ns.as_str().to_owned();
            let in_force = move || {
                let (store, chain, own_version) =
                    (store.clone(), chain.clone(), own_version.clone());
                let (verifier, authorizer, adopted) =
                    (verifier.clone(), authorizer.clone(), adopted.clone());
                let namespace = namespace.clone();
                async move {
                    if chain.broken().is_some() || !chain.is_caught_up() {
                        return Ok::<_, anyhow::Error>(());
                    }
                    let in_force = adopted.load(std::sync::atomic::Ordering::Acquire);
                    let Some((version, policy)) = crate::access::recorded_policy_newer(
                        &*store,
                        replaced_in,
                        &verifier,
                        &namespace,
                        in_force.min(own_version.load(std::sync::atomic::Ordering::Acquire)),
                    )
                    .await?
                    else {
                        return Ok(());
                    };
                    own_version.fetch_max(version, std::sync::atomic::Ordering::AcqRel);
                    if crate::access::put_in_force(&authorizer, &adopted, version, policy) {
                        tracing::info!(
                            service = chain.service(),
                            version,
                            "access policy from the store is in force"
                        );
                    }
                    Ok(())
                }
            };
            in_force().await?;
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(POLICY_FROM_STORE) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    if let Err(e) = in_force().await {
                        tracing::warn!(error = %e, "reading the recorded access policy failed; trying again");
                    }
                }
            }));
        }
        let recorder = crate::access::RefusalRecorder::start(stores_by_grpc, first_store);
        if verifier.refreshes() {
            // Keys the identity provider removed stop verifying within the refresh interval.
            let v = verifier.clone();
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let stopped = tokio::select! {
                        _ = tokio::time::sleep(crate::access::JWKS_REFRESH) => false,
                        _ = stop.wait_for(|s| *s) => true,
                    };
                    if stopped {
                        return;
                    }
                    v.refresh().await;
                }
            }));
        }
        let access = crate::access::layer(verifier, authorizer, recorder)
            .with_pseudonyms(Arc::new(crate::personal::SealedSubjects(personal.clone())));
        if let Some(m) = &metrics {
            let sampled = crate::metrics::sampling::Sampled {
                stores: sampled,
                buses: buses.clone(),
                consumers: buses.first().map(|b| crate::metrics::sampling::Consumed {
                    bus: b.clone(),
                    groups: consumed,
                }),
            };
            tasks.push(tokio::spawn(crate::metrics::sampling::sample(
                m.clone(),
                sampled,
                stop_rx.clone(),
            )));
        }
        crate::server::serve(
            crate::tls::Listener { tcp: listener, tls },
            routes,
            &served,
            access,
            personal,
            metrics,
            shutdown,
        )
        .await?;
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    }
}

/// Takes the data folder's lock file (released when the file is dropped or the process ends,
/// however it ends): one embedded node per data folder, since its leases name a fixed holder
/// and a second one would run the same duties on the same files. `flotilla up` holds it.
pub fn lock_data_folder(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create data folder {}: {e}", data_dir.display()))?;
    use std::io::{Read as _, Seek as _, Write as _};
    let path = data_dir.join("flotilla.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            file.rewind()?;
            write!(file, "{}", std::process::id())?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            anyhow::bail!(
                "another flotilla up (process {}) uses the data folder {}; stop it, or pass another --data-dir",
                holder.trim(),
                data_dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            anyhow::bail!("cannot lock {}: {e}", path.display())
        }
    }
}
