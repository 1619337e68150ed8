//! The service kit: what every event-sourced service stands on, so a service is its domain
//! plus thin edges.
//!
//! - [`app`]: the event-sourced app (rebuild, live follow, lock-free reads, one writer with
//!   exact expected versions, bounded retries, command-id and inbox deduplication, snapshots).
//! - [`error`]: errors in one table (each service error's gRPC code, the store's codes once).
//! - [`caller`]: the verified caller of a request and the metadata of what it causes.
//! - [`started`]: what a started service hands the node (consumers, tasks, schedulers).

pub mod app;
pub mod caller;
pub mod error;
mod follow;
pub mod snapshot;
pub mod started;
pub mod time;

pub use crate::duty::{carry_term, current_term, term_lost};
pub use crate::metrics::{Gauges, Sample};
pub use app::{App, AppOptions, Executed, Observer, Snapshotted, UnitOf, Versioned};
pub use caller::Caller;
pub use error::{AppError, ServiceError, refuse, status, store_code};
pub use started::{Relayed, Scheduler, Shutdown, StartError, Started, Task};
