//! Snapshots of the app's state: loaded at start only when they sit on the stored chain (the
//! event at their position has their hash) and are of the state's current version; written
//! every `snapshot_every` events and on demand.

use std::collections::HashMap;
use std::sync::Arc;

use flotilla_core::chain::{ChainHead, Hash};
use flotilla_core::decider::Decider;
use flotilla_core::event::Snapshot;
use flotilla_core::ids::StreamId;
use flotilla_core::store::{EventStore, StoreError};

use super::app::{App, Snapshotted, UnitOf, Versioned};
use crate::kit::error::{AppError, ServiceError};

/// Stream id under which the app's snapshots are kept.
pub const SNAPSHOT_STREAM: &str = "app-snapshot";

pub(super) async fn load_snapshot<D>(
    store: &dyn EventStore,
    service: &str,
) -> (Versioned<D>, Option<ChainHead>)
where
    D: Decider + Snapshotted,
{
    let empty = Versioned {
        state: D::default(),
        versions: HashMap::new(),
        position: 0,
        hash: Hash::GENESIS.0,
    };
    let Ok(stream) = StreamId::parse(SNAPSHOT_STREAM) else {
        return (empty, None);
    };
    let snapshot = match store.load_snapshot(&stream).await {
        Ok(Some(s)) => s,
        Ok(None) => return (empty, None),
        Err(e) => {
            tracing::warn!(service, error = %e, "reading the snapshot failed; replaying every event");
            return (empty, None);
        }
    };
    if snapshot.schema_version != D::SNAPSHOT_VERSION {
        tracing::info!(
            service,
            version = snapshot.schema_version,
            "the snapshot is of another state version; replaying every event"
        );
        return (empty, None);
    }
    let decoded: Versioned<D> = match postcard::from_bytes(&snapshot.payload) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(service, error = %e, "the snapshot does not decode; replaying every event");
            return (empty, None);
        }
    };
    // The snapshot must sit on the chain as stored: the event at its position, with its hash.
    let at = store.read_all(decoded.position, 1).await;
    let matches = matches!(&at, Ok(page) if page.first().is_some_and(|e| {
        e.global_position == decoded.position && e.hash.0 == decoded.hash
    }));
    if !matches || decoded.position != snapshot.stream_version {
        tracing::warn!(
            service,
            position = decoded.position,
            "the snapshot does not match the stored chain; ignoring it and replaying every event"
        );
        return (empty, None);
    }
    tracing::info!(
        service,
        position = decoded.position,
        "state loaded from a snapshot"
    );
    let head = ChainHead {
        position: decoded.position,
        hash: Hash(decoded.hash),
    };
    (decoded, Some(head))
}

impl<D> App<D>
where
    D: Decider + UnitOf + Snapshotted,
    D::Error: ServiceError,
{
    /// Saves a snapshot of the current state now (besides the periodic ones); answers the
    /// position it is at.
    pub async fn snapshot_now(&self) -> Result<u64, AppError<D::Error>> {
        let current = self.published.load_full();
        write_snapshot::<D>(&*self.store, self.service, current).await?;
        Ok(self.position())
    }

    pub(super) fn save_snapshot(&self) {
        let current = self.published.load_full();
        let store = self.store.clone();
        let service = self.service;
        tokio::spawn(async move {
            if let Err(e) = write_snapshot::<D>(&*store, service, current).await {
                tracing::warn!(service, error = %e, "saving a snapshot failed");
            }
        });
    }
}

async fn write_snapshot<D: Decider + Snapshotted>(
    store: &dyn EventStore,
    service: &'static str,
    current: Arc<Versioned<D>>,
) -> Result<(), StoreError> {
    let position = current.position;
    let encoded = tokio::task::spawn_blocking(move || postcard::to_allocvec(&*current)).await;
    let payload = match encoded {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            return Err(StoreError::Backend(format!(
                "the state could not be encoded for a snapshot: {e}"
            )));
        }
        Err(e) => {
            return Err(StoreError::Backend(format!(
                "snapshot encoding stopped: {e}"
            )));
        }
    };
    let stream_id = StreamId::singleton(SNAPSHOT_STREAM);
    let bytes = payload.len();
    store
        .save_snapshot(Snapshot {
            stream_id,
            stream_version: position,
            schema_version: D::SNAPSHOT_VERSION,
            payload,
        })
        .await?;
    tracing::info!(service, position, bytes, "snapshot saved");
    Ok(())
}
