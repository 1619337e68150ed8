//! The monitoring service: health checks that measure business transactions, post-deploy watch
//! windows opened by orchestration's succeeded deployments, and the rollback they ask for when
//! a sample crosses a threshold inside the window.
//!
//! - `domain`: the pure rules; `codec`: the stored events as protobuf; `messages`: domain
//!   values as messages;
//! - `app`: the kit's app and its scheduler; `prometheus`: the poller
//!   of PromQL health checks; `grpc`: the API edge; `inbound`: orchestration's and the
//!   catalog's events, taken as commands.

pub mod app;
pub mod codec;
pub mod domain;
pub mod gauges;
pub mod grpc;
pub mod inbound;
pub mod messages;
pub mod prometheus;

flotilla_runtime::service_module!(MonitoringModule, "monitoring", start = app::start);
