//! What a service's events look like on the buses: one rule for every service's subjects
//! (`<namespace>.<service>.<aggregate type>.<event>`) and what is kept off the buses.
//!
//! The aggregate type of a stream `<aggregate>-<uuid>` is `<aggregate>`; a service names the
//! aggregate of its singleton streams ([`ServiceModule::aggregate_type`]); the runtime's own
//! streams are `access-refusal` (stream `access-refusals`), `access-policy` and
//! `chain-integrity`.
//!
//! The content of refusals of callers without a valid token stays in the store only: anyone who
//! can reach a port can cause them, so publishing them would let strangers write (rate-limited)
//! text onto every subscriber's topic. Their place in the chain is published as a digest
//! ([`EVENT_WITHHELD`]: position, stream version, hashes; no payload, actor or trace), so a
//! consumer that checks the chain (the compliance ledger) sees every position linked and no
//! gap. Refusals of authenticated callers (someone with a token tried something their roles do
//! not allow) are published: security teams subscribe to them.

use std::sync::Arc;

use flotilla_bus::relay::Outbound;
use flotilla_bus::{CloudEvent, Namespace};
use flotilla_core::event::RecordedEvent;
use flotilla_core::ids::StreamId;
use prost::Message;

use crate::access::{ACCESS_REFUSED, ADOPTED_STREAM, REFUSALS_STREAM};
use crate::integrity::INTEGRITY_STREAM;
use crate::module::ServiceModule;

/// The outbound rules of one service.
pub struct ServiceOutbound {
    pub module: Arc<dyn ServiceModule>,
}

impl std::fmt::Debug for ServiceOutbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceOutbound")
            .field("service", &self.module.name())
            .finish()
    }
}

/// The aggregate type of a stream of `module`'s store.
pub fn aggregate_type(module: &dyn ServiceModule, stream: &StreamId) -> String {
    if let Some(a) = module.aggregate_type(stream) {
        return a;
    }
    match stream.as_str() {
        REFUSALS_STREAM => "access-refusal".to_owned(),
        ADOPTED_STREAM => "access-policy".to_owned(),
        INTEGRITY_STREAM => "chain-integrity".to_owned(),
        _ => stream.aggregate().to_owned(),
    }
}

/// The type of the digest published in place of an event whose content stays in the store.
pub const EVENT_WITHHELD: &str = "flotilla.common.v1.EventWithheld";

/// Extensions a digest keeps: where the event stands in the chain, nothing a caller chose.
const DIGEST_EXTENSIONS: [&str; 5] = [
    "aggregatetype",
    "sequence",
    "streamversion",
    "eventhash",
    "prevhash",
];

/// The digest of a withheld event: its id, stream, time and place in the chain, no content.
pub fn digest(
    namespace: &Namespace,
    service: &str,
    aggregate: &str,
    e: &RecordedEvent,
) -> CloudEvent {
    withhold(CloudEvent::from_recorded(namespace, service, aggregate, e))
}

/// An event's CloudEvent made its digest: content, actor and trace taken off.
pub fn withhold(mut ce: CloudEvent) -> CloudEvent {
    ce.ty = EVENT_WITHHELD.to_owned();
    ce.data.clear();
    ce.extensions
        .retain(|k, _| DIGEST_EXTENSIONS.contains(&k.as_str()));
    ce
}

/// Whether an event's content goes on the buses (otherwise its [`digest`] does).
pub fn publishes(e: &RecordedEvent) -> bool {
    if e.event_type != ACCESS_REFUSED {
        return true;
    }
    match flotilla_proto::common::v1::AccessRefused::decode(e.payload.as_slice()) {
        Ok(r) => r.code != "UNAUTHENTICATED",
        Err(_) => true,
    }
}

impl Outbound for ServiceOutbound {
    fn aggregate_type(&self, stream: &StreamId) -> String {
        aggregate_type(&*self.module, stream)
    }

    fn publishes(&self, event: &RecordedEvent) -> bool {
        publishes(event)
    }

    fn outgoing(
        &self,
        namespace: &Namespace,
        service: &str,
        event: &RecordedEvent,
    ) -> Option<CloudEvent> {
        let aggregate = self.aggregate_type(&event.stream_id);
        Some(if publishes(event) {
            CloudEvent::from_recorded(namespace, service, &aggregate, event)
        } else {
            digest(namespace, service, &aggregate, event)
        })
    }
}
