//! The compliance service: the platform-wide ledger of every other service's events, checked
//! link by link against each service's hash chain, in a Merkle tree with signed checkpoints
//! and proofs in the transparency-log ecosystem's formats; replay and audit reports from it.
//!
//! - `domain`: the pure ledger; `codec`: its events as protobuf;
//! - `app`: the kit's app, its checkpoint signer and scheduler; `inbound`: the five other
//!   services' events as published, taken into the ledger; `report`: the audit report of a
//!   release (JSON and HTML); `grpc`: the API edge.

pub mod app;
pub mod codec;
pub mod domain;
pub mod erasure;
pub mod grpc;
pub mod inbound;
pub mod report;
pub mod retention_pb;

flotilla_runtime::service_module!(ComplianceModule, "compliance", start = app::start, aggregates = { "ledger" => "ledger" });
