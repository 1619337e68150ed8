//! The hash chain checked while a service's state is rebuilt and as it is kept current.
//!
//! Each service of a node has one [`ChainGuard`]. Whoever reads the store in position order from
//! the start (the service's rebuild and catch-up) hands every page to
//! [`ChainGuard::check_from`], which links each event to the one before it and recomputes its
//! hash; readers that skip around (the relay from its checkpoint) use
//! [`ChainGuard::check_one`], which recomputes the event's own hash. The first break stops the
//! service: its calls answer `DATA_LOSS` naming the position, its health is NOT_SERVING, its
//! relays and consumers stop. An operator who has looked at the break can accept it by position
//! (config `accept_chain_breaks = ["<service>@<position>"]`); the acceptance is recorded in the
//! store (stream `chain-integrity`) and holds only while the event there keeps its present
//! content.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use flotilla_core::ExpectedVersion;
use flotilla_core::chain::{ChainBreak, ChainHead, Hash};
use flotilla_core::event::{Metadata, NewEvent, RecordedEvent, Timestamp};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, Direction, EventStore, StoreError};
use prost::Message;
use tokio::sync::watch;

/// Stream of a store's accepted chain breaks.
pub const INTEGRITY_STREAM: &str = "chain-integrity";
/// Event type of an accepted break.
pub const CHAIN_BREAK_ACCEPTED: &str = "flotilla.common.v1.ChainBreakAccepted";

#[derive(Debug)]
struct Walk {
    /// The newest event whose link and hash were checked.
    frontier: ChainHead,
    /// Accepted breaks: position -> recomputed hash of the event as it was accepted.
    accepted: BTreeMap<u64, Hash>,
}

/// One service's hash-chain check.
#[derive(Debug)]
pub struct ChainGuard {
    service: &'static str,
    walk: Mutex<Walk>,
    broken: watch::Sender<Option<ChainBreak>>,
}

/// A break the operator may accept: where, why, and the event's recomputed hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundBreak {
    pub chain_break: ChainBreak,
    /// Recomputed hash of the stored event at the position (None: no readable event there).
    pub event_hash: Option<Hash>,
}

impl ChainGuard {
    pub fn new(service: &'static str) -> Arc<Self> {
        Arc::new(Self {
            service,
            walk: Mutex::new(Walk {
                frontier: ChainHead::default(),
                accepted: BTreeMap::new(),
            }),
            broken: watch::channel(None).0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Walk> {
        self.walk.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The first break found, if any.
    pub fn broken(&self) -> Option<ChainBreak> {
        self.broken.borrow().clone()
    }

    /// Changes of the break state.
    pub fn watch(&self) -> watch::Receiver<Option<ChainBreak>> {
        self.broken.subscribe()
    }

    /// The newest position checked link by link.
    pub fn verified_to(&self) -> u64 {
        self.lock().frontier.position
    }

    fn fail(&self, b: ChainBreak) -> ChainBreak {
        let mut first = None;
        self.broken.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(b.clone());
                true
            } else {
                first = current.clone();
                false
            }
        });
        let b = first.unwrap_or(b);
        tracing::error!(service = self.service, position = b.position, reason = %b.reason, "the store's hash chain is broken; the service stops serving");
        b
    }

    /// Records a read failure: an unreadable stored row is a break at its position.
    pub fn read_failed(&self, e: &StoreError) {
        if let StoreError::Corrupt { position, reason } = e {
            self.fail(ChainBreak {
                position: *position,
                reason: format!("the stored event cannot be read: {reason}"),
            });
        }
    }

    /// Checks a page read by global position starting at `from` (no position may be missing).
    pub fn check_from(&self, from: u64, page: &[RecordedEvent]) -> Result<(), ChainBreak> {
        if let Some(b) = self.broken() {
            return Err(b);
        }
        let mut walk = self.lock();
        let mut expected = from;
        for e in page {
            let found = if e.global_position != expected {
                Some(format!(
                    "event missing: position {expected} was expected, the store holds {} next",
                    e.global_position
                ))
            } else {
                let computed = e.compute_hash();
                let accepted = walk.accepted.get(&e.global_position) == Some(&computed);
                if e.global_position <= walk.frontier.position {
                    (computed != e.hash && !accepted).then(|| {
                        format!(
                            "stored hash {} does not match recomputed {computed}: the event was altered after it was checked",
                            e.hash
                        )
                    })
                } else if e.global_position == walk.frontier.position + 1 {
                    let reason = if e.prev_hash != walk.frontier.hash {
                        Some(format!(
                            "prev_hash {} does not match hash {} of position {}",
                            e.prev_hash, walk.frontier.hash, walk.frontier.position
                        ))
                    } else if computed != e.hash {
                        Some(format!(
                            "stored hash {} does not match recomputed {computed}: the event was altered",
                            e.hash
                        ))
                    } else {
                        None
                    };
                    match reason {
                        Some(r) if !accepted => Some(r),
                        _ => {
                            walk.frontier = ChainHead {
                                position: e.global_position,
                                hash: e.hash,
                            };
                            None
                        }
                    }
                } else {
                    // Ahead of what was linked (a reader started later): its own hash only.
                    (computed != e.hash && !accepted).then(|| {
                        format!(
                            "stored hash {} does not match recomputed {computed}: the event was altered",
                            e.hash
                        )
                    })
                }
            };
            if let Some(reason) = found {
                drop(walk);
                return Err(self.fail(ChainBreak {
                    position: expected.min(e.global_position),
                    reason,
                }));
            }
            expected = e.global_position + 1;
        }
        Ok(())
    }

    /// Checks one event read out of order: its own hash.
    pub fn check_one(&self, e: &RecordedEvent) -> Result<(), ChainBreak> {
        if let Some(b) = self.broken() {
            return Err(b);
        }
        let computed = e.compute_hash();
        if computed == e.hash || self.lock().accepted.get(&e.global_position) == Some(&computed) {
            return Ok(());
        }
        Err(self.fail(ChainBreak {
            position: e.global_position,
            reason: format!(
                "stored hash {} does not match recomputed {computed}: the event was altered",
                e.hash
            ),
        }))
    }

    /// Checks that the walk reached the head the store records (rows removed at the end of the
    /// store show here). Call it once the rebuild has read everything up to `head`.
    pub fn check_head(&self, head: ChainHead) -> Result<(), ChainBreak> {
        if let Some(b) = self.broken() {
            return Err(b);
        }
        let frontier = self.lock().frontier;
        if head.position > frontier.position {
            return Err(self.fail(ChainBreak {
                position: frontier.position + 1,
                reason: format!(
                    "the store's head records position {} but its events end at {}: events were removed",
                    head.position, frontier.position
                ),
            }));
        }
        if head.position == frontier.position && head.hash != frontier.hash {
            return Err(self.fail(ChainBreak {
                position: head.position,
                reason: format!(
                    "the store's head records hash {} for position {} but the event there hashes to {}",
                    head.hash, head.position, frontier.hash
                ),
            }));
        }
        Ok(())
    }

    /// Loads the breaks accepted earlier (the store's `chain-integrity` stream).
    pub async fn load_accepted(&self, store: &dyn EventStore) -> Result<usize, StoreError> {
        let stream = StreamId::parse(INTEGRITY_STREAM).map_err(StoreError::InvalidAppend)?;
        let events = store
            .read_stream(&stream, None, Direction::Forwards, 10_000)
            .await?;
        let mut walk = self.lock();
        for e in &events {
            if e.event_type != CHAIN_BREAK_ACCEPTED {
                continue;
            }
            match flotilla_proto::common::v1::ChainBreakAccepted::decode(e.payload.as_slice()) {
                Ok(a) => {
                    if let Some(h) = hex::decode(&a.event_hash)
                        .ok()
                        .and_then(|b| Hash::from_slice(&b))
                    {
                        walk.accepted.insert(a.position, h);
                    }
                }
                Err(err) => {
                    tracing::warn!(service = self.service, error = %err, "an accepted chain break does not decode; ignoring it")
                }
            }
        }
        Ok(walk.accepted.len())
    }

    /// Accepts the current break (the operator named its position): records the acceptance in
    /// the store and lets reading go on. Answers the position accepted.
    pub async fn accept(
        &self,
        store: &dyn EventStore,
        found: &FoundBreak,
        operator: &str,
    ) -> Result<u64, StoreError> {
        let position = found.chain_break.position;
        let hash = found.event_hash.unwrap_or(Hash::GENESIS);
        let (seconds, nanos) = Timestamp::now().seconds_and_nanos();
        let payload = flotilla_proto::common::v1::ChainBreakAccepted {
            position,
            reason: found.chain_break.reason.clone(),
            event_hash: hash.to_hex(),
            accepted_by: operator.to_owned(),
            accepted_at: Some(prost_types::Timestamp { seconds, nanos }),
        };
        let stream = StreamId::parse(INTEGRITY_STREAM).map_err(StoreError::InvalidAppend)?;
        store
            .append(AppendRequest::new(
                stream,
                ExpectedVersion::Any,
                vec![NewEvent::new(
                    CHAIN_BREAK_ACCEPTED,
                    1,
                    payload.encode_to_vec(),
                    Metadata::by(operator, ""),
                )],
            ))
            .await?;
        self.lock().accepted.insert(position, hash);
        self.broken.send_replace(None);
        tracing::warn!(
            service = self.service,
            position,
            operator,
            reason = %found.chain_break.reason,
            "a broken hash chain was accepted by the operator and recorded; the service serves again"
        );
        Ok(position)
    }
}

/// The break at a position, with the stored event's recomputed hash there.
pub async fn describe(
    store: &dyn EventStore,
    chain_break: ChainBreak,
) -> Result<FoundBreak, StoreError> {
    let event_hash = match store.read_all(chain_break.position, 1).await {
        Ok(page) => page
            .first()
            .filter(|e| e.global_position == chain_break.position)
            .map(RecordedEvent::compute_hash),
        Err(StoreError::Corrupt { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(FoundBreak {
        chain_break,
        event_hash,
    })
}

/// The operating-system account of this process, for recording who accepted a break.
pub fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map(|u| format!("operator:{u}"))
        .unwrap_or_else(|_| "operator".to_owned())
}

#[cfg(test)]
mod tests {
    use flotilla_core::MemoryStore;
    use flotilla_core::conformance::synthetic;

    use super::*;

    async fn filled(n: u32) -> (MemoryStore, Vec<RecordedEvent>) {
        let store = MemoryStore::new();
        for i in 0..n {
            store
                .append(AppendRequest::new(
                    StreamId::new_for("item"),
                    ExpectedVersion::NoStream,
                    vec![synthetic(1, i)],
                ))
                .await
                .expect("append");
        }
        let all = store.read_all(1, usize::MAX).await.expect("read");
        (store, all)
    }

    #[tokio::test]
    async fn an_altered_event_breaks_the_chain_at_its_position() {
        let (_, mut events) = filled(10).await;
        let guard = ChainGuard::new("test");
        guard.check_from(1, &events[..4]).expect("intact");
        assert_eq!(guard.verified_to(), 4);
        events[6].payload[0] ^= 1;
        let b = guard.check_from(5, &events[4..]).expect_err("altered");
        assert_eq!(b.position, 7);
        assert!(b.reason.contains("altered"), "{}", b.reason);
        assert_eq!(guard.broken(), Some(b.clone()));
        // Stopped: nothing more is taken in.
        assert!(guard.check_from(1, &events[..1]).is_err());
    }

    #[tokio::test]
    async fn relinked_and_missing_events_are_found() {
        let (_, mut events) = filled(6).await;
        // The insider recomputed the altered event's hash: the next link breaks.
        events[2].payload[0] ^= 1;
        events[2].hash = events[2].compute_hash();
        let guard = ChainGuard::new("test");
        assert_eq!(
            guard.check_from(1, &events).expect_err("relinked").position,
            4
        );
        let (_, mut events) = filled(6).await;
        events.remove(3);
        let guard = ChainGuard::new("test");
        let b = guard.check_from(1, &events).expect_err("missing");
        assert_eq!(b.position, 4);
        assert!(b.reason.contains("missing"), "{}", b.reason);
    }

    #[tokio::test]
    async fn removed_tail_events_show_against_the_head() {
        let (store, events) = filled(5).await;
        let guard = ChainGuard::new("test");
        guard.check_from(1, &events[..3]).expect("intact");
        let head = store.head().await.expect("head");
        let b = guard.check_head(head).expect_err("tail removed");
        assert_eq!(b.position, 4);
    }

    #[tokio::test]
    async fn an_accepted_break_is_recorded_and_holds_for_that_content_only() {
        let (store, mut events) = filled(8).await;
        events[4].payload[0] ^= 1;
        let guard = ChainGuard::new("test");
        let b = guard.check_from(1, &events).expect_err("altered");
        // `describe` reads the stored (unaltered) event; describe the altered copy instead.
        let found = FoundBreak {
            chain_break: b,
            event_hash: Some(events[4].compute_hash()),
        };
        guard
            .accept(&store, &found, "operator:test")
            .await
            .expect("accept");
        assert_eq!(guard.broken(), None);
        guard
            .check_from(5, &events[4..])
            .expect("accepted break, intact after it");
        assert_eq!(guard.verified_to(), 8);
        // A fresh start loads the acceptance from the store.
        let fresh = ChainGuard::new("test");
        assert_eq!(fresh.load_accepted(&store).await.expect("load"), 1);
        fresh.check_from(1, &events).expect("accepted");
        // Altered again: the acceptance no longer holds.
        events[4].payload[1] ^= 1;
        let again = ChainGuard::new("test");
        again.load_accepted(&store).await.expect("load");
        assert_eq!(
            again
                .check_from(1, &events)
                .expect_err("changed again")
                .position,
            5
        );
    }
}
