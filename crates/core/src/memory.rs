//! In-memory event store, for unit tests. It runs the same planner and conformance suite as the
//! durable backends.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::chain::ChainHead;
use crate::event::{RecordedEvent, Snapshot, Timestamp};
use crate::ids::StreamId;
use crate::lease::{Fence, LeaseState, check_lease};
use crate::plan::plan_batch;
use crate::store::{AppendOutcome, AppendRequest, Direction, EventStore, Result, StoreError};

#[derive(Default)]
struct Inner {
    events: Vec<RecordedEvent>,
    head: ChainHead,
    streams: HashMap<StreamId, Vec<usize>>,
    keys: HashMap<String, Option<AppendOutcome>>,
    snapshots: HashMap<StreamId, Snapshot>,
    checkpoints: BTreeMap<String, u64>,
    leases: HashMap<String, MemoryLease>,
}

struct MemoryLease {
    holder: String,
    token: u64,
    expires: Instant,
}

impl Inner {
    fn holds(&self, fence: &Fence) -> bool {
        self.leases
            .get(&fence.lease)
            .is_some_and(|l| l.holder == fence.holder && l.token == fence.token)
    }
}

/// An event store held in memory.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    head_tx: watch::Sender<u64>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            head_tx: watch::channel(0).0,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }

    /// Test hook: lets a test alter a stored event in place (to prove `verify` catches it).
    pub fn tamper(&self, position: u64, f: impl FnOnce(&mut RecordedEvent)) -> bool {
        let Ok(mut inner) = self.lock() else {
            return false;
        };
        match inner
            .events
            .iter_mut()
            .find(|e| e.global_position == position)
        {
            Some(e) => {
                f(e);
                true
            }
            None => false,
        }
    }

    /// Test hook: removes a stored event (to prove `verify` catches it).
    pub fn remove(&self, position: u64) -> bool {
        let Ok(mut inner) = self.lock() else {
            return false;
        };
        let before = inner.events.len();
        inner.events.retain(|e| e.global_position != position);
        before != inner.events.len()
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome> {
        let (head, outcome) = {
            let mut inner = self.lock()?;
            if let Some(fence) = &request.fence
                && !inner.holds(fence)
            {
                return Err(StoreError::fenced(fence));
            }
            let mut versions = HashMap::new();
            for s in request.streams() {
                let current = inner
                    .streams
                    .get(s)
                    .and_then(|ix| ix.last())
                    .map(|&i| inner.events[i].stream_version);
                versions.insert(s.clone(), current);
            }
            let mut known = HashMap::new();
            if let Some(key) = &request.idempotency_key {
                match inner.keys.get(key) {
                    Some(Some(o)) => {
                        known.insert(key.clone(), *o);
                    }
                    Some(None) => {
                        return Err(StoreError::InvalidAppend(format!(
                            "idempotency key {key} was recorded without events"
                        )));
                    }
                    None => {}
                }
            }
            let mut plan = plan_batch(
                inner.head,
                &versions,
                &known,
                vec![request],
                Timestamp::now(),
            );
            let verdict = plan
                .verdicts
                .pop()
                .unwrap_or(Err(StoreError::Backend("planner gave no verdict".into())));
            for row in plan.rows {
                let ix = inner.events.len();
                inner
                    .streams
                    .entry(row.stream_id.clone())
                    .or_default()
                    .push(ix);
                inner.events.push(row);
            }
            for (key, _, outcome) in plan.keys {
                inner.keys.insert(key, Some(outcome));
            }
            inner.head = plan.head;
            (plan.head.position, verdict)
        };
        self.head_tx.send_replace(head);
        outcome
    }

    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: Option<u64>,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let inner = self.lock()?;
        let Some(ix) = inner.streams.get(stream_id) else {
            return Ok(Vec::new());
        };
        let evs = ix.iter().filter_map(|&i| inner.events.get(i));
        Ok(match direction {
            Direction::Forwards => {
                let from = from.unwrap_or(0);
                evs.filter(|e| e.stream_version >= from)
                    .take(max)
                    .cloned()
                    .collect()
            }
            Direction::Backwards => {
                let from = from.unwrap_or(u64::MAX);
                let mut v: Vec<_> = evs.filter(|e| e.stream_version <= from).cloned().collect();
                v.reverse();
                v.truncate(max);
                v
            }
        })
    }

    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>> {
        let inner = self.lock()?;
        let start = inner.events.partition_point(|e| e.global_position < from);
        Ok(inner.events[start..].iter().take(max).cloned().collect())
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<Option<u64>> {
        let inner = self.lock()?;
        Ok(inner
            .streams
            .get(stream_id)
            .and_then(|ix| ix.last())
            .and_then(|&i| inner.events.get(i))
            .map(|e| e.stream_version))
    }

    async fn head(&self) -> Result<ChainHead> {
        Ok(self.lock()?.head)
    }

    fn head_watch(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        self.lock()?
            .snapshots
            .insert(snapshot.stream_id.clone(), snapshot);
        Ok(())
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>> {
        Ok(self.lock()?.snapshots.get(stream_id).cloned())
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.lock()?.checkpoints.get(name).copied())
    }

    async fn save_checkpoint(&self, name: &str, position: u64) -> Result<()> {
        self.lock()?.checkpoints.insert(name.to_owned(), position);
        Ok(())
    }

    async fn save_checkpoint_fenced(&self, name: &str, position: u64, fence: &Fence) -> Result<()> {
        let mut inner = self.lock()?;
        if !inner.holds(fence) {
            return Err(StoreError::fenced(fence));
        }
        inner.checkpoints.insert(name.to_owned(), position);
        Ok(())
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Fence>> {
        check_lease(name, holder, ttl)?;
        let now = Instant::now();
        let mut inner = self.lock()?;
        let token = match inner.leases.get(name) {
            None => 1,
            Some(l) if l.holder == holder && l.expires > now => l.token,
            Some(l) if l.expires <= now => l.token + 1,
            Some(_) => return Ok(None),
        };
        inner.leases.insert(
            name.to_owned(),
            MemoryLease {
                holder: holder.to_owned(),
                token,
                expires: now + ttl,
            },
        );
        Ok(Some(Fence {
            lease: name.to_owned(),
            holder: holder.to_owned(),
            token,
        }))
    }

    async fn release_lease(&self, fence: &Fence) -> Result<()> {
        let mut inner = self.lock()?;
        if inner.holds(fence)
            && let Some(l) = inner.leases.get_mut(&fence.lease)
        {
            l.expires = Instant::now();
        }
        Ok(())
    }

    async fn lease(&self, name: &str) -> Result<Option<LeaseState>> {
        let now = Instant::now();
        Ok(self.lock()?.leases.get(name).map(|l| LeaseState {
            holder: l.holder.clone(),
            token: l.token,
            expires_in: l.expires.saturating_duration_since(now),
        }))
    }

    async fn record_processed(&self, key: &str) -> Result<bool> {
        let mut inner = self.lock()?;
        if inner.keys.contains_key(key) {
            return Ok(false);
        }
        inner.keys.insert(key.to_owned(), None);
        Ok(true)
    }

    async fn is_processed(&self, key: &str) -> Result<bool> {
        Ok(self.lock()?.keys.contains_key(key))
    }
}
