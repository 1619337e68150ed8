//! A node runs one or more services in one process: opens each service's store, starts a relay
//! per service and bus, registers the services' gRPC routes and serves until shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use flotilla_bus::Publisher;
use flotilla_bus::inprocess::InProcessBus;
use flotilla_bus::kafka::KafkaBus;
use flotilla_bus::nats::NatsBus;
use flotilla_bus::relay::Relay;
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

    async fn publishers(&self, mode: &NodeMode) -> anyhow::Result<Vec<Arc<dyn Publisher>>> {
        if let NodeMode::Embedded { .. } = mode {
            return Ok(vec![Arc::new(InProcessBus::new())]);
        }
        let mut out: Vec<Arc<dyn Publisher>> = Vec::new();
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
        let publishers = self.publishers(&mode).await?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut routes = RoutesBuilder::default();
        let mut names = Vec::new();
        let mut relays = Vec::new();
        let started_at = Timestamp::now();
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
            for p in &publishers {
                relays.push(tokio::spawn(run_relay(
                    store.clone(),
                    m.name(),
                    p.clone(),
                    stop_rx.clone(),
                )));
            }
            m.register(
                ServiceContext {
                    service: m.name(),
                    store,
                    started_at,
                },
                &mut routes,
            );
            names.extend(m.grpc_services());
        }
        crate::server::serve(listener, routes, &names, shutdown).await?;
        let _ = stop_tx.send(true);
        for r in relays {
            let _ = r.await;
        }
        Ok(())
    }
}
