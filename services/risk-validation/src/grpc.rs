//! gRPC edge of the risk-validation service (`flotilla.risk.v1.RiskValidationService`): the
//! caller, the request as domain values (`messages`), the unit checked against the caller, the
//! app, the answer as a message. Refusals become statuses through the one table below.

use std::sync::Arc;

use flotilla_auth::AccessContext;
use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::risk::v1 as pb;
use flotilla_proto::risk::v1::risk_validation_service_server::{
    RiskValidationService, RiskValidationServiceServer,
};
use flotilla_runtime::ServiceContext;
use flotilla_runtime::kit::{Caller, ServiceError};
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use crate::app::RiskApp;
use crate::domain::judge::MetricSamples;
use crate::domain::*;
use crate::messages::{config_of, judged_pb};

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.risk.v1.RiskValidationService";

/// The one table of risk-validation's refusals and their codes.
impl ServiceError for DomainError {
    fn code(&self) -> Code {
        match self {
            DomainError::Invalid { .. } => Code::InvalidArgument,
            DomainError::NotFound(_) => Code::NotFound,
            DomainError::AlreadyExists(_) => Code::AlreadyExists,
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
) -> RiskValidationServiceServer<RiskValidationApi> {
    let max = ctx.max_message_bytes();
    RiskValidationServiceServer::new(RiskValidationApi { ctx, app }).max_decoding_message_size(max)
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

    #[tracing::instrument(skip_all, fields(rpc = "JudgeCanary"))]
    async fn judge_canary(
        &self,
        request: Request<pb::JudgeCanaryRequest>,
    ) -> Result<Response<pb::CanaryJudgement>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        names::label("business_unit", &r.business_unit).map_err(name_error)?;
        call.allow_in(&r.business_unit, &AccessContext::default())?;
        let id = Uuid::now_v7();
        let command = JudgeCanary {
            id,
            deployment: r.deployment_id,
            analysis: r.analysis,
            release: r.release,
            environment: r.environment,
            business_unit: r.business_unit,
            config: config_of(r.config.unwrap_or_default()),
            samples: r
                .samples
                .into_iter()
                .map(|s| MetricSamples {
                    name: s.name,
                    experiment: s.experiment,
                    control: s.control,
                })
                .collect(),
            by: call.subject().to_owned(),
            at: Timestamp::now(),
        };
        self.app
            .execute(Command::JudgeCanary(command), call.metadata())
            .await?;
        self.answer(&call, id)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetCanaryJudgement"))]
    async fn get_canary_judgement(
        &self,
        request: Request<pb::GetCanaryJudgementRequest>,
    ) -> Result<Response<pb::CanaryJudgement>, Status> {
        let call = Caller::of(&request)?;
        let raw = request.into_inner().judgement_id;
        let id: Uuid = raw.parse().map_err(|_| {
            invalid(
                "judgement_id",
                format!("{} is not a uuid", names::shown(&raw)),
            )
        })?;
        self.answer(&call, id)
    }
}

impl RiskValidationApi {
    /// A judgement the caller may see (another unit's is not found).
    fn answer(&self, call: &Caller, id: Uuid) -> Result<Response<pb::CanaryJudgement>, Status> {
        let j = self
            .app
            .query(|s| s.judgements.get(&id).cloned())
            .filter(|j| {
                call.allow_in(&j.business_unit, &AccessContext::default())
                    .is_ok()
            })
            .ok_or_else(|| DomainError::NotFound(format!("canary judgement {id}")))?;
        Ok(Response::new(judged_pb(&j)))
    }
}
