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
