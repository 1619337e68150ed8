//! Flotilla's service runtime: configuration ([`config`]), tracing and OpenTelemetry
//! ([`telemetry`]), gRPC server boot with health and reflection ([`server`]), replay of a store
//! into projections ([`replay`]) and the node that runs services with their relays ([`node`]).

pub mod access;
pub mod config;
pub mod node;
pub mod replay;
pub mod server;
pub mod telemetry;
pub mod testkit;

pub use config::Config;
pub use node::{
    Consumer, EventHandler, HandlerError, Node, NodeMode, ServiceContext, ServiceModule,
};
