//! Orchestration's pure domain: artifacts from CI, the policy they are held to, environments on
//! each unit's promotion path (checks, data, test windows, shared capacity, desired
//! configuration), trigger rules, releases planned in waves, and deployments step by step with
//! their rollbacks.
//!
//! [`Orchestration`] is a [`flotilla_core::decider::Decider`]: `decide` answers the events a
//! command causes (or why it is refused), `evolve` applies one recorded event with its envelope.
//! Time and ids come in with the commands; what other services say (governance's gate,
//! dependency-mapping's plan) comes in with the command too. Nothing here reads a clock, draws an
//! id, runs a step or does I/O.
//!
//! - `model`, `deployment`: what is kept (and how a release's steps are planned);
//! - `event`, `command`: what is recorded and what is asked;
//! - `state`: the state and how events change it; `decide/`: the rules, one file per family.

pub use flotilla_core::event::Timestamp;
pub use flotilla_core::names::{self, NameError, shown};

mod command;
mod decide;
pub mod deployment;
mod event;
mod model;
mod state;
#[cfg(test)]
pub(crate) mod tests;

pub use command::*;
pub use deployment::{
    AnalysisStage, Deployment, DeploymentStatus, Next, Phase, Step, StepKind, StepOutcome,
    StepState,
};
pub use event::*;
pub use model::*;
pub use state::{Orchestration, diff};

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
    /// A promotion that may not go ahead, with every reason from every source.
    #[error("release {release} may not enter {environment}: {}", reasons.join("; "))]
    Blocked {
        release: String,
        environment: String,
        reasons: Vec<String>,
    },
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
