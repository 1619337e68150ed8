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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use flotilla_core::lease::Fence;
use flotilla_core::store::EventStore;
use futures::future::BoxFuture;
use tokio::sync::watch;

/// A job of the duty: started with the term and a stop signal that fires when the term ends
/// (the lease lost or given up, or the node shutting down).
pub(crate) type Job =
    Box<dyn Fn(Term, watch::Receiver<bool>) -> BoxFuture<'static, ()> + Send + Sync>;

/// A term of a duty's lease, as its jobs see it: the fence their writes carry, and whether it
/// ended lost (another replica carries on) rather than given up at shutdown.
#[derive(Clone, Debug)]
pub(crate) struct Term {
    pub(crate) fence: Fence,
    lost: Arc<AtomicBool>,
}

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
    /// Where this replica tells whether it holds the lease.
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The check of the service's store as this replica reads it: a replica that cannot read
    /// it (a break, or an event version this build does not know, as during a rolling upgrade)
    /// steps aside, so a replica that can runs the duty.
    pub(crate) chain: Arc<crate::integrity::ChainGuard>,
}

/// The name of the lease of a service's duty (in the service's own store, so one per service
/// and namespace).
pub fn lease_name(service: &str) -> String {
    format!("duty:{service}")
}

impl Duty {
    /// Runs until `stop` fires.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        if self.jobs.is_empty() {
            // Nothing to run: no lease to hold.
            return;
        }
        self.tell(None);
        loop {
            if *stop.borrow() {
                return;
            }
            if self.chain.broken().is_some() {
                let mut intact = self.chain.watch();
                tokio::select! {
                    _ = intact.wait_for(|b| b.is_none()) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                continue;
            }
            let asked_at = tokio::time::Instant::now();
            match self.renew().await {
                Ok(Some(fence)) => match self.hold(fence, asked_at, &mut stop).await {
                    TermEnd::Stopped => return,
                    // Waits above until the store reads again here.
                    TermEnd::SteppedAside => continue,
                    // Try again at once: another replica has it, or a new term begins here.
                    TermEnd::Lost => continue,
                    // Started again after a pause (a job that keeps failing does not spin).
                    TermEnd::JobEnded => {}
                },
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

    fn tell(&self, term: Option<u64>) {
        if let Some(m) = &self.metrics {
            m.set_duty(self.service, term);
        }
    }

    /// Takes or renews the lease, giving up after the lease's time (a hung connection must not
    /// keep a holder believing in a term that lapsed meanwhile).
    async fn renew(&self) -> Result<Option<Fence>, String> {
        match tokio::time::timeout(
            self.timing.ttl,
            self.store
                .acquire_lease(&self.lease, &self.holder, self.timing.ttl),
        )
        .await
        {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "the store did not answer within {} ms",
                self.timing.ttl.as_millis()
            )),
        }
    }

    /// Runs the jobs for one term, renewing the lease, until the node stops (the jobs drain
    /// while the lease is still renewed, then it is given up), the lease is lost or could not
    /// be renewed before it lapses, or a job ended on its own (the term ends so it starts
    /// again). `asked_at`: when the request that took the lease left.
    async fn hold(
        &self,
        fence: Fence,
        asked_at: tokio::time::Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> TermEnd {
        tracing::info!(service = self.service, lease = %fence.lease, holder = %fence.holder, token = fence.token, "lease taken: this replica runs the service's relays and schedulers");
        self.tell(Some(fence.token));
        let (term_tx, term_rx) = watch::channel(false);
        let term = Term {
            fence: fence.clone(),
            lost: Arc::new(AtomicBool::new(false)),
        };
        let mut running = tokio::task::JoinSet::new();
        for job in &self.jobs {
            running.spawn(job(term.clone(), term_rx.clone()));
        }
        // The term is trusted until `ttl` after the last renewal's request left, never longer.
        let mut renewed_at = asked_at;
        let mut next_renewal = asked_at + self.timing.renew_every;
        let mut end: Option<TermEnd> = None;
        let mut broken = self.chain.watch();
        let lost = loop {
            let deadline = renewed_at + self.timing.ttl;
            tokio::select! {
                _ = tokio::time::sleep_until(next_renewal) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(service = self.service, lease = %fence.lease, "the lease lapsed before it was renewed: stopping the service's relays and schedulers here");
                    break true;
                }
                _ = stop.wait_for(|s| *s), if end.is_none() => {
                    end = Some(TermEnd::Stopped);
                    term_tx.send_replace(true);
                    continue;
                }
                _ = broken.wait_for(|b| b.is_some()), if end.is_none() => {
                    tracing::warn!(service = self.service, lease = %fence.lease, "this replica cannot read the service's store (a break, or an event this build does not know): giving the lease up to a replica that can");
                    end = Some(TermEnd::SteppedAside);
                    // Another replica carries on: the jobs stop what they do at once.
                    term.lost.store(true, Ordering::SeqCst);
                    term_tx.send_replace(true);
                    continue;
                }
                done = running.join_next() => match done {
                    // Every job finished after the term was ended: the term is over.
                    None => break false,
                    Some(_) if end.is_some() => continue,
                    Some(outcome) => {
                        tracing::error!(service = self.service, lease = %fence.lease, ?outcome, "a relay or scheduler ended on its own; ending the term so that it starts again");
                        end = Some(TermEnd::JobEnded);
                        term_tx.send_replace(true);
                        continue;
                    }
                },
            }
            // Renewed while the jobs run and while they drain (a runner finishing its steps at
            // shutdown records their outcomes in this term).
            let asked_at = tokio::time::Instant::now();
            next_renewal = asked_at + self.timing.renew_every;
            let renewed = tokio::time::timeout(
                deadline.saturating_duration_since(asked_at),
                self.store
                    .acquire_lease(&self.lease, &self.holder, self.timing.ttl),
            )
            .await;
            match renewed {
                Ok(Ok(Some(f))) if f == fence => renewed_at = asked_at,
                Ok(Ok(other)) => {
                    tracing::warn!(service = self.service, lease = %fence.lease, token = fence.token, now = ?other.map(|f| f.token), "lease lost: stopping the service's relays and schedulers here");
                    break true;
                }
                Ok(Err(e)) if tokio::time::Instant::now() + self.timing.renew_every < deadline => {
                    tracing::warn!(service = self.service, lease = %fence.lease, error = %e, "renewing the lease failed; trying again")
                }
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!(service = self.service, lease = %fence.lease, "the lease could not be renewed before it lapses: stopping the service's relays and schedulers here");
                    break true;
                }
            }
        };
        // Lost: the jobs stop now (their writes are refused from here on anyway), told so
        // (also when it was lost while they drained at shutdown).
        if lost {
            term.lost.store(true, Ordering::SeqCst);
        }
        term_tx.send_replace(true);
        while running.join_next().await.is_some() {}
        self.tell(None);
        if lost {
            return TermEnd::Lost;
        }
        let end = end.unwrap_or(TermEnd::Lost);
        if matches!(end, TermEnd::Stopped | TermEnd::SteppedAside) {
            if let Err(e) = self.store.release_lease(&fence).await {
                tracing::warn!(service = self.service, lease = %fence.lease, error = %e, "giving the lease up failed; another replica takes it once it lapses");
            } else {
                tracing::info!(service = self.service, lease = %fence.lease, "lease given up");
            }
        }
        end
    }
}

/// How a term ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TermEnd {
    /// The node stops: the lease was given up.
    Stopped,
    /// The lease was lost or lapsed.
    Lost,
    /// A job ended on its own: the term ended so that the jobs start again.
    JobEnded,
    /// This replica cannot read the store: the lease was given up to one that can.
    SteppedAside,
}

tokio::task_local! {
    /// The term a scheduler runs in: its appends are fenced by it.
    static TERM: Term;
}

/// Runs `fut` in `term`: the app's appends made by it are fenced.
pub(crate) fn in_term<F: Future>(term: Term, fut: F) -> impl Future<Output = F::Output> {
    TERM.scope(term, fut)
}

/// The term the current task runs in, if it runs for a duty.
pub fn current_term() -> Option<Fence> {
    TERM.try_with(|t| t.fence.clone()).ok()
}

/// Whether the term the current task runs in ended lost: the lease lapsed or went to another
/// replica, or this one cannot read the store (false while it holds, when it was given up at
/// shutdown, and outside a term). A scheduler told to stop asks it to tell a node shutting
/// down (finish what is under way) from a deposed holder (stop at once: another replica
/// carries on).
pub fn term_lost() -> bool {
    TERM.try_with(|t| t.lost.load(Ordering::SeqCst))
        .unwrap_or(false)
}

/// Carries the current term (if any) into `fut`, for work a scheduler spawns as its own task.
pub fn carry_term<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let term = TERM.try_with(Clone::clone).ok();
    async move {
        match term {
            Some(t) => TERM.scope(t, fut).await,
            None => fut.await,
        }
    }
}

#[cfg(test)]
mod tests;
