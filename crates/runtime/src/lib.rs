//! Flotilla's service runtime: configuration ([`config`]), tracing and OpenTelemetry
//! ([`telemetry`]), gRPC server boot with health and reflection ([`server`]), replay of a store
//! into projections ([`replay`]) and the node that runs services with their relays ([`node`]).

pub mod access;
pub mod config;
pub mod config_sources;
pub mod duty;
pub mod integrity;
pub mod kit;
pub mod metrics;
pub mod module;
pub mod node;
pub mod outbound;
pub mod personal;
pub mod positions;
pub mod prometheus;
pub mod replay;
pub mod server;
mod tasks;
pub mod telemetry;
pub mod testkit;
pub mod tls;

pub use config::Config;
pub use module::{Consumer, EventHandler, HandlerError, ServiceContext, ServiceModule};
pub use node::{Node, NodeMode};

/// What [`service_module!`] expands to needs, so service crates need not depend on it.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use flotilla_core::ids::StreamId;
    pub use tonic::service::RoutesBuilder;
}
