//! The ledger's commands, events and state.

use std::collections::{BTreeMap, HashMap};

use flotilla_core::decider::{Decider, Decision, Recorded};
use flotilla_transparency::merkle::{Tree, leaf_hash};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::chain::{Finding, SourceChain};
use super::model::*;
use super::retention::*;
use super::{DomainError, Result, Timestamp, invalid, ledger_stream, retention_stream};
use flotilla_core::personal::key_ids_in;

/// Takes an event a service published into the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEvent {
    pub event: SourceEvent,
    pub now: Timestamp,
}

/// Raises an alert for every gap that waited at least `grace_micros`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckGaps {
    pub now: Timestamp,
    pub grace_micros: i64,
}

/// Records a checkpoint signed at the edge (the key is not the domain's): it must be of the
/// ledger as it is, and larger than the last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordCheckpoint {
    pub checkpoint: Checkpoint,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Ledger(Box<LedgerEvent>),
    CheckGaps(CheckGaps),
    RecordCheckpoint(RecordCheckpoint),
    SetRetentionPolicy(RetentionPolicy),
    PlaceLegalHold(LegalHold),
    ReleaseLegalHold(ReleaseLegalHold),
    EraseSubject(Erasure),
    SweepRetention(SweepRetention),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Ledgered(Box<Ledgered>),
    AlertRaised(Alert),
    CheckpointSigned(Checkpoint),
    RetentionPolicySet(RetentionPolicy),
    LegalHoldPlaced(LegalHold),
    LegalHoldReleased(ReleaseLegalHold),
    SubjectErased(Erasure),
}

/// The ledger.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Compliance {
    /// The Merkle tree over every leaf.
    pub tree: Tree,
    /// Each leaf's event, in ledger order.
    pub entries: Vec<EntryRef>,
    pub by_event: HashMap<Uuid, u64>,
    pub sources: BTreeMap<String, SourceChain>,
    pub alerts: Vec<Alert>,
    pub checkpoints: Vec<Checkpoint>,
    /// Retention policies, legal holds, erasures and where each subject's data appears.
    pub retention: Retention,
}

impl Compliance {
    fn links(&self) -> impl Fn(u64) -> ([u8; 32], [u8; 32]) + '_ {
        |leaf| {
            self.entries
                .get(leaf as usize)
                .map_or(([0; 32], [0; 32]), |e| (e.hash, e.prev_hash))
        }
    }

    /// The hash a service's chain is linked up to (zeros before its first event).
    pub fn head_hash(&self, chain: &SourceChain) -> [u8; 32] {
        chain.head(&self.links())
    }

    /// The newest signed checkpoint.
    pub fn newest_checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpoints.last()
    }

    /// The signed checkpoint of a size (0: the newest).
    pub fn checkpoint(&self, size: u64) -> Option<&Checkpoint> {
        if size == 0 {
            return self.newest_checkpoint();
        }
        self.checkpoints
            .binary_search_by_key(&size, |c| c.size)
            .ok()
            .map(|i| &self.checkpoints[i])
    }

    /// The leaf of an event of a service at its position (the first one seen there).
    pub fn leaf_at(&self, service: &str, sequence: u64) -> Option<u64> {
        self.sources.get(service)?.leaves.get(&sequence).copied()
    }

    fn alert(&self, n: u64, service: &str, f: Finding, e: Option<Uuid>, at: Timestamp) -> Alert {
        Alert {
            number: self.alerts.len() as u64 + n,
            kind: f.kind,
            service: service.to_owned(),
            sequence: f.sequence,
            last: f.sequence,
            expected: f.expected,
            found: f.found,
            detail: f.detail,
            event_id: e,
            raised_at: at,
        }
    }

    fn ledger(&self, c: LedgerEvent) -> Result<Vec<Event>> {
        let e = c.event;
        if e.service.is_empty() {
            return Err(invalid(
                "service",
                "must name the service that published the event",
            ));
        }
        if e.position == 0 {
            return Err(invalid("sequence", "positions start at 1"));
        }
        let empty = SourceChain::default();
        let chain = self.sources.get(&e.service).unwrap_or(&empty);
        let links = self.links();
        let findings = chain.check(&e, &links);
        let known = chain.leaves.contains_key(&e.position);
        if known && findings.is_empty() {
            // The same event again (a redelivery): already ledgered.
            return Ok(Vec::new());
        }
        let content_matches = !e.withheld && e.recomputed_hash() == e.hash;
        let mut events = Vec::new();
        let mut n = 1;
        let service = e.service.clone();
        let id = e.id;
        if !e.withheld && !content_matches {
            events.push(Event::AlertRaised(self.alert(
                n,
                &service,
                Finding {
                    kind: AlertKind::Altered,
                    sequence: e.position,
                    expected: e.recomputed_hash().to_hex(),
                    found: e.hash.to_hex(),
                    detail: format!(
                        "event {id} at position {}: its fields do not hash to the hash it carries",
                        e.position
                    ),
                },
                Some(id),
                c.now,
            )));
            n += 1;
        }
        for f in findings {
            events.push(Event::AlertRaised(self.alert(
                n,
                &service,
                f,
                Some(id),
                c.now,
            )));
            n += 1;
        }
        events.insert(
            0,
            Event::Ledgered(Box::new(Ledgered {
                index: self.entries.len() as u64,
                event: e,
                content_matches,
                at: c.now,
            })),
        );
        Ok(events)
    }

    fn check_gaps(&self, c: CheckGaps) -> Vec<Event> {
        let mut out = Vec::new();
        for (service, chain) in &self.sources {
            for (from, to) in chain.due_gaps(c.now, c.grace_micros) {
                let mut a = self.alert(
                    out.len() as u64 + 1,
                    service,
                    Finding {
                        kind: AlertKind::Gap,
                        sequence: from,
                        expected: String::new(),
                        found: String::new(),
                        detail: format!(
                            "positions {from} to {to} of {service} did not arrive; position {} did",
                            to + 1
                        ),
                    },
                    None,
                    c.now,
                );
                a.last = to;
                out.push(Event::AlertRaised(a));
            }
        }
        out
    }

    fn record_checkpoint(&self, c: RecordCheckpoint) -> Result<Vec<Event>> {
        let cp = c.checkpoint;
        if self.newest_checkpoint().is_some_and(|n| n.size >= cp.size) {
            return Ok(Vec::new());
        }
        let size = self.tree.size() as u64;
        if cp.size != size {
            return Err(DomainError::FailedPrecondition(format!(
                "the checkpoint is of size {}, the ledger has {size} entries; sign again",
                cp.size
            )));
        }
        let root = self
            .tree
            .root(size as usize)
            .map_err(|e| DomainError::FailedPrecondition(e.to_string()))?;
        if root != cp.root {
            return Err(invalid("root", "is not the ledger's root at that size"));
        }
        Ok(vec![Event::CheckpointSigned(cp)])
    }
}

impl Decider for Compliance {
    type Command = Command;
    type Event = Event;
    type Error = DomainError;

    fn decide(&self, command: Command) -> Result<Decision<Event>> {
        let r = &self.retention;
        let events = match command {
            Command::Ledger(c) => self.ledger(*c)?,
            Command::CheckGaps(c) => self.check_gaps(c),
            Command::RecordCheckpoint(c) => self.record_checkpoint(c)?,
            Command::SetRetentionPolicy(p) => {
                let p = r.set_policy(SetRetentionPolicy { policy: p })?;
                return Ok(Decision::new(
                    retention_stream(),
                    vec![Event::RetentionPolicySet(p)],
                ));
            }
            Command::PlaceLegalHold(h) => {
                let h = r.place_hold(PlaceLegalHold { hold: h })?;
                return Ok(Decision::new(
                    retention_stream(),
                    vec![Event::LegalHoldPlaced(h)],
                ));
            }
            Command::ReleaseLegalHold(c) => {
                r.release_hold(&c)?;
                return Ok(Decision::new(
                    retention_stream(),
                    vec![Event::LegalHoldReleased(c)],
                ));
            }
            Command::EraseSubject(e) => {
                let events = r
                    .erase(EraseSubject { erasure: e })?
                    .map(Event::SubjectErased)
                    .into_iter()
                    .collect();
                return Ok(Decision::new(retention_stream(), events));
            }
            Command::SweepRetention(c) => {
                let events = r.due(&c).into_iter().map(Event::SubjectErased).collect();
                return Ok(Decision::new(retention_stream(), events));
            }
        };
        Ok(Decision::new(ledger_stream(), events))
    }

    fn evolve(&mut self, r: &Recorded<Event>) {
        match &r.event {
            Event::Ledgered(l) => {
                let e = &l.event;
                let index = self.entries.len() as u64;
                self.tree.push(leaf_hash(&e.leaf().encode()));
                self.entries.push(EntryRef {
                    service: e.service.clone(),
                    sequence: e.position,
                    event_id: e.id,
                    hash: e.hash.0,
                    prev_hash: e.prev_hash.0,
                    recorded_at: e.recorded_at,
                    position: r.position,
                    withheld: e.withheld,
                });
                self.by_event.entry(e.id).or_insert(index);
                self.sources
                    .entry(e.service.clone())
                    .or_default()
                    .take(e.position, e.hash.0, index, e.withheld, l.at);
                let mut subjects = key_ids_in(&e.payload);
                for k in key_ids_in(e.metadata.actor.as_bytes()) {
                    if !subjects.contains(&k) {
                        subjects.push(k);
                    }
                }
                if !subjects.is_empty() {
                    let ids: Vec<Uuid> = subjects.iter().map(|k| k.0).collect();
                    self.retention.seen(
                        &ids,
                        &e.service,
                        &e.event_type,
                        &e.metadata.business_unit,
                        e.recorded_at,
                    );
                }
            }
            Event::AlertRaised(a) => {
                let chain = self.sources.entry(a.service.clone()).or_default();
                chain.alerts += 1;
                if a.kind == AlertKind::Gap {
                    chain.gaps_alerted.push((a.sequence, a.last));
                }
                self.alerts.push(a.clone());
            }
            Event::CheckpointSigned(c) => self.checkpoints.push(c.clone()),
            Event::RetentionPolicySet(p) => {
                self.retention.policies.insert(p.name.clone(), p.clone());
            }
            Event::LegalHoldPlaced(h) => {
                self.retention.holds.insert(h.id.clone(), h.clone());
            }
            Event::LegalHoldReleased(c) => {
                if let Some(h) = self.retention.holds.get_mut(&c.id) {
                    h.released_by = c.by.clone();
                    h.released_at = Some(c.at);
                }
            }
            Event::SubjectErased(e) => {
                self.retention.erasures.insert(e.subject, e.clone());
            }
        }
    }
}
