//! The layer that counts every gRPC call: the code is the `grpc-status` of the answer's headers
//! (a refusal) or trailers (everything else).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body_util::BodyExt;

use super::Metrics;

/// Counts every gRPC call (see the module's documentation).
#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The layered service.
#[derive(Clone, Debug)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for MetricsService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
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
        let metrics = self.metrics.clone();
        let method = req.uri().path().to_owned();
        let started = Instant::now();
        Box::pin(async move {
            let response = inner.call(req).await?;
            if let Some(code) = response.headers().get("grpc-status") {
                // A trailers-only answer (a refusal): done now.
                let code = code.to_str().unwrap_or("2").to_owned();
                metrics.observe(&method, &code, started.elapsed().as_secs_f64());
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let stream = futures::stream::unfold(
                (body, Some((metrics, method, started))),
                |(mut body, mut pending)| async move {
                    let frame = body.frame().await;
                    let code = match &frame {
                        Some(Ok(f)) => f
                            .trailers_ref()
                            .and_then(|t| t.get("grpc-status"))
                            .map(|c| c.to_str().unwrap_or("2").to_owned()),
                        Some(Err(_)) => Some("2".to_owned()),
                        None => Some("2".to_owned()),
                    };
                    if let Some(code) = code
                        && let Some((m, method, started)) = pending.take()
                    {
                        m.observe(&method, &code, started.elapsed().as_secs_f64());
                    }
                    frame.map(|f| (f, (body, pending)))
                },
            );
            let body = tonic::body::Body::new(http_body_util::StreamBody::new(stream));
            Ok(http::Response::from_parts(parts, body))
        })
    }
}
