//! The compliance ledger's leaves and the events they stand for, so that a proof of a leaf is a
//! proof of one event at one position of one service's hash chain, and an exported event can be
//! checked against its leaf offline.
//!
//! Leaf data, version 1 (integers big-endian): `"flotilla.ledger.v1\0"`, the service (u32
//! length, then UTF-8), the event's position in that service's store (u64), its id (16 bytes), its hash
//! (32 bytes), the previous hash it names (32 bytes), and a flag byte (1: the service withheld
//! the event's content from the buses, so only its digest is ledgered; 0 otherwise). The leaf's
//! Merkle hash is RFC 9162's `SHA-256(0x00 || data)`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flotilla_core::chain::{HashInput, event_hash};
use flotilla_core::event::{Metadata, Timestamp};
use flotilla_core::ids::EventId;
use serde::{Deserialize, Serialize};

const TAG: &[u8] = b"flotilla.ledger.v1\0";

/// One ledgered event, as its leaf records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub service: String,
    pub sequence: u64,
    pub event_id: [u8; 16],
    pub event_hash: [u8; 32],
    pub prev_hash: [u8; 32],
    pub withheld: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    #[error("not a flotilla.ledger.v1 leaf")]
    Tag,
    #[error("the leaf ends early")]
    Short,
    #[error("the leaf has {0} bytes after its end")]
    Trailing(usize),
    #[error("the service name is not UTF-8")]
    Service,
    #[error("the flag byte is {0}, not 0 or 1")]
    Flag(u8),
}

impl Leaf {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(TAG.len() + 4 + self.service.len() + 8 + 16 + 64 + 1);
        b.extend_from_slice(TAG);
        b.extend_from_slice(&(self.service.len() as u32).to_be_bytes());
        b.extend_from_slice(self.service.as_bytes());
        b.extend_from_slice(&self.sequence.to_be_bytes());
        b.extend_from_slice(&self.event_id);
        b.extend_from_slice(&self.event_hash);
        b.extend_from_slice(&self.prev_hash);
        b.push(u8::from(self.withheld));
        b
    }

    pub fn decode(data: &[u8]) -> Result<Self, LeafError> {
        let rest = data.strip_prefix(TAG).ok_or(LeafError::Tag)?;
        let mut r = Reader(rest);
        let len = u32::from_be_bytes(r.take()?) as usize;
        let service = std::str::from_utf8(r.bytes(len)?)
            .map_err(|_| LeafError::Service)?
            .to_owned();
        let sequence = u64::from_be_bytes(r.take()?);
        let event_id = r.take()?;
        let event_hash = r.take()?;
        let prev_hash = r.take()?;
        let withheld = match r.take::<1>()?[0] {
            0 => false,
            1 => true,
            f => return Err(LeafError::Flag(f)),
        };
        if !r.0.is_empty() {
            return Err(LeafError::Trailing(r.0.len()));
        }
        Ok(Self {
            service,
            sequence,
            event_id,
            event_hash,
            prev_hash,
            withheld,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], LeafError> {
        if self.0.len() < n {
            return Err(LeafError::Short);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], LeafError> {
        let b = self.bytes(N)?;
        <[u8; N]>::try_from(b).map_err(|_| LeafError::Short)
    }
}

/// A stored event with every field its hash covers, as JSON (bytes in base64, ids and hashes
/// in their usual text): what an audit bundle carries beside a leaf, so the event itself is
/// checked, not only that its digest is in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRecord {
    pub service: String,
    pub position: u64,
    pub stream: String,
    pub stream_version: u64,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    /// The payload, base64 (protobuf bytes).
    pub payload: String,
    pub actor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub business_unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    /// Microseconds since the Unix epoch.
    pub recorded_at_micros: i64,
    /// Hex.
    pub prev_hash: String,
    /// Hex.
    pub hash: String,
}

impl EventRecord {
    /// Recomputes the event's hash from its fields (the service's chain rule); an error names
    /// a field that does not parse.
    pub fn compute_hash(&self) -> Result<[u8; 32], String> {
        let uuid = |field: &str, s: &str| {
            uuid::Uuid::parse_str(s).map_err(|e| format!("{field} {s:?} is not a uuid: {e}"))
        };
        let opt =
            |field: &str, s: &Option<String>| s.as_deref().map(|v| uuid(field, v)).transpose();
        let payload = STANDARD
            .decode(&self.payload)
            .map_err(|_| "the payload is not base64".to_owned())?;
        let prev = hash_of("prev_hash", &self.prev_hash)?;
        let metadata = Metadata {
            actor: self.actor.clone(),
            business_unit: self.business_unit.clone(),
            correlation_id: opt("correlation_id", &self.correlation_id)?,
            causation_id: opt("causation_id", &self.causation_id)?,
            traceparent: self.traceparent.clone(),
            command_id: opt("command_id", &self.command_id)?,
        };
        let h = event_hash(&HashInput {
            prev_hash: &flotilla_core::chain::Hash(prev),
            global_position: self.position,
            stream_id: &self.stream,
            stream_version: self.stream_version,
            event_id: &EventId(uuid("id", &self.id)?),
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: &payload,
            metadata: &metadata,
            recorded_at: Timestamp(self.recorded_at_micros),
        });
        Ok(h.0)
    }

    /// Checks the event against the leaf that ledgers it: the same service, position, id and
    /// hashes, and a hash that its fields recompute to.
    pub fn check_against(&self, leaf: &Leaf) -> Result<(), String> {
        if self.service != leaf.service || self.position != leaf.sequence {
            return Err(format!(
                "the event is {} position {}, the leaf {} position {}",
                self.service, self.position, leaf.service, leaf.sequence
            ));
        }
        let id = uuid::Uuid::parse_str(&self.id).map_err(|e| format!("id: {e}"))?;
        if *id.as_bytes() != leaf.event_id {
            return Err("the event's id is not the leaf's".into());
        }
        if hash_of("hash", &self.hash)? != leaf.event_hash
            || hash_of("prev_hash", &self.prev_hash)? != leaf.prev_hash
        {
            return Err("the event's hashes are not the leaf's".into());
        }
        if self.compute_hash()? != leaf.event_hash {
            return Err("the event's fields do not hash to its recorded hash".into());
        }
        Ok(())
    }
}

fn hash_of(field: &str, hex_text: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out)
        .map_err(|_| format!("{field} is not 32 bytes of hex"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> Leaf {
        Leaf {
            service: "governance".into(),
            sequence: 42,
            event_id: [7; 16],
            event_hash: [1; 32],
            prev_hash: [2; 32],
            withheld: false,
        }
    }

    #[test]
    fn a_leaf_reads_back_and_any_change_of_length_or_flag_is_refused() {
        let l = leaf();
        let data = l.encode();
        assert_eq!(Leaf::decode(&data), Ok(l));
        assert_eq!(
            data.len(),
            TAG.len() + 4 + "governance".len() + 8 + 16 + 32 + 32 + 1
        );
        assert_eq!(Leaf::decode(&data[..data.len() - 1]), Err(LeafError::Short));
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(Leaf::decode(&longer), Err(LeafError::Trailing(1)));
        let mut flag = data.clone();
        *flag.last_mut().expect("flag") = 2;
        assert_eq!(Leaf::decode(&flag), Err(LeafError::Flag(2)));
        assert_eq!(Leaf::decode(b"flotilla.ledger.v2\0"), Err(LeafError::Tag));
    }

    /// The event of `flotilla-core`'s chain test vector, so the record recomputes the hash the
    /// stores write.
    #[test]
    fn a_record_recomputes_the_stores_hash_and_any_changed_field_fails() {
        let e = flotilla_core::event::RecordedEvent {
            global_position: 3,
            stream_id: flotilla_core::ids::StreamId::parse(
                "release-01932c07-8f6b-7c3e-9a51-3b1f2d9e4c13",
            )
            .expect("stream"),
            stream_version: 1,
            event_id: EventId(uuid::Uuid::from_u128(
                0x0193_2c07_8f6b_7c3e_9a51_3b1f_2d9e_4c14,
            )),
            event_type: "flotilla.governance.v1.ApprovalGranted".into(),
            schema_version: 1,
            payload: vec![1, 2, 3, 0xff],
            metadata: Metadata::by("alice@example.com", "payments")
                .with_command(uuid::Uuid::from_u128(9)),
            recorded_at: Timestamp(1_700_000_000_123_456),
            prev_hash: flotilla_core::chain::Hash([5; 32]),
            hash: flotilla_core::chain::Hash::default(),
        };
        let hash = e.compute_hash();
        let r = EventRecord {
            service: "governance".into(),
            position: e.global_position,
            stream: e.stream_id.as_str().into(),
            stream_version: e.stream_version,
            id: e.event_id.0.to_string(),
            event_type: e.event_type.clone(),
            schema_version: 1,
            payload: STANDARD.encode(&e.payload),
            actor: e.metadata.actor.clone(),
            business_unit: "payments".into(),
            correlation_id: None,
            causation_id: None,
            traceparent: None,
            command_id: Some(uuid::Uuid::from_u128(9).to_string()),
            recorded_at_micros: e.recorded_at.0,
            prev_hash: hex::encode([5u8; 32]),
            hash: hash.to_hex(),
        };
        let l = Leaf {
            service: "governance".into(),
            sequence: 3,
            event_id: *e.event_id.0.as_bytes(),
            event_hash: hash.0,
            prev_hash: [5; 32],
            withheld: false,
        };
        assert_eq!(r.compute_hash(), Ok(hash.0));
        assert_eq!(r.check_against(&l), Ok(()));
        let changed = [
            EventRecord {
                payload: STANDARD.encode([1u8, 2, 3, 0xfe]),
                ..r.clone()
            },
            EventRecord {
                actor: "mallory@example.com".into(),
                ..r.clone()
            },
            EventRecord {
                recorded_at_micros: r.recorded_at_micros + 1,
                ..r.clone()
            },
            EventRecord {
                stream_version: 2,
                ..r.clone()
            },
            EventRecord {
                business_unit: String::new(),
                ..r.clone()
            },
        ];
        for c in changed {
            assert!(c.check_against(&l).is_err(), "{c:?}");
        }
        let other = Leaf {
            sequence: 4,
            ..l.clone()
        };
        assert!(r.check_against(&other).is_err());
    }
}
