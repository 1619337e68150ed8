//! The compliance ledger as an auditor relies on it, on PostgreSQL and NATS: it takes every
//! event of the other services from the bus (withheld refusals as digests) with every link of
//! each chain checked; its checkpoints are signed notes and its proofs RFC 9162's, checked here
//! with the transparency crate's verifiers only; a bundle it exports verifies offline and fails
//! on any changed byte; and an insider who rewrites a service's store consistently (so that
//! the service's own check passes) is caught by the ledger when the service's next event no
//! longer links to what the ledger saw.
//!
//! - `proofs`: checkpoints, inclusion and consistency proofs, bundles, replay, and the insider;
//! - `report`: the audit report of a release, checked line by line and in a browser;
//! - `kafka`: the ledger over Kafka, and replay against plain Kafka and NATS consumers.

mod erasure;
mod kafka;
mod proofs;
mod report;
mod support;
