//! The event envelope: what is appended ([`NewEvent`]) and what is stored ([`RecordedEvent`]).

use uuid::Uuid;

use crate::chain::Hash;
use crate::ids::{EventId, StreamId};

/// Microseconds since the Unix epoch, UTC. The one time type of every service.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Reads the wall clock. Only stores and edges call this; domain code gets time passed in.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(d.as_micros() as i64)
    }

    /// A protobuf timestamp's seconds and nanos, checked: nanos 0..1e9, years 0001-9999
    /// (RFC 3339's range). The error says what is wrong; the caller names the field.
    pub fn from_parts(seconds: i64, nanos: i32) -> Result<Self, String> {
        // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
        const MIN: i64 = -62_135_596_800;
        const MAX: i64 = 253_402_300_799;
        if !(0..1_000_000_000).contains(&nanos) {
            return Err(format!("nanos {nanos} is not 0 to 999999999"));
        }
        if !(MIN..=MAX).contains(&seconds) {
            return Err(format!("seconds {seconds} is outside years 0001 to 9999"));
        }
        Ok(Self(seconds * 1_000_000 + i64::from(nanos) / 1_000))
    }

    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// RFC 3339 in UTC with microseconds, e.g. `2026-11-24T16:00:00.123456Z`.
    pub fn to_rfc3339(self) -> String {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| format!("{} µs after the epoch", self.0))
    }

    pub fn seconds_and_nanos(self) -> (i64, i32) {
        (
            self.0.div_euclid(1_000_000),
            (self.0.rem_euclid(1_000_000) * 1000) as i32,
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(
            super::Timestamp(1_764_000_000_123_456).to_rfc3339(),
            "2025-11-24T16:00:00.123456Z"
        );
        assert_eq!(super::Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn protobuf_parts_are_checked() {
        use super::Timestamp;
        assert_eq!(Timestamp::from_parts(1, 500_000), Ok(Timestamp(1_000_500)));
        assert!(Timestamp::from_parts(0, -1).is_err());
        assert!(Timestamp::from_parts(0, 1_000_000_000).is_err());
        assert!(Timestamp::from_parts(253_402_300_800, 0).is_err());
        assert!(Timestamp::from_parts(i64::MAX, 0).is_err());
        assert!(Timestamp::from_parts(-62_135_596_800, 0).is_ok());
    }
}

/// Who did it, for whom, and why: carried by every event and hashed into the chain.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Metadata {
    /// Subject of the caller that caused the event (a person or a service account).
    pub actor: String,
    /// Business unit the event belongs to (empty for platform-wide events).
    pub business_unit: String,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    /// W3C trace context of the command that produced the event.
    pub traceparent: Option<String>,
    /// Id of the command; a retry with the same command id does not append twice.
    pub command_id: Option<Uuid>,
}

impl Metadata {
    pub fn by(actor: impl Into<String>, business_unit: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            business_unit: business_unit.into(),
            ..Self::default()
        }
    }

    pub fn with_command(mut self, command_id: Uuid) -> Self {
        self.command_id = Some(command_id);
        self
    }

    pub fn with_correlation(mut self, correlation_id: Uuid) -> Self {
        self.correlation_id = Some(correlation_id);
        self
    }

    pub fn with_causation(mut self, causation_id: Uuid) -> Self {
        self.causation_id = Some(causation_id);
        self
    }
}

/// An event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: EventId,
    /// Protobuf full name of the payload message, e.g. `flotilla.governance.v1.ApprovalGranted`.
    pub event_type: String,
    pub schema_version: u32,
    /// Encoded payload (protobuf bytes).
    pub payload: Vec<u8>,
    pub metadata: Metadata,
}

impl NewEvent {
    pub fn new(
        event_type: impl Into<String>,
        schema_version: u32,
        payload: Vec<u8>,
        metadata: Metadata,
    ) -> Self {
        Self {
            event_id: EventId::new(),
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata,
        }
    }
}

/// An event as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Position in the whole store, from 1, gap-free in commit order.
    pub global_position: u64,
    pub stream_id: StreamId,
    /// Position in its stream, from 0.
    pub stream_version: u64,
    pub event_id: EventId,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: Vec<u8>,
    pub metadata: Metadata,
    pub recorded_at: Timestamp,
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// A snapshot of one aggregate's state at a stream version, for fast rebuilds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub stream_id: StreamId,
    pub stream_version: u64,
    pub schema_version: u32,
    pub payload: Vec<u8>,
}
