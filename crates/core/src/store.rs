//! The `EventStore` contract every backend (memory, SQLite, PostgreSQL) fulfils. The conformance
//! suite in [`crate::conformance`] is the executable form of this contract.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use uuid::Uuid;

use crate::chain::{ChainHead, ChainWalker, VerifyReport};
use crate::event::{NewEvent, RecordedEvent, Snapshot};
use crate::ids::StreamId;
use crate::lease::{Fence, LeaseState};
use crate::version::{ExpectedVersion, describe_current};

/// Most events one append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 100_000;
/// Most other streams one append may be conditional on.
pub const MAX_CONDITIONS: usize = 1_000;
/// Largest payload one event may carry, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

/// Errors of the event store boundary.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("wrong expected version on stream {stream_id}: expected {expected}, stream is at {}", describe_current(*actual))]
    WrongExpectedVersion {
        stream_id: StreamId,
        expected: ExpectedVersion,
        actual: Option<u64>,
    },
    #[error("append to stream {stream_id} carries no events; send at least one")]
    EmptyAppend { stream_id: StreamId },
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    #[error("stored event at position {position} is unreadable: {reason}")]
    Corrupt { position: u64, reason: String },
    #[error("event store backend failed: {0}")]
    Backend(String),
    #[error("event store is shut down")]
    Closed,
    /// The append may or may not have been written (the connection was lost at commit and the
    /// outcome could not be looked up): retry only with the same command id.
    #[error("the outcome of the append is unknown ({0}); retry with the same command id")]
    Unsettled(String),
    /// A write made for a lease's duty by a term that no longer holds it.
    #[error(
        "lease {lease} is no longer held by {holder} with token {token}: another process took it over, so this one stops its duty"
    )]
    Fenced {
        lease: String,
        holder: String,
        token: u64,
    },
}

impl StoreError {
    /// The refusal of a write fenced by `fence`.
    pub fn fenced(fence: &Fence) -> Self {
        Self::Fenced {
            lease: fence.lease.clone(),
            holder: fence.holder.clone(),
            token: fence.token,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One append: events for one stream, with the expectation they are written under.
#[derive(Clone, Debug)]
pub struct AppendRequest {
    pub stream_id: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    /// Retry key. An append whose key is already recorded returns the first outcome instead of
    /// appending again. Defaults to `cmd:<command id>` of the first event's metadata.
    pub idempotency_key: Option<String>,
    /// Other streams that must still be at these versions: a decision that read them appends
    /// only if nothing was appended to them since (checked in the same transaction).
    pub conditions: Vec<(StreamId, ExpectedVersion)>,
    /// Written only while this term of a lease holds it (the duty's writes: a scheduler's).
    pub fence: Option<Fence>,
}

impl AppendRequest {
    pub fn new(stream_id: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        let idempotency_key = events
            .first()
            .and_then(|e| e.metadata.command_id)
            .map(command_key);
        Self {
            stream_id,
            expected,
            events,
            idempotency_key,
            conditions: Vec::new(),
            fence: None,
        }
    }

    /// Appends only while `fence`'s term still holds its lease.
    pub fn fenced(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Appends only if `stream` is still at `expected` too.
    pub fn provided(mut self, stream: StreamId, expected: ExpectedVersion) -> Self {
        self.conditions.push((stream, expected));
        self
    }

    /// Every stream whose version the append depends on: its own and its conditions'.
    pub fn streams(&self) -> impl Iterator<Item = &StreamId> {
        std::iter::once(&self.stream_id).chain(self.conditions.iter().map(|(s, _)| s))
    }

    /// Marks this append as the effect of consuming `event_id` by `consumer`: the inbox entry is
    /// written in the same transaction, so a redelivered event is applied once.
    pub fn consuming(mut self, consumer: &str, event_id: Uuid) -> Self {
        self.idempotency_key = Some(inbox_key(consumer, event_id));
        self
    }

    /// Checks the request's shape before it reaches a backend.
    pub fn validate(&self) -> Result<()> {
        if self.events.is_empty() {
            return Err(StoreError::EmptyAppend {
                stream_id: self.stream_id.clone(),
            });
        }
        if self.conditions.len() > MAX_CONDITIONS {
            return Err(StoreError::InvalidAppend(format!(
                "append to stream {} is conditional on {} streams, at most {MAX_CONDITIONS} allowed",
                self.stream_id,
                self.conditions.len()
            )));
        }
        if self.events.len() > MAX_EVENTS_PER_APPEND {
            return Err(StoreError::InvalidAppend(format!(
                "append to stream {} carries {} events, at most {MAX_EVENTS_PER_APPEND} allowed; split it",
                self.stream_id,
                self.events.len()
            )));
        }
        for e in &self.events {
            if e.payload.len() > MAX_PAYLOAD_BYTES {
                return Err(StoreError::InvalidAppend(format!(
                    "event {} payload is {} bytes, at most {MAX_PAYLOAD_BYTES} allowed",
                    e.event_id,
                    e.payload.len()
                )));
            }
            if e.event_type.is_empty() || e.event_type.len() > 256 {
                return Err(StoreError::InvalidAppend(format!(
                    "event {} type must be 1 to 256 bytes",
                    e.event_id
                )));
            }
        }
        Ok(())
    }
}

/// Idempotency key of a command id.
pub fn command_key(command_id: Uuid) -> String {
    format!("cmd:{command_id}")
}

/// Idempotency key of a consumed event (the inbox entry).
pub fn inbox_key(consumer: &str, event_id: Uuid) -> String {
    format!("inbox:{consumer}:{event_id}")
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    pub first_position: u64,
    pub last_position: u64,
    /// Version of the stream's last event after the append.
    pub stream_version: u64,
    /// True when this was a retry and nothing new was written.
    pub deduplicated: bool,
}

impl AppendOutcome {
    /// The expectation for the next append to the same stream.
    pub fn next_expected(&self) -> ExpectedVersion {
        ExpectedVersion::Exact(self.stream_version)
    }
}

/// Which way to read a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forwards,
    Backwards,
}

/// An append-only, hash-chained event store.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Backend name: "memory", "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    /// Appends events to one stream if the expectation holds.
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome>;

    /// Reads up to `max` events of a stream. Forwards starts at `from` (inclusive, default 0);
    /// backwards starts at `from` (inclusive, default the last event) and goes down.
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: Option<u64>,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>>;

    /// Reads up to `max` events of the whole store from global position `from` (inclusive).
    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>>;

    /// Version of a stream's last event, or None when the stream does not exist.
    async fn stream_version(&self, stream_id: &StreamId) -> Result<Option<u64>>;

    /// The head the store records (newest position and hash).
    async fn head(&self) -> Result<ChainHead>;

    /// Notifies the newest committed position this handle knows of: its own appends', and a
    /// newer head [`EventStore::head`] read (another process's appends).
    fn head_watch(&self) -> watch::Receiver<u64>;

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()>;
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>>;

    /// Reads a named checkpoint (e.g. a relay's last published position).
    async fn load_checkpoint(&self, name: &str) -> Result<Option<u64>>;
    async fn save_checkpoint(&self, name: &str, position: u64) -> Result<()>;

    /// Saves a checkpoint only while `fence`'s term still holds its lease, else
    /// [`StoreError::Fenced`] (a relay's progress, written by the lease's holder only).
    async fn save_checkpoint_fenced(&self, name: &str, position: u64, fence: &Fence) -> Result<()>;

    /// Takes the lease `name` for `holder` for `ttl` when it is free or expired, or renews it
    /// when `holder` holds it. Some(fence) while held (a new term, with a higher token, whenever
    /// it was not held by `holder` until now), None while another holder has it.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration)
    -> Result<Option<Fence>>;

    /// Gives the lease up if `fence`'s term still holds it, so another process takes it at once.
    async fn release_lease(&self, fence: &Fence) -> Result<()>;

    /// The lease as recorded (None: never taken).
    async fn lease(&self, name: &str) -> Result<Option<LeaseState>>;

    /// Records an idempotency key that produced no events (e.g. a consumed event that changed
    /// nothing). Returns false when the key was already recorded.
    async fn record_processed(&self, key: &str) -> Result<bool>;

    /// Whether an idempotency key is recorded.
    async fn is_processed(&self, key: &str) -> Result<bool>;

    /// What the store's writer measured so far (append latency, events per transaction);
    /// None for a store without one.
    fn writer_stats(&self) -> Option<crate::writer_stats::WriterStats> {
        None
    }

    /// Walks the whole chain and reports the first break. `progress` gets the count checked.
    async fn verify(&self, progress: &(dyn Fn(u64) + Send + Sync)) -> Result<VerifyReport> {
        verify_by_reading(self, progress).await
    }
}

/// Page size used when walking a store.
pub const VERIFY_PAGE: usize = 5_000;

/// Verifies a store through `read_all` and `head`. Backends whose rows may fail to decode
/// override `verify` to report such rows as breaks.
pub async fn verify_by_reading<S: EventStore + ?Sized>(
    store: &S,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<VerifyReport> {
    // Walk up to the head as it is now; events appended while verifying are for the next run.
    let recorded = store.head().await?;
    let mut walker = ChainWalker::new();
    loop {
        let from = walker.next_position();
        if from > recorded.position {
            break;
        }
        let want = (recorded.position - from + 1).min(VERIFY_PAGE as u64) as usize;
        let page = match store.read_all(from, want).await {
            Ok(p) => p,
            Err(StoreError::Corrupt { position, reason }) => {
                // Check the readable events before the unreadable one first, so the report
                // names the earliest break.
                if position > from {
                    let before = store.read_all(from, (position - from) as usize).await?;
                    for e in &before {
                        if !walker.check(e) {
                            break;
                        }
                    }
                }
                walker.fail(position, reason);
                break;
            }
            Err(e) => return Err(e),
        };
        if page.is_empty() {
            break;
        }
        for e in page
            .iter()
            .filter(|e| e.global_position <= recorded.position)
        {
            if !walker.check(e) {
                break;
            }
        }
        progress(walker.checked());
        if walker.broken().is_some() {
            break;
        }
    }
    Ok(walker.finish(recorded))
}
