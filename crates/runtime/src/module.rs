//! What a service crate gives the runtime ([`ServiceModule`]) and what it gets from it
//! ([`ServiceContext`]).

use std::sync::Arc;

use flotilla_core::event::Timestamp;
use flotilla_core::ids::StreamId;
use flotilla_core::store::EventStore;
use flotilla_proto::common::v1::ServiceStatus;
use tonic::service::RoutesBuilder;

use crate::config::Config;
use crate::integrity::ChainGuard;

/// What a service gets from the runtime.
#[derive(Clone)]
pub struct ServiceContext {
    pub service: &'static str,
    pub store: Arc<dyn EventStore>,
    pub started_at: Timestamp,
    /// The access policies in force in this process (governance replaces them).
    pub authorizer: Arc<flotilla_auth::Authorizer>,
    /// The hash-chain check of this service's store.
    pub chain: Arc<ChainGuard>,
    /// The node's configuration (namespace, limits, keys).
    pub config: Arc<Config>,
    /// The key access policy replacements are signed with, when this node has one.
    pub policy_signer: Option<Arc<flotilla_auth::PolicySigner>>,
    /// The access policy version in force in this process (see `access::put_in_force`).
    pub policy_in_force: Arc<std::sync::atomic::AtomicU64>,
    /// Where this node serves gRPC (a service that asks another service of the same node
    /// calls it there); None when not known (a service started alone in a test).
    pub node_addr: Option<std::net::SocketAddr>,
    /// Where this node keeps its files (embedded mode's data folder).
    pub data_dir: std::path::PathBuf,
    /// The deployment's keyring: personal values are sealed with it on the way in and revealed
    /// on the way out.
    pub personal: Arc<flotilla_core::personal::PersonalData>,
    /// Where the service's state stands in its store (its app sets it), for read-your-writes.
    pub position: crate::positions::StatePosition,
}

impl std::fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContext")
            .field("service", &self.service)
            .finish()
    }
}

impl ServiceContext {
    /// A context for tests and tools: default configuration, a store taken as intact (no chain
    /// check runs), no signer.
    pub fn new(
        service: &'static str,
        store: Arc<dyn EventStore>,
        authorizer: Arc<flotilla_auth::Authorizer>,
    ) -> Self {
        Self {
            service,
            store,
            started_at: Timestamp::now(),
            authorizer,
            chain: ChainGuard::trusting(service),
            config: Arc::new(Config::default()),
            policy_signer: None,
            policy_in_force: Arc::default(),
            node_addr: None,
            data_dir: std::path::PathBuf::from(".flotilla"),
            personal: flotilla_core::personal::PersonalData::in_memory(),
            position: Default::default(),
        }
    }

    /// One value of this service's configuration section (`[<service>]`), when set and of the
    /// right type.
    pub fn section_value<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.config
            .section(self.service)
            .get(key)
            .and_then(|v| v.clone().try_into().ok())
    }

    /// This service's configuration section as its own type (unknown keys refused).
    pub fn section<T: serde::de::DeserializeOwned + Default>(
        &self,
    ) -> Result<T, crate::config::ConfigError> {
        let table = self.config.section(self.service);
        if table.is_empty() {
            return Ok(T::default());
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| crate::config::ConfigError::Invalid {
                key: self.service,
                message: e.to_string(),
            })
    }

    /// Largest request message a service accepts (config `max_message_bytes`).
    pub fn max_message_bytes(&self) -> usize {
        self.config.max_message_bytes
    }

    /// The deployment namespace.
    pub fn namespace(&self) -> &str {
        &self.config.namespace
    }

    /// The answer to `GetStatus`: the service, the head of its store's chain and whether the
    /// chain holds.
    pub async fn status(&self) -> Result<ServiceStatus, tonic::Status> {
        let head = self.store.head().await.map_err(|e| {
            tracing::error!(service = self.service, error = %e, "reading store head failed");
            tonic::Status::unavailable(format!("event store unavailable: {e}"))
        })?;
        let (seconds, nanos) = self.started_at.seconds_and_nanos();
        let broken = self.chain.broken();
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
            chain_intact: broken.is_none(),
            chain_break: broken.map(|b| b.to_string()).unwrap_or_default(),
            verified_position: self.chain.verified_to(),
        })
    }
}

/// A service crate's entry point.
#[async_trait::async_trait]
pub trait ServiceModule: Send + Sync {
    /// Service name as in subjects, topics and schemas.
    fn name(&self) -> &'static str;
    /// Full gRPC names of the services it serves (for health and reflection).
    fn grpc_services(&self) -> Vec<String>;
    /// Builds the service once: its state (rebuilt before this returns), its gRPC routes (added
    /// to `routes`), the events it consumes and its background tasks, which the node runs under
    /// its shutdown signal. One instance per process, shared by all of them.
    async fn start(
        &self,
        ctx: ServiceContext,
        routes: &mut RoutesBuilder,
    ) -> Result<crate::kit::Started, crate::kit::StartError>;
    /// The aggregate type of one of its streams, when the stream is not named
    /// `<aggregate>-<uuid>` (a singleton stream such as `<service>-policy` is `policy`).
    fn aggregate_type(&self, _stream: &StreamId) -> Option<String> {
        None
    }
    /// The stream in which this service records the access policy replacements it makes, when
    /// it is the one that replaces them: a node puts the newest one in force at start.
    fn access_policy_stream(&self) -> Option<&'static str> {
        None
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
    pub source: std::borrow::Cow<'static, str>,
    pub handler: Arc<dyn EventHandler>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("source", &self.source)
            .finish()
    }
}

/// Declares a service crate's runtime module. The crate serves one gRPC service named
/// `grpc::GRPC_NAME`.
///
/// - `service_module!(Module, "name")`: built by `grpc::server(ctx)`, no state, consumes
///   nothing (the node checks its store's chain).
/// - `service_module!(Module, "name", start = path)`: built by
///   `async fn path(ctx, &mut routes) -> Result<Started, StartError>` (its app, consumers and
///   tasks).
/// - `…, aggregates = { "stream" => "aggregate", … }`: the aggregate types of singleton streams.
/// - `…, access_policy = "stream"`: the service replaces access policies and records them there.
#[macro_export]
macro_rules! service_module {
    ($module:ident, $name:literal) => {
        $crate::service_module!(@module $module, $name, (ctx, routes) {
            routes.add_service(grpc::server(ctx));
            Ok($crate::kit::Started::default())
        }, {});
    };
    ($module:ident, $name:literal, start = $start:path
        $(, aggregates = { $($stream:literal => $agg:literal),* $(,)? })?
        $(, access_policy = $policy:literal)? $(,)?) => {
        $crate::service_module!(@module $module, $name, (ctx, routes) {
            $start(ctx, routes).await
        }, { $($($stream => $agg),*)? }, [$($policy)?]);
    };
    (@module $module:ident, $name:literal, ($ctx:ident, $routes:ident) $start:block, { $($stream:literal => $agg:literal),* }) => {
        $crate::service_module!(@module $module, $name, ($ctx, $routes) $start, { $($stream => $agg),* }, []);
    };
    (@module $module:ident, $name:literal, ($ctx:ident, $routes:ident) $start:block, { $($stream:literal => $agg:literal),* }, [$($policy:literal)?]) => {
        /// Service name as used in subjects, topics and store schemas.
        pub const NAME: &str = $name;

        /// The service's entry point for the runtime.
        #[derive(Debug, Default, Clone, Copy)]
        pub struct $module;

        #[$crate::__private::async_trait]
        impl $crate::ServiceModule for $module {
            fn name(&self) -> &'static str {
                NAME
            }

            fn grpc_services(&self) -> Vec<String> {
                vec![grpc::GRPC_NAME.to_owned()]
            }

            async fn start(
                &self,
                $ctx: $crate::ServiceContext,
                $routes: &mut $crate::__private::RoutesBuilder,
            ) -> Result<$crate::kit::Started, $crate::kit::StartError> {
                $start
            }

            #[allow(unused_variables)]
            fn aggregate_type(&self, stream: &$crate::__private::StreamId) -> Option<String> {
                match stream.as_str() {
                    $($stream => Some($agg.to_owned()),)*
                    _ => None,
                }
            }

            fn access_policy_stream(&self) -> Option<&'static str> {
                None $(.or(Some($policy)))?
            }
        }
    };
}
