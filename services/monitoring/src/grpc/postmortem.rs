//! Post-mortems: recorded by the failed release's unit, read by any unit.

use flotilla_proto::monitoring::v1 as pb;
use flotilla_runtime::kit::{Caller, time};
use tonic::{Request, Response, Status};

use super::MonitoringApi;
use crate::domain::*;
use crate::messages::*;

impl MonitoringApi {
    #[tracing::instrument(skip_all, fields(rpc = "RecordPostmortem"))]
    pub(super) async fn postmortem_recorded(
        &self,
        request: Request<pb::RecordPostmortemRequest>,
    ) -> Result<Response<pb::Postmortem>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        names::id("release", &r.release).map_err(name_error)?;
        let unit = self.app.query(|m| {
            m.deployments
                .iter()
                .find(|d| d.release == r.release)
                .map(|d| d.business_unit.clone())
        });
        let Some(unit) = unit else {
            return Err(
                DomainError::NotFound(format!("deployments of release {}", r.release)).into(),
            );
        };
        call.allow_in(&unit, &Default::default())?;
        let mut factors = Vec::with_capacity(r.factors.len());
        for (i, f) in r.factors.into_iter().enumerate() {
            let kind = factor_kind_of(f.kind)
                .ok_or_else(|| invalid(&format!("factors[{i}].kind"), "is not a kind of factor"))?;
            factors.push(ContributingFactor {
                kind,
                description: f.description,
            });
        }
        let mut actions = Vec::with_capacity(r.actions.len());
        for (i, a) in r.actions.into_iter().enumerate() {
            let due = a
                .due
                .as_ref()
                .ok_or_else(|| invalid(&format!("actions[{i}].due"), "is missing"))
                .and_then(|t| {
                    time::from_request(t).map_err(|e| invalid(&format!("actions[{i}].due"), e))
                })?;
            if a.owner.len() > 256 {
                return Err(
                    invalid(&format!("actions[{i}].owner"), "is longer than 256 bytes").into(),
                );
            }
            actions.push(FollowUp {
                action: a.action,
                // A person: sealed.
                owner: call.seal(&a.owner).await?,
                due,
                done: a.done,
            });
        }
        self.app
            .execute(
                RecordPostmortem {
                    release: r.release.clone(),
                    summary: r.summary,
                    factors,
                    actions,
                    by: call.subject().to_owned(),
                    at: Timestamp::now(),
                }
                .into(),
                call.metadata(),
            )
            .await?;
        self.postmortem_answer(&r.release)
    }

    /// Any unit may read a post-mortem: one unit's failure teaches the next.
    #[tracing::instrument(skip_all, fields(rpc = "GetPostmortem"))]
    pub(super) async fn postmortem(
        &self,
        request: Request<pb::GetPostmortemRequest>,
    ) -> Result<Response<pb::Postmortem>, Status> {
        Caller::of(&request)?;
        self.postmortem_answer(&request.into_inner().release)
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListPostmortems"))]
    pub(super) async fn postmortems(
        &self,
        request: Request<pb::ListPostmortemsRequest>,
    ) -> Result<Response<pb::ListPostmortemsResponse>, Status> {
        Caller::of(&request)?;
        let r = request.into_inner();
        let kind = match pb::FactorKind::try_from(r.factor) {
            Ok(pb::FactorKind::Unspecified) => None,
            Ok(_) => factor_kind_of(r.factor),
            Err(_) => return Err(invalid("factor", "is not a kind of factor").into()),
        };
        let service = (!r.service.is_empty()).then_some(r.service.as_str());
        let postmortems = self.app.query(|m| {
            m.find_postmortems(service, kind)
                .map(|p| postmortem_pb(p, &m.timeline(&p.release)))
                .collect()
        });
        Ok(Response::new(pb::ListPostmortemsResponse { postmortems }))
    }

    fn postmortem_answer(&self, release: &str) -> Result<Response<pb::Postmortem>, Status> {
        let p = self
            .app
            .query(|m| {
                m.postmortems
                    .get(release)
                    .map(|p| postmortem_pb(p, &m.timeline(release)))
            })
            .ok_or_else(|| DomainError::NotFound(format!("post-mortem of release {release}")))?;
        Ok(Response::new(p))
    }
}
