//! The monitoring service: health checks, post-deploy watch windows, feedback and DORA metrics.
//!
//! Layout: `grpc` holds the tonic service; the pure domain (`domain`), its handlers and
//! projections (`app`) and proto conversions arrive with the service's own issue.

pub mod grpc;

flotilla_runtime::service_module!(MonitoringModule, "monitoring");
