//! The inbox: applies each delivered event once. The event id is recorded as an idempotency key
//! in the consumer's own store, in the same transaction as the append it causes, so a redelivered
//! event changes nothing.

use std::sync::Arc;

use flotilla_core::store::{AppendRequest, EventStore, inbox_key};

use crate::{CloudEvent, Delivery, Result};

/// What applying a delivery did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The event was new and its effect is recorded.
    Applied,
    /// The event had been applied before; nothing changed.
    Duplicate,
}

/// A consumer's inbox over its own store.
pub struct Inbox {
    store: Arc<dyn EventStore>,
    consumer: String,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("consumer", &self.consumer)
            .finish()
    }
}

impl Inbox {
    pub fn new(store: Arc<dyn EventStore>, consumer: impl Into<String>) -> Self {
        Self {
            store,
            consumer: consumer.into(),
        }
    }

    /// Applies a delivery: `decide` returns the append the event causes (or None when it
    /// changes nothing). The delivery is acknowledged after its effect is durable.
    pub async fn apply(
        &self,
        delivery: Delivery,
        decide: impl FnOnce(&CloudEvent) -> Option<AppendRequest>,
    ) -> Result<Applied> {
        let id = delivery.event.event_id()?;
        let key = inbox_key(&self.consumer, id);
        let applied = if self.store.is_processed(&key).await? {
            Applied::Duplicate
        } else {
            match decide(&delivery.event) {
                Some(request) => {
                    let outcome = self
                        .store
                        .append(request.consuming(&self.consumer, id))
                        .await?;
                    if outcome.deduplicated {
                        Applied::Duplicate
                    } else {
                        Applied::Applied
                    }
                }
                None => {
                    if self.store.record_processed(&key).await? {
                        Applied::Applied
                    } else {
                        Applied::Duplicate
                    }
                }
            }
        };
        delivery.ack().await?;
        Ok(applied)
    }
}
