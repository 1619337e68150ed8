//! The hash chain checked while a service's state is rebuilt and as it is kept current.
//!
//! Each service of a node has one [`ChainGuard`]. Whoever reads the store in position order from
//! the start hands every page to [`ChainGuard::check_from`], which links each event to the one
//! before it and recomputes its hash; the relay publishes only events checked that way, and
//! checks each one's own hash again as it reads it ([`ChainGuard::check_one`]). The first
//! break stops the service: its calls answer `DATA_LOSS` naming the position, its health is
//! NOT_SERVING, its relays and consumers stop. An operator who has looked at the break can
//! accept it by position (config `accept_chain_breaks = ["<service>@<position>"]`); the
//! acceptance is recorded in the store (stream `chain-integrity`) and holds only while the
//! store there is as it was accepted: an altered event keeps its present content, a missing
//! event stays missing, removed last events stay removed. An unreadable row cannot be accepted:
//! it must be repaired.

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

/// What is wrong at a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakKind {
    /// The event is there but its content, or its link to the one before, is not as stored.
    Altered,
    /// No event at the position; the next one is further on.
    Missing,
    /// The store's head names events past the last one there is.
    RemovedTail,
    /// The row cannot be read at all (cannot be accepted: it must be repaired).
    Unreadable,
}

impl BreakKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Altered => "altered",
            Self::Missing => "missing",
            Self::RemovedTail => "removed-tail",
            Self::Unreadable => "unreadable",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "missing" => Self::Missing,
            "removed-tail" => Self::RemovedTail,
            "unreadable" => Self::Unreadable,
            _ => Self::Altered,
        }
    }
}

/// A break found, with what the operator would accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundBreak {
    pub chain_break: ChainBreak,
    pub kind: BreakKind,
    /// Recomputed hash of the stored event at the position (altered breaks).
    pub event_hash: Option<Hash>,
}

/// An acceptance: the kind, and for altered events the content it holds for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Accepted {
    kind: BreakKind,
    hash: Hash,
}

#[derive(Debug)]
struct Walk {
    /// The newest event whose link and hash were checked.
    frontier: ChainHead,
    accepted: BTreeMap<u64, Accepted>,
    /// The current break's kind.
    kind: Option<BreakKind>,
}

/// One service's hash-chain check.
#[derive(Debug)]
pub struct ChainGuard {
    service: &'static str,
    walk: Mutex<Walk>,
    broken: watch::Sender<Option<ChainBreak>>,
    /// The newest position checked link by link.
    verified: watch::Sender<u64>,
    /// Whether the events present at start were all checked.
    caught_up: watch::Sender<bool>,
}

impl ChainGuard {
    pub fn new(service: &'static str) -> Arc<Self> {
        Arc::new(Self {
            service,
            walk: Mutex::new(Walk {
                frontier: ChainHead::default(),
                accepted: BTreeMap::new(),
                kind: None,
            }),
            broken: watch::channel(None).0,
            verified: watch::channel(0).0,
            caught_up: watch::channel(false).0,
        })
    }

    /// A guard that trusts the store as it is (tools and unit tests of services): checked and
    /// caught up from the start.
    pub fn trusting(service: &'static str) -> Arc<Self> {
        let g = Self::new(service);
        g.caught_up.send_replace(true);
        g.verified.send_replace(u64::MAX);
        g
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
        *self.verified.borrow()
    }

    /// Changes of the newest position checked.
    pub fn watch_verified(&self) -> watch::Receiver<u64> {
        self.verified.subscribe()
    }

    /// Whether every event present when the check started has been checked.
    pub fn is_caught_up(&self) -> bool {
        *self.caught_up.borrow()
    }

    pub fn watch_caught_up(&self) -> watch::Receiver<bool> {
        self.caught_up.subscribe()
    }

    /// Marks the events present at start as checked.
    pub fn set_caught_up(&self) {
        self.caught_up.send_replace(true);
    }

    /// The current break with its kind, if any.
    pub fn found(&self) -> Option<(ChainBreak, BreakKind)> {
        let b = self.broken()?;
        let kind = self.lock().kind.unwrap_or(BreakKind::Altered);
        Some((b, kind))
    }

    fn fail(&self, b: ChainBreak, kind: BreakKind) -> ChainBreak {
        let mut first = None;
        let mut walk = self.lock();
        self.broken.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(b.clone());
                true
            } else {
                first = current.clone();
                false
            }
        });
        if first.is_none() {
            walk.kind = Some(kind);
        }
        drop(walk);
        let b = first.unwrap_or(b);
        tracing::error!(service = self.service, position = b.position, kind = kind.as_str(), reason = %b.reason, "the store's hash chain is broken; the service stops serving");
        b
    }

    /// Starts linking at `head` (a verified snapshot's position and hash): events before it are
    /// checked apart ([`verify_prefix`]).
    pub fn start_at(&self, head: ChainHead) {
        let mut walk = self.lock();
        if walk.frontier.position < head.position {
            walk.frontier = head;
        }
        drop(walk);
        self.verified.send_replace(head.position);
    }

    /// Stops the service at an event this build cannot read (decode failed, an upcaster is
    /// missing): not a chain break, but nothing after it can be served.
    pub fn unreadable(&self, position: u64, reason: String) {
        self.fail(ChainBreak { position, reason }, BreakKind::Unreadable);
    }

    /// Records a read failure: an unreadable stored row is a break at its position.
    pub fn read_failed(&self, e: &StoreError) {
        if let StoreError::Corrupt { position, reason } = e {
            self.fail(
                ChainBreak {
                    position: *position,
                    reason: format!("the stored event cannot be read: {reason}"),
                },
                BreakKind::Unreadable,
            );
        }
    }

    /// Checks a page read by global position starting at `from` (no position may be missing
    /// but those accepted as missing).
    pub fn check_from(&self, from: u64, page: &[RecordedEvent]) -> Result<(), ChainBreak> {
        if let Some(b) = self.broken() {
            return Err(b);
        }
        let mut walk = self.lock();
        let mut expected = from;
        let mut result = Ok(());
        for e in page {
            // Positions accepted as missing are skipped over: the next event links across.
            let mut gap_accepted = false;
            while e.global_position > expected
                && walk.accepted.get(&expected).map(|a| a.kind) == Some(BreakKind::Missing)
            {
                if expected == walk.frontier.position + 1 {
                    walk.frontier = ChainHead {
                        position: expected,
                        hash: walk.frontier.hash,
                    };
                    gap_accepted = true;
                }
                expected += 1;
            }
            if gap_accepted && e.global_position == walk.frontier.position + 1 {
                // Link across the accepted gap to what the event says came before it.
                walk.frontier.hash = e.prev_hash;
            }
            let found = if e.global_position != expected {
                Some((
                    expected,
                    BreakKind::Missing,
                    format!(
                        "event missing: position {expected} was expected, the store holds {} next",
                        e.global_position
                    ),
                ))
            } else {
                let computed = e.compute_hash();
                let accepted = walk
                    .accepted
                    .get(&e.global_position)
                    .is_some_and(|a| a.kind == BreakKind::Altered && a.hash == computed);
                let altered = (computed != e.hash && !accepted).then(|| {
                    format!(
                        "stored hash {} does not match recomputed {computed}: the event was altered",
                        e.hash
                    )
                });
                if e.global_position == walk.frontier.position + 1 {
                    let relinked = (e.prev_hash != walk.frontier.hash && !accepted).then(|| {
                        format!(
                            "prev_hash {} does not match hash {} of position {}",
                            e.prev_hash, walk.frontier.hash, walk.frontier.position
                        )
                    });
                    match relinked.or(altered) {
                        Some(r) => Some((e.global_position, BreakKind::Altered, r)),
                        None => {
                            walk.frontier = ChainHead {
                                position: e.global_position,
                                hash: e.hash,
                            };
                            None
                        }
                    }
                } else {
                    // Behind what was linked (checked before), or ahead of it (a reader that
                    // started later): the event's own hash.
                    altered.map(|r| (e.global_position, BreakKind::Altered, r))
                }
            };
            if let Some((position, kind, reason)) = found {
                drop(walk);
                result = Err(self.fail(ChainBreak { position, reason }, kind));
                self.verified.send_replace(self.lock().frontier.position);
                return result;
            }
            expected = e.global_position + 1;
        }
        let frontier = walk.frontier.position;
        drop(walk);
        self.verified.send_if_modified(|v| {
            let moved = *v != frontier;
            *v = frontier;
            moved
        });
        result
    }

    /// Checks one event read out of order: its own hash.
    pub fn check_one(&self, e: &RecordedEvent) -> Result<(), ChainBreak> {
        if let Some(b) = self.broken() {
            return Err(b);
        }
        let computed = e.compute_hash();
        let accepted = self
            .lock()
            .accepted
            .get(&e.global_position)
            .is_some_and(|a| a.kind == BreakKind::Altered && a.hash == computed);
        if computed == e.hash || accepted {
            return Ok(());
        }
        Err(self.fail(
            ChainBreak {
                position: e.global_position,
                reason: format!(
                    "stored hash {} does not match recomputed {computed}: the event was altered",
                    e.hash
                ),
            },
            BreakKind::Altered,
        ))
    }

    /// Checks that the walk reached the head the store records (rows removed at the end of the
    /// store show here). Call it once the check has read everything up to `head`.
    pub fn check_head(&self, head: ChainHead) -> Result<(), ChainBreak> {
        if let Some(b) = self.broken() {
            return Err(b);
        }
        let walk = self.lock();
        let frontier = walk.frontier;
        let tail_accepted = walk.accepted.get(&(frontier.position + 1)).map(|a| a.kind)
            == Some(BreakKind::RemovedTail);
        drop(walk);
        if head.position > frontier.position && !tail_accepted {
            return Err(self.fail(
                ChainBreak {
                    position: frontier.position + 1,
                    reason: format!(
                        "the store's head records position {} but its events end at {}: events were removed",
                        head.position, frontier.position
                    ),
                },
                BreakKind::RemovedTail,
            ));
        }
        if head.position == frontier.position && head.hash != frontier.hash && !tail_accepted {
            return Err(self.fail(
                ChainBreak {
                    position: head.position,
                    reason: format!(
                        "the store's head records hash {} for position {} but the event there hashes to {}",
                        head.hash, head.position, frontier.hash
                    ),
                },
                BreakKind::RemovedTail,
            ));
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
                    let hash = hex::decode(&a.event_hash)
                        .ok()
                        .and_then(|b| Hash::from_slice(&b))
                        .unwrap_or(Hash::GENESIS);
                    walk.accepted.insert(
                        a.position,
                        Accepted {
                            kind: BreakKind::parse(&a.kind),
                            hash,
                        },
                    );
                }
                Err(err) => {
                    tracing::warn!(service = self.service, error = %err, "an accepted chain break does not decode; ignoring it")
                }
            }
        }
        Ok(walk.accepted.len())
    }

    /// Accepts the current break (the operator named its position): records the acceptance in
    /// the store and lets checking go on. Unreadable rows cannot be accepted.
    pub async fn accept(
        &self,
        store: &dyn EventStore,
        found: &FoundBreak,
        operator: &str,
    ) -> Result<u64, StoreError> {
        let position = found.chain_break.position;
        if found.kind == BreakKind::Unreadable {
            return Err(StoreError::Corrupt {
                position,
                reason: "an unreadable row cannot be accepted; repair or remove it (then accept what is missing)".into(),
            });
        }
        let hash = found.event_hash.unwrap_or(Hash::GENESIS);
        let (seconds, nanos) = Timestamp::now().seconds_and_nanos();
        let payload = flotilla_proto::common::v1::ChainBreakAccepted {
            position,
            reason: found.chain_break.reason.clone(),
            event_hash: hash.to_hex(),
            accepted_by: operator.to_owned(),
            accepted_at: Some(prost_types::Timestamp { seconds, nanos }),
            kind: found.kind.as_str().to_owned(),
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
        {
            let mut walk = self.lock();
            walk.accepted.insert(
                position,
                Accepted {
                    kind: found.kind,
                    hash,
                },
            );
            walk.kind = None;
        }
        self.broken.send_replace(None);
        tracing::warn!(
            service = self.service,
            position,
            operator,
            kind = found.kind.as_str(),
            reason = %found.chain_break.reason,
            "a broken hash chain was accepted by the operator and recorded; the service serves again"
        );
        Ok(position)
    }
}

/// The current break of a guard with the stored event's recomputed hash at its position.
pub async fn describe(
    store: &dyn EventStore,
    chain_break: ChainBreak,
    kind: BreakKind,
) -> Result<FoundBreak, StoreError> {
    let event_hash = if kind == BreakKind::Altered {
        match store.read_all(chain_break.position, 1).await {
            Ok(page) => page
                .first()
                .filter(|e| e.global_position == chain_break.position)
                .map(RecordedEvent::compute_hash),
            Err(StoreError::Corrupt { .. }) => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    Ok(FoundBreak {
        chain_break,
        kind,
        event_hash,
    })
}

/// Checks the chain from the first event up to `upto` (a snapshot's position and hash, where
/// checking as the state is kept current begins): the break, if any, is recorded on `chain`.
pub async fn verify_prefix(
    store: &dyn EventStore,
    chain: &ChainGuard,
    upto: ChainHead,
) -> Result<(), StoreError> {
    let walker = ChainGuard::new(chain.service);
    {
        let accepted = chain.lock().accepted.clone();
        walker.lock().accepted = accepted;
    }
    let mut next = 1;
    while next <= upto.position {
        let want = (upto.position - next + 1).min(5_000) as usize;
        let page = match store.read_all(next, want).await {
            Ok(p) => p,
            Err(e @ StoreError::Corrupt { .. }) => {
                walker.read_failed(&e);
                break;
            }
            Err(e) => return Err(e),
        };
        if page.is_empty() {
            break;
        }
        if walker.check_from(next, &page).is_err() {
            break;
        }
        next = page.last().map_or(next, |e| e.global_position + 1);
    }
    let found = match walker.found() {
        Some(f) => Some(f),
        None => {
            let frontier = walker.lock().frontier;
            (frontier != upto).then(|| {
                (
                    ChainBreak {
                        position: frontier.position + 1,
                        reason: format!(
                            "the snapshot at position {} records hash {}, the chain reaches position {} hash {}",
                            upto.position, upto.hash, frontier.position, frontier.hash
                        ),
                    },
                    BreakKind::Altered,
                )
            })
        }
    };
    if let Some((b, kind)) = found {
        chain.fail(b, kind);
    }
    Ok(())
}

/// The operating-system account of this process, for recording who accepted a break.
pub fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map(|u| format!("operator:{u}"))
        .unwrap_or_else(|_| "operator".to_owned())
}

#[cfg(test)]
mod tests;
