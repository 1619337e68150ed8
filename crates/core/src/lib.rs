//! Flotilla's event-sourcing core.
//!
//! Every service keeps its state as append-only streams in an [`EventStore`]. Appends state an
//! [`ExpectedVersion`]; every stored event is hash-chained to the one before it (see [`chain`]),
//! so the store doubles as a tamper-evident audit log. Aggregates are pure: [`Aggregate::decide`]
//! turns a command into events and [`Aggregate::evolve`] folds events into state.

pub mod aggregate;
pub mod chain;
pub mod conformance;
pub mod decider;
pub mod event;
pub mod ids;
pub mod memory;
pub mod names;
pub mod plan;
pub mod store;
pub mod subscription;
pub mod testing;
pub mod upcast;
pub mod version;

pub use aggregate::{Aggregate, CommandOutcome, EventCodec, ExecuteError, Repository};
pub use chain::{ChainBreak, ChainHead, Hash, VerifyReport};
pub use decider::{Decider, Decision, Recorded, StoredEvents};
pub use event::{Metadata, NewEvent, RecordedEvent, Snapshot, Timestamp};
pub use ids::{EventId, StreamId};
pub use memory::MemoryStore;
pub use store::{AppendOutcome, AppendRequest, EventStore, Result, StoreError};
pub use subscription::{Subscription, SubscriptionItem, subscribe_all};
pub use upcast::{Upcaster, UpcasterRegistry};
pub use version::ExpectedVersion;
