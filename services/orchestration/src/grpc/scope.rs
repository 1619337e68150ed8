//! Whose things a call touches: the unit of each release, deployment and environment named,
//! checked against the caller before the app is asked. Outside the caller's units a release or
//! deployment is answered as absent, so names cannot be probed across units.

use flotilla_auth::AccessContext;
use flotilla_proto::orchestration::v1 as pb;
use flotilla_runtime::kit::Caller;
use tonic::{Response, Status};
use uuid::Uuid;

use super::{OrchestrationApi, convert};
use crate::domain::*;
use crate::messages::*;

/// Scope checked for platform-wide changes (the policy, shared infrastructure): only central
/// roles pass business-unit isolation.
pub(super) const PLATFORM: &str = "*platform*";

/// An explicit unit filter: the caller must be allowed to see that unit; naming none lists what
/// they see.
pub(super) fn unit_filter(call: &Caller, business_unit: &str) -> Result<(), Status> {
    if business_unit.is_empty() {
        return Ok(());
    }
    names::reference("business_unit", business_unit, 128).map_err(name_error)?;
    call.allow_in(business_unit, &AccessContext::default())
}

/// A release named by id or by name.
fn release_ref(s: &str) -> Result<Uuid, DomainError> {
    if s.trim().is_empty() {
        return Err(invalid(
            "release",
            "is required; name a release by id or name",
        ));
    }
    names::reference("release", s, 128).map_err(name_error)?;
    Ok(Uuid::parse_str(s).unwrap_or_else(|_| release_id(s)))
}

impl OrchestrationApi {
    /// The release a caller names, if it exists and is in a unit they act in.
    pub(super) fn visible_release(&self, call: &Caller, named: &str) -> Result<Uuid, Status> {
        let id = release_ref(named)?;
        let absent = || Status::from(DomainError::NotFound(format!("release {named}")));
        let unit = self
            .app
            .query(|o| o.releases.get(&id).map(|r| r.business_unit.clone()))
            .ok_or_else(absent)?;
        call.allow_or_hide(&unit, absent)?;
        Ok(id)
    }

    pub(super) fn visible_deployment(&self, call: &Caller, named: &str) -> Result<Uuid, Status> {
        let id = convert::uuid("deployment_id", named)?;
        let absent = || Status::from(DomainError::NotFound(format!("deployment {named}")));
        let unit = self
            .app
            .query(|o| o.deployments.get(&id).map(|d| d.business_unit.clone()))
            .ok_or_else(absent)?;
        call.allow_or_hide(&unit, absent)?;
        Ok(id)
    }

    pub(super) fn visible_environment(
        &self,
        call: &Caller,
        unit: &str,
        name: &str,
    ) -> Result<Environment, Status> {
        let absent = || Status::from(DomainError::NotFound(format!("environment {unit}/{name}")));
        let env = self
            .app
            .query(|o| o.environment(unit, name).cloned())
            .ok_or_else(absent)?;
        call.allow_or_hide(unit, absent)?;
        Ok(env)
    }

    pub(super) fn artifact_view(&self, purl: &str) -> Result<Response<pb::Artifact>, Status> {
        self.app
            .query(|o| o.artifacts.get(purl).map(|a| artifact_pb(a, o.blocked(a))))
            .map(Response::new)
            .ok_or_else(|| DomainError::NotFound(format!("artifact {purl}")).into())
    }

    pub(super) fn environment_view(
        &self,
        unit: &str,
        name: &str,
    ) -> Result<Response<pb::Environment>, Status> {
        self.app
            .query(|o| o.environment(unit, name).map(environment_pb))
            .map(Response::new)
            .ok_or_else(|| DomainError::NotFound(format!("environment {unit}/{name}")).into())
    }

    pub(super) fn window_view(
        &self,
        unit: &str,
        env: &str,
        id: Uuid,
    ) -> Result<Response<pb::TestWindow>, Status> {
        self.app
            .query(|o| {
                o.environment(unit, env)
                    .and_then(|e| e.windows.iter().find(|w| w.id == id))
                    .map(window_pb)
            })
            .map(Response::new)
            .ok_or_else(|| DomainError::NotFound(format!("test window {id}")).into())
    }

    pub(super) fn release_view(&self, id: Uuid) -> Result<Response<pb::Release>, Status> {
        self.app
            .query(|o| o.releases.get(&id).map(release_pb))
            .map(Response::new)
            .ok_or_else(|| DomainError::NotFound(format!("release {id}")).into())
    }

    pub(super) fn deployment_view(&self, id: Uuid) -> Result<Response<pb::Deployment>, Status> {
        self.app
            .query(|o| o.deployments.get(&id).map(deployment_pb))
            .map(Response::new)
            .ok_or_else(|| DomainError::NotFound(format!("deployment {id}")).into())
    }
}
