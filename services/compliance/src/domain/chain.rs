//! One service's hash chain as the ledger has seen it. Events may arrive out of order (Kafka
//! keeps order per stream, not per store) and more than once; every link between neighbouring
//! positions is checked exactly once, when the later of the two arrives.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::model::*;
use flotilla_core::event::Timestamp;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceChain {
    /// Every position up to here arrived.
    pub linked_to: u64,
    /// Positions that arrived beyond `linked_to + 1`.
    pub waiting: BTreeSet<u64>,
    /// Since when the oldest gap waits (None: nothing waits).
    pub waiting_since: Option<Timestamp>,
    /// The gaps alerted (first, last missing position): a gap inside one is not alerted again.
    pub gaps_alerted: Vec<(u64, u64)>,
    /// Hashes of other events seen at a position already ledgered (forks), so a redelivered
    /// fork is not ledgered again.
    pub forks: HashMap<u64, Vec<[u8; 32]>>,
    /// The ledger leaf of each position (the first event seen there).
    pub leaves: HashMap<u64, u64>,
    pub events: u64,
    pub withheld: u64,
    pub alerts: u64,
}

/// A broken link found when an event arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: AlertKind,
    pub sequence: u64,
    pub expected: String,
    pub found: String,
    pub detail: String,
}

/// The hash and previous hash of a leaf.
pub type Links<'a> = &'a dyn Fn(u64) -> ([u8; 32], [u8; 32]);

impl SourceChain {
    /// The hash at `linked_to` (the genesis, zeros, before the first event).
    pub fn head(&self, links: Links<'_>) -> [u8; 32] {
        self.leaves
            .get(&self.linked_to)
            .map_or([0; 32], |&l| links(l).0)
    }

    /// What an event finds about its links with its neighbours already seen; for an event at a
    /// position already ledgered, whether it is the same event.
    pub fn check(&self, e: &SourceEvent, links: Links<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let seq = e.position;
        if let Some(&leaf) = self.leaves.get(&seq) {
            let (seen, _) = links(leaf);
            let forked_before = self.forks.get(&seq).is_some_and(|f| f.contains(&e.hash.0));
            if seen != e.hash.0 && !forked_before {
                out.push(Finding {
                    kind: AlertKind::Fork,
                    sequence: seq,
                    expected: hex::encode(seen),
                    found: e.hash.to_hex(),
                    detail: format!(
                        "event {} claims position {seq}, where another event is ledgered",
                        e.id
                    ),
                });
            }
            return out;
        }
        let before = if seq == 1 {
            Some([0; 32])
        } else {
            self.leaves.get(&(seq - 1)).map(|&l| links(l).0)
        };
        if let Some(prev) = before
            && prev != e.prev_hash.0
        {
            out.push(Finding {
                kind: AlertKind::Mismatch,
                sequence: seq,
                expected: hex::encode(prev),
                found: e.prev_hash.to_hex(),
                detail: format!(
                    "position {seq} names a previous hash that is not position {}'s",
                    seq - 1
                ),
            });
        }
        if let Some(&next) = seq.checked_add(1).and_then(|n| self.leaves.get(&n)) {
            let (_, next_prev) = links(next);
            if next_prev != e.hash.0 {
                out.push(Finding {
                    kind: AlertKind::Mismatch,
                    sequence: seq + 1,
                    expected: e.hash.to_hex(),
                    found: hex::encode(next_prev),
                    detail: format!(
                        "position {} names a previous hash that is not position {seq}'s",
                        seq + 1
                    ),
                });
            }
        }
        out
    }

    /// Takes a ledgered event's position (a fork's leaf is counted, the first event at a
    /// position stays the one linked).
    pub fn take(&mut self, seq: u64, hash: [u8; 32], leaf: u64, withheld: bool, at: Timestamp) {
        self.events += 1;
        if withheld {
            self.withheld += 1;
        }
        if self.leaves.contains_key(&seq) {
            self.forks.entry(seq).or_default().push(hash);
            return;
        }
        self.leaves.insert(seq, leaf);
        if seq == self.linked_to + 1 {
            self.linked_to = seq;
            while self.waiting.first() == Some(&(self.linked_to + 1)) {
                self.waiting.pop_first();
                self.linked_to += 1;
            }
            // The next gap (if any) waits from now.
            self.waiting_since = (!self.waiting.is_empty()).then_some(at);
        } else if seq > self.linked_to + 1 {
            self.waiting.insert(seq);
            self.waiting_since.get_or_insert(at);
        }
    }

    /// Every gap (first, last missing position) below the newest position that arrived, once
    /// the chain waited `grace_micros` and the gap is not inside one already alerted.
    pub fn due_gaps(&self, now: Timestamp, grace_micros: i64) -> Vec<(u64, u64)> {
        let Some(since) = self.waiting_since else {
            return Vec::new();
        };
        if now.0 - since.0 < grace_micros {
            return Vec::new();
        }
        let mut gaps = Vec::new();
        let mut below = self.linked_to;
        for &w in &self.waiting {
            if w > below + 1 {
                gaps.push((below + 1, w - 1));
            }
            below = w;
        }
        gaps.retain(|&(from, to)| !self.gaps_alerted.iter().any(|&(a, b)| a <= from && to <= b));
        gaps
    }
}
