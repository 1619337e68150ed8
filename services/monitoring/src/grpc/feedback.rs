//! Support tickets and feature adoption per release, and the release's outcome.

use flotilla_proto::monitoring::v1 as pb;
use flotilla_runtime::kit::{Caller, time};
use tonic::{Request, Response, Status};

use super::MonitoringApi;
use crate::domain::*;
use crate::messages::*;

impl MonitoringApi {
    #[tracing::instrument(skip_all, fields(rpc = "RecordTicket"))]
    pub(super) async fn ticket(
        &self,
        request: Request<pb::RecordTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let call = Caller::of(&request)?;
        let mut t = request
            .into_inner()
            .ticket
            .ok_or_else(|| invalid("ticket", "is missing"))?;
        if t.opened_at.is_none() {
            return Err(invalid("ticket.opened_at", "is missing").into());
        }
        if let Some(at) = &t.opened_at {
            time::from_request(at).map_err(|e| invalid("ticket.opened_at", e))?;
        }
        // Linking is monitoring's.
        t.release.clear();
        t.link.clear();
        let unit = self
            .app
            .query(|m| m.catalog.get(&t.service).map(|(u, _)| u.clone()))
            .ok_or_else(|| {
                DomainError::FailedPrecondition(format!(
                    "{} is not in the service catalog; a ticket names a registered service",
                    names::shown(&t.service)
                ))
            })?;
        call.allow_in(&unit, &Default::default())?;
        if !matches!(
            pb::Severity::try_from(t.severity),
            Ok(pb::Severity::Sev1 | pb::Severity::Sev2 | pb::Severity::Sev3 | pb::Severity::Sev4)
        ) {
            return Err(invalid("ticket.severity", "is not SEV1 to SEV4").into());
        }
        // The reporter (an e-mail or a name) is personal data: held to 256 bytes as given,
        // then sealed under its own key.
        if t.reporter.len() > 256 || t.reporter.chars().any(char::is_control) {
            return Err(invalid(
                "ticket.reporter",
                "is longer than 256 bytes or holds control characters",
            )
            .into());
        }
        t.reporter = call.seal(&t.reporter).await?;
        let ticket = ticket_of(t);
        let id = ticket.id.clone();
        self.app
            .execute(RecordTicket { ticket }.into(), call.metadata())
            .await?;
        let t = self
            .app
            .query(|m| m.tickets.get(&id).map(ticket_pb))
            .ok_or_else(|| DomainError::NotFound(format!("ticket {id}")))?;
        Ok(Response::new(t))
    }

    #[tracing::instrument(skip_all, fields(rpc = "DeclareAdoptionTarget"))]
    pub(super) async fn adoption_target(
        &self,
        request: Request<pb::DeclareAdoptionTargetRequest>,
    ) -> Result<Response<pb::AdoptionTarget>, Status> {
        let call = Caller::of(&request)?;
        let t = request
            .into_inner()
            .target
            .ok_or_else(|| invalid("target", "is missing"))?;
        if let Some(due) = &t.due {
            time::from_request(due).map_err(|e| invalid("target.due", e))?;
        }
        let mut target = target_of(t);
        // The release's unit, as monitoring knows it (the domain refuses a release it does not).
        if let Some(unit) = self.app.query(|m| m.release_unit(&target.release)) {
            target.business_unit = unit;
        }
        call.allow_in(&target.business_unit, &Default::default())?;
        target.by = call.subject().to_owned();
        self.app
            .execute(
                DeclareAdoptionTarget {
                    target: target.clone(),
                }
                .into(),
                call.metadata(),
            )
            .await?;
        Ok(Response::new(target_pb(&target)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "RecordAdoption"))]
    pub(super) async fn adoption(
        &self,
        request: Request<pb::RecordAdoptionRequest>,
    ) -> Result<Response<pb::RecordAdoptionResponse>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let unit = self
            .app
            .query(|m| {
                m.adoption_targets
                    .get(&(r.release.clone(), r.feature.clone()))
                    .map(|t| t.business_unit.clone())
            })
            .unwrap_or_default();
        call.allow_in(&unit, &Default::default())?;
        let at = match &r.measured_at {
            Some(t) => time::from_request(t).map_err(|e| invalid("measured_at", e))?,
            None => Timestamp::now(),
        };
        self.app
            .execute(
                RecordAdoption {
                    release: r.release,
                    feature: r.feature,
                    value: r.value,
                    at,
                }
                .into(),
                call.metadata(),
            )
            .await?;
        Ok(Response::new(pb::RecordAdoptionResponse {}))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetReleaseOutcome"))]
    pub(super) async fn outcome(
        &self,
        request: Request<pb::GetReleaseOutcomeRequest>,
    ) -> Result<Response<pb::ReleaseOutcome>, Status> {
        let call = Caller::of(&request)?;
        let release = request.into_inner().release;
        names::id("release", &release).map_err(name_error)?;
        let absent = || Status::from(DomainError::NotFound(format!("release {release}")));
        let unit = self
            .app
            .query(|m| m.release_unit(&release))
            .ok_or_else(absent)?;
        call.allow_or_hide(&unit, absent)?;
        let o = self
            .app
            .query(|m| m.release_outcome(&release, Timestamp::now()));
        let visible = |unit: &str| unit.is_empty() || call.sees(unit);
        Ok(Response::new(pb::ReleaseOutcome {
            release: release.clone(),
            tickets: o
                .tickets
                .iter()
                .filter(|t| visible(&t.business_unit))
                .map(ticket_pb)
                .collect(),
            features: o
                .features
                .iter()
                .filter(|f| visible(&f.target.business_unit))
                .map(|f| pb::FeatureAdoption {
                    target: Some(target_pb(&f.target)),
                    value: f.last.map(|(v, _)| v),
                    measured_at: f.last.map(|(_, at)| ts(at)),
                    verdict: match f.verdict {
                        AdoptionVerdict::Achieved => pb::AdoptionVerdict::Achieved,
                        AdoptionVerdict::Pending => pb::AdoptionVerdict::Pending,
                        AdoptionVerdict::Missed => pb::AdoptionVerdict::Missed,
                        AdoptionVerdict::NoData => pb::AdoptionVerdict::NoData,
                    } as i32,
                })
                .collect(),
            objective_met: o.objective_met,
        }))
    }
}
