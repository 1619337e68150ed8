//! The interceptor every Flotilla gRPC server runs (a tower layer over all routes).
//!
//! Health and reflection stay open (probes and API discovery). Every other call needs a bearer
//! token: none or an invalid one is `UNAUTHENTICATED`; a listed operation that the policies
//! refuse is `PERMISSION_DENIED`; an operation not in [`crate::operations`] is only for admins.
//! The caller's identity travels to handlers as a [`Caller`] request extension, where
//! business-unit and segregation-of-duties checks with the target's facts happen.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::operations::{self, Operation};
use crate::policy::{AccessContext, Authorizer, Decision};
use crate::token::TokenVerifier;
use crate::{AuthError, Identity};

/// The authenticated caller of a request, and the operation it calls.
#[derive(Clone, Debug)]
pub struct Caller {
    pub identity: Arc<Identity>,
    pub operation: &'static Operation,
}

/// A refused call, reported so it can be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRefusal {
    /// Subject, roles and unit when a valid token was shown.
    pub identity: Option<Identity>,
    /// gRPC path called.
    pub path: String,
    /// `UNAUTHENTICATED` or `PERMISSION_DENIED`.
    pub code: tonic::Code,
    pub reason: String,
    /// Policies that refused it (for `PERMISSION_DENIED`).
    pub policies: Vec<String>,
}

/// Receives refusals (the runtime records them as events; it must not block).
pub trait RefusalSink: Send + Sync {
    fn refused(&self, refusal: AccessRefusal);
}

/// Turns a verified subject into the pseudonym the platform records and decides on: personal
/// data is sealed at the door, so every comparison, record and refusal after it holds the
/// pseudonym (the runtime seals with the subject's key from the keyring).
pub trait Pseudonyms: Send + Sync {
    fn pseudonym<'a>(
        &'a self,
        subject: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
}

/// What the interceptor checks with.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<TokenVerifier>,
    authorizer: Arc<Authorizer>,
    sink: Arc<dyn RefusalSink>,
    pseudonyms: Option<Arc<dyn Pseudonyms>>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer").finish_non_exhaustive()
    }
}

impl AuthLayer {
    pub fn new(
        verifier: Arc<TokenVerifier>,
        authorizer: Arc<Authorizer>,
        sink: Arc<dyn RefusalSink>,
    ) -> Self {
        Self {
            verifier,
            authorizer,
            sink,
            pseudonyms: None,
        }
    }

    /// Callers' subjects are replaced by their pseudonyms once their token is verified.
    pub fn with_pseudonyms(mut self, pseudonyms: Arc<dyn Pseudonyms>) -> Self {
        self.pseudonyms = Some(pseudonyms);
        self
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.clone(),
        }
    }
}

/// The layered service.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: AuthLayer,
}

impl<S> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

/// The operation an unlisted path is checked as: only admins may call it.
static UNLISTED: Operation = Operation {
    service: "",
    method: "",
    action: "unlisted",
    group: "unlisted",
};

fn open_path(path: &str) -> bool {
    path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.")
}

/// Reads the bearer token of a request's headers.
pub fn bearer(headers: &http::HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::MissingToken)?;
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidToken("authorization header is not ASCII".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| {
            AuthError::InvalidToken("authorization header is not `Bearer <jwt>`".into())
        })?;
    Ok(token.trim())
}

impl AuthLayer {
    /// Authenticates and checks a call; on refusal reports it and answers the status.
    pub async fn check(
        &self,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Result<Caller, tonic::Status> {
        let identity = match bearer(headers) {
            Ok(token) => self.verifier.verify(token).await,
            Err(e) => Err(e),
        };
        let mut identity = match identity {
            Ok(i) => i,
            Err(e) => {
                return Err(self.report(
                    None,
                    path.to_owned(),
                    tonic::Code::Unauthenticated,
                    e.to_string(),
                    Vec::new(),
                ));
            }
        };
        if let Some(p) = &self.pseudonyms {
            let sealed = p.pseudonym(&identity.subject).await.map_err(|e| {
                tracing::error!(path, error = %e, "the caller's subject cannot be sealed");
                tonic::Status::unavailable(format!(
                    "the keyring is unavailable ({e}); retry shortly, or check keyring_url"
                ))
            })?;
            Arc::make_mut(&mut identity).subject = sealed;
        }
        let operation = operations::by_path(path).unwrap_or(&UNLISTED);
        let decision =
            self.authorizer
                .authorize(&identity, operation.action, "", &AccessContext::default());
        if !decision.allowed {
            let action = if operation.action == "unlisted" {
                path
            } else {
                operation.action
            };
            return Err(self.report(
                Some(&identity),
                path.to_owned(),
                tonic::Code::PermissionDenied,
                decision.refusal_message(&identity, action, ""),
                decision.policies.clone(),
            ));
        }
        Ok(Caller {
            identity,
            operation,
        })
    }

    /// Checks a caller against a business unit and target facts inside a handler; refusals are
    /// reported like the interceptor's.
    pub fn authorize_in(
        &self,
        caller: &Caller,
        scope: &str,
        context: &AccessContext,
    ) -> Result<(), tonic::Status> {
        let d = self.decide_in(caller, scope, context);
        if d.allowed {
            return Ok(());
        }
        Err(self.refuse(caller, scope, d))
    }

    /// The policies' answer for a caller in a business unit with target facts.
    pub fn decide_in(
        &self,
        caller: &Caller,
        scope: &str,
        context: &AccessContext,
    ) -> Arc<Decision> {
        self.authorizer
            .authorize(&caller.identity, caller.operation.action, scope, context)
    }

    /// Reports a refusal and answers its `PERMISSION_DENIED` status.
    pub fn refuse(&self, caller: &Caller, scope: &str, d: Arc<Decision>) -> tonic::Status {
        self.report(
            Some(&caller.identity),
            format!("/{}/{}", caller.operation.service, caller.operation.method),
            tonic::Code::PermissionDenied,
            d.refusal_message(&caller.identity, caller.operation.action, scope),
            d.policies.clone(),
        )
    }

    /// Logs and reports a refusal and answers its status.
    fn report(
        &self,
        identity: Option<&Identity>,
        path: String,
        code: tonic::Code,
        reason: String,
        policies: Vec<String>,
    ) -> tonic::Status {
        tracing::warn!(
            path,
            subject = identity.map(|i| i.subject.as_str()).unwrap_or_default(),
            code = ?code,
            %reason,
            "call refused"
        );
        self.sink.refused(AccessRefusal {
            identity: identity.cloned(),
            path,
            code,
            reason: reason.clone(),
            policies,
        });
        tonic::Status::new(code, reason)
    }

    pub fn authorizer(&self) -> &Arc<Authorizer> {
        &self.authorizer
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for AuthService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        // Take the service that was driven to readiness; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            if open_path(&path) {
                return inner.call(req).await;
            }
            match auth.check(&path, req.headers()).await {
                Ok(caller) => {
                    req.extensions_mut().insert(caller);
                    req.extensions_mut().insert(auth.clone());
                    let mut response = inner.call(req).await?;
                    caller_errors_are_named(&mut response);
                    Ok(response)
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// tonic answers a request body that is not the method's protobuf message with INTERNAL, and
/// one above the message size limit with OUT_OF_RANGE; both are the caller's doing, so they
/// become INVALID_ARGUMENT and RESOURCE_EXHAUSTED (the size limit is `max_message_bytes`).
fn caller_errors_are_named<B>(response: &mut http::Response<B>) {
    let headers = response.headers_mut();
    let status = headers.get("grpc-status").map(|v| v.as_bytes().to_vec());
    let message = headers
        .get("grpc-message")
        .map(|v| percent_decode_message(v.as_bytes()))
        .unwrap_or_default();
    match status.as_deref() {
        Some(b"13") if message.contains("decode") => {
            headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        }
        Some(b"11") if message.contains("message length too large") => {
            // "Error, decoded message length too large: found N bytes, the limit is: M bytes"
            let numbers: Vec<&str> = message
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .collect();
            let text = match numbers.as_slice() {
                [.., found, limit] => format!(
                    "the request message is {found} bytes; at most {limit} bytes are accepted (max_message_bytes)"
                ),
                _ => "the request message is larger than max_message_bytes".to_owned(),
            };
            headers.insert("grpc-status", http::HeaderValue::from_static("8"));
            if let Ok(v) = http::HeaderValue::from_str(&percent_encode_message(&text)) {
                headers.insert("grpc-message", v);
            }
        }
        _ => {}
    }
}

/// Reverses the percent-encoding of `grpc-message` (lossy for invalid UTF-8).
fn percent_decode_message(v: &[u8]) -> String {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let hex = (v[i] == b'%')
            .then(|| v.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(v[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// gRPC's percent-encoding of `grpc-message`.
fn percent_encode_message(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The caller and the access checker of a request that passed the interceptor.
pub fn caller_of<T>(req: &tonic::Request<T>) -> Result<(Caller, AuthLayer), tonic::Status> {
    let caller = req.extensions().get::<Caller>().cloned();
    let auth = req.extensions().get::<AuthLayer>().cloned();
    match (caller, auth) {
        (Some(c), Some(a)) => Ok((c, a)),
        _ => Err(tonic::Status::unauthenticated(
            "request did not pass the access interceptor",
        )),
    }
}

/// A client-side tonic interceptor that sends a bearer token (or none, when empty).
#[derive(Clone, Debug)]
pub struct Bearer(Option<tonic::metadata::AsciiMetadataValue>);

impl Bearer {
    /// Panics on a token with non-ASCII characters; use [`Bearer::try_new`] for outside input.
    pub fn new(token: &str) -> Self {
        Self::try_new(token).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_new(token: &str) -> Result<Self, AuthError> {
        if token.is_empty() {
            return Ok(Self(None));
        }
        format!("Bearer {}", token.trim())
            .parse()
            .map(|v| Self(Some(v)))
            .map_err(|_| {
                AuthError::InvalidToken("token holds characters a header cannot carry".into())
            })
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}
