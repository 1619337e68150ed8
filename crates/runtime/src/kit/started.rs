//! What a started service hands the node: its consumers and its background tasks (the app's
//! follower, schedulers), all run under the node's shutdown signal.

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::module::Consumer;

/// The node's shutdown signal, for a task to stop on.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new(rx: watch::Receiver<bool>) -> Self {
        Self(rx)
    }

    /// Resolves once the node shuts down.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }

    pub fn is_down(&self) -> bool {
        *self.0.borrow()
    }
}

/// A background task: given the shutdown signal, runs until it fires.
pub type Task = Box<dyn FnOnce(Shutdown) -> BoxFuture<'static, ()> + Send>;

/// A scheduler: runs on one replica of the service at a time, the one holding the service's
/// duty lease, started anew in each term it holds; its signal fires when the term ends. The
/// app's appends it makes (also from tasks it spawns through [`crate::kit::carry_term`]) are
/// fenced by the term, so a replica that lost the lease writes nothing more.
pub type Scheduler = std::sync::Arc<dyn Fn(Shutdown) -> BoxFuture<'static, ()> + Send + Sync>;

/// A started service.
#[derive(Default)]
pub struct Started {
    /// Other services' events it consumes.
    pub consumers: Vec<Consumer>,
    /// Tasks every replica runs until shutdown (the app's follower).
    pub tasks: Vec<Task>,
    /// Schedulers, run by one replica at a time.
    pub scheduled: Vec<Scheduler>,
    /// Whether the service checks its store's hash chain itself (its app does); otherwise the
    /// node runs the check.
    pub checks_chain: bool,
    /// Other logs its events are also relayed to, as those logs' own events (CDEvents).
    pub relays: Vec<Relayed>,
    /// Its domain gauges, read from its state at each scrape of the node's metrics.
    pub gauges: Option<crate::metrics::Gauges>,
}

/// A relay of a service's events to another log, each mapped by `outbound` (events it maps to
/// nothing stay off that log). Like the service's own relay, it tails the store from a
/// checkpoint of its own: no dual writes.
#[derive(Clone)]
pub struct Relayed {
    pub destination: &'static str,
    pub outbound: std::sync::Arc<dyn flotilla_bus::relay::Outbound>,
}

impl std::fmt::Debug for Relayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relayed")
            .field("destination", &self.destination)
            .finish()
    }
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("consumers", &self.consumers)
            .field("tasks", &self.tasks.len())
            .field("scheduled", &self.scheduled.len())
            .field("checks_chain", &self.checks_chain)
            .field("relays", &self.relays)
            .field("gauges", &self.gauges.is_some())
            .finish()
    }
}

impl Started {
    /// A service whose app checks the chain and whose follower is `task`.
    pub fn with_app(task: Task) -> Self {
        Self {
            consumers: Vec::new(),
            tasks: vec![task],
            scheduled: Vec::new(),
            checks_chain: true,
            relays: Vec::new(),
            gauges: None,
        }
    }

    /// Also relays the service's events to `destination`, mapped by `outbound`.
    pub fn relay_to(
        mut self,
        destination: &'static str,
        outbound: std::sync::Arc<dyn flotilla_bus::relay::Outbound>,
    ) -> Self {
        self.relays.push(Relayed {
            destination,
            outbound,
        });
        self
    }

    pub fn consume(mut self, consumer: Consumer) -> Self {
        self.consumers.push(consumer);
        self
    }

    pub fn task(mut self, task: Task) -> Self {
        self.tasks.push(task);
        self
    }

    pub fn scheduled(mut self, scheduler: Scheduler) -> Self {
        self.scheduled.push(scheduler);
        self
    }

    /// Reports domain gauges from the service's state (see [`crate::metrics::Sample`]).
    pub fn gauges(mut self, gauges: crate::metrics::Gauges) -> Self {
        self.gauges = Some(gauges);
        self
    }
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
#[error("{service} did not start: {reason}")]
pub struct StartError {
    pub service: &'static str,
    pub reason: String,
}

impl StartError {
    pub fn new(service: &'static str, reason: impl std::fmt::Display) -> Self {
        Self {
            service,
            reason: reason.to_string(),
        }
    }
}
