//! The group-commit writer. Appends queue to one task per store; the task takes everything
//! queued (up to a bound), writes it in one transaction, and answers each append with its own
//! verdict. If a batch fails as a whole (a constraint an append broke, say), its appends are
//! retried one by one so only the offending append gets the error.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use flotilla_core::lease::Fence;
use flotilla_core::store::{AppendOutcome, AppendRequest, Result, StoreError};
use flotilla_core::writer_stats::{WriterMeter, WriterStats};
use tokio::sync::{mpsc, oneshot, watch};

/// Most events a batch collects from the queue (a single larger append is written alone).
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Most appends a batch collects from the queue.
pub const MAX_BATCH_APPENDS: usize = 1_024;

type Reply = oneshot::Sender<Result<AppendOutcome>>;

/// A backend's batch write: one transaction for all requests.
#[async_trait]
pub(crate) trait BatchWriter: Send + 'static {
    /// Writes a batch. `Ok` carries one verdict per request (in order) and the new head
    /// position; `Err` means nothing was written (the caller keeps the requests to retry).
    async fn write_batch(
        &mut self,
        requests: &[AppendRequest],
    ) -> Result<(Vec<Result<AppendOutcome>>, u64)>;

    /// Forgets cached state after a failure (stream versions, head).
    fn reset(&mut self);
}

/// Handle to a writer task.
#[derive(Clone, Debug)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<(AppendRequest, Reply)>,
    meter: Arc<WriterMeter>,
}

impl WriterHandle {
    pub(crate) async fn append(&self, request: AppendRequest) -> Result<AppendOutcome> {
        request.validate()?;
        let queued = Instant::now();
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((request, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        let answer = rx.await.map_err(|_| StoreError::Closed)?;
        self.meter.append_answered(queued.elapsed().as_secs_f64());
        answer
    }

    /// What the writer measured so far.
    pub(crate) fn stats(&self) -> WriterStats {
        self.meter.stats()
    }
}

/// Starts the writer task for a backend.
pub(crate) fn spawn<W: BatchWriter>(mut backend: W, head_tx: watch::Sender<u64>) -> WriterHandle {
    let (tx, mut rx) = mpsc::channel::<(AppendRequest, Reply)>(4 * MAX_BATCH_APPENDS);
    let meter = Arc::new(WriterMeter::default());
    let batches = meter.clone();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut events = first.0.events.len();
            let mut batch = vec![first];
            while events < MAX_BATCH_EVENTS && batch.len() < MAX_BATCH_APPENDS {
                match rx.try_recv() {
                    Ok(next) => {
                        events += next.0.events.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            tracing::trace!(appends = batch.len(), events, "writing batch");
            run_batch(&mut backend, batch, &head_tx, &batches).await;
        }
    });
    WriterHandle { tx, meter }
}

/// Events the appends of a transaction wrote (refused and deduplicated ones wrote none).
fn written(requests: &[AppendRequest], verdicts: &[Result<AppendOutcome>]) -> usize {
    requests
        .iter()
        .zip(verdicts)
        .filter(|(_, v)| v.as_ref().is_ok_and(|o| !o.deduplicated))
        .map(|(r, _)| r.events.len())
        .sum()
}

async fn run_batch<W: BatchWriter>(
    backend: &mut W,
    batch: Vec<(AppendRequest, Reply)>,
    head_tx: &watch::Sender<u64>,
    meter: &WriterMeter,
) {
    let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    match backend.write_batch(&requests).await {
        Ok((verdicts, head)) => {
            head_tx.send_replace(head);
            let events = written(&requests, &verdicts);
            if events > 0 {
                meter.batch_committed(events);
            }
            for (reply, verdict) in replies.into_iter().zip(verdicts) {
                let _ = reply.send(verdict);
            }
        }
        Err(e) => {
            backend.reset();
            // An unsettled batch may have been written: retrying its appends one by one could
            // write them twice, so every one gets the error (callers retry by command id).
            if requests.len() < 2 || matches!(e, StoreError::Unsettled(_)) {
                tracing::warn!(error = %e, appends = requests.len(), "append failed");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
                return;
            }
            tracing::warn!(error = %e, appends = requests.len(), "batch failed; retrying its appends one by one");
            for (request, reply) in requests.iter().zip(replies) {
                let verdict = match backend.write_batch(std::slice::from_ref(request)).await {
                    Ok((mut v, head)) => {
                        head_tx.send_replace(head);
                        let events = written(std::slice::from_ref(request), &v);
                        if events > 0 {
                            meter.batch_committed(events);
                        }
                        v.pop().unwrap_or(Err(StoreError::Backend(
                            "writer returned no verdict".into(),
                        )))
                    }
                    Err(e) => {
                        backend.reset();
                        Err(e)
                    }
                };
                let _ = reply.send(verdict);
            }
        }
    }
}

/// Sets apart the requests whose fence no longer holds its lease (`holds` says which do): the
/// requests to write, and per request the refusal of those that may not be written.
pub(crate) fn drop_fenced(
    requests: &[AppendRequest],
    holds: impl Fn(&Fence) -> bool,
) -> (Vec<AppendRequest>, Vec<Option<StoreError>>) {
    let mut kept = Vec::with_capacity(requests.len());
    let mut refused = Vec::with_capacity(requests.len());
    for r in requests {
        match &r.fence {
            Some(f) if !holds(f) => refused.push(Some(StoreError::fenced(f))),
            _ => {
                kept.push(r.clone());
                refused.push(None);
            }
        }
    }
    (kept, refused)
}

/// Every request's verdict: the refusals of [`drop_fenced`] in their places, the written ones'
/// verdicts (in order) in the others.
pub(crate) fn merge_fenced(
    refused: Vec<Option<StoreError>>,
    verdicts: Vec<Result<AppendOutcome>>,
) -> Vec<Result<AppendOutcome>> {
    let mut written = verdicts.into_iter();
    refused
        .into_iter()
        .map(|r| match r {
            Some(e) => Err(e),
            None => written.next().unwrap_or_else(|| {
                Err(StoreError::Backend(
                    "the writer returned too few verdicts".into(),
                ))
            }),
        })
        .collect()
}

/// The distinct leases the requests' fences name.
pub(crate) fn fenced_leases(requests: &[AppendRequest]) -> Vec<String> {
    let mut names: Vec<String> = requests
        .iter()
        .filter_map(|r| r.fence.as_ref().map(|f| f.lease.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Milliseconds since the Unix epoch by this machine's clock (SQLite's lease times: every
/// process sharing a SQLite file runs on one machine).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
