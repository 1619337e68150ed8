//! Helpers for Flotilla's end-to-end tests: start a node on 127.0.0.1:0 and stop it.

use std::net::SocketAddr;
use std::path::PathBuf;

use flotilla_runtime::{Config, Node, NodeMode, ServiceModule};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// All six services.
pub fn all_services() -> Vec<Box<dyn ServiceModule>> {
    vec![
        Box::new(flotilla_governance::GovernanceModule),
        Box::new(flotilla_dependency_mapping::DependencyMappingModule),
        Box::new(flotilla_orchestration::OrchestrationModule),
        Box::new(flotilla_risk_validation::RiskValidationModule),
        Box::new(flotilla_monitoring::MonitoringModule),
        Box::new(flotilla_compliance::ComplianceModule),
    ]
}

pub fn postgres_url() -> String {
    std::env::var("FLOTILLA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn nats_url() -> String {
    std::env::var("FLOTILLA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn kafka_brokers() -> String {
    std::env::var("FLOTILLA_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A node running in this test process.
pub struct RunningNode {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningNode {
    /// Starts a node; unless the config names keys, it trusts the test secret
    /// (`flotilla_runtime::testkit::token` makes tokens for it).
    pub async fn start(
        mut config: Config,
        modules: Vec<Box<dyn ServiceModule>>,
        mode: NodeMode,
    ) -> anyhow::Result<Self> {
        if config.auth_hs256_secret.is_empty() && config.auth_jwks.is_empty() {
            config.auth_hs256_secret =
                String::from_utf8_lossy(flotilla_runtime::testkit::TEST_SECRET).into_owned();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(Node::new(config, modules).run(listener, mode, async {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// Starts all six services embedded, with data under `data_dir`.
    pub async fn embedded(data_dir: PathBuf) -> anyhow::Result<Self> {
        let config = Config {
            data_dir: data_dir.clone(),
            ..Config::default()
        };
        Self::start(config, all_services(), NodeMode::Embedded { data_dir }).await
    }

    /// A client-side interceptor carrying a test token with `roles` in `business_unit`.
    pub fn bearer(subject: &str, roles: &[&str], business_unit: &str) -> flotilla_auth::Bearer {
        flotilla_auth::Bearer::new(&flotilla_runtime::testkit::token(
            subject,
            roles,
            business_unit,
        ))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connects a channel, retrying while the server starts.
    pub async fn channel(&self) -> anyhow::Result<tonic::transport::Channel> {
        let mut last = None;
        for _ in 0..100 {
            match tonic::transport::Channel::from_shared(self.url())?
                .connect()
                .await
            {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(anyhow::anyhow!(
            "node at {} did not accept connections: {last:?}",
            self.addr
        ))
    }

    /// Graceful shutdown; returns the node's result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task).await?
    }
}
