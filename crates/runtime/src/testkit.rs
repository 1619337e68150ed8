//! For tests of services (here and in other crates): an interceptor with a fixed HS256 secret
//! and the default policies, refusals kept in memory, and tokens for any roles.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_auth::token::{DEFAULT_AUDIENCE, DEV_ISSUER};
use flotilla_auth::{
    AccessRefusal, AuthLayer, Authorizer, KeySource, RefusalSink, TokenIssuer, TokenVerifier,
};

/// The HS256 secret test servers trust.
pub const TEST_SECRET: &[u8] = b"flotilla-test-secret-0123456789abcdef";

/// Refusals kept in memory.
#[derive(Debug, Default)]
pub struct RecordedRefusals(pub Mutex<Vec<AccessRefusal>>);

impl RefusalSink for RecordedRefusals {
    fn refused(&self, refusal: AccessRefusal) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(refusal);
    }
}

impl RecordedRefusals {
    pub fn take(&self) -> Vec<AccessRefusal> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// An interceptor trusting [`TEST_SECRET`] with `authorizer`, and where its refusals go.
pub async fn test_layer(authorizer: Arc<Authorizer>) -> (AuthLayer, Arc<RecordedRefusals>) {
    let verifier = TokenVerifier::new(
        KeySource::Hs256 {
            secret: TEST_SECRET.to_vec(),
        },
        DEFAULT_AUDIENCE,
        Some(DEV_ISSUER),
    )
    .await
    .unwrap_or_else(|e| panic!("test verifier: {e}"));
    let sink = Arc::new(RecordedRefusals::default());
    (
        AuthLayer::new(Arc::new(verifier), authorizer, sink.clone()),
        sink,
    )
}

/// The Ed25519 seed test servers sign access policy replacements with.
pub const TEST_SIGNING_SEED: [u8; 32] = [42; 32];

/// The access policy signer of test servers.
pub fn test_signer() -> flotilla_auth::PolicySigner {
    flotilla_auth::PolicySigner::from_seed(TEST_SIGNING_SEED)
}

/// A token for `subject` with `roles` in `business_unit`, signed with [`TEST_SECRET`].
pub fn token(subject: &str, roles: &[&str], business_unit: &str) -> String {
    let issuer = TokenIssuer::hs256(TEST_SECRET, DEFAULT_AUDIENCE, DEV_ISSUER)
        .unwrap_or_else(|e| panic!("test issuer: {e}"));
    issuer
        .issue(
            subject,
            &roles.iter().map(|r| (*r).to_owned()).collect(),
            business_unit,
            Duration::from_secs(3600),
        )
        .unwrap_or_else(|e| panic!("test token: {e}"))
}

/// Adds `authorization: Bearer <token>` to a request.
pub fn with_token<T>(mut req: tonic::Request<T>, token: &str) -> tonic::Request<T> {
    if let Ok(v) = format!("Bearer {token}").parse() {
        req.metadata_mut().insert("authorization", v);
    }
    req
}

pub use flotilla_auth::Bearer;

/// A service module served on `127.0.0.1:0` over a store, with the test interceptor, wired as a
/// node wires it: its tasks run (the app's follower, schedulers), its events are relayed to an
/// in-process bus and its consumers take events from that bus (publish to [`TestServer::bus`]
/// to feed them, or start several servers on one bus with [`TestServer::start_on`]).
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub refusals: Arc<RecordedRefusals>,
    pub authorizer: Arc<Authorizer>,
    pub store: Arc<dyn flotilla_core::store::EventStore>,
    pub chain: Arc<crate::integrity::ChainGuard>,
    bus: Arc<flotilla_bus::inprocess::InProcessBus>,
    stop: tokio::sync::watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl TestServer {
    /// Serves `module` over `store` until [`TestServer::stop`].
    pub async fn start<M: crate::ServiceModule + Clone + 'static>(
        module: &M,
        store: Arc<dyn flotilla_core::store::EventStore>,
    ) -> Self {
        Self::start_with(module, Self::context(module, store)).await
    }

    /// The context [`TestServer::start`] gives a module: default configuration and policies,
    /// the store taken as intact, the test signer.
    pub fn context<M: crate::ServiceModule>(
        module: &M,
        store: Arc<dyn flotilla_core::store::EventStore>,
    ) -> crate::ServiceContext {
        let authorizer = Arc::new(
            Authorizer::with_default_policy().unwrap_or_else(|e| panic!("authorizer: {e}")),
        );
        let mut ctx = crate::ServiceContext::new(module.name(), store, authorizer);
        ctx.policy_signer = Some(Arc::new(test_signer()));
        ctx
    }

    /// Serves `module` with a context the test made (its configuration, chain check, signer).
    pub async fn start_with<M: crate::ServiceModule + Clone + 'static>(
        module: &M,
        ctx: crate::ServiceContext,
    ) -> Self {
        let ns = ctx
            .config
            .namespace()
            .unwrap_or_else(|e| panic!("namespace: {e}"));
        let bus = Arc::new(flotilla_bus::inprocess::InProcessBus::with_namespace(ns));
        Self::start_on(module, ctx, bus).await
    }

    /// Serves `module` with its events relayed to, and its consumers fed from, `bus`.
    pub async fn start_on<M: crate::ServiceModule + Clone + 'static>(
        module: &M,
        ctx: crate::ServiceContext,
        bus: Arc<flotilla_bus::inprocess::InProcessBus>,
    ) -> Self {
        let module: Arc<dyn crate::ServiceModule> = Arc::new(module.clone());
        let authorizer = ctx.authorizer.clone();
        let chain = ctx.chain.clone();
        let store = ctx.store.clone();
        let (access, refusals) = test_layer(authorizer.clone()).await;
        let personal = ctx.personal.clone();
        let access =
            access.with_pseudonyms(Arc::new(crate::personal::SealedSubjects(personal.clone())));
        let mut routes = tonic::service::RoutesBuilder::default();
        let served: Vec<crate::server::Served> = module
            .grpc_services()
            .into_iter()
            .map(|name| crate::server::Served {
                name,
                chain: chain.clone(),
                position: ctx.position.clone(),
            })
            .collect();
        let started = module
            .start(ctx, &mut routes)
            .await
            .unwrap_or_else(|e| panic!("start: {e}"));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        if !started.checks_chain {
            tasks.push(tokio::spawn(crate::tasks::run_chain_check(
                store.clone(),
                chain.clone(),
                stop_rx.clone(),
            )));
        }
        for task in started.tasks {
            tasks.push(tokio::spawn(task(crate::kit::Shutdown::new(
                stop_rx.clone(),
            ))));
        }
        for r in &started.relays {
            tasks.push(tokio::spawn(crate::tasks::run_relay_to(
                store.clone(),
                module.name(),
                (Some(r.destination), r.outbound.clone()),
                bus.clone(),
                chain.clone(),
                None,
                stop_rx.clone(),
            )));
        }
        // Alone on its store: the schedulers run without a lease.
        for scheduler in started.scheduled {
            tasks.push(tokio::spawn(scheduler(crate::kit::Shutdown::new(
                stop_rx.clone(),
            ))));
        }
        let as_bus: Arc<dyn flotilla_bus::Bus> = bus.clone();
        for consumer in started.consumers {
            tasks.push(tokio::spawn(crate::tasks::run_consumer(
                as_bus.clone(),
                module.name().to_owned(),
                consumer,
                chain.clone(),
                stop_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(crate::tasks::run_relay(
            store.clone(),
            module.clone(),
            bus.clone(),
            chain.clone(),
            None,
            stop_rx.clone(),
        )));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let mut down = stop_rx.clone();
        let server = tokio::spawn(async move {
            if let Err(e) = crate::server::serve(
                listener.into(),
                routes,
                &served,
                access,
                personal,
                None,
                async move {
                    let _ = down.wait_for(|s| *s).await;
                },
            )
            .await
            {
                panic!("serve: {e}");
            }
        });
        Self {
            addr,
            refusals,
            authorizer,
            store,
            chain,
            bus,
            stop,
            server: Some(server),
            tasks,
        }
    }

    /// The in-process bus the server's events are relayed to and its consumers read.
    pub fn bus(&self) -> &Arc<flotilla_bus::inprocess::InProcessBus> {
        &self.bus
    }

    /// A connected channel (retrying while the server starts).
    pub async fn channel(&self) -> tonic::transport::Channel {
        let mut last = None;
        for _ in 0..100 {
            match tonic::transport::Channel::from_shared(format!("http://{}", self.addr))
                .unwrap_or_else(|e| panic!("uri: {e}"))
                .connect()
                .await
            {
                Ok(c) => return c,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server at {} never accepted: {last:?}", self.addr)
    }

    /// Stops the server and its tasks and waits for them.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.server.take()
            && let Err(e) = t.await
        {
            panic!("the server stopped with an error: {e}");
        }
        for t in self.tasks.drain(..) {
            if let Err(e) = t.await {
                panic!("a task of the server stopped with an error: {e}");
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A service task (an app's follower, a scheduler) running until dropped.
pub struct RunningTask {
    stop: tokio::sync::watch::Sender<bool>,
    _handle: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RunningTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTask").finish_non_exhaustive()
    }
}

/// Runs a task under a shutdown signal sent when the returned guard is dropped.
/// Runs a scheduler alone (no lease) until the handle drops.
pub fn run_scheduler(scheduler: crate::kit::Scheduler) -> RunningTask {
    run_task(Box::new(move |shutdown| scheduler(shutdown)))
}

pub fn run_task(task: crate::kit::Task) -> RunningTask {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(task(crate::kit::Shutdown::new(rx)));
    RunningTask {
        stop,
        _handle: handle,
    }
}

impl Drop for RunningTask {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A store whose reads can be shut off (appends still go through), and whose appends can be
/// slowed: a service that answers queries while reads fail answers them from memory; writers
/// whose appends overlap conflict.
pub struct ReadsSwitch {
    inner: Arc<dyn flotilla_core::store::EventStore>,
    refused: std::sync::atomic::AtomicBool,
    append_delay_ms: std::sync::atomic::AtomicU64,
    /// Reads attempted while refused.
    pub refused_reads: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for ReadsSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadsSwitch").finish_non_exhaustive()
    }
}

impl ReadsSwitch {
    pub fn over(inner: Arc<dyn flotilla_core::store::EventStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            refused: std::sync::atomic::AtomicBool::new(false),
            append_delay_ms: std::sync::atomic::AtomicU64::new(0),
            refused_reads: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// From now on every read fails (`false` lets them through again).
    pub fn refuse_reads(&self, refuse: bool) {
        self.refused
            .store(refuse, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every append waits this long before it reaches the store.
    pub fn delay_appends(&self, delay: Duration) {
        self.append_delay_ms.store(
            delay.as_millis() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    fn read(&self) -> flotilla_core::store::Result<()> {
        if self.refused.load(std::sync::atomic::Ordering::SeqCst) {
            self.refused_reads
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Err(flotilla_core::StoreError::Backend(
                "reads are switched off by the test".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl flotilla_core::store::EventStore for ReadsSwitch {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn append(
        &self,
        request: flotilla_core::store::AppendRequest,
    ) -> flotilla_core::store::Result<flotilla_core::store::AppendOutcome> {
        let delay = self
            .append_delay_ms
            .load(std::sync::atomic::Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.inner.append(request).await
    }

    async fn read_stream(
        &self,
        stream_id: &flotilla_core::ids::StreamId,
        from: Option<u64>,
        direction: flotilla_core::store::Direction,
        max: usize,
    ) -> flotilla_core::store::Result<Vec<flotilla_core::event::RecordedEvent>> {
        self.read()?;
        self.inner
            .read_stream(stream_id, from, direction, max)
            .await
    }

    async fn read_all(
        &self,
        from: u64,
        max: usize,
    ) -> flotilla_core::store::Result<Vec<flotilla_core::event::RecordedEvent>> {
        self.read()?;
        self.inner.read_all(from, max).await
    }

    async fn stream_version(
        &self,
        stream_id: &flotilla_core::ids::StreamId,
    ) -> flotilla_core::store::Result<Option<u64>> {
        self.read()?;
        self.inner.stream_version(stream_id).await
    }

    async fn head(&self) -> flotilla_core::store::Result<flotilla_core::chain::ChainHead> {
        self.read()?;
        self.inner.head().await
    }

    fn head_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.head_watch()
    }

    async fn save_snapshot(
        &self,
        snapshot: flotilla_core::event::Snapshot,
    ) -> flotilla_core::store::Result<()> {
        self.inner.save_snapshot(snapshot).await
    }

    async fn load_snapshot(
        &self,
        stream_id: &flotilla_core::ids::StreamId,
    ) -> flotilla_core::store::Result<Option<flotilla_core::event::Snapshot>> {
        self.read()?;
        self.inner.load_snapshot(stream_id).await
    }

    async fn load_checkpoint(&self, name: &str) -> flotilla_core::store::Result<Option<u64>> {
        self.inner.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, position: u64) -> flotilla_core::store::Result<()> {
        self.inner.save_checkpoint(name, position).await
    }

    async fn save_checkpoint_fenced(
        &self,
        name: &str,
        position: u64,
        fence: &flotilla_core::lease::Fence,
    ) -> flotilla_core::store::Result<()> {
        self.inner
            .save_checkpoint_fenced(name, position, fence)
            .await
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> flotilla_core::store::Result<Option<flotilla_core::lease::Fence>> {
        self.inner.acquire_lease(name, holder, ttl).await
    }

    async fn release_lease(
        &self,
        fence: &flotilla_core::lease::Fence,
    ) -> flotilla_core::store::Result<()> {
        self.inner.release_lease(fence).await
    }

    async fn lease(
        &self,
        name: &str,
    ) -> flotilla_core::store::Result<Option<flotilla_core::lease::LeaseState>> {
        self.inner.lease(name).await
    }

    async fn record_processed(&self, key: &str) -> flotilla_core::store::Result<bool> {
        self.inner.record_processed(key).await
    }

    async fn is_processed(&self, key: &str) -> flotilla_core::store::Result<bool> {
        self.read()?;
        self.inner.is_processed(key).await
    }
}
