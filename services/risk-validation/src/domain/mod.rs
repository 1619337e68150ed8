//! Risk-validation's pure domain. Nothing here reads a clock, draws an id or does I/O; time and
//! ids come in with the commands.
//!
//! - `stats`: the Mann-Whitney U test and the Hodges-Lehmann shift with its interval;
//! - `judge`: the canary judge (classifier and scorer) built on them;
//! - `canary`: judgements as commands, events and state.

pub use flotilla_core::event::Timestamp;
pub use flotilla_core::names;

pub mod canary;
pub mod judge;
pub mod stats;

pub use canary::*;

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

/// A name that breaks the platform's naming rule, as a refusal naming the field.
pub fn name_error(e: names::NameError) -> DomainError {
    DomainError::Invalid {
        field: e.field,
        reason: e.reason,
    }
}

pub fn invalid(field: &str, reason: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}
