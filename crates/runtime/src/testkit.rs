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

/// A service module served on `127.0.0.1:0` over a store, with the test interceptor.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub refusals: Arc<RecordedRefusals>,
    pub authorizer: Arc<Authorizer>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
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
    pub async fn start(
        module: &dyn crate::ServiceModule,
        store: Arc<dyn flotilla_core::store::EventStore>,
    ) -> Self {
        let authorizer = Arc::new(
            Authorizer::with_default_policy().unwrap_or_else(|e| panic!("authorizer: {e}")),
        );
        let mut ctx = crate::ServiceContext::new(module.name(), store, authorizer);
        ctx.policy_signer = Some(Arc::new(test_signer()));
        Self::start_with(module, ctx).await
    }

    /// Serves `module` with a context the test made (its configuration, chain check, signer).
    pub async fn start_with(module: &dyn crate::ServiceModule, ctx: crate::ServiceContext) -> Self {
        let authorizer = ctx.authorizer.clone();
        let chain = ctx.chain.clone();
        let (access, refusals) = test_layer(authorizer.clone()).await;
        let mut routes = tonic::service::RoutesBuilder::default();
        let served: Vec<crate::server::Served> = module
            .grpc_services()
            .into_iter()
            .map(|name| crate::server::Served {
                name,
                chain: chain.clone(),
            })
            .collect();
        module.register(ctx, &mut routes);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            if let Err(e) = crate::server::serve(listener, routes, &served, access, async {
                let _ = rx.await;
            })
            .await
            {
                panic!("serve: {e}");
            }
        });
        Self {
            addr,
            refusals,
            authorizer,
            stop: Some(stop),
            task: Some(task),
        }
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

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take()
            && let Err(e) = t.await
        {
            panic!("the server stopped with an error: {e}");
        }
    }
}
