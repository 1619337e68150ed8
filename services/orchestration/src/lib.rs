//! The orchestration service: artifacts, releases, environments and deployments.
//!
//! Layout: `grpc` holds the tonic service; the pure domain (`domain`), its handlers and
//! projections (`app`) and proto conversions arrive with the service's own issue.

pub mod domain;
pub mod grpc;

flotilla_runtime::service_module!(OrchestrationModule, "orchestration");
