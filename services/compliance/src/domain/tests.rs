//! The ledger's rules: every link checked once, whatever the order of arrival; forks,
//! mismatches, altered events and gaps alerted; redeliveries change nothing.

use flotilla_core::chain::Hash;
use flotilla_core::decider::{Decider, Recorded};
use flotilla_core::event::Metadata;
use flotilla_transparency::merkle::{leaf_hash, root};

use super::*;

const T0: i64 = 1_767_225_600_000_000;

/// An event of `service` at `position` whose hash is what its fields hash to.
pub fn event_at(service: &str, position: u64, prev: Hash) -> SourceEvent {
    let mut e = SourceEvent {
        service: service.into(),
        source: format!("/flotilla/test/{service}"),
        aggregate_type: "release".into(),
        position,
        stream: "release-01932c07-8f6b-7c3e-9a51-3b1f2d9e4c13".into(),
        stream_version: position - 1,
        id: uuid::Uuid::from_u128(u128::from(position) << 8 | service.len() as u128),
        event_type: "flotilla.governance.v1.ApprovalGranted".into(),
        schema_version: 1,
        payload: vec![position as u8; 3],
        metadata: Metadata::by("alice", "payments"),
        recorded_at: Timestamp(T0 + position as i64),
        prev_hash: prev,
        hash: Hash::default(),
        withheld: false,
    };
    e.hash = e.recomputed_hash();
    e
}

/// A chain of `n` linked events.
fn chain(service: &str, n: u64) -> Vec<SourceEvent> {
    let mut out: Vec<SourceEvent> = Vec::new();
    for p in 1..=n {
        let prev = out.last().map_or(Hash::GENESIS, |e| e.hash);
        out.push(event_at(service, p, prev));
    }
    out
}

struct Ledger {
    state: Compliance,
    position: u64,
}

impl Ledger {
    fn new() -> Self {
        Self {
            state: Compliance::default(),
            position: 0,
        }
    }

    fn run(&mut self, c: Command) -> Vec<Event> {
        let d = self.state.decide(c).expect("decided");
        for e in &d.events {
            self.position += 1;
            self.state.evolve(&Recorded {
                event: e.clone(),
                stream_id: d.stream_id.clone(),
                stream_version: self.position - 1,
                position: self.position,
                recorded_at: Timestamp(T0),
                metadata: Metadata::default(),
            });
        }
        d.events
    }

    fn take(&mut self, e: &SourceEvent) -> Vec<Alert> {
        self.run(Command::Ledger(Box::new(LedgerEvent {
            event: e.clone(),
            now: Timestamp(T0),
        })))
        .into_iter()
        .filter_map(|e| match e {
            Event::AlertRaised(a) => Some(a),
            _ => None,
        })
        .collect()
    }

    fn source(&self, s: &str) -> &SourceChain {
        &self.state.sources[s]
    }
}

#[test]
fn a_chain_in_order_links_without_alerts_and_the_tree_holds_each_leaf() {
    let mut l = Ledger::new();
    let events = chain("governance", 5);
    for e in &events {
        assert_eq!(l.take(e), vec![]);
    }
    assert_eq!(l.source("governance").linked_to, 5);
    assert_eq!(l.state.tree.size(), 5);
    let leaves: Vec<_> = events
        .iter()
        .map(|e| leaf_hash(&e.leaf().encode()))
        .collect();
    assert_eq!(l.state.tree.root(5).expect("root"), root(&leaves));
    assert_eq!(l.state.leaf_at("governance", 3), Some(2));
    assert_eq!(l.state.by_event[&events[4].id], 4);
}

#[test]
fn events_out_of_order_link_once_their_predecessors_arrive() {
    let mut l = Ledger::new();
    let events = chain("orchestration", 6);
    for i in [2, 5, 0, 4, 1, 3] {
        assert_eq!(l.take(&events[i]), vec![], "position {}", i + 1);
    }
    let s = l.source("orchestration");
    assert_eq!(s.linked_to, 6);
    assert!(s.waiting.is_empty());
    assert_eq!(s.waiting_since, None);
}

#[test]
fn a_redelivery_changes_nothing() {
    let mut l = Ledger::new();
    let events = chain("governance", 2);
    l.take(&events[0]);
    l.take(&events[1]);
    let again = l.run(Command::Ledger(Box::new(LedgerEvent {
        event: events[0].clone(),
        now: Timestamp(T0 + 5),
    })));
    assert_eq!(again, vec![]);
    assert_eq!(l.state.tree.size(), 2);
}

#[test]
fn a_second_event_at_a_position_is_a_fork_and_the_first_stays_linked() {
    let mut l = Ledger::new();
    let events = chain("governance", 2);
    l.take(&events[0]);
    l.take(&events[1]);
    let mut rewritten = events[1].clone();
    rewritten.payload = vec![0xee];
    rewritten.hash = rewritten.recomputed_hash();
    let alerts = l.take(&rewritten);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::Fork);
    assert_eq!(alerts[0].sequence, 2);
    assert_eq!(alerts[0].expected, events[1].hash.to_hex());
    assert_eq!(alerts[0].found, rewritten.hash.to_hex());
    // The fork is ledgered as evidence; the position keeps its first event.
    assert_eq!(l.state.tree.size(), 3);
    assert_eq!(l.state.leaf_at("governance", 2), Some(1));
    assert_eq!(l.source("governance").alerts, 1);
}

#[test]
fn a_previous_hash_that_does_not_link_is_a_mismatch_whichever_arrives_first() {
    let events = chain("monitoring", 3);
    let mut bad = events[1].clone();
    bad.prev_hash = Hash([0x42; 32]);
    bad.hash = bad.recomputed_hash();

    // In order: found when position 2 arrives.
    let mut l = Ledger::new();
    l.take(&events[0]);
    let a = l.take(&bad);
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].kind, a[0].sequence), (AlertKind::Mismatch, 2));
    assert_eq!(a[0].expected, events[0].hash.to_hex());
    assert_eq!(a[0].found, hex::encode([0x42; 32]));

    // Position 2 first: found when position 1 arrives, about position 2.
    let mut l = Ledger::new();
    assert_eq!(l.take(&bad), vec![]);
    let a = l.take(&events[0]);
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].kind, a[0].sequence), (AlertKind::Mismatch, 2));

    // Position 3 links to the real position 2, not to the bad one.
    let a = l.take(&events[2]);
    assert_eq!((a[0].kind, a[0].sequence), (AlertKind::Mismatch, 3));
}

#[test]
fn the_first_event_must_name_the_genesis() {
    let mut l = Ledger::new();
    let a = l.take(&event_at("governance", 1, Hash([1; 32])));
    assert_eq!((a[0].kind, a[0].sequence), (AlertKind::Mismatch, 1));
}

#[test]
fn an_event_changed_after_it_was_hashed_is_altered() {
    let mut l = Ledger::new();
    let mut e = chain("risk-validation", 1).remove(0);
    e.payload[0] ^= 1;
    let a = l.take(&e);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].kind, AlertKind::Altered);
    assert_eq!(a[0].found, e.hash.to_hex());
    // It links (its hash is the one the chain names), so nothing else is alerted.
    assert_eq!(l.source("risk-validation").linked_to, 1);
}

#[test]
fn a_withheld_events_digest_links_without_its_content() {
    let mut l = Ledger::new();
    let events = chain("governance", 3);
    let mut digest = events[1].clone();
    digest.payload.clear();
    digest.metadata = Metadata::default();
    digest.event_type = "flotilla.common.v1.EventWithheld".into();
    digest.withheld = true;
    for e in [&events[0], &digest, &events[2]] {
        assert_eq!(l.take(e), vec![]);
    }
    let s = l.source("governance");
    assert_eq!((s.linked_to, s.withheld), (3, 1));
}

#[test]
fn a_gap_is_alerted_once_after_its_grace_and_closes_when_the_position_arrives() {
    let mut l = Ledger::new();
    let events = chain("governance", 4);
    l.take(&events[0]);
    l.take(&events[3]);
    let gaps = |l: &mut Ledger, now: i64| {
        l.run(Command::CheckGaps(CheckGaps {
            now: Timestamp(now),
            grace_micros: 60_000_000,
        }))
    };
    assert_eq!(gaps(&mut l, T0 + 59_000_000), vec![]);
    let raised = gaps(&mut l, T0 + 60_000_000);
    let [Event::AlertRaised(a)] = raised.as_slice() else {
        panic!("{raised:?}")
    };
    assert_eq!((a.kind, a.sequence, a.last), (AlertKind::Gap, 2, 3));
    assert_eq!(gaps(&mut l, T0 + 120_000_000), vec![]);
    l.take(&events[1]);
    l.take(&events[2]);
    assert_eq!(l.source("governance").linked_to, 4);
}

#[test]
fn a_checkpoint_must_be_of_the_ledger_as_it_is() {
    let mut l = Ledger::new();
    for e in &chain("governance", 3) {
        l.take(e);
    }
    let root3 = l.state.tree.root(3).expect("root");
    let cp = |size, root| {
        Command::RecordCheckpoint(RecordCheckpoint {
            checkpoint: Checkpoint {
                size,
                root,
                note: "note".into(),
                signed_at: Timestamp(T0),
            },
        })
    };
    assert!(matches!(
        l.state.decide(cp(2, root3)),
        Err(DomainError::FailedPrecondition(_))
    ));
    assert!(matches!(
        l.state.decide(cp(3, [0; 32])),
        Err(DomainError::Invalid { .. })
    ));
    assert_eq!(l.run(cp(3, root3)).len(), 1);
    assert_eq!(l.state.checkpoint(0).map(|c| c.size), Some(3));
    assert_eq!(l.state.checkpoint(3).map(|c| c.root), Some(root3));
    // Not larger than the newest: nothing.
    assert_eq!(l.run(cp(3, root3)), vec![]);
}

#[test]
fn an_event_without_a_service_or_at_position_zero_is_refused() {
    let l = Ledger::new();
    let mut e = event_at("governance", 1, Hash::GENESIS);
    e.position = 0;
    let refused = |e: SourceEvent| {
        l.state.decide(Command::Ledger(Box::new(LedgerEvent {
            event: e,
            now: Timestamp(T0),
        })))
    };
    assert!(refused(e.clone()).is_err());
    e.position = 1;
    e.service.clear();
    assert!(refused(e).is_err());
}

#[test]
fn a_redelivered_fork_is_ledgered_and_alerted_once() {
    let mut l = Ledger::new();
    let events = chain("governance", 2);
    l.take(&events[0]);
    l.take(&events[1]);
    let mut rewritten = events[1].clone();
    rewritten.payload = vec![0xee];
    rewritten.hash = rewritten.recomputed_hash();
    assert_eq!(l.take(&rewritten).len(), 1);
    assert_eq!(l.take(&rewritten), vec![]);
    assert_eq!(l.state.tree.size(), 3);
    assert_eq!(l.source("governance").alerts, 1);
}

#[test]
fn every_gap_is_alerted_once_and_a_partly_filled_one_not_again() {
    let mut l = Ledger::new();
    let events = chain("orchestration", 10);
    // Arrived: 1, 4, 5, 9, 10; missing 2-3 and 6-8.
    for i in [0, 3, 4, 8, 9] {
        l.take(&events[i]);
    }
    let gaps = |l: &mut Ledger, now: i64| -> Vec<(u64, u64)> {
        l.run(Command::CheckGaps(CheckGaps {
            now: Timestamp(now),
            grace_micros: 1,
        }))
        .into_iter()
        .filter_map(|e| match e {
            Event::AlertRaised(a) => Some((a.sequence, a.last)),
            _ => None,
        })
        .collect()
    };
    assert_eq!(gaps(&mut l, T0 + 10), vec![(2, 3), (6, 8)]);
    assert_eq!(gaps(&mut l, T0 + 20), vec![]);
    // 2 and 3 arrive, then 6: what is left of the second gap was alerted already.
    l.take(&events[1]);
    l.take(&events[2]);
    l.take(&events[5]);
    assert_eq!(gaps(&mut l, T0 + 30), vec![]);
    assert_eq!(l.source("orchestration").linked_to, 6);
}

#[test]
fn the_last_possible_position_does_not_overflow() {
    let mut l = Ledger::new();
    let e = event_at("governance", u64::MAX, Hash([1; 32]));
    assert_eq!(l.take(&e), vec![]);
    assert_eq!(l.source("governance").waiting.len(), 1);
}
