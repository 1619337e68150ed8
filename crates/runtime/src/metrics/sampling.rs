//! What a node samples for its metrics every few seconds: each service's store head, how far
//! each relay's checkpoint is behind it, what the store's writer measured, and how many events
//! each consumer group has not acknowledged on the bus it consumes from.

use std::sync::Arc;
use std::time::Duration;

use flotilla_bus::Bus;
use flotilla_core::store::EventStore;
use tokio::sync::watch;

use super::Metrics;

/// How often a node samples its stores and consumer groups.
const EVERY: Duration = Duration::from_secs(5);

/// The consumer groups of a bus: each (group, source) consuming on it.
pub(crate) struct Consumed {
    pub bus: Arc<dyn Bus>,
    pub groups: Vec<(String, String)>,
}

/// What a node samples.
pub(crate) struct Sampled {
    /// Each service's store.
    pub stores: Vec<(&'static str, Arc<dyn EventStore>)>,
    /// The buses its relays publish to.
    pub buses: Vec<Arc<dyn Bus>>,
    /// The bus consumers take from, and its groups.
    pub consumers: Option<Consumed>,
}

/// Samples until `stop` turns true.
pub(crate) async fn sample(
    metrics: Arc<Metrics>,
    sampled: Sampled,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        for (service, store) in &sampled.stores {
            if let Some(stats) = store.writer_stats() {
                metrics.set_writer(service, stats);
            }
            let Ok(head) = store.head().await else {
                continue;
            };
            let mut relays = Vec::new();
            for bus in &sampled.buses {
                let name = format!("relay:{service}:{}", bus.name());
                if let Ok(published) = store.load_checkpoint(&name).await {
                    relays.push((bus.name().to_owned(), published.unwrap_or(0)));
                }
            }
            metrics.set_store(service, head.position, &relays);
        }
        if let Some(Consumed { bus, groups }) = &sampled.consumers {
            for (group, source) in groups {
                match bus.consumer_lag(source, group).await {
                    Ok(Some(lag)) => metrics.set_consumer_lag(group, source, bus.name(), lag),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(group, source, error = %e, "consumer lag not sampled")
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
