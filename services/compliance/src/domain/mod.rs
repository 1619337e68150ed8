//! Compliance's pure domain: the ledger of every other service's events. Nothing here reads a
//! clock or does I/O; time comes in with the commands.
//!
//! - `model`: an event as a service published it, a ledger entry, an alert, a checkpoint;
//! - `chain`: each service's hash chain as the ledger has seen it (linked prefix, events
//!   waiting for the positions before them);
//! - `state`: the commands, events and state, and the decider.

pub use flotilla_core::event::Timestamp;

pub mod chain;
pub mod model;
pub mod retention;
pub mod state;

pub use chain::SourceChain;
pub use model::*;
pub use retention::*;
pub use state::*;

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

pub fn invalid(field: &str, reason: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The one stream of compliance's events: the ledger's entries, alerts and checkpoints, in the
/// order the tree grows.
pub fn ledger_stream() -> flotilla_core::ids::StreamId {
    flotilla_core::ids::StreamId::singleton("ledger")
}

/// The stream of retention policies, legal holds and erasures (apart from the ledger's, whose
/// order is the tree's).
pub fn retention_stream() -> flotilla_core::ids::StreamId {
    flotilla_core::ids::StreamId::singleton("retention")
}

#[cfg(test)]
mod retention_tests;
#[cfg(test)]
pub(crate) mod tests;
