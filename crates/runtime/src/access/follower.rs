//! The follower of access policy replacements in the services that do not make them.

use std::sync::Arc;

use flotilla_auth::{AccessPolicy, Authorizer};
use flotilla_core::ExpectedVersion;
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use prost::Message;

use super::{ACCESS_POLICY_ADOPTED, ADOPTED_STREAM, FOLLOWER, is_replacement, put_in_force};

/// Follows access policy replacements in a service that does not make them: puts each newer
/// one in force and records the adoption in the service's own store. A replacement is adopted
/// only if it comes from the policy source of this deployment's namespace and is signed with
/// one of the configured keys for this namespace and version.
pub struct AccessPolicyFollower {
    pub store: Arc<dyn EventStore>,
    pub authorizer: Arc<Authorizer>,
    /// Newest version recorded in this service's store.
    pub recorded: Arc<std::sync::atomic::AtomicU64>,
    /// Version in force in the process (shared by the followers of one process).
    pub in_force: Arc<std::sync::atomic::AtomicU64>,
    pub namespace: flotilla_bus::Namespace,
    /// The service that replaces policies.
    pub source: String,
    pub keys: Arc<flotilla_auth::PolicyVerifier>,
}

impl std::fmt::Debug for AccessPolicyFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPolicyFollower")
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl crate::EventHandler for AccessPolicyFollower {
    async fn handle(&self, event: &flotilla_bus::CloudEvent) -> Result<(), crate::HandlerError> {
        use crate::HandlerError;
        if !is_replacement(&event.ty) {
            return Ok(());
        }
        let expected_source = self.namespace.source(&self.source);
        if event.source != expected_source {
            tracing::error!(source = %flotilla_core::names::shown(&event.source), expected = %expected_source, event = %event.id, "an access policy replacement from another source was refused");
            return Err(HandlerError::Reject(format!(
                "access policy replacement {} comes from {}, not {expected_source}",
                event.id,
                flotilla_core::names::shown(&event.source)
            )));
        }
        let m = flotilla_proto::common::v1::AccessPolicyReplaced::decode(event.data.as_slice())
            .map_err(|e| {
                HandlerError::Reject(format!("AccessPolicyReplaced does not decode: {e}"))
            })?;
        let recorded = self.recorded.load(std::sync::atomic::Ordering::Acquire);
        if m.version <= recorded {
            return Ok(());
        }
        let refuse = |reason: String| {
            tracing::error!(event = %event.id, version = m.version, %reason, "an access policy replacement was refused");
            HandlerError::Reject(format!(
                "access policy replacement {} (version {}) refused: {reason}",
                event.id, m.version
            ))
        };
        if m.namespace != self.namespace.as_str() {
            return Err(refuse(format!(
                "it was made in namespace {}, this deployment is {}",
                flotilla_core::names::shown(&m.namespace),
                self.namespace
            )));
        }
        let policy = AccessPolicy::parse(&m.policy).map_err(|e| refuse(e.to_string()))?;
        if policy.digest() != m.sha256 {
            return Err(refuse("its sha256 is not that of its policy text".into()));
        }
        let signing_key = self
            .keys
            .verify(self.namespace.as_str(), m.version, &m.sha256, &m.signature)
            .map_err(|e| refuse(e.to_string()))?
            .to_owned();
        let id = event
            .event_id()
            .map_err(|e| HandlerError::Reject(e.to_string()))?;
        let stream = StreamId::parse(ADOPTED_STREAM).map_err(HandlerError::Reject)?;
        let payload = flotilla_proto::common::v1::AccessPolicyAdopted {
            version: m.version,
            policy: m.policy.clone(),
            sha256: policy.digest().to_owned(),
            source_event_id: id.to_string(),
            signature: m.signature.clone(),
            signing_key,
        };
        let md = Metadata::by("access-policy-follower", "").with_causation(id);
        self.store
            .append(
                AppendRequest::new(
                    stream,
                    ExpectedVersion::Any,
                    vec![NewEvent::new(
                        ACCESS_POLICY_ADOPTED,
                        1,
                        payload.encode_to_vec(),
                        md,
                    )],
                )
                .consuming(FOLLOWER, id),
            )
            .await
            .map_err(|e| HandlerError::Retry(e.to_string()))?;
        self.recorded
            .store(m.version, std::sync::atomic::Ordering::Release);
        if put_in_force(&self.authorizer, &self.in_force, m.version, policy) {
            tracing::info!(
                version = m.version,
                "adopted a signed access policy replacement"
            );
        }
        Ok(())
    }
}
