//! The event-sourced app every service runs its state in, once per process.
//!
//! - **Rebuilt** at start from the newest valid snapshot (its position and hash must match the
//!   stored chain, else it is ignored) and the events after it, every event's link and hash
//!   checked as it is applied; the events before a snapshot are checked in the background.
//! - **Kept current** by following the store's live subscription: whatever this or any other
//!   process appends is applied within moments.
//! - **Read lock-free**: [`App::query`] runs on the published state; the follower applies each
//!   batch to a second copy and swaps it in (then brings the first copy level once its readers
//!   left), so readers never wait and states are never cloned per event.
//! - **One writer**: commands are decided on the published state and appended with the exact
//!   expected version of their stream (and of the streams the decision read); a conflict waits
//!   for the state to catch up and decides again, a bounded number of times, then `ABORTED`. A
//!   command id or a consumed event's id is written with the append, so retries and
//!   redeliveries change nothing twice. A command answers once its events are in the state.
//! - **Snapshots** every `snapshot_every` events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use flotilla_core::ExpectedVersion;
use flotilla_core::decider::{Decider, Decision, Recorded, StoredEvents};
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore, StoreError, command_key, inbox_key};
use flotilla_core::upcast::UpcasterRegistry;
use futures::FutureExt;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::integrity::ChainGuard;
use crate::kit::error::{AppError, ServiceError};
use crate::kit::started::Shutdown;

pub use super::snapshot::SNAPSHOT_STREAM;

/// A state the app can snapshot. Change `SNAPSHOT_VERSION` whenever the state's shape changes:
/// snapshots of other versions are ignored and the events replayed.
pub trait Snapshotted: Serialize + DeserializeOwned {
    const SNAPSHOT_VERSION: u32;
}

/// The business unit the events of a decision are about (their `businessunit`); None keeps the
/// caller's.
pub trait UnitOf: Decider {
    fn unit_of(&self, _decision: &Decision<Self::Event>) -> Option<String> {
        None
    }
}

/// Something told of every event as it is applied (after the state that includes it is
/// published), e.g. to put a replaced access policy in force.
pub trait Observer<E>: Send + Sync {
    fn applied(&self, event: &Recorded<E>);
}

/// How the app behaves.
#[derive(Clone, Copy, Debug)]
pub struct AppOptions {
    /// Events between snapshots (0: none).
    pub snapshot_every: u64,
    /// How often a command is decided again after a conflict before it is `ABORTED`.
    pub attempts: u32,
    /// How long a command waits for its events to be in the state before answering anyway.
    pub wait: Duration,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            snapshot_every: 10_000,
            attempts: 5,
            wait: Duration::from_secs(10),
        }
    }
}

/// The state with where it stands in the store.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Versioned<D> {
    pub state: D,
    /// Version of every stream seen.
    pub versions: HashMap<StreamId, u64>,
    /// Global position of the last event applied.
    pub position: u64,
    /// Its hash.
    pub hash: [u8; 32],
}

impl<D: Decider> Versioned<D> {
    pub(super) fn expected(&self, stream: &StreamId) -> ExpectedVersion {
        self.versions
            .get(stream)
            .map_or(ExpectedVersion::NoStream, |v| ExpectedVersion::Exact(*v))
    }
}

/// What a command did.
#[derive(Clone, Debug)]
pub struct Executed<E> {
    /// The events recorded (empty when nothing changed or the command was a retry).
    pub events: Vec<E>,
    /// The store's position the answer's state includes.
    pub position: u64,
    /// The version of the command's stream after it (None for a retry or a redelivery, which
    /// was not decided again).
    pub stream_version: Option<u64>,
    /// A retry (same command id) or a redelivery: nothing new was written.
    pub deduplicated: bool,
}

/// One service's state, kept from its store.
pub struct App<D: Decider> {
    pub(super) service: &'static str,
    pub(super) store: Arc<dyn EventStore>,
    pub(super) codec: Arc<dyn StoredEvents<D::Event>>,
    pub(super) upcasters: Arc<UpcasterRegistry>,
    pub(super) published: ArcSwap<Versioned<D>>,
    pub(super) applied: watch::Sender<u64>,
    /// Whether the follower still brings the state forward (false once it stopped: nobody
    /// waits for a position it will never apply).
    pub(super) following: watch::Sender<bool>,
    pub(super) writer: tokio::sync::Mutex<()>,
    pub(super) chain: Arc<ChainGuard>,
    pub(super) observers: Vec<Arc<dyn Observer<D::Event>>>,
    pub(super) options: AppOptions,
}

impl<D: Decider> std::fmt::Debug for App<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("service", &self.service)
            .field("position", &*self.applied.borrow())
            .finish_non_exhaustive()
    }
}

/// How the app is built.
pub struct AppBuilder<D: Decider> {
    service: &'static str,
    store: Arc<dyn EventStore>,
    chain: Arc<ChainGuard>,
    codec: Arc<dyn StoredEvents<D::Event>>,
    upcasters: UpcasterRegistry,
    observers: Vec<Arc<dyn Observer<D::Event>>>,
    options: AppOptions,
    position: crate::positions::StatePosition,
}

impl<D> AppBuilder<D>
where
    D: Decider + UnitOf + Snapshotted,
    D::Error: ServiceError,
{
    pub fn upcasters(mut self, upcasters: UpcasterRegistry) -> Self {
        self.upcasters = upcasters;
        self
    }

    pub fn observe(mut self, observer: Arc<dyn Observer<D::Event>>) -> Self {
        self.observers.push(observer);
        self
    }

    pub fn options(mut self, options: AppOptions) -> Self {
        self.options = options;
        self
    }

    /// Rebuilds the state (snapshot, then every event after it up to the store's head) and
    /// answers the app with the task that keeps it current (run it under the node's shutdown).
    pub async fn start(self) -> Result<(Arc<App<D>>, crate::kit::Task), AppError<D::Error>> {
        let (mut initial, mut from_snapshot) =
            super::snapshot::load_snapshot::<D>(&*self.store, self.service).await;
        if let Some(head) = from_snapshot {
            // The events the snapshot stands for are checked before it is used (a break there is
            // handled as any break: the state is rebuilt from the first event up to it).
            crate::integrity::verify_prefix(&*self.store, &self.chain, head).await?;
            if self.chain.broken().is_some() {
                tracing::warn!(
                    service = self.service,
                    position = head.position,
                    "the chain before the snapshot is broken; the snapshot is not used"
                );
                initial = super::snapshot::empty();
                from_snapshot = None;
            } else {
                self.chain.start_at(head);
            }
        }
        let snapshot_at = from_snapshot.map_or(0, |h| h.position);
        let app = Arc::new(App {
            service: self.service,
            store: self.store,
            codec: self.codec,
            upcasters: Arc::new(self.upcasters),
            applied: watch::channel(initial.position).0,
            following: watch::channel(true).0,
            published: ArcSwap::from_pointee(initial),
            writer: tokio::sync::Mutex::new(()),
            chain: self.chain,
            observers: self.observers,
            options: self.options,
        });
        let mut state = Versioned::clone(&app.published.load());
        app.rebuild(&mut state).await?;
        app.published.store(Arc::new(state.clone()));
        app.applied.send_replace(state.position);
        self.position.track(app.applied.subscribe());
        tracing::info!(
            service = app.service,
            position = state.position,
            from_snapshot = snapshot_at,
            "state rebuilt"
        );
        let follower = app.clone();
        let task: crate::kit::Task = Box::new(move |shutdown: Shutdown| {
            follower.follow(state, snapshot_at, shutdown).boxed()
        });
        Ok((app, task))
    }
}

impl<D> App<D>
where
    D: Decider + UnitOf + Snapshotted,
    D::Error: ServiceError,
{
    /// An app over a service's store; [`AppBuilder::start`] rebuilds and starts it.
    pub fn builder(
        ctx: &crate::ServiceContext,
        codec: Arc<dyn StoredEvents<D::Event>>,
    ) -> AppBuilder<D> {
        let options = AppOptions {
            snapshot_every: ctx
                .section_value("snapshot_every")
                .unwrap_or(AppOptions::default().snapshot_every),
            ..AppOptions::default()
        };
        AppBuilder {
            service: ctx.service,
            store: ctx.store.clone(),
            chain: ctx.chain.clone(),
            codec,
            upcasters: UpcasterRegistry::default(),
            observers: Vec::new(),
            options,
            position: ctx.position.clone(),
        }
    }

    /// Runs a query on the current state, without locks or store reads.
    pub fn query<T>(&self, f: impl FnOnce(&D) -> T) -> T {
        f(&self.published.load().state)
    }

    /// The current state with its position, to read several things consistently.
    pub fn current(&self) -> Arc<Versioned<D>> {
        self.published.load_full()
    }

    /// Tells each new position the state includes (for tasks that act on what changed).
    pub fn watch_position(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// The store position the state includes.
    pub fn position(&self) -> u64 {
        *self.applied.borrow()
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Waits until the state includes `position` (read-your-writes), at most `timeout`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        let mut following = self.following.subscribe();
        let mut broken = self.chain.watch();
        tokio::select! {
            reached = tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position)) => {
                reached.is_ok_and(|r| r.is_ok())
            }
            // The follower stopped (the service is shutting down): the position will not come.
            _ = following.wait_for(|f| !*f) => *self.applied.borrow() >= position,
            // Nor while the store cannot be read here (a break, an event this build does not
            // know): the caller hears why at once instead of after the timeout.
            _ = broken.wait_for(|b| b.is_some()) => *self.applied.borrow() >= position,
        }
    }
}

impl<D> App<D>
where
    D: Decider + UnitOf + Snapshotted,
    D::Error: ServiceError,
{
    fn serving(&self) -> Result<(), AppError<D::Error>> {
        match self.chain.broken() {
            Some(b) => Err(AppError::NotServing(format!(
                "{} does not serve: {b}",
                self.service
            ))),
            None => Ok(()),
        }
    }

    /// Decides `command` and records its events.
    pub async fn execute(
        &self,
        command: D::Command,
        metadata: Metadata,
    ) -> Result<Executed<D::Event>, AppError<D::Error>> {
        self.run(|s| s.decide(command.clone()), metadata, None)
            .await
    }

    /// Builds the command from the state it is decided on (each attempt anew: what the command
    /// depends on is read from the same state that decides it), then records its events.
    pub async fn execute_with(
        &self,
        make: impl Fn(&D) -> Result<D::Command, D::Error>,
        metadata: Metadata,
    ) -> Result<Executed<D::Event>, AppError<D::Error>> {
        self.run(|s| s.decide(make(s)?), metadata, None).await
    }

    /// Takes another service's event: `command_of` maps it, on the current state and with the
    /// event's id, to a command (or to nothing), which is applied once by that id as `actor`.
    /// A domain refusal (of the mapping or the command) rejects the event, logged; anything
    /// else (the store unavailable) leaves it to be delivered again.
    pub async fn take_event(
        &self,
        consumer: &str,
        actor: &str,
        event: &flotilla_bus::CloudEvent,
        command_of: impl FnOnce(&D, uuid::Uuid) -> Result<Option<D::Command>, D::Error>,
    ) -> Result<(), crate::HandlerError> {
        use crate::HandlerError;
        let id = event
            .event_id()
            .map_err(|e| HandlerError::Reject(format!("{}: {e}", event.ty)))?;
        let Some(command) = self
            .query(|s| command_of(s, id))
            .map_err(|e| HandlerError::Reject(e.to_string()))?
        else {
            return Ok(());
        };
        let mut md = Metadata::by(actor, event.extension("businessunit").unwrap_or_default())
            .with_causation(id);
        // Passed on as it came when no trace is recorded here (a recorded one replaces it).
        md.traceparent = event
            .extension("traceparent")
            .filter(|t| flotilla_bus::trace_context::valid(t))
            .map(str::to_owned);
        match self.consume(consumer, id, command, md).await {
            Ok(_) => Ok(()),
            Err(AppError::Domain(e)) => {
                tracing::warn!(event = %event.id, ty = %event.ty, reason = %e, "event not taken");
                Err(HandlerError::Reject(e.to_string()))
            }
            Err(e) => Err(HandlerError::Retry(e.to_string())),
        }
    }

    /// Applies another service's event: its id is written with the append (or recorded when the
    /// command changes nothing), so a redelivery is applied once.
    pub async fn consume(
        &self,
        consumer: &str,
        event_id: uuid::Uuid,
        command: D::Command,
        metadata: Metadata,
    ) -> Result<Executed<D::Event>, AppError<D::Error>> {
        self.run(
            |s| s.decide(command.clone()),
            metadata,
            Some((consumer, event_id)),
        )
        .await
    }

    async fn run(
        &self,
        decide: impl Fn(&D) -> Result<Decision<D::Event>, D::Error>,
        metadata: Metadata,
        consumed: Option<(&str, uuid::Uuid)>,
    ) -> Result<Executed<D::Event>, AppError<D::Error>> {
        self.serving()?;
        let _one_writer = self.writer.lock().await;
        let key = match (consumed, metadata.command_id) {
            (Some((consumer, id)), _) => Some(inbox_key(consumer, id)),
            (None, Some(c)) => Some(command_key(c)),
            (None, None) => None,
        };
        // A retried command or a redelivered event was applied already: answer from the store
        // before deciding (a decision on the state it produced could refuse it).
        if let Some(k) = &key
            && self.store.is_processed(k).await?
        {
            self.catch_up().await?;
            return Ok(Executed {
                events: Vec::new(),
                position: self.position(),
                stream_version: None,
                deduplicated: true,
            });
        }
        // Decided on a state that has everything committed before the command came, also by
        // other processes (the follower hears of theirs at its next poll): a command that
        // changes nothing, or is refused, is so on the store as it is.
        self.catch_up().await?;
        let mut last_conflict = String::new();
        for _ in 0..self.options.attempts.max(1) {
            self.serving()?;
            let current = self.published.load_full();
            let decision = decide(&current.state).map_err(AppError::Domain)?;
            if decision.events.is_empty() {
                let position = current.position;
                let stream_version = current.versions.get(&decision.stream_id).copied();
                drop(current);
                if let (Some(k), Some(_)) = (&key, consumed) {
                    self.store.record_processed(k).await?;
                }
                return Ok(Executed {
                    events: Vec::new(),
                    position,
                    stream_version,
                    deduplicated: false,
                });
            }
            let mut md = metadata.clone();
            if let Some(unit) = current.state.unit_of(&decision) {
                md.business_unit = unit;
            }
            // The events record the append's span as their trace context: the relay and the
            // consumers of another service continue the trace from it.
            let span = tracing::info_span!(
                "store.append",
                otel.kind = "internal",
                flotilla.service = self.service,
                flotilla.stream = %decision.stream_id,
                // Integers as i64: OpenTelemetry has no unsigned attribute.
                flotilla.events = decision.events.len() as i64,
                flotilla.position = tracing::field::Empty,
            );
            if let Some(tp) = flotilla_bus::trace_context::traceparent_of(&span) {
                md.traceparent = Some(tp);
            }
            let events = decision
                .events
                .iter()
                .map(|e| {
                    let (ty, version, payload) = self.codec.encode(e);
                    NewEvent::new(ty, version, payload, md.clone())
                })
                .collect();
            let mut request = AppendRequest::new(
                decision.stream_id.clone(),
                current.expected(&decision.stream_id),
                events,
            );
            for s in &decision.read {
                if *s != decision.stream_id {
                    request = request.provided(s.clone(), current.expected(s));
                }
            }
            if let Some((consumer, id)) = consumed {
                request = request.consuming(consumer, id);
            }
            // A scheduler's append is written only while its term of the duty lease holds.
            if let Some(term) = crate::duty::current_term() {
                request = request.fenced(term);
            }
            // Not held while waiting: the follower swaps states once their readers are gone.
            drop(current);
            match self.store.append(request).instrument(span.clone()).await {
                Ok(outcome) => {
                    span.record("flotilla.position", outcome.last_position as i64);
                    if !self
                        .wait_for(outcome.last_position, self.options.wait)
                        .await
                    {
                        tracing::warn!(
                            service = self.service,
                            position = outcome.last_position,
                            "answering before the state caught up with the append"
                        );
                    }
                    return Ok(Executed {
                        events: if outcome.deduplicated {
                            Vec::new()
                        } else {
                            decision.events
                        },
                        position: outcome.last_position,
                        stream_version: (!outcome.deduplicated).then_some(outcome.stream_version),
                        deduplicated: outcome.deduplicated,
                    });
                }
                Err(StoreError::WrongExpectedVersion { stream_id, .. }) => {
                    // Someone else appended what this decided on: catch up, decide again.
                    last_conflict = stream_id.to_string();
                    self.catch_up().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Contended {
            stream: last_conflict,
            attempts: self.options.attempts,
        })
    }

    /// Waits until the state includes the store's head as it is now; UNAVAILABLE when the
    /// follower does not get there in time (stopped at a chain break, or the store is slow).
    async fn catch_up(&self) -> Result<(), AppError<D::Error>> {
        let head = self.store.head().await?.position;
        if head > self.position() && !self.wait_for(head, self.options.wait).await {
            self.serving()?;
            return Err(AppError::NotServing(format!(
                "{} has not caught up with its store (at position {} of {head}); try again",
                self.service,
                self.position()
            )));
        }
        Ok(())
    }
}
