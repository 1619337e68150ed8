//! What the ledger takes from the buses: every event of the five other services, as published
//! (CloudEvents with the source store's position, hashes and every hashed field), digests of
//! withheld events included.

use std::sync::Arc;

use flotilla_bus::CloudEvent;
use flotilla_core::chain::Hash;
use flotilla_core::event::Metadata;
use flotilla_runtime::outbound::EVENT_WITHHELD;
use flotilla_runtime::{EventHandler, HandlerError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::app::{AppError, Ledger};
use crate::domain::*;

/// The consumer of one service's events.
pub struct Ledgering {
    pub ledger: Arc<Ledger>,
    pub service: &'static str,
}

/// An event as `service` published it, or why it cannot be one of its chain's.
pub fn source_event(service: &str, ce: &CloudEvent) -> Result<SourceEvent, String> {
    let ext = |name: &str| ce.extension(name);
    let required = |name: &str| ext(name).ok_or_else(|| format!("it has no {name}"));
    let hash = |name: &str| -> Result<Hash, String> {
        let text = required(name)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out)
            .map_err(|_| format!("its {name} is not 32 bytes of hex"))?;
        Ok(Hash(out))
    };
    let uuid = |name: &str| -> Result<Option<uuid::Uuid>, String> {
        ext(name)
            .map(|v| v.parse().map_err(|_| format!("its {name} is not a uuid")))
            .transpose()
    };
    let number = |name: &str| -> Result<u64, String> {
        ext(name).map_or(Ok(0), |v| {
            v.parse().map_err(|_| format!("its {name} is not a number"))
        })
    };
    let time = ce.time.as_deref().ok_or("it has no time")?;
    let recorded_at = OffsetDateTime::parse(time, &Rfc3339)
        .map_err(|e| format!("its time {time:?} is not RFC 3339: {e}"))?;
    Ok(SourceEvent {
        service: service.to_owned(),
        source: ce.source.clone(),
        aggregate_type: ext("aggregatetype").unwrap_or_default().to_owned(),
        position: ce.sequence().ok_or("it has no numeric sequence")?,
        stream: ce.subject.clone().ok_or("it has no subject")?,
        stream_version: number("streamversion")?,
        id: ce.event_id().map_err(|e| e.to_string())?,
        event_type: ce.ty.clone(),
        schema_version: u32::try_from(number("schemaversion")?)
            .map_err(|_| "its schemaversion is too large".to_owned())?,
        payload: ce.data.clone(),
        metadata: Metadata {
            actor: ext("actor").unwrap_or_default().to_owned(),
            business_unit: ext("businessunit").unwrap_or_default().to_owned(),
            correlation_id: uuid("correlationid")?,
            causation_id: uuid("causationid")?,
            traceparent: ext("traceparent").map(str::to_owned),
            command_id: uuid("commandid")?,
        },
        recorded_at: Timestamp((recorded_at.unix_timestamp_nanos() / 1_000) as i64),
        prev_hash: hash("prevhash")?,
        hash: hash("eventhash")?,
        withheld: ce.ty == EVENT_WITHHELD,
    })
}

#[async_trait::async_trait]
impl EventHandler for Ledgering {
    async fn handle(&self, ce: &CloudEvent) -> Result<(), HandlerError> {
        let event = source_event(self.service, ce).map_err(|why| {
            tracing::warn!(service = self.service, event = %ce.id, ty = %ce.ty, reason = %why, "event not ledgered");
            HandlerError::Reject(format!("event {} of {}: {why}", ce.id, self.service))
        })?;
        match self.ledger.take(event, Timestamp::now()).await {
            Ok(()) => Ok(()),
            Err(AppError::Domain(e)) => {
                tracing::warn!(service = self.service, event = %ce.id, reason = %e, "event not ledgered");
                Err(HandlerError::Reject(e.to_string()))
            }
            Err(e) => Err(HandlerError::Retry(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use flotilla_bus::Namespace;
    use flotilla_core::event::RecordedEvent;
    use flotilla_core::ids::{EventId, StreamId};

    use super::*;

    fn recorded() -> RecordedEvent {
        let mut e = RecordedEvent {
            global_position: 7,
            stream_id: StreamId::parse("release-01932c07-8f6b-7c3e-9a51-3b1f2d9e4c13")
                .expect("stream"),
            stream_version: 2,
            event_id: EventId(uuid::Uuid::from_u128(
                0x0193_2c07_8f6b_7c3e_9a51_3b1f_2d9e_4c15,
            )),
            event_type: "flotilla.governance.v1.ApprovalGranted".into(),
            schema_version: 1,
            payload: vec![8, 1, 18, 2, 104, 105],
            metadata: Metadata::by("alice@example.com", "payments")
                .with_correlation(uuid::Uuid::from_u128(3))
                .with_command(uuid::Uuid::from_u128(4)),
            recorded_at: Timestamp(1_767_225_600_123_456),
            prev_hash: Hash([3; 32]),
            hash: Hash::default(),
        };
        e.metadata.traceparent =
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        e.hash = e.compute_hash();
        e
    }

    /// What the relay publishes carries every hashed field: the ledger recomputes the store's
    /// hash from the CloudEvent alone.
    #[test]
    fn a_published_event_recomputes_to_the_stores_hash() {
        let ns = Namespace::new("test").expect("namespace");
        let r = recorded();
        let ce = CloudEvent::from_recorded(&ns, "governance", "release", &r);
        let e = source_event("governance", &ce).expect("an event of the chain");
        assert_eq!(e.recomputed_hash(), r.hash);
        assert_eq!((e.position, e.stream_version), (7, 2));
        assert!(!e.withheld);

        let digest = flotilla_runtime::outbound::digest(&ns, "governance", "access-refusal", &r);
        let d = source_event("governance", &digest).expect("a digest");
        assert!(d.withheld);
        assert!(d.payload.is_empty() && d.metadata.actor.is_empty());
        assert_eq!((d.hash, d.prev_hash, d.position), (r.hash, r.prev_hash, 7));
    }

    #[test]
    fn an_event_without_its_place_in_the_chain_is_refused_with_the_reason() {
        let ns = Namespace::new("test").expect("namespace");
        let mut ce = CloudEvent::from_recorded(&ns, "governance", "release", &recorded());
        ce.extensions.remove("prevhash");
        assert_eq!(
            source_event("governance", &ce).err().as_deref(),
            Some("it has no prevhash")
        );
        ce.extensions.insert("prevhash".into(), "zz".into());
        assert_eq!(
            source_event("governance", &ce).err().as_deref(),
            Some("its prevhash is not 32 bytes of hex")
        );
    }
}
