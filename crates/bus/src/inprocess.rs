//! In-process bus for `flotilla up` and unit tests: an append-only log per service, durable
//! groups with committed offsets, redelivery of what was not acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{
    Acker, BusError, CloudEvent, Deliveries, Delivery, Namespace, Publisher, Result, Subscriber,
};

#[derive(Default)]
struct Log {
    events: Vec<CloudEvent>,
    /// Committed offset per group: every event before it is acknowledged.
    committed: HashMap<String, usize>,
    /// Acknowledged offsets beyond the committed one, per group.
    acked: HashMap<String, std::collections::BTreeSet<usize>>,
}

#[derive(Default)]
struct Shared {
    logs: Mutex<HashMap<String, Log>>,
    notify: Notify,
}

/// A bus that lives in this process.
#[derive(Clone, Default)]
pub struct InProcessBus {
    shared: Arc<Shared>,
    namespace: Namespace,
}

impl std::fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessBus").finish()
    }
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bus of a named deployment (`flotilla up` has one; tests make several).
    pub fn with_namespace(namespace: Namespace) -> Self {
        Self {
            shared: Arc::default(),
            namespace,
        }
    }

    /// How many of a service's messages a durable group has acknowledged (in order: every one
    /// before that count is).
    pub fn acknowledged(&self, service: &str, group: &str) -> usize {
        self.shared
            .logs
            .lock()
            .map(|l| {
                l.get(service)
                    .and_then(|l| l.committed.get(group).copied())
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Number of messages published for a service (duplicates included).
    pub fn published(&self, service: &str) -> usize {
        self.shared
            .logs
            .lock()
            .map(|l| l.get(service).map_or(0, |l| l.events.len()))
            .unwrap_or(0)
    }
}

fn poisoned<T>(_: T) -> BusError {
    BusError::Publish("in-process bus lock poisoned".into())
}

#[async_trait]
impl Publisher for InProcessBus {
    fn name(&self) -> &str {
        "inprocess"
    }

    fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    async fn publish(&self, service: &str, events: &[CloudEvent]) -> Result<()> {
        {
            let mut logs = self.shared.logs.lock().map_err(poisoned)?;
            let log = logs.entry(service.to_owned()).or_default();
            log.events.extend(events.iter().cloned());
        }
        self.shared.notify.notify_waiters();
        Ok(())
    }
}

struct InProcessDeliveries {
    shared: Arc<Shared>,
    service: String,
    group: String,
    cursor: usize,
}

struct InProcessAck {
    shared: Arc<Shared>,
    service: String,
    group: String,
    offset: usize,
}

#[async_trait]
impl Acker for InProcessAck {
    async fn ack(self: Box<Self>) -> Result<()> {
        let mut logs = self.shared.logs.lock().map_err(poisoned)?;
        let log = logs.entry(self.service.clone()).or_default();
        let committed = log.committed.get(&self.group).copied().unwrap_or(0);
        if self.offset < committed {
            // Acknowledged before (a redelivery to an earlier subscriber): nothing to record.
            return Ok(());
        }
        let acked = log.acked.entry(self.group.clone()).or_default();
        acked.insert(self.offset);
        let mut next = committed;
        while acked.remove(&next) {
            next += 1;
        }
        log.committed.insert(self.group.clone(), next);
        Ok(())
    }
}

#[async_trait]
impl Deliveries for InProcessDeliveries {
    async fn next(&mut self) -> Result<Delivery> {
        loop {
            let notified = self.shared.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let logs = self.shared.logs.lock().map_err(poisoned)?;
                if let Some(event) = logs
                    .get(&self.service)
                    .and_then(|l| l.events.get(self.cursor))
                {
                    let offset = self.cursor;
                    self.cursor += 1;
                    let ack = InProcessAck {
                        shared: self.shared.clone(),
                        service: self.service.clone(),
                        group: self.group.clone(),
                        offset,
                    };
                    return Ok(Delivery::new(event.clone(), Box::new(ack)));
                }
            }
            notified.await;
        }
    }
}

#[async_trait]
impl Subscriber for InProcessBus {
    async fn subscribe(&self, service: &str, group: &str) -> Result<Box<dyn Deliveries>> {
        let cursor = {
            let mut logs = self.shared.logs.lock().map_err(poisoned)?;
            let log = logs.entry(service.to_owned()).or_default();
            // A new subscriber resumes after the group's acknowledged prefix.
            log.acked.remove(group);
            *log.committed.entry(group.to_owned()).or_insert(0)
        };
        Ok(Box::new(InProcessDeliveries {
            shared: self.shared.clone(),
            service: service.into(),
            group: group.into(),
            cursor,
        }))
    }

    async fn consumer_lag(&self, service: &str, group: &str) -> Result<Option<u64>> {
        let logs = self.shared.logs.lock().map_err(poisoned)?;
        Ok(logs.get(service).and_then(|log| {
            let committed = log.committed.get(group)?;
            let acked_beyond = log.acked.get(group).map_or(0, |a| a.len());
            Some(log.events.len().saturating_sub(committed + acked_beyond) as u64)
        }))
    }
}
