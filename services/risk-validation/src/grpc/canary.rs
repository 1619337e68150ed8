//! Canary judgements: judged and recorded, and read back.

use flotilla_auth::AccessContext;
use flotilla_proto::risk::v1 as pb;
use flotilla_runtime::kit::Caller;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::RiskValidationApi;
use crate::domain::judge::MetricSamples;
use crate::domain::*;
use crate::messages::{config_of, judged_pb};

impl RiskValidationApi {
    #[tracing::instrument(skip_all, fields(rpc = "JudgeCanary"))]
    pub(super) async fn judge(
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
    pub(super) async fn judgement(
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
