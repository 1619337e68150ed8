//! Governance's pure domain: policies, approval requests with segregation of duties, CAB
//! decisions, freeze windows and embargoes, deviations, rollback decisions and the gate.
//!
//! [`Governance`] is a [`flotilla_core::decider::Decider`]: `decide` answers the events a
//! command causes (or why it is refused), `evolve` applies one recorded event with its
//! envelope. Time and ids come in with the commands: nothing here reads a clock, draws an id or
//! does I/O.
//!
//! - `model`: what is kept; `event`: what is recorded; `command`: what is asked;
//! - `state`: the state and how events change it; `decide/`: the rules, one file per family;
//! - `gate`, `policy`, `calendar`, `scope`: the gate, the policy document, window schedules and
//!   which unit things belong to.

pub use flotilla_core::event::Timestamp;
pub use flotilla_core::names::{self, NameError, shown};

mod calendar;
mod command;
mod decide;
mod event;
pub mod gate;
mod model;
pub mod policy;
mod scope;
mod state;
#[cfg(test)]
mod tests;

pub use calendar::{MonthlySchedule, Schedule, WeeklySchedule};
pub use command::*;
pub use event::{ACCESS_POLICY_STREAM, Event, POLICY_STREAM, StreamKey};
pub use gate::{GateDecision, GateReason, GateReasonKind};
pub use model::*;
pub use policy::{
    ApprovalRule, NamingRule, PolicyDocument, RoleRequirement, RollbackCriteria, RollbackThreshold,
    VersionScheme,
};
pub use state::Governance;

/// Role that any approver who is neither author nor committer may fill on personal-data systems.
pub const PEER_REVIEW: &str = "peer-review";
/// Role a CAB decision satisfies unless it says otherwise.
pub const CAB_ROLE: &str = "cab";
/// Role that must approve deviations from an embargo, and alone sets or lifts embargoes.
pub const COMPLIANCE_OFFICER: &str = "compliance-officer";
/// Platform administrators.
pub const ADMIN: &str = "admin";

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
    /// Segregation of duties: `rule` names the rule broken.
    #[error("segregation of duties rule {rule}: {detail}")]
    SegregationOfDuties { rule: &'static str, detail: String },
    /// The caller does not hold the role they claim to act in.
    #[error("{0}")]
    NotInRole(String),
    #[error("policy version {expected} is not the current version {current}")]
    StalePolicy { expected: u64, current: u64 },
    /// Something it names is not known yet (a consumed event may be applied later).
    #[error("{0}")]
    NotYetKnown(String),
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

/// A name that breaks the platform's naming rule, as a refusal naming the field.
pub fn name_error(e: NameError) -> DomainError {
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
