//! The risk-validation service: risk assessments, FMEA, validations and canary judgements.
//!
//! Layout: `grpc` holds the tonic service; the pure domain (`domain`), its handlers and
//! projections (`app`) and proto conversions arrive with the service's own issue.

pub mod domain;
pub mod grpc;

flotilla_runtime::service_module!(RiskValidationModule, "risk-validation");
