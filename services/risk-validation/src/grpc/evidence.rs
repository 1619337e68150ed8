//! FMEA and validations: recorded for a release of the caller's unit, and read back.

use flotilla_proto::risk::v1 as pb;
use flotilla_runtime::kit::Caller;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::RiskValidationApi;
use crate::domain::*;
use crate::messages::{evidence_of, fmea_pb, modes_of, validation_pb};

const FMEA: Uuid = Uuid::from_u128(0x5a1e_0000_0000_4000_8000_0000_0000_0003);
const VALIDATION: Uuid = Uuid::from_u128(0x5a1e_0000_0000_4000_8000_0000_0000_0004);

impl RiskValidationApi {
    #[tracing::instrument(skip_all, fields(rpc = "RecordFmea"))]
    pub(super) async fn fmea_recorded(
        &self,
        request: Request<pb::RecordFmeaRequest>,
    ) -> Result<Response<pb::Fmea>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let release = self.release_for(&call, &r.release)?;
        call.allow_in(&release.business_unit, &Default::default())?;
        let mut modes = modes_of(r.modes);
        for (i, m) in modes.iter_mut().enumerate() {
            if m.action_owner.len() > 256 {
                return Err(Status::invalid_argument(format!(
                    "modes[{i}].action_owner: is longer than 256 bytes"
                )));
            }
            // A person: sealed.
            m.action_owner = call.seal(&m.action_owner).await?;
        }
        self.app
            .execute(
                RecordFmea {
                    release: release.name.clone(),
                    modes,
                    by: call.subject().to_owned(),
                    seed: call.new_id(FMEA),
                    at: Timestamp::now(),
                }
                .into(),
                call.metadata(),
            )
            .await?;
        self.fmea_answer(&release.name)
    }

    #[tracing::instrument(skip_all, fields(rpc = "CloseFmeaAction"))]
    pub(super) async fn fmea_action_closed(
        &self,
        request: Request<pb::CloseFmeaActionRequest>,
    ) -> Result<Response<pb::Fmea>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let release = self.release_for(&call, &r.release)?;
        call.allow_in(&release.business_unit, &Default::default())?;
        self.app
            .execute(
                CloseFmeaAction {
                    release: release.name.clone(),
                    mode: r.failure_mode,
                    evidence: r.evidence,
                    by: call.subject().to_owned(),
                    seed: call.new_id(FMEA),
                    at: Timestamp::now(),
                }
                .into(),
                call.metadata(),
            )
            .await?;
        self.fmea_answer(&release.name)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetFmea"))]
    pub(super) fn fmea(
        &self,
        request: Request<pb::GetFmeaRequest>,
    ) -> Result<Response<pb::Fmea>, Status> {
        let call = Caller::of(&request)?;
        let release = self.release_for(&call, &request.get_ref().release)?;
        self.fmea_answer(&release.name)
    }

    fn fmea_answer(&self, release: &str) -> Result<Response<pb::Fmea>, Status> {
        let f = self
            .app
            .query(|s| s.fmeas.get(release).map(fmea_pb))
            .ok_or_else(|| DomainError::NotFound(format!("FMEA of release {release}")))?;
        Ok(Response::new(f))
    }

    #[tracing::instrument(skip_all, fields(rpc = "RecordValidation"))]
    pub(super) async fn validation_recorded(
        &self,
        request: Request<pb::RecordValidationRequest>,
    ) -> Result<Response<pb::Validation>, Status> {
        use pb::record_validation_request::Evidence as In;
        use pb::validation::Evidence as Out;
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let release = self.release_for(&call, &r.release)?;
        call.allow_in(&release.business_unit, &Default::default())?;
        let evidence = evidence_of(r.evidence.map(|e| match e {
            In::Performance(p) => Out::Performance(p),
            In::Security(s) => Out::Security(s),
            In::BackupRestore(b) => Out::BackupRestore(b),
            In::ThirdParty(t) => Out::ThirdParty(t),
        }))
        .ok_or_else(|| {
            invalid(
                "evidence",
                "is missing: give performance, security, backup_restore or third_party",
            )
        })?;
        let id = call.new_id(VALIDATION);
        self.app
            .execute(
                RecordValidation {
                    id,
                    release: release.name,
                    environment: r.environment,
                    evidence,
                    refs: r.evidence_refs,
                    by: call.subject().to_owned(),
                    at: Timestamp::now(),
                }
                .into(),
                call.metadata(),
            )
            .await?;
        let v = self
            .app
            .query(|s| s.validations.get(&id).map(validation_pb))
            .ok_or_else(|| DomainError::NotFound(format!("validation {id}")))?;
        Ok(Response::new(v))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListValidations"))]
    pub(super) fn validations(
        &self,
        request: Request<pb::ListValidationsRequest>,
    ) -> Result<Response<pb::ListValidationsResponse>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let release = self.release_for(&call, &r.release)?;
        names::optional_label("environment", &r.environment).map_err(name_error)?;
        Ok(Response::new(self.app.query(|s| {
            pb::ListValidationsResponse {
                validations: s
                    .validations
                    .values()
                    .filter(|v| v.release == release.name)
                    .filter(|v| r.environment.is_empty() || v.environment == r.environment)
                    .map(validation_pb)
                    .collect(),
            }
        })))
    }
}
