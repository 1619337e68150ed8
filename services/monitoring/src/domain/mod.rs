//! Monitoring's pure domain. Nothing here reads a clock, draws an id or does I/O; time and ids
//! come in with the commands.
//!
//! - `model`: health checks, thresholds by tier, watch windows, breaches;
//! - `checks`: health checks, the watch policy, the catalog's tiers;
//! - `watch`: windows opened by deployments, samples judged against them, windows closed;
//! - `correlation`: the releases suspected of an anomaly, through the dependency graph;
//! - `feedback`: support tickets and feature adoption per release;
//! - `postmortem`: post-mortems of failed releases and their timelines;
//! - `dora`: DORA's four keys and release telemetry from the recorded deployments;
//! - `state`: the commands, events and state, and the decider.

pub use flotilla_core::event::Timestamp;
pub use flotilla_core::names;

pub mod checks;
pub mod correlation;
pub mod dora;
pub mod feedback;
pub mod model;
pub mod postmortem;
pub mod state;
pub mod watch;

pub use checks::*;
pub use correlation::{Anomaly, Suspect, suspects};
pub use dora::{DeploymentNote, DoraMetric, DoraPoint, DoraQuery, Interval, dora};
pub use feedback::*;
pub use model::*;
pub use postmortem::*;
pub use state::*;
pub use watch::*;

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    AlreadyExists(String),
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

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

/// The one stream of monitoring's events: checks, policy, catalog, windows (commands from the
/// edge, the consumers and the scheduler are decided one at a time anyway).
pub fn monitoring_stream() -> flotilla_core::ids::StreamId {
    flotilla_core::ids::StreamId::singleton("monitoring-watches")
}

#[cfg(test)]
mod tests;
