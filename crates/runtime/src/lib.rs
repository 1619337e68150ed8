//! Flotilla's service runtime: configuration ([`config`]), tracing and OpenTelemetry
//! ([`telemetry`]), gRPC server boot with health and reflection ([`server`]), replay of a store
//! into projections ([`replay`]) and the node that runs services with their relays ([`node`]).

pub mod access;
pub mod config;
pub mod integrity;
pub mod module;
pub mod node;
pub mod outbound;
pub mod replay;
pub mod server;
pub mod telemetry;
pub mod testkit;

pub use config::Config;
pub use module::{Consumer, EventHandler, HandlerError, ServiceContext, ServiceModule};
pub use node::{Node, NodeMode};
