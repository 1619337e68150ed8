//! Ledgers for the report's tests: events of the services, taken into a tree, read against a
//! checkpoint of it.

use flotilla_core::chain::Hash;
use flotilla_transparency::merkle::leaf_hash;

use super::{Read, read};
use crate::domain::tests::event_at;
use crate::domain::{Checkpoint, Compliance, EntryRef, Ledgered, SourceEvent, Timestamp};

pub fn secs(s: i64) -> Timestamp {
    Timestamp(s * 1_000_000)
}

/// An event of `service` at `position` of its store, in `stream` (the aggregate is the
/// stream's prefix), recorded at second `at`.
pub fn event(
    service: &str,
    position: u64,
    stream: &str,
    version: u64,
    at: i64,
    event_type: &str,
    payload: Vec<u8>,
) -> SourceEvent {
    let mut e = event_at(service, position, Hash::GENESIS);
    e.stream = stream.into();
    e.aggregate_type = stream.split('-').next().unwrap_or_default().into();
    e.stream_version = version;
    e.recorded_at = secs(at);
    e.event_type = event_type.into();
    e.payload = payload;
    e.hash = e.recomputed_hash();
    e
}

/// The events ledgered in this order, and a checkpoint of all of them.
pub fn ledger(events: Vec<SourceEvent>) -> (Compliance, Vec<Read>, Checkpoint) {
    let mut state = Compliance::default();
    let ledgered: Vec<Ledgered> = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            state.tree.push(leaf_hash(&event.leaf().encode()));
            state.by_event.insert(event.id, i as u64);
            state.entries.push(EntryRef {
                service: event.service.clone(),
                sequence: event.position,
                event_id: event.id,
                hash: event.hash.0,
                prev_hash: event.prev_hash.0,
                recorded_at: event.recorded_at,
                position: i as u64 + 1,
                withheld: false,
            });
            Ledgered {
                index: i as u64,
                event,
                content_matches: true,
                at: Timestamp(0),
            }
        })
        .collect();
    let size = state.tree.size();
    let checkpoint = Checkpoint {
        size: size as u64,
        root: state.tree.root(size).expect("root"),
        note: String::new(),
        signed_at: Timestamp(0),
    };
    let read = read(ledgered, &checkpoint);
    (state, read, checkpoint)
}
