//! Deciders: a service's pure core. A command is decided on the state (time and ids come in with
//! the command) into the events of one stream; each recorded event, with its envelope, evolves
//! the state. The runtime's event-sourced app does the rest: rebuilding, appending with the
//! exact expected version, retrying on conflicts, deduplicating.

use crate::event::{Metadata, RecordedEvent, Timestamp};
use crate::ids::StreamId;

/// A recorded event as `evolve` sees it: the event and its envelope (who, when, where).
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded<E> {
    pub event: E,
    pub stream_id: StreamId,
    pub stream_version: u64,
    /// Global position in the store.
    pub position: u64,
    pub recorded_at: Timestamp,
    pub metadata: Metadata,
}

impl<E> Recorded<E> {
    /// The envelope of a stored event around its decoded event.
    pub fn of(stored: &RecordedEvent, event: E) -> Self {
        Self {
            event,
            stream_id: stored.stream_id.clone(),
            stream_version: stored.stream_version,
            position: stored.global_position,
            recorded_at: stored.recorded_at,
            metadata: stored.metadata.clone(),
        }
    }
}

/// What a command decided: events for one stream, and the other streams the decision read
/// (the append is conditional on nothing having been appended to them since).
#[derive(Clone, Debug, PartialEq)]
pub struct Decision<E> {
    pub stream_id: StreamId,
    pub events: Vec<E>,
    pub read: Vec<StreamId>,
}

impl<E> Decision<E> {
    pub fn new(stream_id: StreamId, events: Vec<E>) -> Self {
        Self {
            stream_id,
            events,
            read: Vec::new(),
        }
    }

    /// Nothing to record (the command changes nothing).
    pub fn nothing(stream_id: StreamId) -> Self {
        Self::new(stream_id, Vec::new())
    }

    /// The decision read these streams too: append only if they did not change since.
    pub fn reading(mut self, streams: impl IntoIterator<Item = StreamId>) -> Self {
        self.read.extend(streams);
        self
    }
}

/// A service's state and the rules that change it.
pub trait Decider: Clone + Default + Send + Sync + 'static {
    type Command: Clone + Send + Sync;
    type Event: Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static;
    type Error: std::error::Error + Send + Sync + 'static;

    /// The events a command causes, or why it is refused. Pure: no clock, no ids, no I/O.
    fn decide(&self, command: Self::Command) -> Result<Decision<Self::Event>, Self::Error>;

    /// Applies one recorded event.
    fn evolve(&mut self, event: &Recorded<Self::Event>);
}

/// Maps a service's events to and from stored payloads. Decoding never applies the API's
/// validation: whatever was once stored decodes.
pub trait StoredEvents<E>: Send + Sync + 'static {
    /// (event type, schema version, payload).
    fn encode(&self, event: &E) -> (String, u32, Vec<u8>);

    /// Decodes a stored event raised to the current schema version; `Ok(None)` for stored events
    /// that are not part of the state: every type not the service's own (the runtime records
    /// access refusals, adopted policies, accepted chain breaks and snapshot records in the same
    /// store).
    fn decode(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<Option<E>, String>;
}

/// The name of a stored event type that is a service's own (`prefix` then the name), checked to
/// be at the schema version this build decodes: `Ok(None)` for types that are not the
/// service's (the runtime's records, other services'), an error for a version it does not know.
pub fn own_type<'a>(
    prefix: &str,
    known_version: u32,
    event_type: &'a str,
    schema_version: u32,
) -> Result<Option<&'a str>, String> {
    let Some(name) = event_type.strip_prefix(prefix) else {
        return Ok(None);
    };
    if schema_version != known_version {
        return Err(format!(
            "{event_type} version {schema_version} is not known to this build"
        ));
    }
    Ok(Some(name))
}

#[cfg(test)]
mod own_type_tests {
    #[test]
    fn only_a_services_own_types_at_a_known_version() {
        let p = "flotilla.risk.v1.";
        assert_eq!(
            super::own_type(p, 1, "flotilla.risk.v1.CanaryJudged", 1),
            Ok(Some("CanaryJudged"))
        );
        assert_eq!(
            super::own_type(p, 1, "flotilla.common.v1.AccessRefused", 7),
            Ok(None)
        );
        let e = super::own_type(p, 1, "flotilla.risk.v1.CanaryJudged", 2).expect_err("v2");
        assert!(e.contains("version 2 is not known"), "{e}");
    }
}
