//! The event store conformance suite. Every backend runs it through
//! [`store_conformance_tests!`](crate::store_conformance_tests), which expands to one
//! `#[tokio::test]` per check so a failure names the broken rule.

use std::sync::Arc;

use async_trait::async_trait;

use crate::event::{Metadata, NewEvent};
use crate::ids::StreamId;
use crate::store::{AppendRequest, EventStore};
use crate::version::ExpectedVersion;

mod appends;
mod chain;
mod leases;
mod reads;

pub use appends::*;
pub use chain::*;
pub use leases::*;
pub use reads::*;

/// A change an insider might make to a stored event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tampering {
    /// Flip one byte of the payload.
    PayloadByte,
    /// Change one character of the actor.
    MetadataByte,
    /// Flip one byte of the stored hash.
    HashByte,
    /// Delete the row.
    DeleteRow,
}

/// Reaches the store it was created with from behind its back: an insider editing rows, or
/// another process opening the same database.
#[async_trait]
pub trait Tamper: Send + Sync {
    async fn apply(&self, position: u64, what: Tampering);

    /// A second, independent handle on the same store (as another process would open), or None
    /// for stores that live in one handle (memory).
    async fn second_handle(&self) -> Option<Arc<dyn EventStore>> {
        None
    }
}

/// A fresh, empty store and a way to tamper with it. Keep `tamper` alive while the store is in
/// use: harnesses release the store's resources (schema, temp dir) when it drops.
pub struct Fresh {
    pub store: Arc<dyn EventStore>,
    pub tamper: Box<dyn Tamper>,
}

/// Makes fresh stores for the suite.
#[async_trait]
pub trait StoreHarness: Send + Sync {
    async fn fresh(&self) -> Fresh;
}

fn stream(prefix: &str) -> StreamId {
    StreamId::new_for(prefix)
}

/// A synthetic event whose payload records its writer and sequence.
pub fn synthetic(writer: u32, seq: u32) -> NewEvent {
    let mut payload = Vec::with_capacity(8);
    payload.extend_from_slice(&writer.to_be_bytes());
    payload.extend_from_slice(&seq.to_be_bytes());
    NewEvent::new(
        "flotilla.eventstore.v1.SyntheticEventRecorded",
        1,
        payload,
        Metadata::by(format!("writer-{writer}"), "bu-test"),
    )
}

fn events(n: u32) -> Vec<NewEvent> {
    (0..n).map(|i| synthetic(0, i)).collect()
}

async fn append(
    store: &Arc<dyn EventStore>,
    s: &StreamId,
    expected: ExpectedVersion,
    n: u32,
) -> crate::store::Result<crate::store::AppendOutcome> {
    store
        .append(AppendRequest::new(s.clone(), expected, events(n)))
        .await
}

/// Runs one store through the whole conformance suite, one test per check.
#[macro_export]
macro_rules! store_conformance_tests {
    ($harness:expr) => {
        mod store_conformance {
            #[allow(unused_imports)]
            use super::*;
            use $crate::conformance as c;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn reads_streams_and_all() {
                c::reads_streams_and_all(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn metadata_round_trips() {
                c::metadata_round_trips(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn expected_versions_are_enforced() {
                c::expected_versions_are_enforced(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn conditions_on_other_streams_hold() {
                c::conditions_on_other_streams_hold(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_appenders_one_wins() {
                c::concurrent_appenders_one_wins(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn empty_append_is_rejected() {
                c::empty_append_is_rejected(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn large_append_succeeds() {
                c::large_append_succeeds(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn idempotent_retry_appends_once() {
                c::idempotent_retry_appends_once(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn live_subscriber_sees_every_event_once() {
                c::live_subscriber_sees_every_event_once(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn verify_detects_tampering() {
                c::verify_detects_tampering(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn verify_while_appending_holds() {
                c::verify_while_appending_holds(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn two_handles_share_one_chain() {
                c::two_handles_share_one_chain(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn racing_handles_neither_collide_nor_starve() {
                c::racing_handles_neither_collide_nor_starve(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn snapshots_and_checkpoints() {
                c::snapshots_and_checkpoints(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn lease_has_one_holder_and_tokens_grow() {
                c::lease_has_one_holder_and_tokens_grow(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn lapsed_lease_is_taken_over() {
                c::lapsed_lease_is_taken_over(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn deposed_terms_write_nothing() {
                c::deposed_terms_write_nothing(&$harness).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn racing_replicas_one_holder() {
                c::racing_replicas_one_holder(&$harness).await
            }
        }
    };
}

/// The in-memory store's harness.
pub struct MemoryHarness;

struct MemoryTamper(Arc<crate::memory::MemoryStore>);

#[async_trait]
impl Tamper for MemoryTamper {
    async fn apply(&self, position: u64, what: Tampering) {
        let done = match what {
            Tampering::PayloadByte => self.0.tamper(position, |e| e.payload[0] ^= 0x01),
            Tampering::MetadataByte => self
                .0
                .tamper(position, |e| e.metadata.actor.replace_range(0..1, "X")),
            Tampering::HashByte => self.0.tamper(position, |e| e.hash.0[0] ^= 0x01),
            Tampering::DeleteRow => self.0.remove(position),
        };
        assert!(done, "no event at position {position}");
    }
}

#[async_trait]
impl StoreHarness for MemoryHarness {
    async fn fresh(&self) -> Fresh {
        let store = Arc::new(crate::memory::MemoryStore::new());
        Fresh {
            store: store.clone(),
            tamper: Box::new(MemoryTamper(store)),
        }
    }
}

#[cfg(test)]
mod memory_suite {
    crate::store_conformance_tests!(crate::conformance::MemoryHarness);
}
