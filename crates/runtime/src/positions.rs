//! Read-your-writes across replicas. Every answer to a caller the access check let in carries,
//! in the `x-flotilla-position` header,
//! the position in the service's store its state included when it answered (a command answers
//! once its events are in the state, so its answer's position covers them). A call carrying
//! `x-flotilla-min-position: N` is answered by a replica only once its state includes N, waiting
//! at most `x-flotilla-wait-ms` (default 5,000, at most 30,000): any replica then answers as
//! the one that took the command would. The wait comes after the access check (token and role):
//! only a caller let in may hold a call open (a business unit's check comes in the handler).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;

/// Answer header: the position the answering state included.
pub const POSITION: &str = "x-flotilla-position";
/// Request header: the position the answering state must include.
pub const MIN_POSITION: &str = "x-flotilla-min-position";
/// Request header: how long to wait for it, in milliseconds.
pub const WAIT_MS: &str = "x-flotilla-wait-ms";

const DEFAULT_WAIT: Duration = Duration::from_secs(5);
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Where a service's state stands in its store (set once its app is built).
#[derive(Clone, Debug, Default)]
pub struct StatePosition(Arc<OnceLock<watch::Receiver<u64>>>);

impl StatePosition {
    /// Follows the app's applied position (the first app of the service only).
    pub fn track(&self, applied: watch::Receiver<u64>) {
        let _ = self.0.set(applied);
    }

    /// The position the state includes now (None: not tracked).
    pub fn current(&self) -> Option<u64> {
        self.0.get().map(|rx| *rx.borrow())
    }

    /// Whether the service's state tells its position (a service without the kit's app does
    /// not, and cannot be asked to read after one).
    pub fn tracked(&self) -> bool {
        self.0.get().is_some()
    }

    /// Waits until the state includes `position`, at most `wait`; the position reached.
    pub async fn reach(&self, position: u64, wait: Duration) -> Result<u64, u64> {
        let Some(rx) = self.0.get() else {
            return Err(0);
        };
        let mut rx = rx.clone();
        let reached = tokio::time::timeout(wait, rx.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok());
        let now = *rx.borrow();
        if reached { Ok(now) } else { Err(now) }
    }
}

/// What a call asks to read after: the position and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadAfter {
    pub position: u64,
    pub wait: Duration,
}

/// The read-after a call's headers ask for; INVALID_ARGUMENT when they are malformed.
pub fn read_after(headers: &http::HeaderMap) -> Result<Option<ReadAfter>, tonic::Status> {
    let Some(v) = headers.get(MIN_POSITION) else {
        return Ok(None);
    };
    let position = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            tonic::Status::invalid_argument(format!(
                "{MIN_POSITION} must be a store position (a whole number from a {POSITION} answer header)"
            ))
        })?;
    let wait = match headers.get(WAIT_MS) {
        None => DEFAULT_WAIT,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_millis)
            .filter(|w| *w <= MAX_WAIT)
            .ok_or_else(|| {
                tonic::Status::invalid_argument(format!(
                    "{WAIT_MS} must be milliseconds from 0 to {}",
                    MAX_WAIT.as_millis()
                ))
            })?,
    };
    Ok(Some(ReadAfter { position, wait }))
}

/// The refusal of a read after a position of a service whose state tells none.
pub fn untracked(service: &str) -> tonic::Status {
    tonic::Status::failed_precondition(format!(
        "{service} does not tell store positions, so it cannot read after one; drop {MIN_POSITION}"
    ))
}

/// The refusal when the state did not reach the position in time.
pub fn not_reached(service: &str, asked: ReadAfter, at: u64) -> tonic::Status {
    tonic::Status::unavailable(format!(
        "{service} on this replica is at position {at}, not yet at {} (waited {} ms); try again, or raise {WAIT_MS}",
        asked.position,
        asked.wait.as_millis()
    ))
}

/// Holds a call that asks to read after a position until the service's state includes it, and
/// tells in every answer the position the state included.
#[derive(Clone, Debug)]
pub struct ReadYourWritesLayer {
    positions: Arc<HashMap<String, StatePosition>>,
}

impl ReadYourWritesLayer {
    /// The positions of the services served, by gRPC service name.
    pub fn new(positions: HashMap<String, StatePosition>) -> Self {
        Self {
            positions: Arc::new(positions),
        }
    }
}

impl<S> tower::Layer<S> for ReadYourWritesLayer {
    type Service = ReadYourWrites<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReadYourWrites {
            inner,
            positions: self.positions.clone(),
        }
    }
}

/// The layered service.
#[derive(Clone, Debug)]
pub struct ReadYourWrites<S> {
    inner: S,
    positions: Arc<HashMap<String, StatePosition>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for ReadYourWrites<S>
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

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let service = req
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let position = self.positions.get(&service).cloned();
        let asked = read_after(req.headers());
        Box::pin(async move {
            let Some(position) = position else {
                return inner.call(req).await;
            };
            let refused = |status: tonic::Status| {
                tracing::info!(service = %flotilla_core::names::shown(&service), code = ?status.code(), error = %status.message(), "read after a position refused");
                Ok(status.into_http())
            };
            match asked {
                Err(status) => return refused(status),
                Ok(Some(_)) if !position.tracked() => return refused(untracked(&service)),
                Ok(Some(asked)) => {
                    if let Err(at) = position.reach(asked.position, asked.wait).await {
                        return refused(not_reached(&service, asked, at));
                    }
                }
                Ok(None) => {}
            }
            let mut response = inner.call(req).await?;
            if let Some(at) = position.current() {
                response
                    .headers_mut()
                    .insert(POSITION, http::HeaderValue::from(at));
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn read_after_headers_are_checked() {
        assert_eq!(read_after(&headers(&[])).expect("none"), None);
        assert_eq!(
            read_after(&headers(&[(MIN_POSITION, "42")])).expect("default wait"),
            Some(ReadAfter {
                position: 42,
                wait: DEFAULT_WAIT
            })
        );
        assert_eq!(
            read_after(&headers(&[(MIN_POSITION, "7"), (WAIT_MS, "250")]))
                .expect("wait")
                .map(|r| r.wait),
            Some(Duration::from_millis(250))
        );
        for bad in [
            vec![(MIN_POSITION, "-1")],
            vec![(MIN_POSITION, "x")],
            vec![(MIN_POSITION, "1"), (WAIT_MS, "999999")],
        ] {
            let e = read_after(&headers(&bad)).expect_err("malformed");
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
        }
    }

    #[tokio::test]
    async fn a_read_waits_for_the_position() {
        let (tx, rx) = watch::channel(3u64);
        let p = StatePosition::default();
        assert_eq!(p.current(), None);
        p.track(rx);
        assert_eq!(p.current(), Some(3));
        assert_eq!(p.reach(3, Duration::ZERO).await, Ok(3));
        assert_eq!(p.reach(5, Duration::from_millis(50)).await, Err(3));
        let waiting = tokio::spawn({
            let p = p.clone();
            async move { p.reach(5, Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send_replace(6);
        assert_eq!(waiting.await.expect("join"), Ok(6));
    }
}
