//! gRPC edge of the orchestration service (`flotilla.orchestration.v1.OrchestrationService`).
//!
//! Every handler reads the same way: the caller (`Caller::of`), the request as domain values
//! (`convert`, `INVALID_ARGUMENT` naming the field), the unit of what it touches checked against
//! the caller (`scope`), the app, and the answer as a message (`crate::messages`). Refusals
//! become statuses through the one table below; handlers use `?`.

use std::pin::Pin;
use std::sync::Arc;

use flotilla_auth::AccessContext;
use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::orchestration::v1 as pb;
use flotilla_proto::orchestration::v1::orchestration_service_server::{
    OrchestrationService, OrchestrationServiceServer,
};
use flotilla_runtime::ServiceContext;
use flotilla_runtime::kit::{Caller, ServiceError};
use tonic::{Code, Request, Response, Status};

use crate::app::OrchestrationApp;
use crate::domain::*;
use crate::messages::*;
use crate::peers::Token;

pub mod convert;
mod environments;
mod scope;
mod watch;

use scope::PLATFORM;

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.orchestration.v1.OrchestrationService";

/// The one table of orchestration's refusals and their codes.
impl ServiceError for DomainError {
    fn code(&self) -> Code {
        match self {
            DomainError::Invalid { .. } => Code::InvalidArgument,
            DomainError::NotFound(_) => Code::NotFound,
            DomainError::AlreadyExists(_) => Code::AlreadyExists,
            DomainError::FailedPrecondition(_) | DomainError::Blocked { .. } => {
                Code::FailedPrecondition
            }
        }
    }
}

impl From<DomainError> for Status {
    fn from(e: DomainError) -> Self {
        flotilla_runtime::kit::refuse(e)
    }
}

/// What one command id names, per kind of thing a call creates.
const WINDOW: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c_2a9e_4b3d_4c57_8e21_93a0_5d7b_1e42);
const RULE: uuid::Uuid = uuid::Uuid::from_u128(0x2d84_7b1f_90ce_4e0a_a6f3_1c58_e9b2_7a06);

/// The tonic service, over the service's one app.
#[derive(Clone)]
pub struct OrchestrationApi {
    ctx: ServiceContext,
    app: Arc<OrchestrationApp>,
}

impl std::fmt::Debug for OrchestrationApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchestrationApi").finish_non_exhaustive()
    }
}

/// The tonic server over `app`.
pub fn server(
    ctx: ServiceContext,
    app: Arc<OrchestrationApp>,
) -> OrchestrationServiceServer<OrchestrationApi> {
    let max = ctx.max_message_bytes();
    OrchestrationServiceServer::new(OrchestrationApi { ctx, app }).max_decoding_message_size(max)
}

type Answer<T> = Result<Response<T>, Status>;

fn now() -> Timestamp {
    Timestamp::now()
}

#[tonic::async_trait]
impl OrchestrationService for OrchestrationApi {
    #[tracing::instrument(skip_all, fields(service = super::NAME))]
    async fn get_status(&self, _request: Request<GetStatusRequest>) -> Answer<ServiceStatus> {
        self.ctx.status().await.map(Response::new)
    }

    // ---- Artifacts and policy ----

    #[tracing::instrument(skip_all, fields(rpc = "RegisterArtifact"))]
    async fn register_artifact(
        &self,
        request: Request<pb::RegisterArtifactRequest>,
    ) -> Answer<pb::Artifact> {
        let call = Caller::of(&request)?;
        let artifact = convert::artifact(request.into_inner(), now(), ArtifactSource::Api)?;
        let purl = artifact.purl.clone();
        self.app
            .register_artifact(artifact, call.metadata())
            .await?;
        self.artifact_view(&purl)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetArtifact"))]
    async fn get_artifact(&self, request: Request<pb::GetArtifactRequest>) -> Answer<pb::Artifact> {
        let purl = request.into_inner().purl;
        names::reference("purl", &purl, 512).map_err(name_error)?;
        self.artifact_view(&purl)
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListArtifacts"))]
    async fn list_artifacts(
        &self,
        request: Request<pb::ListArtifactsRequest>,
    ) -> Answer<pb::ListArtifactsResponse> {
        let service = request.into_inner().service;
        let artifacts = self.app.query(|o| {
            o.artifacts
                .values()
                .filter(|a| service.is_empty() || a.service == service)
                .map(|a| artifact_pb(a, o.blocked(a)))
                .collect()
        });
        Ok(Response::new(pb::ListArtifactsResponse { artifacts }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "SetPolicy"))]
    async fn set_policy(
        &self,
        request: Request<pb::SetPolicyRequest>,
    ) -> Answer<pb::OrchestrationPolicy> {
        let call = Caller::of(&request)?;
        call.allow_in(PLATFORM, &AccessContext::default())?;
        let policy = convert::policy(request.into_inner().policy)?;
        self.app
            .execute(SetPolicy { policy, at: now() }, call.metadata())
            .await?;
        Ok(Response::new(self.app.query(|o| policy_pb(&o.policy))))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetPolicy"))]
    async fn get_policy(
        &self,
        _request: Request<pb::GetPolicyRequest>,
    ) -> Answer<pb::OrchestrationPolicy> {
        Ok(Response::new(self.app.query(|o| policy_pb(&o.policy))))
    }

    // ---- Environments ----

    #[tracing::instrument(skip_all, fields(rpc = "DefineSharedInfrastructure"))]
    async fn define_shared_infrastructure(
        &self,
        request: Request<pb::DefineSharedInfrastructureRequest>,
    ) -> Answer<pb::SharedInfrastructure> {
        self.define_shared_infrastructure_in(request).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "DefineEnvironment"))]
    async fn define_environment(
        &self,
        request: Request<pb::DefineEnvironmentRequest>,
    ) -> Answer<pb::Environment> {
        self.define_environment_in(request).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "SetPromotionPath"))]
    async fn set_promotion_path(
        &self,
        request: Request<pb::SetPromotionPathRequest>,
    ) -> Answer<pb::PromotionPath> {
        self.set_promotion_path_in(request).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListEnvironments"))]
    async fn list_environments(
        &self,
        request: Request<pb::ListEnvironmentsRequest>,
    ) -> Answer<pb::ListEnvironmentsResponse> {
        self.list_environments_in(request).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "RemoveEnvironment"))]
    async fn remove_environment(
        &self,
        request: Request<pb::RemoveEnvironmentRequest>,
    ) -> Answer<pb::RemoveEnvironmentResponse> {
        self.remove_environment_in(request).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "ReportConfiguration"))]
    async fn report_configuration(
        &self,
        request: Request<pb::ReportConfigurationRequest>,
    ) -> Answer<pb::Environment> {
        self.report_configuration_in(request).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetParity"))]
    async fn get_parity(&self, request: Request<pb::GetParityRequest>) -> Answer<pb::ParityReport> {
        self.get_parity_in(request).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "RecordDataRefresh"))]
    async fn record_data_refresh(
        &self,
        request: Request<pb::RecordDataRefreshRequest>,
    ) -> Answer<pb::Environment> {
        self.record_data_refresh_in(request).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "BookTestWindow"))]
    async fn book_test_window(
        &self,
        request: Request<pb::BookTestWindowRequest>,
    ) -> Answer<pb::TestWindow> {
        self.book_test_window_in(request).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "SignOffTestWindow"))]
    async fn sign_off_test_window(
        &self,
        request: Request<pb::SignOffTestWindowRequest>,
    ) -> Answer<pb::TestWindow> {
        self.sign_off_test_window_in(request).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "RecordValidation"))]
    async fn record_validation(
        &self,
        request: Request<pb::RecordValidationRequest>,
    ) -> Answer<pb::Environment> {
        self.record_validation_in(request).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "DefineTriggerRule"))]
    async fn define_trigger_rule(
        &self,
        request: Request<pb::DefineTriggerRuleRequest>,
    ) -> Answer<pb::TriggerRule> {
        let call = Caller::of(&request)?;
        let r = request
            .into_inner()
            .rule
            .ok_or_else(|| invalid("rule", "is required"))?;
        call.allow_in(&r.business_unit, &AccessContext::default())?;
        let rule = TriggerRule {
            id: call.new_id(RULE),
            business_unit: r.business_unit,
            services: r.services,
            up_to: convert::bump(r.up_to)?,
            environment: r.environment,
        };
        let answer = rule_pb(&rule);
        self.app
            .execute(DefineTriggerRule { rule }, call.metadata())
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all, fields(rpc = "RemoveTriggerRule"))]
    async fn remove_trigger_rule(
        &self,
        request: Request<pb::RemoveTriggerRuleRequest>,
    ) -> Answer<pb::RemoveTriggerRuleResponse> {
        let call = Caller::of(&request)?;
        let id = convert::uuid("rule_id", &request.into_inner().rule_id)?;
        let absent = || Status::from(DomainError::NotFound(format!("trigger rule {id}")));
        let unit = self
            .app
            .query(|o| o.triggers.get(&id).map(|r| r.business_unit.clone()))
            .ok_or_else(absent)?;
        call.allow_or_hide(&unit, absent)?;
        self.app
            .execute(RemoveTriggerRule { id }, call.metadata())
            .await?;
        Ok(Response::new(pb::RemoveTriggerRuleResponse {}))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListTriggerRules"))]
    async fn list_trigger_rules(
        &self,
        request: Request<pb::ListTriggerRulesRequest>,
    ) -> Answer<pb::ListTriggerRulesResponse> {
        let call = Caller::of(&request)?;
        let rules = self.app.query(|o| {
            o.triggers
                .values()
                .filter(|r| call.sees(&r.business_unit))
                .map(rule_pb)
                .collect()
        });
        Ok(Response::new(pb::ListTriggerRulesResponse { rules }))
    }

    // ---- Releases ----

    #[tracing::instrument(skip_all, fields(rpc = "CreateRelease"))]
    async fn create_release(
        &self,
        request: Request<pb::CreateReleaseRequest>,
    ) -> Answer<pb::Release> {
        let call = Caller::of(&request)?;
        let token = Token::of(&request);
        let r = request.into_inner();
        call.allow_in(&r.business_unit, &AccessContext::default())?;
        if r.items.len() > 1_000 {
            return Err(invalid("items", format!("{} items, at most 1000", r.items.len())).into());
        }
        let command = CreateRelease {
            items: r
                .items
                .into_iter()
                .map(convert::requested)
                .collect::<Result<_>>()?,
            default_descriptor: r
                .default_descriptor
                .map(|d| convert::descriptor(Some(d)))
                .transpose()?,
            name: r.name,
            business_unit: r.business_unit,
            emergency: r.emergency,
            include: r.include,
            name_refused: None,
            promote_to: None,
            by: call.subject().to_owned(),
            at: now(),
        };
        let id = self
            .app
            .create_release(command, &token, call.metadata())
            .await?;
        self.release_view(id)
    }

    #[tracing::instrument(skip_all, fields(rpc = "PlanRelease"))]
    async fn plan_release(&self, request: Request<pb::PlanReleaseRequest>) -> Answer<pb::Release> {
        let call = Caller::of(&request)?;
        let token = Token::of(&request);
        let id = self.visible_release(&call, &request.into_inner().release)?;
        self.app.plan_release(id, &token, call.metadata()).await?;
        self.release_view(id)
    }

    #[tracing::instrument(skip_all, fields(rpc = "PromoteRelease"))]
    async fn promote_release(
        &self,
        request: Request<pb::PromoteReleaseRequest>,
    ) -> Answer<pb::Deployment> {
        let call = Caller::of(&request)?;
        let token = Token::of(&request);
        let r = request.into_inner();
        let id = self.visible_release(&call, &r.release)?;
        names::reference("environment", &r.environment, 64).map_err(name_error)?;
        let deployment = self
            .app
            .promote_release(id, &r.environment, &token, call.metadata())
            .await?;
        self.deployment_view(deployment)
    }

    #[tracing::instrument(skip_all, fields(rpc = "RollbackRelease"))]
    async fn rollback_release(
        &self,
        request: Request<pb::RollbackReleaseRequest>,
    ) -> Answer<pb::Deployment> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let release = self.visible_release(&call, &r.release)?;
        names::optional_text("reason", &r.reason, 2_000).map_err(name_error)?;
        let command = RollbackRelease {
            release,
            reason: if r.reason.is_empty() {
                format!("rolled back by {}", call.subject())
            } else {
                r.reason
            },
            by: call.subject().to_owned(),
            at: now(),
        };
        self.app.execute(command, call.metadata()).await?;
        let last = self
            .app
            .query(|o| {
                o.releases
                    .get(&release)
                    .and_then(|r| r.deployments.last().copied())
            })
            .unwrap_or_default();
        self.deployment_view(last)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetRelease"))]
    async fn get_release(&self, request: Request<pb::GetReleaseRequest>) -> Answer<pb::Release> {
        let call = Caller::of(&request)?;
        let id = self.visible_release(&call, &request.into_inner().release)?;
        self.release_view(id)
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListReleases"))]
    async fn list_releases(
        &self,
        request: Request<pb::ListReleasesRequest>,
    ) -> Answer<pb::ListReleasesResponse> {
        let call = Caller::of(&request)?;
        let unit = request.into_inner().business_unit;
        scope::unit_filter(&call, &unit)?;
        let releases = self.app.query(|o| {
            o.releases
                .values()
                .filter(|r| {
                    (unit.is_empty() || r.business_unit == unit) && call.sees(&r.business_unit)
                })
                .map(release_pb)
                .collect()
        });
        Ok(Response::new(pb::ListReleasesResponse { releases }))
    }

    // ---- Deployments ----

    #[tracing::instrument(skip_all, fields(rpc = "GetDeployment"))]
    async fn get_deployment(
        &self,
        request: Request<pb::GetDeploymentRequest>,
    ) -> Answer<pb::Deployment> {
        let call = Caller::of(&request)?;
        let id = self.visible_deployment(&call, &request.into_inner().deployment_id)?;
        self.deployment_view(id)
    }

    type WatchDeploymentStream =
        Pin<Box<dyn futures::Stream<Item = Result<pb::Deployment, Status>> + Send + 'static>>;

    #[tracing::instrument(skip_all, fields(rpc = "WatchDeployment"))]
    async fn watch_deployment(
        &self,
        request: Request<pb::GetDeploymentRequest>,
    ) -> Answer<Self::WatchDeploymentStream> {
        let call = Caller::of(&request)?;
        let id = self.visible_deployment(&call, &request.into_inner().deployment_id)?;
        Ok(Response::new(watch::deployment(self.app.clone(), id)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ResumeDeployment"))]
    async fn resume_deployment(
        &self,
        request: Request<pb::ResumeDeploymentRequest>,
    ) -> Answer<pb::Deployment> {
        let call = Caller::of(&request)?;
        let deployment = self.visible_deployment(&call, &request.into_inner().deployment_id)?;
        let command = ResumeDeployment {
            deployment,
            by: call.subject().to_owned(),
            at: now(),
        };
        self.app.execute(command, call.metadata()).await?;
        self.deployment_view(deployment)
    }

    #[tracing::instrument(skip_all, fields(rpc = "RecordAnalysis"))]
    async fn record_analysis(
        &self,
        request: Request<pb::RecordAnalysisRequest>,
    ) -> Answer<pb::Deployment> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let deployment = self.visible_deployment(&call, &r.deployment_id)?;
        names::optional_text("detail", &r.detail, 4_000).map_err(name_error)?;
        let command = RecordAnalysis {
            deployment,
            name: r.analysis,
            verdict: convert::verdict(r.verdict)?,
            detail: r.detail,
            at: now(),
        };
        self.app.execute(command, call.metadata()).await?;
        self.deployment_view(deployment)
    }
}
