//! gRPC edge of the risk-validation service (`flotilla.risk.v1.RiskValidationService`): the
//! caller, the request as domain values (`messages`), the unit checked against the caller, the
//! app, the answer as a message. Refusals become statuses through the one table below.

use std::sync::Arc;

use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::risk::v1 as pb;
use flotilla_proto::risk::v1::risk_validation_service_server::{
    RiskValidationService, RiskValidationServiceServer,
};
use flotilla_runtime::ServiceContext;
use flotilla_runtime::kit::{Caller, ServiceError};
use tonic::{Code, Request, Response, Status};

use crate::app::RiskApp;
use crate::domain::*;

mod assessment;
mod canary;
mod evidence;

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.risk.v1.RiskValidationService";

/// The one table of risk-validation's refusals and their codes.
impl ServiceError for DomainError {
    fn code(&self) -> Code {
        match self {
            DomainError::Invalid { .. } => Code::InvalidArgument,
            DomainError::NotFound(_) => Code::NotFound,
            DomainError::AlreadyExists(_) => Code::AlreadyExists,
            DomainError::FailedPrecondition(_) => Code::FailedPrecondition,
            DomainError::Forbidden(_) => Code::PermissionDenied,
        }
    }
}

impl From<DomainError> for Status {
    fn from(e: DomainError) -> Self {
        flotilla_runtime::kit::refuse(e)
    }
}

/// The tonic service, over the service's one app.
#[derive(Clone)]
pub struct RiskValidationApi {
    ctx: ServiceContext,
    app: Arc<RiskApp>,
    /// Where canary samples are read from when a request names PromQL ranges.
    prometheus: Option<flotilla_runtime::prometheus::Prometheus>,
}

impl std::fmt::Debug for RiskValidationApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskValidationApi").finish_non_exhaustive()
    }
}

/// The tonic server over `app`.
pub fn server(
    ctx: ServiceContext,
    app: Arc<RiskApp>,
    prometheus: Option<flotilla_runtime::prometheus::Prometheus>,
) -> RiskValidationServiceServer<RiskValidationApi> {
    let max = ctx.max_message_bytes();
    RiskValidationServiceServer::new(RiskValidationApi {
        ctx,
        app,
        prometheus,
    })
    .max_decoding_message_size(max)
}

#[tonic::async_trait]
impl RiskValidationService for RiskValidationApi {
    #[tracing::instrument(skip_all, fields(service = super::NAME))]
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<ServiceStatus>, Status> {
        self.ctx.status().await.map(Response::new)
    }

    async fn judge_canary(
        &self,
        request: Request<pb::JudgeCanaryRequest>,
    ) -> Result<Response<pb::CanaryJudgement>, Status> {
        self.judge(request).await
    }

    async fn get_canary_judgement(
        &self,
        request: Request<pb::GetCanaryJudgementRequest>,
    ) -> Result<Response<pb::CanaryJudgement>, Status> {
        self.judgement(request).await
    }

    async fn get_risk_assessments(
        &self,
        request: Request<pb::GetRiskAssessmentsRequest>,
    ) -> Result<Response<pb::RiskAssessments>, Status> {
        self.assessments(request).await
    }

    async fn reassess_risk(
        &self,
        request: Request<pb::ReassessRiskRequest>,
    ) -> Result<Response<pb::RiskAssessments>, Status> {
        self.reassess(request).await
    }

    async fn set_risk_weights(
        &self,
        request: Request<pb::SetRiskWeightsRequest>,
    ) -> Result<Response<pb::RiskWeightsVersion>, Status> {
        self.set_weights(request).await
    }

    async fn get_risk_weights(
        &self,
        request: Request<pb::GetRiskWeightsRequest>,
    ) -> Result<Response<pb::RiskWeightsVersion>, Status> {
        self.weights(request)
    }

    async fn record_fmea(
        &self,
        request: Request<pb::RecordFmeaRequest>,
    ) -> Result<Response<pb::Fmea>, Status> {
        self.fmea_recorded(request).await
    }

    async fn close_fmea_action(
        &self,
        request: Request<pb::CloseFmeaActionRequest>,
    ) -> Result<Response<pb::Fmea>, Status> {
        self.fmea_action_closed(request).await
    }

    async fn get_fmea(
        &self,
        request: Request<pb::GetFmeaRequest>,
    ) -> Result<Response<pb::Fmea>, Status> {
        self.fmea(request)
    }

    async fn record_validation(
        &self,
        request: Request<pb::RecordValidationRequest>,
    ) -> Result<Response<pb::Validation>, Status> {
        self.validation_recorded(request).await
    }

    async fn list_validations(
        &self,
        request: Request<pb::ListValidationsRequest>,
    ) -> Result<Response<pb::ListValidationsResponse>, Status> {
        self.validations(request)
    }
}

impl RiskValidationApi {
    /// The release named in a request, if the caller may see it (another unit's is not found).
    fn release_for(&self, call: &Caller, release: &str) -> Result<NotedRelease, Status> {
        names::id("release", release).map_err(name_error)?;
        let r = self
            .app
            .query(|s| s.releases.get(release).cloned())
            .ok_or_else(|| DomainError::NotFound(format!("release {release}")))?;
        call.allow_or_hide(&r.business_unit, || {
            DomainError::NotFound(format!("release {release}")).into()
        })?;
        Ok(r)
    }
}
