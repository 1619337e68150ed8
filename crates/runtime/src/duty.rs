//! A service's duty: what one replica per service and namespace runs at a time — its relays to
//! the buses and its schedulers — under a lease in the service's store.
//!
//! Every replica runs the duty's loop: the one holding the lease runs the duty's jobs and renews
//! the lease; the others try to take it. A holder that dies stops renewing; its lease lapses
//! after the lease's time and the next replica to try takes it (a new term, with a higher
//! fencing token). The jobs' writes carry the term's [`Fence`] (relays' checkpoints, schedulers'
//! appends), so a holder that was paused past its lease and wakes up writes nothing: its jobs are
//! stopped as soon as it finds the lease gone. A replica shutting down gives the lease up, so
//! another takes it at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flotilla_core::lease::Fence;
use flotilla_core::store::EventStore;
use futures::future::BoxFuture;
use tokio::sync::watch;

/// A job of the duty: started with the term's fence and a stop signal that fires when the term
/// ends (the lease lost or given up, or the node shutting down).
pub(crate) type Job =
    Box<dyn Fn(Fence, watch::Receiver<bool>) -> BoxFuture<'static, ()> + Send + Sync>;

/// How the lease of a duty is timed, from the longest a duty may stay stopped after its holder
/// died (`failover`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a term lasts unless renewed.
    pub ttl: Duration,
    /// How often the holder renews (three times per term).
    pub renew_every: Duration,
    /// How often the other replicas try to take it.
    pub try_every: Duration,
}

impl LeaseTiming {
    /// A lapsed lease is taken within `ttl + try_every` = 5/6 of `failover` (the rest is margin
    /// for starting the jobs).
    pub fn for_failover(failover: Duration) -> Self {
        let failover = failover.max(Duration::from_secs(1));
        let ttl = failover * 2 / 3;
        Self {
            ttl,
            renew_every: ttl / 3,
            try_every: failover / 6,
        }
    }
}

/// The name of a process among replicas: the configured one, else host name and process id.
pub fn replica_name(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "replica".into());
    format!("{host}-{}", std::process::id())
}

/// A service's duty in one replica.
pub(crate) struct Duty {
    pub(crate) service: &'static str,
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) lease: String,
    pub(crate) holder: String,
    pub(crate) timing: LeaseTiming,
    pub(crate) jobs: Vec<Job>,
}

/// The name of the lease of a service's duty (in the service's own store, so one per service
/// and namespace).
pub fn lease_name(service: &str) -> String {
    format!("duty:{service}")
}

impl Duty {
    /// Runs until `stop` fires.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let taken = self
                .store
                .acquire_lease(&self.lease, &self.holder, self.timing.ttl)
                .await;
            match taken {
                Ok(Some(fence)) => {
                    if self.hold(fence, &mut stop).await {
                        return;
                    }
                    // Lost: try again at once (another replica has it, or a new term begins).
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(service = self.service, lease = %self.lease, error = %e, "taking the lease failed; trying again")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.timing.try_every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Runs the jobs for one term, renewing the lease, until it is lost (false) or the node stops
    /// (true, the lease given up).
    async fn hold(&self, fence: Fence, stop: &mut watch::Receiver<bool>) -> bool {
        tracing::info!(service = self.service, lease = %fence.lease, holder = %fence.holder, token = fence.token, "lease taken: this replica runs the service's relays and schedulers");
        let (term_tx, term_rx) = watch::channel(false);
        let running: Vec<_> = self
            .jobs
            .iter()
            .map(|job| tokio::spawn(job(fence.clone(), term_rx.clone())))
            .collect();
        // Renewed at this instant of this process's clock: the term is trusted until `ttl` after
        // the last renewal's request left, never longer.
        let mut renewed_at = tokio::time::Instant::now();
        let stopping = loop {
            tokio::select! {
                _ = tokio::time::sleep(self.timing.renew_every) => {}
                _ = stop.wait_for(|s| *s) => break true,
            }
            let asked_at = tokio::time::Instant::now();
            match self
                .store
                .acquire_lease(&self.lease, &self.holder, self.timing.ttl)
                .await
            {
                Ok(Some(f)) if f == fence => renewed_at = asked_at,
                Ok(other) => {
                    tracing::warn!(service = self.service, lease = %fence.lease, token = fence.token, now = ?other.map(|f| f.token), "lease lost: stopping the service's relays and schedulers here");
                    break false;
                }
                Err(e)
                    if asked_at.duration_since(renewed_at) + self.timing.renew_every
                        >= self.timing.ttl =>
                {
                    tracing::warn!(service = self.service, lease = %fence.lease, error = %e, "the lease could not be renewed before it lapses: stopping the service's relays and schedulers here");
                    break false;
                }
                Err(e) => {
                    tracing::warn!(service = self.service, lease = %fence.lease, error = %e, "renewing the lease failed; trying again")
                }
            }
        };
        term_tx.send_replace(true);
        for r in running {
            let _ = r.await;
        }
        if stopping {
            if let Err(e) = self.store.release_lease(&fence).await {
                tracing::warn!(service = self.service, lease = %fence.lease, error = %e, "giving the lease up failed; another replica takes it once it lapses");
            } else {
                tracing::info!(service = self.service, lease = %fence.lease, "lease given up");
            }
        }
        stopping
    }
}

tokio::task_local! {
    /// The term a scheduler runs in: its appends are fenced by it.
    static TERM: Fence;
}

/// Runs `fut` in `fence`'s term: the app's appends made by it are fenced.
pub(crate) fn in_term<F: Future>(fence: Fence, fut: F) -> impl Future<Output = F::Output> {
    TERM.scope(fence, fut)
}

/// The term the current task runs in, if it runs for a duty.
pub fn current_term() -> Option<Fence> {
    TERM.try_with(Clone::clone).ok()
}

/// Carries the current term (if any) into `fut`, for work a scheduler spawns as its own task.
pub fn carry_term<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let term = current_term();
    async move {
        match term {
            Some(t) => TERM.scope(t, fut).await,
            None => fut.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lapsed_lease_is_taken_within_the_failover_time() {
        let t = LeaseTiming::for_failover(Duration::from_secs(10));
        assert!(t.ttl + t.try_every < Duration::from_secs(10), "{t:?}");
        assert!(t.renew_every * 3 <= t.ttl, "three renewals per term: {t:?}");
        assert!(t.try_every > Duration::ZERO);
        let tiny = LeaseTiming::for_failover(Duration::ZERO);
        assert!(tiny.ttl >= Duration::from_millis(600), "{tiny:?}");
    }
}
