//! Risk-validation's pure domain. Nothing here reads a clock, draws an id or does I/O; time and
//! ids come in with the commands.
//!
//! - `assessment`: risk scores of planned releases, every factor explained, and the facts they
//!   are made of;
//! - `fmea`: failure modes, RPN and required actions;
//! - `validation`: validations judged from their evidence;
//! - `stats`, `judge`, `canary`: the canary judge (Mann-Whitney U, Hodges-Lehmann, Kayenta's
//!   classifier and scorer) and its judgements;
//! - `state`: the commands, events and state, and the decider.

pub use flotilla_core::event::Timestamp;
pub use flotilla_core::names;

pub mod assessment;
pub mod canary;
pub mod fmea;
pub mod judge;
pub mod state;
pub mod stats;
pub mod validation;

pub use assessment::{
    AssessRelease, Assessment, CatalogEntry, DeploymentNote, NoteCatalogService, NoteDeployment,
    NotePromotionPath, NoteRelease, NotedItem, NotedRelease, Outcome, Reassess, RiskFactor,
    RiskWeights, SetRiskWeights,
};
pub use canary::*;
pub use fmea::{CloseFmeaAction, FailureMode, Fmea, RecordFmea};
pub use state::*;
pub use validation::{Evidence, RecordValidation, Validation, ValidationKind};

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// Refused by segregation of duties.
    #[error("{0}")]
    Forbidden(String),
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

#[cfg(test)]
mod tests;
