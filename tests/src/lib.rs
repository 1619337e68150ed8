//! Helpers for Flotilla's end-to-end tests: start a node on 127.0.0.1:0 and stop it.

pub mod insider;
pub mod probe;

use std::net::SocketAddr;
use std::path::PathBuf;

use flotilla_runtime::{Config, NodeMode, ServiceModule};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// All six services (the platform's one list).
pub fn all_services() -> Vec<Box<dyn ServiceModule>> {
    flotilla_platform::all()
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

/// A namespace of its own for one test, so tests (and any other deployment on the same
/// brokers and database) never share a subject, stream, consumer, topic, group or schema:
/// `t` + the uuid v7's 12 hex digits of milliseconds + 12 random ones, so stale ones can be told
/// by age.
pub fn fresh_namespace() -> String {
    let u = uuid::Uuid::now_v7().simple().to_string();
    format!("t{}{}", &u[..12], &u[20..])
}

/// How old a test namespace may get before a later run removes what it left.
const STALE_AFTER_MS: u128 = 2 * 3600 * 1000;

/// Whether a name starts with a test namespace older than [`STALE_AFTER_MS`].
fn stale(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let Some(hex) = lower.strip_prefix('t').and_then(|r| r.get(..24)) else {
        return false;
    };
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return false;
    }
    let Ok(ms) = u128::from_str_radix(&hex[..12], 16) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    now.saturating_sub(ms) > STALE_AFTER_MS
}

static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Removes the PostgreSQL schemas and JetStream streams earlier test runs left (once per
/// process, only namespaces older than two hours, so a suite running beside this one keeps
/// its own). Failures are ignored: cleaning is a courtesy, not part of a test.
pub async fn clean_stale_test_namespaces() {
    CLEANED
        .get_or_init(|| async {
            if let Ok(pool) = sqlx::PgPool::connect(&postgres_url()).await {
                let schemas: Vec<(String,)> = sqlx::query_as(
                    "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE 't%'",
                )
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
                for (schema,) in schemas.into_iter().filter(|(s,)| stale(s)) {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                    )))
                    .execute(&pool)
                    .await;
                }
            }
            if let Ok(client) = async_nats::connect(nats_url()).await {
                use futures::StreamExt as _;
                let js = async_nats::jetstream::new(client);
                let names: Vec<String> = js
                    .stream_names()
                    .filter_map(|n| async move { n.ok() })
                    .collect()
                    .await;
                for name in names.into_iter().filter(|n| stale(n)) {
                    let _ = js.delete_stream(&name).await;
                }
            }
        })
        .await;
}

/// One served deployment of a test: its own namespace, PostgreSQL schemas, the given buses and
/// an access policy signing key that its services trust.
pub struct Deployment {
    pub config: Config,
    _keys: tempfile::TempDir,
}

impl Deployment {
    pub fn new(buses: Vec<flotilla_runtime::config::BusKind>) -> anyhow::Result<Self> {
        let keys = tempfile::tempdir()?;
        let key = flotilla_auth::PolicySigner::generate()?;
        let path = keys.path().join("signing.key");
        std::fs::write(&path, key.seed_base64())?;
        let config = Config {
            namespace: fresh_namespace(),
            store_url: postgres_url(),
            nats_url: nats_url(),
            kafka_brokers: kafka_brokers(),
            buses,
            kafka_producer: [("batch.num.messages".to_owned(), "1".to_owned())]
                .into_iter()
                .collect(),
            access_policy_signing_key: path,
            access_policy_verify_keys: vec![key.public_key()],
            // Files a service keeps (compliance's generated checkpoint key) stay in the test's.
            data_dir: keys.path().to_path_buf(),
            ..Config::default()
        };
        Ok(Self {
            config,
            _keys: keys,
        })
    }

    /// Starts some of the six services of this deployment in one node.
    pub async fn start(&self, services: &[&str]) -> anyhow::Result<RunningNode> {
        clean_stale_test_namespaces().await;
        let modules = all_services()
            .into_iter()
            .filter(|m| services.contains(&m.name()))
            .collect();
        RunningNode::start(self.config.clone(), modules, NodeMode::Served).await
    }

    /// Opens a service's store of this deployment directly (as an insider would).
    pub async fn store(
        &self,
        service: &str,
    ) -> anyhow::Result<std::sync::Arc<dyn flotilla_core::store::EventStore>> {
        Ok(flotilla_store::open(
            &self.config.store_url,
            &flotilla_store::schema_for(&self.config.namespace, service),
        )
        .await?)
    }

    /// `text` with the personal values sealed in it opened with this deployment's keyring (as
    /// an answer to a person shows them).
    pub async fn reveal(&self, text: &str) -> String {
        let ring = flotilla_store::open_keyring(&self.config.store_url, &self.config.namespace)
            .await
            .unwrap_or_else(|e| panic!("keyring: {e}"));
        flotilla_core::personal::PersonalData::new(ring, std::time::Duration::from_secs(1))
            .reveal(text)
            .await
    }

    pub fn namespace(&self) -> flotilla_bus::Namespace {
        flotilla_bus::Namespace::new(&self.config.namespace)
            .unwrap_or_else(|e| panic!("test namespace: {e}"))
    }
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
        let task =
            tokio::spawn(
                flotilla_platform::node(config, modules).run(listener, mode, async {
                    let _ = rx.await;
                }),
            );
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

    /// A connected channel with a bearer token for `roles` in `business_unit`.
    pub async fn as_caller(
        &self,
        subject: &str,
        roles: &[&str],
        business_unit: &str,
    ) -> anyhow::Result<
        tonic::service::interceptor::InterceptedService<
            tonic::transport::Channel,
            flotilla_auth::Bearer,
        >,
    > {
        Ok(tonic::service::interceptor::InterceptedService::new(
            self.channel().await?,
            Self::bearer(subject, roles, business_unit),
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

/// The services a node lists through gRPC server reflection v1 (what a generic client sees).
pub async fn reflected_services(
    channel: tonic::transport::Channel,
) -> std::collections::BTreeSet<String> {
    use tokio_stream::StreamExt as _;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut out = std::collections::BTreeSet::new();
    let Ok(resp) = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
    else {
        return out;
    };
    let mut resp = resp.into_inner();
    while let Some(Ok(r)) = resp.next().await {
        if let Some(MessageResponse::ListServicesResponse(l)) = r.message_response {
            out.extend(l.service.into_iter().map(|s| s.name));
        }
    }
    out
}
