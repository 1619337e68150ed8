//! A node runs one or more services in one process: opens each service's store, starts a relay
//! per service and bus, registers the services' gRPC routes and serves until shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use flotilla_bus::inprocess::InProcessBus;
use flotilla_bus::kafka::KafkaBus;
use flotilla_bus::nats::NatsBus;
use flotilla_bus::relay::Relay;
use flotilla_bus::{Bus, Publisher};
use flotilla_core::event::Timestamp;
use flotilla_core::store::EventStore;
use flotilla_proto::common::v1::ServiceStatus;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::RoutesBuilder;

use crate::config::{BusKind, Config};

/// What a service gets from the runtime.
#[derive(Clone)]
pub struct ServiceContext {
    pub service: &'static str,
    pub store: Arc<dyn EventStore>,
    pub started_at: Timestamp,
    /// The access policies in force in this process (governance replaces them).
    pub authorizer: Arc<flotilla_auth::Authorizer>,
}

impl std::fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContext")
            .field("service", &self.service)
            .finish()
    }
}

impl ServiceContext {
    /// The answer to `GetStatus`: the service and the head of its store's chain.
    pub async fn status(&self) -> Result<ServiceStatus, tonic::Status> {
        let head = self.store.head().await.map_err(|e| {
            tracing::error!(service = self.service, error = %e, "reading store head failed");
            tonic::Status::unavailable(format!("event store unavailable: {e}"))
        })?;
        let (seconds, nanos) = self.started_at.seconds_and_nanos();
        Ok(ServiceStatus {
            service: self.service.to_owned(),
            head_position: head.position,
            head_hash: if head.position == 0 {
                String::new()
            } else {
                head.hash.to_hex()
            },
            store_backend: self.store.backend().to_owned(),
            started_at: Some(prost_types::Timestamp { seconds, nanos }),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        })
    }
}

/// A service crate's entry point.
pub trait ServiceModule: Send + Sync {
    /// Service name as in subjects, topics and schemas, e.g. `governance`.
    fn name(&self) -> &'static str;
    /// Full gRPC names of the services it serves (for health).
    fn grpc_services(&self) -> Vec<String>;
    /// Adds its gRPC services to the routes.
    fn register(&self, ctx: ServiceContext, routes: &mut RoutesBuilder);
    /// The other services' events it consumes, and how.
    fn consumers(&self, _ctx: &ServiceContext) -> Vec<Consumer> {
        Vec::new()
    }
}

/// Why a consumed event was not applied.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// It can never be applied (malformed, invalid): acknowledged and logged.
    #[error("event rejected: {0}")]
    Reject(String),
    /// It may apply later (the store was unavailable): left unacknowledged, delivered again.
    #[error("event not applied yet: {0}")]
    Retry(String),
}

/// Applies events of another service (deduplicating by event id in its own store).
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: &flotilla_bus::CloudEvent) -> Result<(), HandlerError>;
}

/// A durable subscription of a service to another service's events.
#[derive(Clone)]
pub struct Consumer {
    /// The service whose events are consumed, e.g. `orchestration`.
    pub source: &'static str,
    pub handler: Arc<dyn EventHandler>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("source", &self.source)
            .finish()
    }
}

/// Consumes `source`'s events as the durable group `group` until stopped; failures resubscribe
/// after a pause, so what was not acknowledged is delivered again.
async fn run_consumer(
    bus: Arc<dyn Bus>,
    group: String,
    consumer: Consumer,
    mut stop: watch::Receiver<bool>,
) {
    let mut pause = std::time::Duration::from_millis(500);
    loop {
        let mut deliveries = match bus.subscribe(consumer.source, &group).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(group = %group, source = consumer.source, error = %e, "subscribe failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
                continue;
            }
        };
        loop {
            let delivery = tokio::select! {
                d = deliveries.next() => d,
                _ = stop.wait_for(|s| *s) => return,
            };
            let delivery = match delivery {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(group = %group, error = %e, "delivery failed; resubscribing");
                    break;
                }
            };
            match consumer.handler.handle(&delivery.event).await {
                Ok(()) => {}
                Err(HandlerError::Reject(reason)) => {
                    tracing::warn!(group = %group, event = %delivery.event.id, ty = %delivery.event.ty, %reason, "event rejected")
                }
                Err(HandlerError::Retry(reason)) => {
                    tracing::warn!(group = %group, event = %delivery.event.id, %reason, "event not applied; it will be delivered again");
                    break;
                }
            }
            if let Err(e) = delivery.ack().await {
                tracing::warn!(group = %group, error = %e, "ack failed; the event will be delivered again");
            }
            pause = std::time::Duration::from_millis(500);
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

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
    modules: Vec<Box<dyn ServiceModule>>,
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

/// Runs a service's relay to one bus until stopped. A relay that fails (the store or the bus
/// was unreachable) starts again from its checkpoint after a pause that grows to 30 s.
async fn run_relay(
    store: Arc<dyn EventStore>,
    service: &'static str,
    publisher: Arc<dyn Publisher>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pause = std::time::Duration::from_millis(500);
    loop {
        let relay = Relay::new(store.clone(), service, publisher.clone());
        let mut stop_this = stop.clone();
        let result = relay
            .run(async move {
                let _ = stop_this.wait_for(|s| *s).await;
            })
            .await;
        if *stop.borrow() {
            return;
        }
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(service, bus = publisher.name(), error = %e, retry_in_ms = pause.as_millis() as u64, "relay failed; restarting from its checkpoint")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        pause = (pause * 2).min(std::time::Duration::from_secs(30));
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

impl Node {
    pub fn new(config: Config, modules: Vec<Box<dyn ServiceModule>>) -> Self {
        Self { config, modules }
    }

    async fn buses(&self, mode: &NodeMode) -> anyhow::Result<Vec<Arc<dyn Bus>>> {
        if let NodeMode::Embedded { .. } = mode {
            return Ok(vec![Arc::new(InProcessBus::new())]);
        }
        let mut out: Vec<Arc<dyn Bus>> = Vec::new();
        for kind in &self.config.buses {
            match kind {
                BusKind::Nats => out.push(Arc::new(
                    NatsBus::connect(&self.config.nats_url)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}; check nats_url or FLOTILLA_NATS_URL"))?,
                )),
                BusKind::Kafka => {
                    let opts: Vec<(String, String)> =
                        self.config.kafka_producer.clone().into_iter().collect();
                    out.push(Arc::new(
                        KafkaBus::connect_namespaced(&self.config.kafka_brokers, "", &opts)
                            .map_err(|e| {
                                anyhow::anyhow!(
                                    "{e}; check kafka_brokers or FLOTILLA_KAFKA_BROKERS"
                                )
                            })?,
                    ));
                }
                BusKind::Inprocess => out.push(Arc::new(InProcessBus::new())),
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
        let buses = self.buses(&mode).await?;
        let embedded_dir = match &mode {
            NodeMode::Embedded { data_dir } => Some(data_dir.as_path()),
            NodeMode::Served => None,
        };
        let verifier = Arc::new(crate::access::verifier(&self.config, embedded_dir).await?);
        let authorizer = Arc::new(
            flotilla_auth::Authorizer::new(crate::access::initial_policy(&self.config)?)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut routes = RoutesBuilder::default();
        let mut names = Vec::new();
        let mut relays = Vec::new();
        let mut stores_by_grpc = std::collections::HashMap::new();
        let mut first_store = None;
        let started_at = Timestamp::now();
        let adopted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        for m in &self.modules {
            let url = store_url(&self.config, &mode, m.name());
            let store = flotilla_store::open(&url, &flotilla_store::schema_for(m.name()))
                .await
                .map_err(|e| anyhow::anyhow!("opening the {} store at {url}: {e}", m.name()))?;
            let head = store.head().await?.position;
            tracing::info!(
                service = m.name(),
                backend = store.backend(),
                head,
                "store open"
            );
            // The access policy this service last adopted (or governance last replaced).
            let own_version = match crate::access::recorded_policy(&*store).await? {
                Some((version, policy)) => {
                    if version > adopted.load(std::sync::atomic::Ordering::Acquire) {
                        tracing::info!(
                            service = m.name(),
                            version,
                            "access policy from the store is in force"
                        );
                        authorizer.replace(policy);
                        adopted.store(version, std::sync::atomic::Ordering::Release);
                    }
                    version
                }
                None => 0,
            };
            for g in m.grpc_services() {
                stores_by_grpc.insert(g, store.clone());
            }
            first_store.get_or_insert_with(|| store.clone());
            for b in &buses {
                let publisher: Arc<dyn Publisher> = b.clone();
                relays.push(tokio::spawn(run_relay(
                    store.clone(),
                    m.name(),
                    publisher,
                    stop_rx.clone(),
                )));
            }
            let ctx = ServiceContext {
                service: m.name(),
                store,
                started_at,
                authorizer: authorizer.clone(),
            };
            // Consume from the first configured bus.
            if let Some(bus) = buses.first() {
                for c in m.consumers(&ctx) {
                    relays.push(tokio::spawn(run_consumer(
                        bus.clone(),
                        m.name().to_owned(),
                        c,
                        stop_rx.clone(),
                    )));
                }
                // Every other service follows governance's access policy replacements.
                if m.name() != "governance" {
                    let follower = Arc::new(crate::access::AccessPolicyFollower {
                        store: ctx.store.clone(),
                        authorizer: authorizer.clone(),
                        recorded: std::sync::atomic::AtomicU64::new(own_version),
                        in_force: adopted.clone(),
                    });
                    relays.push(tokio::spawn(run_consumer(
                        bus.clone(),
                        format!("{}-access-policy", m.name()),
                        Consumer {
                            source: "governance",
                            handler: follower,
                        },
                        stop_rx.clone(),
                    )));
                }
            }
            m.register(ctx, &mut routes);
            names.extend(m.grpc_services());
        }
        let Some(first_store) = first_store else {
            anyhow::bail!("a node needs at least one service");
        };
        let recorder = crate::access::RefusalRecorder::start(stores_by_grpc, first_store);
        if verifier.refreshes() {
            // Keys the identity provider removed stop verifying within the refresh interval.
            let v = verifier.clone();
            let mut stop = stop_rx.clone();
            relays.push(tokio::spawn(async move {
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
        let access = crate::access::layer(verifier, authorizer, recorder);
        crate::server::serve(listener, routes, &names, access, shutdown).await?;
        let _ = stop_tx.send(true);
        for r in relays {
            let _ = r.await;
        }
        Ok(())
    }
}

/// Declares a service crate's runtime module when the crate serves one gRPC service built by
/// `grpc::server(ctx)` (named `grpc::GRPC_NAME`) and consumes nothing:
/// `flotilla_runtime::service_module!(GovernanceModule, "governance");`
#[macro_export]
macro_rules! service_module {
    ($module:ident, $name:literal) => {
        /// Service name as used in subjects, topics and store schemas.
        pub const NAME: &str = $name;

        /// The service's entry point for the runtime.
        #[derive(Debug, Default, Clone, Copy)]
        pub struct $module;

        impl $crate::ServiceModule for $module {
            fn name(&self) -> &'static str {
                NAME
            }

            fn grpc_services(&self) -> Vec<String> {
                vec![grpc::GRPC_NAME.to_owned()]
            }

            fn register(
                &self,
                ctx: $crate::ServiceContext,
                routes: &mut ::tonic::service::RoutesBuilder,
            ) {
                routes.add_service(grpc::server(ctx));
            }
        }
    };
}
