//! Flotilla's event-sourcing core.
//!
//! Every service keeps its state as append-only streams in an [`EventStore`]. Appends state an
//! [`ExpectedVersion`]; every stored event is hash-chained to the one before it (see [`chain`]),
//! so the store doubles as a tamper-evident audit log. A service's state is a pure
//! [`Decider`]: `decide` turns a command into the events of one stream, `evolve` folds each
//! recorded event (with its envelope) into the state; the runtime's kit runs it.

pub mod chain;
pub mod conformance;
pub mod decider;
pub mod event;
pub mod ids;
pub mod lease;
pub mod memory;
pub mod names;
pub mod personal;
pub mod plan;
pub mod store;
pub mod subscription;
pub mod testing;
pub mod upcast;
pub mod version;
pub mod writer_stats;

pub use chain::{ChainBreak, ChainHead, Hash, VerifyReport};
pub use decider::{Decider, Decision, Recorded, StoredEvents};
pub use event::{Metadata, NewEvent, RecordedEvent, Snapshot, Timestamp};
pub use ids::{EventId, StreamId};
pub use lease::{Fence, LeaseState};
pub use memory::MemoryStore;
pub use store::{AppendOutcome, AppendRequest, EventStore, Result, StoreError};
pub use subscription::{Subscription, SubscriptionItem, subscribe_all};
pub use upcast::{Upcaster, UpcasterRegistry};
pub use version::ExpectedVersion;
