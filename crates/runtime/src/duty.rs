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
        let mut running = tokio::task::JoinSet::new();
        for job in &self.jobs {
            running.spawn(job(fence.clone(), term_rx.clone()));
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
        // Lost: the jobs stop now (their writes are refused from here on anyway).
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    const QUICK: LeaseTiming = LeaseTiming {
        ttl: Duration::from_millis(400),
        renew_every: Duration::from_millis(100),
        try_every: Duration::from_millis(50),
    };

    /// A duty whose one job counts its starts and how many run now; `ends_early` makes the job
    /// return at once instead of waiting for its term to end.
    fn duty(
        store: &Arc<dyn EventStore>,
        holder: &str,
        running: &Arc<AtomicUsize>,
        starts: &Arc<AtomicUsize>,
        ends_early: bool,
    ) -> Duty {
        let (running, starts) = (running.clone(), starts.clone());
        let job: Job = Box::new(move |_fence, mut stop| {
            let (running, starts) = (running.clone(), starts.clone());
            Box::pin(async move {
                starts.fetch_add(1, Ordering::SeqCst);
                running.fetch_add(1, Ordering::SeqCst);
                if !ends_early {
                    let _ = stop.wait_for(|s| *s).await;
                }
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        Duty {
            service: "svc",
            store: store.clone(),
            lease: lease_name("svc"),
            holder: holder.into(),
            timing: QUICK,
            jobs: vec![job],
            metrics: None,
            chain: crate::integrity::ChainGuard::new("svc"),
        }
    }

    #[tokio::test]
    async fn one_replica_runs_the_duty_and_another_takes_over_when_it_stops() {
        let store: Arc<dyn EventStore> = Arc::new(flotilla_core::MemoryStore::new());
        let (running, starts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (stop_a, rx_a) = watch::channel(false);
        let (stop_b, rx_b) = watch::channel(false);
        let a = tokio::spawn(duty(&store, "a", &running, &starts, false).run(rx_a));
        let b = tokio::spawn(duty(&store, "b", &running, &starts, false).run(rx_b));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(running.load(Ordering::SeqCst), 1, "one holder runs the job");
        assert_eq!(starts.load(Ordering::SeqCst), 1, "renewals keep the term");
        let holder = store
            .lease(&lease_name("svc"))
            .await
            .expect("lease")
            .expect("held");
        let (first, stop_first, stop_other) = if holder.holder == "a" {
            (a, stop_a, stop_b)
        } else {
            (b, stop_b, stop_a)
        };
        stop_first.send_replace(true);
        first.await.expect("the holder stops");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(running.load(Ordering::SeqCst), 1, "given up, taken at once");
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        let now = store
            .lease(&lease_name("svc"))
            .await
            .expect("lease")
            .expect("held");
        assert!(now.holder != holder.holder && now.token > holder.token);
        stop_other.send_replace(true);
    }

    /// Waits (at most 5 s) until `holder` holds the lease; answers it.
    async fn holder_becomes(
        store: &Arc<dyn EventStore>,
        holder: &str,
    ) -> flotilla_core::lease::LeaseState {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match store.lease(&lease_name("svc")).await.expect("lease") {
                Some(l) if l.holder == holder && !l.expired() => return l,
                other => assert!(
                    tokio::time::Instant::now() < deadline,
                    "{holder} never held the lease: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A holder that cannot read the store any more (here: an event version its build does not
    /// know, as an old replica meets during a rolling upgrade) gives the lease up to one that
    /// can, and takes it again only once it reads the store again.
    #[tokio::test]
    async fn a_replica_that_cannot_read_the_store_steps_aside() {
        let store: Arc<dyn EventStore> = Arc::new(flotilla_core::MemoryStore::new());
        let (running, starts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (old_chain, new_chain) = (
            crate::integrity::ChainGuard::new("svc"),
            crate::integrity::ChainGuard::new("svc"),
        );
        let (stop, rx) = watch::channel(false);
        let mut old = duty(&store, "old", &running, &starts, false);
        old.chain = old_chain.clone();
        let old = tokio::spawn(old.run(rx.clone()));
        let first = holder_becomes(&store, "old").await;
        let mut new = duty(&store, "new", &running, &starts, false);
        new.chain = new_chain.clone();
        let new = tokio::spawn(new.run(rx));
        old_chain.unreadable(7, "test.Added version 2 is not known to this build".into());
        let now = holder_becomes(&store, "new").await;
        assert!(now.token > first.token);
        // The old holder's job stopped, the new one's started: one runs.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while starts.load(Ordering::SeqCst) < 2 || running.load(Ordering::SeqCst) != 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only the new holder runs the jobs: {} running, {} started",
                running.load(Ordering::SeqCst),
                starts.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send_replace(true);
        old.await.expect("old stops");
        new.await.expect("new stops");
    }

    /// A memory store whose lease calls hang once `hang` is set (a connection that stopped
    /// answering).
    struct Hanging {
        inner: flotilla_core::MemoryStore,
        hang: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl EventStore for Hanging {
        fn backend(&self) -> &'static str {
            "memory"
        }
        async fn append(
            &self,
            r: flotilla_core::store::AppendRequest,
        ) -> flotilla_core::store::Result<flotilla_core::store::AppendOutcome> {
            self.inner.append(r).await
        }
        async fn read_stream(
            &self,
            s: &flotilla_core::StreamId,
            from: Option<u64>,
            d: flotilla_core::store::Direction,
            max: usize,
        ) -> flotilla_core::store::Result<Vec<flotilla_core::RecordedEvent>> {
            self.inner.read_stream(s, from, d, max).await
        }
        async fn read_all(
            &self,
            from: u64,
            max: usize,
        ) -> flotilla_core::store::Result<Vec<flotilla_core::RecordedEvent>> {
            self.inner.read_all(from, max).await
        }
        async fn stream_version(
            &self,
            s: &flotilla_core::StreamId,
        ) -> flotilla_core::store::Result<Option<u64>> {
            self.inner.stream_version(s).await
        }
        async fn head(&self) -> flotilla_core::store::Result<flotilla_core::ChainHead> {
            self.inner.head().await
        }
        fn head_watch(&self) -> watch::Receiver<u64> {
            self.inner.head_watch()
        }
        async fn save_snapshot(
            &self,
            s: flotilla_core::Snapshot,
        ) -> flotilla_core::store::Result<()> {
            self.inner.save_snapshot(s).await
        }
        async fn load_snapshot(
            &self,
            s: &flotilla_core::StreamId,
        ) -> flotilla_core::store::Result<Option<flotilla_core::Snapshot>> {
            self.inner.load_snapshot(s).await
        }
        async fn load_checkpoint(&self, n: &str) -> flotilla_core::store::Result<Option<u64>> {
            self.inner.load_checkpoint(n).await
        }
        async fn save_checkpoint(&self, n: &str, p: u64) -> flotilla_core::store::Result<()> {
            self.inner.save_checkpoint(n, p).await
        }
        async fn save_checkpoint_fenced(
            &self,
            n: &str,
            p: u64,
            f: &Fence,
        ) -> flotilla_core::store::Result<()> {
            self.inner.save_checkpoint_fenced(n, p, f).await
        }
        async fn acquire_lease(
            &self,
            n: &str,
            h: &str,
            ttl: Duration,
        ) -> flotilla_core::store::Result<Option<Fence>> {
            if self.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            self.inner.acquire_lease(n, h, ttl).await
        }
        async fn release_lease(&self, f: &Fence) -> flotilla_core::store::Result<()> {
            self.inner.release_lease(f).await
        }
        async fn lease(
            &self,
            n: &str,
        ) -> flotilla_core::store::Result<Option<flotilla_core::LeaseState>> {
            self.inner.lease(n).await
        }
        async fn record_processed(&self, k: &str) -> flotilla_core::store::Result<bool> {
            self.inner.record_processed(k).await
        }
        async fn is_processed(&self, k: &str) -> flotilla_core::store::Result<bool> {
            self.inner.is_processed(k).await
        }
    }

    #[tokio::test]
    async fn a_holder_whose_renewals_hang_stops_its_jobs_when_the_lease_lapses() {
        let hanging = Arc::new(Hanging {
            inner: flotilla_core::MemoryStore::new(),
            hang: std::sync::atomic::AtomicBool::new(false),
        });
        let store: Arc<dyn EventStore> = hanging.clone();
        let (running, starts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (stop, rx) = watch::channel(false);
        let d = tokio::spawn(duty(&store, "a", &running, &starts, false).run(rx));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(running.load(Ordering::SeqCst), 1);
        hanging.hang.store(true, Ordering::SeqCst);
        // The last renewal left at most `renew_every` before: the term ends by its deadline.
        tokio::time::sleep(QUICK.ttl + Duration::from_millis(100)).await;
        assert_eq!(
            running.load(Ordering::SeqCst),
            0,
            "no job runs past the lease it can no longer renew"
        );
        stop.send_replace(true);
        d.abort();
    }

    #[tokio::test]
    async fn a_job_that_ends_on_its_own_is_started_again() {
        let store: Arc<dyn EventStore> = Arc::new(flotilla_core::MemoryStore::new());
        let (running, starts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (stop, rx) = watch::channel(false);
        let d = tokio::spawn(duty(&store, "a", &running, &starts, true).run(rx));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            starts.load(Ordering::SeqCst) >= 2,
            "restarted after it ended"
        );
        stop.send_replace(true);
        d.await.expect("stops");
    }

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
