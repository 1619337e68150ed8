//! Replay: rebuild a projection by reading a store from the start (or a position) to its head.

use flotilla_core::event::RecordedEvent;
use flotilla_core::store::{EventStore, StoreError};

/// Something built from events.
pub trait Projection: Send {
    /// Applies one event; an error stops the replay at that position.
    fn apply(&mut self, event: &RecordedEvent) -> Result<(), String>;
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("projection failed at position {position}: {reason}")]
    Projection { position: u64, reason: String },
}

/// Events read per query during replay.
pub const REPLAY_PAGE: usize = 10_000;

/// Applies every event from `from` to the store's current end; `progress` gets the count so far.
/// Returns the last position applied (or `from - 1` when none). Reading the next page overlaps
/// with applying the current one.
pub async fn replay<P: Projection + ?Sized>(
    store: &dyn EventStore,
    projection: &mut P,
    from: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, ReplayError> {
    let mut last = from.saturating_sub(1);
    let mut applied = 0u64;
    let mut page = store.read_all(last + 1, REPLAY_PAGE).await?;
    while !page.is_empty() {
        let next_from = page.last().map_or(last + 1, |e| e.global_position + 1);
        let fetch = store.read_all(next_from, REPLAY_PAGE);
        let apply = async {
            for e in &page {
                projection
                    .apply(e)
                    .map_err(|reason| ReplayError::Projection {
                        position: e.global_position,
                        reason,
                    })?;
            }
            Ok::<_, ReplayError>(())
        };
        let (next, applied_page) = futures::join!(fetch, apply);
        applied_page?;
        applied += page.len() as u64;
        last = next_from - 1;
        progress(applied);
        page = next?;
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use flotilla_core::conformance::synthetic;
    use flotilla_core::ids::StreamId;
    use flotilla_core::store::AppendRequest;
    use flotilla_core::{ExpectedVersion, MemoryStore};

    use super::*;

    #[derive(Default)]
    struct Count(u64, u64);
    impl Projection for Count {
        fn apply(&mut self, e: &RecordedEvent) -> Result<(), String> {
            if e.payload.is_empty() {
                return Err("empty payload".into());
            }
            self.0 += 1;
            self.1 = e.global_position;
            Ok(())
        }
    }

    #[tokio::test]
    async fn replays_everything_in_order() {
        let store = MemoryStore::new();
        let evs = (0..25_000).map(|i| synthetic(1, i)).collect();
        store
            .append(AppendRequest::new(
                StreamId::new_for("r"),
                ExpectedVersion::NoStream,
                evs,
            ))
            .await
            .expect("append");
        let mut p = Count::default();
        let last = replay(&store, &mut p, 1, &|_| {}).await.expect("replay");
        assert_eq!((p.0, p.1, last), (25_000, 25_000, 25_000));
        let mut q = Count::default();
        assert_eq!(
            replay(&store, &mut q, 24_001, &|_| {})
                .await
                .expect("replay"),
            25_000
        );
        assert_eq!(q.0, 1_000);
    }
}
