//! The hash chain. Each event's hash is SHA-256 over a canonical, length-prefixed encoding of
//! every stored field, including the previous event's hash, so changing, removing or reordering
//! anything breaks the chain from that point on.
//!
//! Canonical encoding (all integers big-endian):
//! `"flotilla.event.v1\0"`, prev_hash (32 bytes), global_position (u64), stream_id (u32 length +
//! UTF-8), stream_version (u64), event_id (16 bytes), event_type (u32 length + UTF-8),
//! schema_version (u32), payload (u64 length + bytes), actor and business_unit (u32 length +
//! UTF-8 each), correlation_id, causation_id, traceparent, command_id (each a presence byte 0/1,
//! then 16 bytes for uuids or u32 length + UTF-8), recorded_at (i64 microseconds).

use std::fmt;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::event::{Metadata, RecordedEvent, Timestamp};
use crate::ids::EventId;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The previous hash of the first event in a store.
    pub const GENESIS: Hash = Hash([0; 32]);

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The newest event of a store: its position (0 when empty) and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChainHead {
    pub position: u64,
    pub hash: Hash,
}

/// The fields that are hashed, borrowed.
pub struct HashInput<'a> {
    pub prev_hash: &'a Hash,
    pub global_position: u64,
    pub stream_id: &'a str,
    pub stream_version: u64,
    pub event_id: &'a EventId,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub payload: &'a [u8],
    pub metadata: &'a Metadata,
    pub recorded_at: Timestamp,
}

fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u32).to_be_bytes());
    h.update(s.as_bytes());
}

fn put_opt_uuid(h: &mut Sha256, u: &Option<Uuid>) {
    match u {
        None => h.update([0u8]),
        Some(u) => {
            h.update([1u8]);
            h.update(u.as_bytes());
        }
    }
}

/// Computes an event's hash from its canonical encoding.
pub fn event_hash(i: &HashInput<'_>) -> Hash {
    let mut h = Sha256::new();
    h.update(b"flotilla.event.v1\0");
    h.update(i.prev_hash.0);
    h.update(i.global_position.to_be_bytes());
    put_str(&mut h, i.stream_id);
    h.update(i.stream_version.to_be_bytes());
    h.update(i.event_id.0.as_bytes());
    put_str(&mut h, i.event_type);
    h.update(i.schema_version.to_be_bytes());
    h.update((i.payload.len() as u64).to_be_bytes());
    h.update(i.payload);
    put_str(&mut h, &i.metadata.actor);
    put_str(&mut h, &i.metadata.business_unit);
    put_opt_uuid(&mut h, &i.metadata.correlation_id);
    put_opt_uuid(&mut h, &i.metadata.causation_id);
    match &i.metadata.traceparent {
        None => h.update([0u8]),
        Some(t) => {
            h.update([1u8]);
            put_str(&mut h, t);
        }
    }
    put_opt_uuid(&mut h, &i.metadata.command_id);
    h.update(i.recorded_at.0.to_be_bytes());
    Hash(h.finalize().into())
}

impl RecordedEvent {
    /// Recomputes this event's hash from its fields (what `hash` must equal).
    pub fn compute_hash(&self) -> Hash {
        event_hash(&HashInput {
            prev_hash: &self.prev_hash,
            global_position: self.global_position,
            stream_id: self.stream_id.as_str(),
            stream_version: self.stream_version,
            event_id: &self.event_id,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: &self.payload,
            metadata: &self.metadata,
            recorded_at: self.recorded_at,
        })
    }
}

/// Where and why a chain does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    pub position: u64,
    pub reason: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chain broken at position {}: {}",
            self.position, self.reason
        )
    }
}

/// Outcome of walking a store's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events whose hash was checked.
    pub checked: u64,
    /// The head the store records for itself.
    pub head: ChainHead,
    /// The first break, if any.
    pub broken: Option<ChainBreak>,
}

impl VerifyReport {
    pub fn holds(&self) -> bool {
        self.broken.is_none()
    }
}

/// Walks events in position order, checking positions, links and hashes. Feed it pages in
/// order, then call [`ChainWalker::finish`] with the head the store records.
#[derive(Debug, Default)]
pub struct ChainWalker {
    last: ChainHead,
    checked: u64,
    broken: Option<ChainBreak>,
}

impl ChainWalker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first break found so far.
    pub fn broken(&self) -> Option<&ChainBreak> {
        self.broken.as_ref()
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Position the next event must have.
    pub fn next_position(&self) -> u64 {
        self.last.position + 1
    }

    /// Records a break found outside the walker (e.g. a row that cannot be decoded).
    pub fn fail(&mut self, position: u64, reason: impl Into<String>) {
        if self.broken.is_none() {
            self.broken = Some(ChainBreak {
                position,
                reason: reason.into(),
            });
        }
    }

    /// Checks one event. Returns false once the chain is broken.
    pub fn check(&mut self, e: &RecordedEvent) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let want = self.last.position + 1;
        if e.global_position != want {
            self.fail(
                want,
                format!(
                    "event missing: next stored event has position {}",
                    e.global_position
                ),
            );
            return false;
        }
        if e.prev_hash != self.last.hash {
            self.fail(
                want,
                format!(
                    "prev_hash {} does not match hash {} of position {}",
                    e.prev_hash, self.last.hash, self.last.position
                ),
            );
            return false;
        }
        let computed = e.compute_hash();
        if computed != e.hash {
            self.fail(
                want,
                format!(
                    "stored hash {} does not match recomputed {computed}: the event was altered",
                    e.hash
                ),
            );
            return false;
        }
        self.checked += 1;
        self.last = ChainHead {
            position: e.global_position,
            hash: e.hash,
        };
        true
    }

    /// Compares the walked chain with the head the store records, and reports.
    pub fn finish(mut self, recorded_head: ChainHead) -> VerifyReport {
        if self.broken.is_none() && recorded_head != self.last {
            let position = self.last.position + 1;
            let reason = if recorded_head.position > self.last.position {
                format!(
                    "store head records position {} but the chain ends at {}: events were removed",
                    recorded_head.position, self.last.position
                )
            } else {
                format!(
                    "store head records position {} hash {} but the chain ends at {} hash {}",
                    recorded_head.position, recorded_head.hash, self.last.position, self.last.hash
                )
            };
            self.fail(position.min(recorded_head.position.max(1)), reason);
        }
        VerifyReport {
            checked: self.checked,
            head: recorded_head,
            broken: self.broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::StreamId;

    fn golden_event() -> RecordedEvent {
        let u = |s: &str| Uuid::parse_str(s).expect("uuid");
        RecordedEvent {
            global_position: 42,
            stream_id: StreamId::parse("release-01932c07-8f6b-7c3e-9a51-3b1f2d9e4c13")
                .expect("stream id"),
            stream_version: 3,
            event_id: EventId(u("01932c07-8f6b-7c3e-9a51-3b1f2d9e4c10")),
            event_type: "flotilla.orchestration.v1.ReleasePromoted".into(),
            schema_version: 2,
            payload: [&[8u8, 42, 18, 5][..], b"alice"].concat(),
            metadata: Metadata {
                actor: "alice@example.com".into(),
                business_unit: "payments".into(),
                correlation_id: Some(u("01932c07-8f6b-7c3e-9a51-3b1f2d9e4c11")),
                causation_id: None,
                traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
                command_id: Some(u("01932c07-8f6b-7c3e-9a51-3b1f2d9e4c12")),
            },
            recorded_at: Timestamp(1_764_201_600_123_456),
            prev_hash: Hash([7; 32]),
            hash: Hash::GENESIS,
        }
    }

    /// The canonical encoding is a format audit logs depend on for years: this digest was
    /// computed independently (Python's hashlib over the encoding documented above) and must
    /// never change.
    #[test]
    fn canonical_encoding_is_stable() {
        assert_eq!(
            golden_event().compute_hash().to_hex(),
            "ca630bee8177473b12334e3facf76b5b4f94878a175333dd5a6a85ce8bdb710b"
        );
    }

    #[test]
    fn every_field_is_covered() {
        let base = golden_event().compute_hash();
        type Change = Box<dyn Fn(&mut RecordedEvent)>;
        let changes: Vec<Change> = vec![
            Box::new(|e| e.global_position += 1),
            Box::new(|e| e.stream_version += 1),
            Box::new(|e| e.schema_version += 1),
            Box::new(|e| e.payload[0] ^= 1),
            Box::new(|e| e.event_type.push('x')),
            Box::new(|e| e.metadata.actor.push('x')),
            Box::new(|e| e.metadata.business_unit.push('x')),
            Box::new(|e| e.metadata.causation_id = e.metadata.correlation_id),
            Box::new(|e| e.metadata.correlation_id = None),
            Box::new(|e| e.metadata.traceparent = None),
            Box::new(|e| e.metadata.command_id = None),
            Box::new(|e| e.recorded_at.0 += 1),
            Box::new(|e| e.prev_hash.0[31] ^= 1),
            Box::new(|e| e.event_id.0 = Uuid::nil()),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut e = golden_event();
            change(&mut e);
            assert_ne!(e.compute_hash(), base, "change {i} not covered by the hash");
        }
    }
}
