//! Risk assessments and the weights they are scored with.

use flotilla_proto::risk::v1 as pb;
use flotilla_runtime::kit::Caller;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::RiskValidationApi;
use crate::domain::*;
use crate::messages::{assessed_pb, weights_of, weights_pb};

/// Keeps ids of what different commands of one call create apart.
const REASSESSMENT: Uuid = Uuid::from_u128(0x5a1e_0000_0000_4000_8000_0000_0000_0001);
const WEIGHTS: Uuid = Uuid::from_u128(0x5a1e_0000_0000_4000_8000_0000_0000_0002);

impl RiskValidationApi {
    #[tracing::instrument(skip_all, fields(rpc = "GetRiskAssessments"))]
    pub(super) async fn assessments(
        &self,
        request: Request<pb::GetRiskAssessmentsRequest>,
    ) -> Result<Response<pb::RiskAssessments>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let release = self.release_for(&call, &r.release)?;
        names::optional_label("environment", &r.environment).map_err(name_error)?;
        Ok(Response::new(self.current(&release.name, &r.environment)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ReassessRisk"))]
    pub(super) async fn reassess(
        &self,
        request: Request<pb::ReassessRiskRequest>,
    ) -> Result<Response<pb::RiskAssessments>, Status> {
        let call = Caller::of(&request)?;
        let release = self.release_for(&call, &request.get_ref().release)?;
        call.allow_in(&release.business_unit, &Default::default())?;
        self.app
            .execute(
                Reassess {
                    release: release.name.clone(),
                    by: call.subject().to_owned(),
                    seed: call.new_id(REASSESSMENT),
                    at: Timestamp::now(),
                }
                .into(),
                call.metadata(),
            )
            .await?;
        Ok(Response::new(self.current(&release.name, "")))
    }

    #[tracing::instrument(skip_all, fields(rpc = "SetRiskWeights"))]
    pub(super) async fn set_weights(
        &self,
        request: Request<pb::SetRiskWeightsRequest>,
    ) -> Result<Response<pb::RiskWeightsVersion>, Status> {
        let call = Caller::of(&request)?;
        let weights = request
            .into_inner()
            .weights
            .ok_or_else(|| invalid("weights", "is missing"))?;
        self.app
            .execute(
                SetRiskWeights {
                    weights: weights_of(&weights),
                    by: call.subject().to_owned(),
                    seed: call.new_id(WEIGHTS),
                    at: Timestamp::now(),
                }
                .into(),
                call.metadata(),
            )
            .await?;
        self.weights_answer()
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetRiskWeights"))]
    pub(super) fn weights(
        &self,
        request: Request<pb::GetRiskWeightsRequest>,
    ) -> Result<Response<pb::RiskWeightsVersion>, Status> {
        Caller::of(&request)?;
        self.weights_answer()
    }

    fn weights_answer(&self) -> Result<Response<pb::RiskWeightsVersion>, Status> {
        Ok(Response::new(self.app.query(|s| pb::RiskWeightsVersion {
            version: s.weights_version,
            weights: Some(weights_pb(&s.weights)),
            set_by: s.weights_by.clone(),
        })))
    }

    /// A release's current assessments (of one environment, unless `environment` is empty).
    fn current(&self, release: &str, environment: &str) -> pb::RiskAssessments {
        self.app.query(|s| pb::RiskAssessments {
            assessments: s
                .assessments_of(release)
                .filter(|a| environment.is_empty() || a.environment == environment)
                .map(assessed_pb)
                .collect(),
        })
    }
}
