//! What a service's events look like on the buses: one rule for every service's subjects
//! (`<namespace>.<service>.<aggregate type>.<event>`) and what is kept off the buses.
//!
//! The aggregate type of a stream `<aggregate>-<uuid>` is `<aggregate>`; a service names the
//! aggregate of its singleton streams ([`ServiceModule::aggregate_type`]); the runtime's own
//! streams are `access-refusal` (stream `access-refusals`), `access-policy` and
//! `chain-integrity`.
//!
//! Refusals of callers without a valid token stay in the store only: anyone who can reach a
//! port can cause them, so publishing them would let strangers write (rate-limited) noise onto
//! every subscriber's topic. Refusals of authenticated callers (someone with a token tried
//! something their roles do not allow) are published: security teams subscribe to them.

use std::sync::Arc;

use flotilla_bus::relay::Outbound;
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

/// Whether an event goes on the buses.
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
}
