//! How the app's state is built and kept: rebuilt page by page at start (each page's chain
//! checked before it is applied), then following the store's live subscription, applying each
//! batch to the spare copy and swapping it in.

use std::sync::Arc;
use std::time::Duration;

use flotilla_core::decider::{Decider, Recorded};
use flotilla_core::event::RecordedEvent;
use flotilla_core::store::StoreError;
use flotilla_core::subscription::{SubscribeOptions, SubscriptionItem, subscribe_all};
use futures::FutureExt;
use tokio::sync::watch;

use super::app::{App, Snapshotted, UnitOf, Versioned};
use crate::kit::error::{AppError, ServiceError};
use crate::kit::started::Shutdown;

impl<D> App<D>
where
    D: Decider + UnitOf + Snapshotted,
    D::Error: ServiceError,
{
    pub(super) fn decode(&self, e: &RecordedEvent) -> Result<Option<Recorded<D::Event>>, String> {
        let (ty, version, payload) =
            self.upcasters
                .upcast(&e.event_type, e.schema_version, &e.payload)?;
        Ok(self
            .codec
            .decode(&ty, version, &payload)?
            .map(|event| Recorded::of(e, event)))
    }

    /// Applies a page (already checked) to one copy of the state; the events decoded.
    pub(super) fn apply_page(
        &self,
        state: &mut Versioned<D>,
        page: &[RecordedEvent],
    ) -> Result<Vec<Recorded<D::Event>>, (u64, String)> {
        let mut decoded = Vec::with_capacity(page.len());
        for e in page {
            if let Some(r) = self
                .decode(e)
                .map_err(|reason| (e.global_position, reason))?
            {
                decoded.push(r);
            }
        }
        level(state, page, &decoded);
        Ok(decoded)
    }

    pub(super) async fn rebuild(&self, state: &mut Versioned<D>) -> Result<(), AppError<D::Error>> {
        let head = self.store.head().await?;
        let mut next = state.position + 1;
        while next <= head.position {
            let want = (head.position - next + 1).min(5_000) as usize;
            let page = match self.store.read_all(next, want).await {
                Ok(p) => p,
                Err(e @ StoreError::Corrupt { .. }) => {
                    self.chain.read_failed(&e);
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            if page.is_empty() {
                break;
            }
            if self.chain.check_from(next, &page).is_err() {
                // Stopped at the break: the follower goes on if it is accepted.
                return Ok(());
            }
            match self.apply_page(state, &page) {
                Ok(decoded) => self.tell(&decoded),
                Err((position, reason)) => {
                    self.chain.unreadable(
                        position,
                        format!("the stored event cannot be decoded by this build: {reason}"),
                    );
                    return Ok(());
                }
            }
            next = state.position + 1;
        }
        self.check_caught_up().await;
        Ok(())
    }

    /// Once every event present at start is applied (and so checked), and the walk reached the
    /// head the store records, the chain check has caught up.
    pub(super) async fn check_caught_up(&self) {
        if self.chain.is_caught_up() || self.chain.broken().is_some() {
            return;
        }
        match crate::tasks::head_reached(&*self.store, &self.chain).await {
            Ok(true) => {
                tracing::info!(
                    service = self.service,
                    verified = self.chain.verified_to(),
                    "hash chain checked"
                );
                self.chain.set_caught_up();
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(service = self.service, error = %e, "reading the store head failed; checking again")
            }
        }
    }

    pub(super) fn tell(&self, events: &[Recorded<D::Event>]) {
        for o in &self.observers {
            for e in events {
                o.applied(e);
            }
        }
    }

    /// Keeps the state current until shut down.
    pub(super) async fn follow(
        self: Arc<Self>,
        mut spare: Versioned<D>,
        snapshot_at: u64,
        mut shutdown: Shutdown,
    ) {
        // However following ends, a command waiting for a position stops waiting.
        struct Stopped<'a>(&'a watch::Sender<bool>);
        impl Drop for Stopped<'_> {
            fn drop(&mut self) {
                self.0.send_replace(false);
            }
        }
        let _stopped = Stopped(&self.following);
        // A long replay since the last snapshot is not repeated at the next start.
        let mut last_snapshot = snapshot_at;
        if self.options.snapshot_every > 0
            && spare.position.saturating_sub(last_snapshot) >= self.options.snapshot_every
        {
            last_snapshot = spare.position;
            self.save_snapshot();
        }
        loop {
            let mut intact = self.chain.watch();
            tokio::select! {
                _ = intact.wait_for(|b| b.is_none()) => {}
                _ = shutdown.wait() => return,
            }
            let mut sub = subscribe_all(
                self.store.clone(),
                spare.position + 1,
                SubscribeOptions {
                    page: 1_000,
                    poll_interval: Duration::from_millis(250),
                },
            );
            'reading: loop {
                let first = tokio::select! {
                    i = sub.next() => i,
                    _ = shutdown.wait() => return,
                };
                let mut page = Vec::new();
                let mut reached = false;
                let mut item = first;
                loop {
                    match item {
                        Some(Ok(SubscriptionItem::Event(e))) => page.push(e),
                        Some(Ok(SubscriptionItem::CaughtUp { .. })) => reached = true,
                        Some(Err(e)) => {
                            self.chain.read_failed(&e);
                            tracing::warn!(service = self.service, error = %e, "following the store failed; resubscribing");
                            break 'reading;
                        }
                        None => break 'reading,
                    }
                    if page.len() >= 1_000 {
                        break;
                    }
                    match sub.next().now_or_never() {
                        Some(next) => item = next,
                        None => break,
                    }
                }
                if page.is_empty() {
                    if reached {
                        self.check_caught_up().await;
                    }
                    continue;
                }
                if self.chain.check_from(spare.position + 1, &page).is_err() {
                    break 'reading;
                }
                let decoded = match self.apply_page(&mut spare, &page) {
                    Ok(d) => d,
                    Err((position, reason)) => {
                        self.chain.unreadable(
                            position,
                            format!("the stored event cannot be decoded by this build: {reason}"),
                        );
                        break 'reading;
                    }
                };
                // Publish the copy that has the page, then bring the other one level once the
                // readers of it are gone.
                let position = spare.position;
                let published = Arc::new(spare);
                let old = self.published.swap(published.clone());
                // Observers act (e.g. put a replaced access policy in force) before a command
                // waiting for these events is answered.
                self.tell(&decoded);
                self.applied.send_replace(position);
                spare = match reclaim(old).await {
                    Some(mut other) => {
                        level(&mut other, &page, &decoded);
                        other
                    }
                    // Someone holds the old state long: copy the new one instead of waiting.
                    None => Versioned::clone(&published),
                };
                drop(published);
                if reached {
                    self.check_caught_up().await;
                }
                if self.options.snapshot_every > 0
                    && position - last_snapshot >= self.options.snapshot_every
                {
                    last_snapshot = position;
                    self.save_snapshot();
                }
            }
            drop(sub);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.wait() => return,
            }
        }
    }
}

/// The previous state back once its readers let go of it (queries are short), or None when one
/// holds it for longer than a few milliseconds.
async fn reclaim<D>(mut old: Arc<Versioned<D>>) -> Option<Versioned<D>> {
    let started = std::time::Instant::now();
    loop {
        match Arc::try_unwrap(old) {
            Ok(v) => return Some(v),
            Err(still_read) => old = still_read,
        }
        if started.elapsed() > Duration::from_millis(5) {
            return None;
        }
        tokio::task::yield_now().await;
    }
}

/// Applies a page to a copy of the state: every event moves the position, hash and its stream's
/// version; the decoded ones evolve the state.
fn level<D: Decider>(
    state: &mut Versioned<D>,
    page: &[RecordedEvent],
    decoded: &[Recorded<D::Event>],
) {
    let mut d = decoded.iter().peekable();
    for e in page {
        match state.versions.get_mut(&e.stream_id) {
            Some(v) => *v = e.stream_version,
            None => {
                state.versions.insert(e.stream_id.clone(), e.stream_version);
            }
        }
        if let Some(r) = d.next_if(|r| r.position == e.global_position) {
            state.state.evolve(r);
        }
        state.position = e.global_position;
        state.hash = e.hash.0;
    }
}
