//! Snapshots of the app's state. A snapshot is kept beside the chain (the store's snapshot
//! table), so on its own it could be edited unseen; each one is therefore recorded in the chain
//! (`flotilla.common.v1.SnapshotRecorded`: its position, state version and SHA-256). At start a
//! snapshot is used only when it is of the state's current version, the event at its position has
//! the hash it names, and the newest record in the chain vouches for its bytes; the events before
//! it are checked before the service serves, the events after it as they are applied. Written
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

/// Stream id under which the app's snapshots are kept and recorded.
pub const SNAPSHOT_STREAM: &str = "app-snapshot";
/// Event type of a snapshot's record in the chain.
pub const SNAPSHOT_RECORDED: &str = "flotilla.common.v1.SnapshotRecorded";

/// Hex SHA-256 of a snapshot's bytes.
fn digest(payload: &[u8]) -> String {
    use sha2::Digest;
    Hash(sha2::Sha256::digest(payload).into()).to_hex()
}

/// Whether the newest record of a snapshot in the chain vouches for these bytes.
async fn recorded(store: &dyn EventStore, snapshot: &Snapshot, version: u32) -> bool {
    use prost::Message;
    let stream = StreamId::singleton(SNAPSHOT_STREAM);
    let Ok(last) = store
        .read_stream(&stream, None, flotilla_core::store::Direction::Backwards, 1)
        .await
    else {
        return false;
    };
    last.first().is_some_and(|e| {
        e.event_type == SNAPSHOT_RECORDED
            && flotilla_proto::common::v1::SnapshotRecorded::decode(e.payload.as_slice()).is_ok_and(
                |r| {
                    r.position == snapshot.stream_version
                        && r.state_version == version
                        && r.sha256 == digest(&snapshot.payload)
                },
            )
    })
}

/// The state before any event.
pub(super) fn empty<D: Decider>() -> Versioned<D> {
    Versioned {
        state: D::default(),
        versions: HashMap::new(),
        position: 0,
        hash: Hash::GENESIS.0,
    }
}

pub(super) async fn load_snapshot<D>(
    store: &dyn EventStore,
    service: &str,
) -> (Versioned<D>, Option<ChainHead>)
where
    D: Decider + Snapshotted,
{
    let empty = empty();
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
    if !matches
        || decoded.position != snapshot.stream_version
        || !recorded(store, &snapshot, D::SNAPSHOT_VERSION).await
    {
        tracing::warn!(
            service,
            position = decoded.position,
            "the snapshot does not match the stored chain or its record there; ignoring it and replaying every event"
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
    let sha256 = digest(&payload);
    store
        .save_snapshot(Snapshot {
            stream_id,
            stream_version: position,
            schema_version: D::SNAPSHOT_VERSION,
            payload,
        })
        .await?;
    // Recorded in the chain, so the snapshot's bytes are vouched for as the events are.
    let record = flotilla_proto::common::v1::SnapshotRecorded {
        position,
        sha256,
        state_version: D::SNAPSHOT_VERSION,
    };
    store
        .append(flotilla_core::store::AppendRequest::new(
            StreamId::singleton(SNAPSHOT_STREAM),
            flotilla_core::ExpectedVersion::Any,
            vec![flotilla_core::event::NewEvent::new(
                SNAPSHOT_RECORDED,
                1,
                prost::Message::encode_to_vec(&record),
                flotilla_core::event::Metadata::by(service, ""),
            )],
        ))
        .await?;
    tracing::info!(service, position, bytes, "snapshot saved");
    Ok(())
}
