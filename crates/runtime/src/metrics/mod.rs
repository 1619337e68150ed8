//! Prometheus metrics of a node, in the text exposition format on `/metrics` of its own HTTP
//! address (`metrics_listen`), beside `/healthz` (the process answers) and `/readyz` (every
//! service served here answers: for probes that cannot speak TLS to the gRPC port):
//! - gRPC requests by method and code, with a latency histogram ([`layer`]);
//! - per service, whether this replica holds the duty lease (and its term), the store's head,
//!   each relay's lag behind it, the store writer's append latency and events per transaction,
//!   and each consumer group's lag on the bus ([`sampling`], every few seconds);
//! - the domain gauges each service reports from its state ([`Sample`]), read at each scrape on
//!   the replica holding the service's duty lease (every replica has the same state: one
//!   reports it, so sums across replicas hold); counters of what a process answered come from
//!   every replica.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use flotilla_core::writer_stats::WriterStats;

mod exposition;
pub mod layer;
pub(crate) mod sampling;

pub use layer::{MetricsLayer, MetricsService};

/// How long one exchange with the HTTP server may take.
const REQUEST_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Connections the HTTP server answers at once.
const CONNECTIONS: usize = 64;

/// Upper bounds of the gRPC latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Latency {
    /// Cumulative per bound.
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// One value of a domain gauge, as a service reports it from its state (e.g. deployments in
/// flight per business unit and environment).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric's full name (`flotilla_…`).
    pub name: &'static str,
    pub help: &'static str,
    /// `gauge`, or `counter` for a total that only grows while the process runs.
    pub kind: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Sample {
    /// A gauge's value.
    pub fn new(name: &'static str, help: &'static str, value: f64) -> Self {
        Self {
            name,
            help,
            kind: "gauge",
            labels: Vec::new(),
            value,
        }
    }

    /// A counter's value (the name ends in `_total`).
    pub fn counter(name: &'static str, help: &'static str, value: f64) -> Self {
        Self {
            kind: "counter",
            ..Self::new(name, help, value)
        }
    }

    pub fn label(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.labels.push((name, value.into()));
        self
    }
}

/// A service's domain gauges, read from its state at each scrape (cheap: a state query).
pub type Gauges = Arc<dyn Fn() -> Vec<Sample> + Send + Sync>;

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
    /// service -> what its store's writer measured.
    writers: Mutex<BTreeMap<String, WriterStats>>,
    /// (group, source, bus) -> events the consumer group has not acknowledged.
    consumer_lag: Mutex<BTreeMap<(String, String, String), u64>>,
    /// Each service's domain gauges.
    gauges: Mutex<Vec<(String, Gauges)>>,
    /// service -> whether this replica reads its store.
    readable: Mutex<BTreeMap<String, bool>>,
    /// The services served here and their store checks (`/readyz`).
    served: Mutex<Vec<(String, Arc<crate::integrity::ChainGuard>)>>,
    /// Whether the node is shutting down.
    draining: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// Counts one finished call.
    pub fn observe(&self, method: &str, code: &str, seconds: f64) {
        *lock(&self.requests)
            .entry((method.to_owned(), exposition::code_name(code)))
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

    /// What `service`'s store writer measured so far.
    pub fn set_writer(&self, service: &str, stats: WriterStats) {
        lock(&self.writers).insert(service.to_owned(), stats);
    }

    /// Events of `source` the consumer group `group` has not acknowledged on `bus` (None: not
    /// known here now; the series is dropped).
    pub fn set_consumer_lag(&self, group: &str, source: &str, bus: &str, lag: Option<u64>) {
        let key = (group.to_owned(), source.to_owned(), bus.to_owned());
        let mut lags = lock(&self.consumer_lag);
        match lag {
            Some(lag) => {
                lags.insert(key, lag);
            }
            None => {
                lags.remove(&key);
            }
        }
    }

    /// Whether this replica reads `service`'s store (its chain is intact and every event
    /// decodes).
    pub fn set_readable(&self, service: &str, readable: bool) {
        lock(&self.readable).insert(service.to_owned(), readable);
    }

    /// Whether this replica holds `service`'s duty lease.
    pub fn holds(&self, service: &str) -> bool {
        lock(&self.duties).get(service).is_some_and(Option::is_some)
    }

    /// The node stops taking calls: `/readyz` says so from now on.
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Follows `service`'s store check for `/readyz`.
    pub fn ready_when(&self, service: &str, chain: Arc<crate::integrity::ChainGuard>) {
        lock(&self.served).push((service.to_owned(), chain));
    }

    /// Whether every service served here answers: its store's chain checked to the head and
    /// unbroken (as its gRPC health says SERVING). The error names what does not.
    pub fn readiness(&self) -> Result<(), String> {
        if self.draining.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("shutting down: draining the calls under way\n".into());
        }
        let served = lock(&self.served);
        if served.is_empty() {
            return Err("starting: no service is set up yet\n".into());
        }
        let mut not: Vec<String> = Vec::new();
        for (service, chain) in served.iter() {
            if let Some(b) = chain.broken() {
                not.push(format!("{service}: not serving: {b}"));
            } else if !chain.is_caught_up() {
                not.push(format!(
                    "{service}: checking its store's chain (at {})",
                    chain.verified_to()
                ));
            }
        }
        if not.is_empty() {
            Ok(())
        } else {
            Err(not.join("\n") + "\n")
        }
    }

    /// Adds `service`'s domain gauges.
    pub fn add_gauges(&self, service: &str, gauges: Gauges) {
        lock(&self.gauges).push((service.to_owned(), gauges));
    }

    /// Serves `/metrics` on `listener` until `shutdown` resolves (a minimal HTTP/1.1 server:
    /// Prometheus asks with a GET and reads one answer per connection).
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        let connections = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = &mut shutdown => return,
            };
            let mut sock = match accepted {
                Ok((sock, _)) => sock,
                Err(e) if crate::tls::resource_exhausted(&e) => {
                    tracing::warn!(error = %e, "accepting a metrics connection failed; pausing");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
                Err(_) => continue,
            };
            // At most so many at once; more are closed unanswered.
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let _permit = permit;
                // The whole exchange is bounded: a client that never reads its answer holds
                // nothing for long.
                let _ = tokio::time::timeout(REQUEST_WAIT, me.answer(&mut sock)).await;
            });
        }
    }

    /// Reads one request and answers it.
    async fn answer(&self, sock: &mut tokio::net::TcpStream) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = [0u8; 2048];
        let n = sock.read(&mut buf).await.unwrap_or(0);
        let request = String::from_utf8_lossy(&buf[..n]);
        let path = request.split_whitespace().nth(1).unwrap_or_default();
        let (status, kind, body) = match (request.starts_with("GET "), path) {
            (true, "/metrics") => ("200 OK", "text/plain; version=0.0.4", self.render()),
            (true, "/healthz") => ("200 OK", "text/plain", "alive\n".to_owned()),
            (true, "/readyz") => match self.readiness() {
                Ok(()) => ("200 OK", "text/plain", "ready\n".to_owned()),
                Err(why) => ("503 Service Unavailable", "text/plain", why),
            },
            _ => (
                "404 Not Found",
                "text/plain",
                "this address serves /metrics, /healthz and /readyz\n".to_owned(),
            ),
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(reply.as_bytes()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_says_what_is_not_ready() {
        let m = Metrics::default();
        let why = m.readiness().expect_err("nothing set up");
        assert!(why.contains("starting"), "{why}");
        m.ready_when("approvals", crate::integrity::ChainGuard::new("approvals"));
        let why = m.readiness().expect_err("not checked yet");
        assert!(
            why.contains("approvals: checking its store's chain"),
            "{why}"
        );
        m.drain();
        let why = m.readiness().expect_err("draining");
        assert!(why.contains("shutting down"), "{why}");
    }
}
