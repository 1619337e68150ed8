//! The duty's rules, on the memory store (and one whose lease calls hang).

use super::*;
use std::sync::Mutex;
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
    let job: Job = Box::new(move |_term, mut stop| {
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

/// A duty whose job records, when told to stop, whether its term ended lost.
fn telling_duty(store: &Arc<dyn EventStore>, holder: &str, told: &Arc<Mutex<Vec<bool>>>) -> Duty {
    let told = told.clone();
    let job: Job = Box::new(move |term, mut stop| {
        let told = told.clone();
        Box::pin(in_term(term, async move {
            let _ = stop.wait_for(|s| *s).await;
            told.lock().expect("lock").push(term_lost());
        }))
    });
    Duty {
        jobs: vec![job],
        ..duty(
            store,
            holder,
            &Arc::new(AtomicUsize::new(0)),
            &Arc::new(AtomicUsize::new(0)),
            false,
        )
    }
}

/// A scheduler told to stop knows why: a node shutting down (finish what is under way) or a
/// term lost to another replica (stop at once); outside a term nothing is lost.
#[tokio::test]
async fn a_term_tells_its_jobs_whether_it_was_lost() {
    assert!(!term_lost(), "outside a term");
    let store: Arc<dyn EventStore> = Arc::new(flotilla_core::MemoryStore::new());
    let told = Arc::new(Mutex::new(Vec::new()));
    // Shut down: not lost.
    let (stop, rx) = watch::channel(false);
    let a = tokio::spawn(telling_duty(&store, "a", &told).run(rx));
    holder_becomes(&store, "a").await;
    stop.send_replace(true);
    a.await.expect("stops");
    assert_eq!(*told.lock().expect("lock"), [false]);
    // Unable to read the store: stepped aside, lost.
    let (stop, rx) = watch::channel(false);
    let mut b = telling_duty(&store, "b", &told);
    let chain = crate::integrity::ChainGuard::new("svc");
    b.chain = chain.clone();
    let b = tokio::spawn(b.run(rx));
    holder_becomes(&store, "b").await;
    chain.unreadable(3, "an event this build does not know".into());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while told.lock().expect("lock").len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job was never stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*told.lock().expect("lock"), [false, true]);
    stop.send_replace(true);
    b.await.expect("stops");
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
    async fn save_snapshot(&self, s: flotilla_core::Snapshot) -> flotilla_core::store::Result<()> {
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
