//! What the ledger holds.

use flotilla_core::chain::{Hash, HashInput, event_hash};
use flotilla_core::event::{Metadata, Timestamp};
use flotilla_core::ids::EventId;
use flotilla_transparency::ledger::Leaf;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One event as a service published it: every field its hash covers, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEvent {
    /// The service whose store holds it.
    pub service: String,
    /// The CloudEvents source and aggregate type it was published with.
    pub source: String,
    pub aggregate_type: String,
    pub position: u64,
    pub stream: String,
    pub stream_version: u64,
    pub id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: Vec<u8>,
    pub metadata: Metadata,
    pub recorded_at: Timestamp,
    pub prev_hash: Hash,
    pub hash: Hash,
    /// Only the event's digest was published; its content stays in the service's store.
    pub withheld: bool,
}

impl SourceEvent {
    /// What the service's chain rule makes of the event's fields (what `hash` must be).
    pub fn recomputed_hash(&self) -> Hash {
        event_hash(&HashInput {
            prev_hash: &self.prev_hash,
            global_position: self.position,
            stream_id: &self.stream,
            stream_version: self.stream_version,
            event_id: &EventId(self.id),
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: &self.payload,
            metadata: &self.metadata,
            recorded_at: self.recorded_at,
        })
    }

    /// The ledger leaf that stands for it.
    pub fn leaf(&self) -> Leaf {
        Leaf {
            service: self.service.clone(),
            sequence: self.position,
            event_id: *self.id.as_bytes(),
            event_hash: self.hash.0,
            prev_hash: self.prev_hash.0,
            withheld: self.withheld,
        }
    }
}

impl SourceEvent {
    /// The leaf of an entry the state keeps.
    pub fn leaf_of(e: &EntryRef) -> Leaf {
        Leaf {
            service: e.service.clone(),
            sequence: e.sequence,
            event_id: *e.event_id.as_bytes(),
            event_hash: e.hash,
            prev_hash: e.prev_hash,
            withheld: e.withheld,
        }
    }
}

/// An event taken into the ledger at leaf `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledgered {
    pub index: u64,
    pub event: SourceEvent,
    /// Its fields hash to its hash (always false for a withheld event, which has no fields to
    /// hash; its hash is checked only by how it links).
    pub content_matches: bool,
    pub at: Timestamp,
}

/// What the state keeps of each leaf (the event itself stays in the store).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    pub service: String,
    pub sequence: u64,
    pub event_id: Uuid,
    pub hash: [u8; 32],
    pub prev_hash: [u8; 32],
    pub recorded_at: Timestamp,
    /// Where compliance's own store holds the entry.
    pub position: u64,
    pub withheld: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertKind {
    /// Positions that did not arrive within the grace period.
    Gap,
    /// Two different events at one position.
    Fork,
    /// An event's previous hash is not the hash of the event before it.
    Mismatch,
    /// An event's fields do not hash to the hash it carries.
    Altered,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Gap => "gap",
            AlertKind::Fork => "fork",
            AlertKind::Mismatch => "mismatch",
            AlertKind::Altered => "altered",
        }
    }
}

/// A service's chain found not holding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub number: u64,
    pub kind: AlertKind,
    pub service: String,
    pub sequence: u64,
    pub last: u64,
    pub expected: String,
    pub found: String,
    pub detail: String,
    pub event_id: Option<Uuid>,
    pub raised_at: Timestamp,
}

/// A signed checkpoint of the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub size: u64,
    pub root: [u8; 32],
    /// The C2SP signed note.
    pub note: String,
    pub signed_at: Timestamp,
}
