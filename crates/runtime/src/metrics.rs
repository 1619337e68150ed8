//! Prometheus metrics of a node, in the text exposition format on `/metrics` of its own HTTP
//! address (`metrics_listen`): gRPC requests by method and code, with a latency histogram; per
//! service, whether this replica holds the duty lease (and its term), the store's head and each
//! relay's lag behind it.
//!
//! The gRPC figures come from a layer over every route: the code is the `grpc-status` of the
//! answer's headers (a refusal) or trailers (everything else).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use http_body_util::BodyExt;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Latency {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The node's metrics.
#[derive(Default)]
pub struct Metrics {
    /// (method, code) -> requests.
    requests: Mutex<BTreeMap<(String, String), u64>>,
    /// method -> latency.
    latency: Mutex<BTreeMap<String, Latency>>,
    /// service -> the term of the duty lease this replica holds (None: not held).
    duties: Mutex<BTreeMap<String, Option<u64>>>,
    /// service -> the store's head position.
    heads: Mutex<BTreeMap<String, u64>>,
    /// (service, bus) -> events stored but not yet published by this deployment's relay.
    relay_lag: Mutex<BTreeMap<(String, String), u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The name of a gRPC status code as Prometheus labels carry it (`OK`, `NOT_FOUND`...).
fn code_name(code: &str) -> String {
    let n: i32 = code.trim().parse().unwrap_or(2);
    format!("{:?}", tonic::Code::from_i32(n))
        .chars()
        .fold(String::new(), |mut s, c| {
            if c.is_uppercase() && !s.is_empty() {
                s.push('_');
            }
            s.push(c.to_ascii_uppercase());
            s
        })
}

/// A label value escaped for the exposition format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one finished call.
    pub fn observe(&self, method: &str, code: &str, seconds: f64) {
        *lock(&self.requests)
            .entry((method.to_owned(), code_name(code)))
            .or_default() += 1;
        let mut latency = lock(&self.latency);
        let l = latency.entry(method.to_owned()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                l.counts[i] += 1;
            }
        }
        l.count += 1;
        l.sum += seconds;
    }

    /// Whether this replica holds `service`'s duty lease, and in which term.
    pub fn set_duty(&self, service: &str, term: Option<u64>) {
        lock(&self.duties).insert(service.to_owned(), term);
    }

    /// `service`'s store head, and how far each relay's checkpoint is behind it.
    pub fn set_store(&self, service: &str, head: u64, relays: &[(String, u64)]) {
        lock(&self.heads).insert(service.to_owned(), head);
        let mut lag = lock(&self.relay_lag);
        for (bus, published) in relays {
            lag.insert(
                (service.to_owned(), bus.clone()),
                head.saturating_sub(*published),
            );
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP flotilla_lease_held Whether this replica holds the service's duty lease (runs its relays and schedulers).\n# TYPE flotilla_lease_held gauge\n");
        let duties = lock(&self.duties).clone();
        for (service, term) in &duties {
            out.push_str(&format!(
                "flotilla_lease_held{{service=\"{}\"}} {}\n",
                label(service),
                u8::from(term.is_some())
            ));
        }
        out.push_str("# HELP flotilla_lease_term The fencing token of the duty lease's term this replica holds.\n# TYPE flotilla_lease_term gauge\n");
        for (service, term) in duties.iter().filter_map(|(s, t)| t.map(|t| (s, t))) {
            out.push_str(&format!(
                "flotilla_lease_term{{service=\"{}\"}} {term}\n",
                label(service)
            ));
        }
        out.push_str("# HELP flotilla_store_head_position The newest position of the service's store.\n# TYPE flotilla_store_head_position gauge\n");
        for (service, head) in lock(&self.heads).iter() {
            out.push_str(&format!(
                "flotilla_store_head_position{{service=\"{}\"}} {head}\n",
                label(service)
            ));
        }
        out.push_str("# HELP flotilla_relay_lag_events Events in the service's store not yet published to the bus.\n# TYPE flotilla_relay_lag_events gauge\n");
        for ((service, bus), lag) in lock(&self.relay_lag).iter() {
            out.push_str(&format!(
                "flotilla_relay_lag_events{{service=\"{}\",bus=\"{}\"}} {lag}\n",
                label(service),
                label(bus)
            ));
        }
        out.push_str("# HELP flotilla_grpc_requests_total gRPC calls answered, by method and code.\n# TYPE flotilla_grpc_requests_total counter\n");
        for ((method, code), n) in lock(&self.requests).iter() {
            out.push_str(&format!(
                "flotilla_grpc_requests_total{{method=\"{}\",code=\"{}\"}} {n}\n",
                label(method),
                label(code)
            ));
        }
        out.push_str("# HELP flotilla_grpc_request_duration_seconds Time to answer a gRPC call, by method.\n# TYPE flotilla_grpc_request_duration_seconds histogram\n");
        for (method, l) in lock(&self.latency).iter() {
            let m = label(method);
            for (i, b) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "flotilla_grpc_request_duration_seconds_bucket{{method=\"{m}\",le=\"{b}\"}} {}\n",
                    l.counts[i]
                ));
            }
            out.push_str(&format!(
                "flotilla_grpc_request_duration_seconds_bucket{{method=\"{m}\",le=\"+Inf\"}} {}\nflotilla_grpc_request_duration_seconds_sum{{method=\"{m}\"}} {}\nflotilla_grpc_request_duration_seconds_count{{method=\"{m}\"}} {}\n",
                l.count, l.sum, l.count
            ));
        }
        out
    }

    /// Serves `/metrics` on `listener` until `shutdown` resolves (a minimal HTTP/1.1 server:
    /// Prometheus asks with a GET and reads one answer per connection).
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = &mut shutdown => return,
            };
            let Ok((mut sock, _)) = accepted else {
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 2048];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let reply = if request.starts_with("GET /metrics") {
                    let body = me.render();
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 20\r\nconnection: close\r\n\r\nmetrics are /metrics".to_owned()
                };
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_calls_by_method_and_code_with_a_histogram() {
        let m = Metrics::default();
        m.observe("/flotilla.x.v1.XService/Get", "0", 0.002);
        m.observe("/flotilla.x.v1.XService/Get", "0", 0.2);
        m.observe("/flotilla.x.v1.XService/Get", "5", 0.0001);
        let text = m.render();
        assert!(
            text.contains(
                "flotilla_grpc_requests_total{method=\"/flotilla.x.v1.XService/Get\",code=\"OK\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("flotilla_grpc_requests_total{method=\"/flotilla.x.v1.XService/Get\",code=\"NOT_FOUND\"} 1"), "{text}");
        assert!(text.contains("flotilla_grpc_request_duration_seconds_bucket{method=\"/flotilla.x.v1.XService/Get\",le=\"0.0025\"} 2"), "{text}");
        assert!(text.contains("flotilla_grpc_request_duration_seconds_bucket{method=\"/flotilla.x.v1.XService/Get\",le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("flotilla_grpc_request_duration_seconds_count{method=\"/flotilla.x.v1.XService/Get\"} 3"), "{text}");
    }
}
