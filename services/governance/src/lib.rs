//! The governance service: policies, approval requests with segregation of duties, CAB
//! decisions, freeze windows and embargoes, deviations, rollback decisions, the gate, and the
//! platform's access policy.
//!
//! Layout: `domain` is pure (decide/evolve/gate); `app` keeps the state from the store and runs
//! commands and the deadline scheduler; `convert` maps proto and domain types; `grpc` is the
//! tonic edge.

pub mod app;
pub mod codec;
pub mod convert;
pub mod domain;
pub mod grpc;

flotilla_runtime::service_module!(GovernanceModule, "governance");
