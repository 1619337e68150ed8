//! Aggregates and the repository that runs commands against a store.
//!
//! Domain code implements [`Aggregate`]: `decide` is a pure function of state and command (time
//! and ids come in with the command), `evolve` folds one event into state. A service's app layer
//! supplies an [`EventCodec`] that maps domain events to stored payloads (protobuf at the edge).

use std::sync::Arc;

use crate::event::{Metadata, NewEvent, RecordedEvent};
use crate::ids::{EventId, StreamId};
use crate::store::{AppendOutcome, AppendRequest, Direction, EventStore, StoreError};
use crate::upcast::UpcasterRegistry;
use crate::version::ExpectedVersion;

/// A consistency boundary whose state is the fold of its events.
pub trait Aggregate: Default + Send + Sync {
    type Command;
    type Event;
    type Error;

    /// Decides which events a command produces, or refuses it.
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one event.
    fn evolve(self, event: &Self::Event) -> Self;
}

/// Maps an aggregate's events to and from stored payloads.
pub trait EventCodec<E>: Send + Sync {
    /// Returns (event type, schema version, payload).
    fn encode(&self, event: &E) -> (String, u32, Vec<u8>);
    /// Decodes a payload already raised to the current schema version.
    fn decode(&self, event_type: &str, schema_version: u32, payload: &[u8]) -> Result<E, String>;
}

/// Why running a command failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<D> {
    #[error("{0}")]
    Domain(D),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot decode event at position {position}: {reason}")]
    Decode { position: u64, reason: String },
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct CommandOutcome<E> {
    pub events: Vec<E>,
    pub append: Option<AppendOutcome>,
}

/// Loads aggregates from a store and appends the events their commands produce.
pub struct Repository<A: Aggregate, C> {
    store: Arc<dyn EventStore>,
    codec: C,
    upcasters: Arc<UpcasterRegistry>,
    _aggregate: std::marker::PhantomData<fn() -> A>,
}

const LOAD_PAGE: usize = 1_000;

impl<A: Aggregate, C: EventCodec<A::Event>> Repository<A, C> {
    pub fn new(store: Arc<dyn EventStore>, codec: C, upcasters: Arc<UpcasterRegistry>) -> Self {
        Self {
            store,
            codec,
            upcasters,
            _aggregate: std::marker::PhantomData,
        }
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Decodes one stored event (after upcasting).
    pub fn decode(&self, e: &RecordedEvent) -> Result<A::Event, ExecuteError<A::Error>> {
        let (ty, version, payload) = self
            .upcasters
            .upcast(&e.event_type, e.schema_version, &e.payload)
            .map_err(|reason| ExecuteError::Decode {
                position: e.global_position,
                reason,
            })?;
        self.codec
            .decode(&ty, version, &payload)
            .map_err(|reason| ExecuteError::Decode {
                position: e.global_position,
                reason,
            })
    }

    /// Rebuilds an aggregate; returns it with its stream's version (None = no stream).
    pub async fn load(
        &self,
        stream_id: &StreamId,
    ) -> Result<(A, Option<u64>), ExecuteError<A::Error>> {
        let mut state = A::default();
        let mut version = None;
        let mut from = 0;
        loop {
            let page = self
                .store
                .read_stream(stream_id, Some(from), Direction::Forwards, LOAD_PAGE)
                .await?;
            let n = page.len();
            for e in &page {
                state = state.evolve(&self.decode(e)?);
                version = Some(e.stream_version);
            }
            if n < LOAD_PAGE {
                break;
            }
            from = version.map_or(0, |v| v + 1);
        }
        Ok((state, version))
    }

    /// Loads the aggregate, decides, and appends at the version it was loaded at.
    pub async fn execute(
        &self,
        stream_id: &StreamId,
        command: A::Command,
        metadata: Metadata,
    ) -> Result<CommandOutcome<A::Event>, ExecuteError<A::Error>> {
        let (state, version) = self.load(stream_id).await?;
        let events = state.decide(command).map_err(ExecuteError::Domain)?;
        if events.is_empty() {
            return Ok(CommandOutcome {
                events,
                append: None,
            });
        }
        let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        let new_events = events
            .iter()
            .map(|ev| {
                let (event_type, schema_version, payload) = self.codec.encode(ev);
                NewEvent {
                    event_id: EventId::new(),
                    event_type,
                    schema_version,
                    payload,
                    metadata: metadata.clone(),
                }
            })
            .collect();
        let append = self
            .store
            .append(AppendRequest::new(stream_id.clone(), expected, new_events))
            .await?;
        Ok(CommandOutcome {
            events,
            append: Some(append),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    #[derive(Default, Debug, PartialEq)]
    struct Counter {
        value: i64,
    }
    enum Cmd {
        Add(i64),
    }
    #[derive(Debug, Clone, PartialEq)]
    enum Ev {
        Added(i64),
    }
    impl Aggregate for Counter {
        type Command = Cmd;
        type Event = Ev;
        type Error = String;
        fn decide(&self, c: Cmd) -> Result<Vec<Ev>, String> {
            match c {
                Cmd::Add(n) if self.value + n < 0 => {
                    Err(format!("counter would drop to {}", self.value + n))
                }
                Cmd::Add(0) => Ok(vec![]),
                Cmd::Add(n) => Ok(vec![Ev::Added(n)]),
            }
        }
        fn evolve(mut self, e: &Ev) -> Self {
            match e {
                Ev::Added(n) => self.value += n,
            }
            self
        }
    }
    struct Codec;
    impl EventCodec<Ev> for Codec {
        fn encode(&self, e: &Ev) -> (String, u32, Vec<u8>) {
            match e {
                Ev::Added(n) => ("t.Added".into(), 1, n.to_be_bytes().to_vec()),
            }
        }
        fn decode(&self, ty: &str, _v: u32, p: &[u8]) -> Result<Ev, String> {
            match ty {
                "t.Added" => Ok(Ev::Added(i64::from_be_bytes(
                    p.try_into().map_err(|_| "bad length")?,
                ))),
                other => Err(format!("unknown type {other}")),
            }
        }
    }

    #[tokio::test]
    async fn execute_decides_appends_and_reloads() {
        let repo: Repository<Counter, Codec> =
            Repository::new(Arc::new(MemoryStore::new()), Codec, Arc::default());
        let s = StreamId::new_for("counter");
        repo.execute(&s, Cmd::Add(5), Metadata::by("u", "bu"))
            .await
            .expect("add");
        repo.execute(&s, Cmd::Add(-2), Metadata::by("u", "bu"))
            .await
            .expect("add");
        let err = repo
            .execute(&s, Cmd::Add(-10), Metadata::by("u", "bu"))
            .await;
        assert!(matches!(err, Err(ExecuteError::Domain(_))));
        let (state, version) = repo.load(&s).await.expect("load");
        assert_eq!(state, Counter { value: 3 });
        assert_eq!(version, Some(1));
    }
}
