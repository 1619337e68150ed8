//! Subscribing to a whole store: catch up from a position, signal when caught up, then follow
//! live appends. Because positions are gap-free in commit order, reading by position never skips
//! an event whose transaction committed late.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::event::RecordedEvent;
use crate::store::{EventStore, Result};

/// What a subscription yields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum SubscriptionItem {
    Event(RecordedEvent),
    /// Sent once, when the subscriber has read everything committed so far; `position` is the
    /// last position delivered (0 when none).
    CaughtUp {
        position: u64,
    },
}

/// A live subscription; dropping it stops the reader task.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Result<SubscriptionItem>>,
    task: JoinHandle<()>,
}

impl Subscription {
    /// The next item, or None when the reader stopped after an error was delivered.
    pub async fn next(&mut self) -> Option<Result<SubscriptionItem>> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Options of a subscription.
#[derive(Clone, Copy, Debug)]
pub struct SubscribeOptions {
    /// Events read per query.
    pub page: usize,
    /// How often to look for appends made by other processes (appends through the same store
    /// handle wake the reader at once).
    pub poll_interval: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            page: 1_000,
            poll_interval: Duration::from_millis(250),
        }
    }
}

/// Subscribes to every event from global position `from` (inclusive).
pub fn subscribe_all(
    store: Arc<dyn EventStore>,
    from: u64,
    options: SubscribeOptions,
) -> Subscription {
    let (tx, rx) = mpsc::channel(options.page.max(16) * 2);
    let task = tokio::spawn(async move {
        let mut next = from.max(1);
        let mut caught_up = false;
        let mut watch = store.head_watch();
        loop {
            watch.borrow_and_update();
            let page = match store.read_all(next, options.page).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            if let Some(last) = page.last() {
                next = last.global_position + 1;
                for e in page {
                    if tx.send(Ok(SubscriptionItem::Event(e))).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            if !caught_up {
                caught_up = true;
                if tx
                    .send(Ok(SubscriptionItem::CaughtUp { position: next - 1 }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            tokio::select! {
                changed = watch.changed() => {
                    if changed.is_err() {
                        // The store handle is gone; keep polling in case others write.
                        tokio::time::sleep(options.poll_interval).await;
                    }
                }
                _ = tokio::time::sleep(options.poll_interval) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Subscription { rx, task }
}
