//! gRPC edge of the governance service (`flotilla.governance.v1.GovernanceService`). Each
//! handler converts the request (`convert`), checks the caller's unit with the target's facts
//! (`scope`), runs the app and answers a view (`view`). Errors become statuses through the one
//! table below.

use std::sync::Arc;

use flotilla_auth::AccessContext;
use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::governance::v1 as pb;
use flotilla_proto::governance::v1::governance_service_server::{
    GovernanceService, GovernanceServiceServer,
};
use flotilla_runtime::ServiceContext;
use flotilla_runtime::kit::{Caller, ServiceError};
use tonic::{Code, Request, Response, Status};

use crate::app::GovernanceApp;
use crate::domain::*;

pub mod convert;
mod scope;
pub mod view;

use convert::{opt_ts, required, uuid};

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.governance.v1.GovernanceService";

/// The one table of governance's refusals and their codes.
impl ServiceError for DomainError {
    fn code(&self) -> Code {
        match self {
            DomainError::Invalid { .. } => Code::InvalidArgument,
            DomainError::NotFound(_) => Code::NotFound,
            DomainError::AlreadyExists(_) => Code::AlreadyExists,
            DomainError::FailedPrecondition(_) | DomainError::NotYetKnown(_) => {
                Code::FailedPrecondition
            }
            DomainError::SegregationOfDuties { .. } | DomainError::NotInRole(_) => {
                Code::PermissionDenied
            }
            DomainError::StalePolicy { .. } => Code::Aborted,
        }
    }
}

impl From<DomainError> for Status {
    fn from(e: DomainError) -> Self {
        flotilla_runtime::kit::refuse(e)
    }
}

/// Scope checked for platform-wide changes: only central roles pass business-unit isolation.
const PLATFORM_SCOPE: &str = "*platform*";

/// What one command id names: the request, window, deviation or decision the call creates.
const CREATED: uuid::Uuid = uuid::Uuid::from_u128(0x0b8e_51c2_7d4f_4a61_9c3e_2f7a_6d5b_4e18);

/// The acting person as the domain knows them.
fn actor(call: &Caller) -> Actor {
    Actor {
        subject: call.subject().to_owned(),
        roles: call.roles().clone(),
        business_unit: call.business_unit().to_owned(),
    }
}

fn now_or(field: &str, t: Option<&prost_types::Timestamp>) -> Result<Timestamp, Status> {
    Ok(opt_ts(field, t)?.unwrap_or_else(Timestamp::now))
}

/// The tonic service, over the service's one app.
#[derive(Clone)]
pub struct GovernanceApi {
    ctx: ServiceContext,
    app: Arc<GovernanceApp>,
}

impl std::fmt::Debug for GovernanceApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernanceApi").finish_non_exhaustive()
    }
}

/// The tonic server over `app`.
pub fn server(
    ctx: ServiceContext,
    app: Arc<GovernanceApp>,
) -> GovernanceServiceServer<GovernanceApi> {
    let max = ctx.max_message_bytes();
    GovernanceServiceServer::new(GovernanceApi { ctx, app }).max_decoding_message_size(max)
}

#[tonic::async_trait]
impl GovernanceService for GovernanceApi {
    #[tracing::instrument(skip_all, fields(service = super::NAME))]
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<ServiceStatus>, Status> {
        self.ctx.status().await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "SetPolicy"))]
    async fn set_policy(
        &self,
        request: Request<pb::SetPolicyRequest>,
    ) -> Result<Response<pb::PolicyVersion>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let command = SetPolicy {
            policy: required("policy", r.policy)?,
            expected_version: r.expected_version,
            at: Timestamp::now(),
            known_roles: self.ctx.authorizer.policy().roles(),
        };
        self.app.execute(command, call.metadata()).await?;
        self.policy_view(0)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetPolicy"))]
    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::PolicyVersion>, Status> {
        self.policy_view(request.into_inner().version)
    }

    #[tracing::instrument(skip_all, fields(rpc = "CheckReleaseName"))]
    async fn check_release_name(
        &self,
        request: Request<pb::CheckReleaseNameRequest>,
    ) -> Result<Response<pb::CheckReleaseNameResponse>, Status> {
        let version = request.into_inner().version;
        Ok(Response::new(
            self.app.query(|g| view::release_name(&g.policy, &version)),
        ))
    }

    #[tracing::instrument(skip_all, fields(rpc = "OpenApprovalRequest"))]
    async fn open_approval_request(
        &self,
        request: Request<pb::OpenApprovalRequestRequest>,
    ) -> Result<Response<pb::ApprovalRequest>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let mut release: ReleaseFacts = required("release", r.release)?;
        // The author and committers are people: held to 256 bytes as given, then sealed and
        // compared as tokens.
        for (field, v) in std::iter::once(("release.author", &release.author))
            .chain(release.committers.iter().map(|c| ("release.committers", c)))
        {
            if v.len() > 256 {
                return Err(Status::invalid_argument(format!(
                    "{field}: is longer than 256 bytes"
                )));
            }
        }
        release.author = call.seal(&release.author).await?;
        for c in &mut release.committers {
            *c = call.seal(c).await?;
        }
        let unit = self.opening_unit(&call, &release);
        call.allow_in(&unit, &AccessContext::default())?;
        let (key, at) = (release.key(), Timestamp::now());
        let command = OpenApprovalRequest {
            id: call.new_id(CREATED),
            release,
            emergency: r.emergency,
            authoritative: false,
            authorized_unit: Some(unit),
            by: actor(&call),
            at,
        };
        self.app.execute(command, call.metadata()).await?;
        self.request_view(&key, at)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetApprovalRequest"))]
    async fn get_approval_request(
        &self,
        request: Request<pb::GetApprovalRequestRequest>,
    ) -> Result<Response<pb::ApprovalRequest>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let key = scope::key(r.release, r.environment)?;
        self.request_scope(&call, &key)?;
        self.request_view(&key, Timestamp::now())
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListApprovalRequests"))]
    async fn list_approval_requests(
        &self,
        request: Request<pb::ListApprovalRequestsRequest>,
    ) -> Result<Response<pb::ListApprovalRequestsResponse>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        scope::unit_filter(&call, &r.business_unit)?;
        let status = view::status_filter(r.status)?;
        let at = Timestamp::now();
        let requests = self.app.query(|g| {
            view::requests(g, at, |x| {
                (r.business_unit.is_empty() || x.release.business_unit == r.business_unit)
                    && (r.release.is_empty() || x.release.release == r.release)
                    && call.sees(&x.release.business_unit)
            })
        });
        Ok(Response::new(pb::ListApprovalRequestsResponse {
            requests: requests
                .into_iter()
                .filter(|x| status.is_none_or(|s| x.status == s))
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "Approve"))]
    async fn approve(
        &self,
        request: Request<pb::DecideApprovalRequest>,
    ) -> Result<Response<pb::ApprovalRequest>, Status> {
        self.decide_approval(request, true).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "Reject"))]
    async fn reject(
        &self,
        request: Request<pb::DecideApprovalRequest>,
    ) -> Result<Response<pb::ApprovalRequest>, Status> {
        self.decide_approval(request, false).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "RecordCabDecision"))]
    async fn record_cab_decision(
        &self,
        request: Request<pb::RecordCabDecisionRequest>,
    ) -> Result<Response<pb::CabDecision>, Status> {
        let call = Caller::of(&request)?;
        let mut decision: CabDecision = required("decision", request.into_inner().decision)?;
        decision.recorded_by = call.subject().to_owned();
        // The board's members are people: sealed, and compared with authors as tokens.
        for m in &mut decision.members {
            *m = call.seal(m).await?;
        }
        // The board acts for every unit whose releases it covers.
        for unit in self.app.query(|g| scope::units_covered(g, &decision)) {
            call.allow_in(&unit, &AccessContext::default())?;
        }
        let id = decision.change_request_id.clone();
        let at = Timestamp::now();
        self.app
            .execute(RecordCabDecision { decision, at }, call.metadata())
            .await?;
        self.found(format!("CAB decision {id}"), |g| {
            g.cab.get(&id).map(crate::messages::cab_pb)
        })
    }

    #[tracing::instrument(skip_all, fields(rpc = "CreateFreezeWindow"))]
    async fn create_freeze_window(
        &self,
        request: Request<pb::CreateFreezeWindowRequest>,
    ) -> Result<Response<pb::FreezeWindow>, Status> {
        let call = Caller::of(&request)?;
        let mut window: FreezeWindow = required("window", request.into_inner().window)?;
        window.id = call.new_id(CREATED);
        window.created_by = call.subject().to_owned();
        window.created_at = Timestamp::now();
        scope::own_window(&call, &mut window, PLATFORM_SCOPE)?;
        let id = window.id;
        let command = CreateFreezeWindow {
            window,
            by: actor(&call),
        };
        self.app.execute(command, call.metadata()).await?;
        self.window_view(id)
    }

    #[tracing::instrument(skip_all, fields(rpc = "CancelFreezeWindow"))]
    async fn cancel_freeze_window(
        &self,
        request: Request<pb::CancelFreezeWindowRequest>,
    ) -> Result<Response<pb::FreezeWindow>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let id = uuid("window_id", &r.window_id)?;
        let owner = self.lookup(format!("window {id}"), |g| {
            g.windows.get(&id).map(|w| w.business_unit.clone())
        })?;
        let unit = if owner.is_empty() {
            PLATFORM_SCOPE
        } else {
            &owner
        };
        call.allow_in(unit, &AccessContext::default())?;
        let command = CancelFreezeWindow {
            id,
            reason: r.reason,
            by: actor(&call),
            at: Timestamp::now(),
        };
        self.app.execute(command, call.metadata()).await?;
        self.window_view(id)
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListFreezeWindows"))]
    async fn list_freeze_windows(
        &self,
        request: Request<pb::ListFreezeWindowsRequest>,
    ) -> Result<Response<pb::ListFreezeWindowsResponse>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        scope::unit_filter(&call, &r.business_unit)?;
        let active_at = opt_ts("active_at", r.active_at.as_ref())?;
        let windows = self.app.query(|g| {
            view::windows(g, |w| {
                (r.business_unit.is_empty()
                    || w.scope.business_units.is_empty()
                    || w.scope.business_units.contains(&r.business_unit))
                    && active_at.is_none_or(|t| !w.cancelled && w.schedule.active_at(t).is_some())
                    && (w.business_unit.is_empty() || call.sees(&w.business_unit))
            })
        });
        Ok(Response::new(pb::ListFreezeWindowsResponse { windows }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "RequestDeviation"))]
    async fn request_deviation(
        &self,
        request: Request<pb::RequestDeviationRequest>,
    ) -> Result<Response<pb::Deviation>, Status> {
        let call = Caller::of(&request)?;
        let d: Deviation = required("deviation", request.into_inner().deviation)?;
        let deviation = scope::requested_deviation(&call, d, call.new_id(CREATED))?;
        let id = deviation.id;
        let at = Timestamp::now();
        self.app
            .execute(RequestDeviation { deviation, at }, call.metadata())
            .await?;
        self.deviation_view(id)
    }

    #[tracing::instrument(skip_all, fields(rpc = "ApproveDeviation"))]
    async fn approve_deviation(
        &self,
        request: Request<pb::DecideDeviationRequest>,
    ) -> Result<Response<pb::Deviation>, Status> {
        self.decide_deviation(request, true).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "RejectDeviation"))]
    async fn reject_deviation(
        &self,
        request: Request<pb::DecideDeviationRequest>,
    ) -> Result<Response<pb::Deviation>, Status> {
        self.decide_deviation(request, false).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListDeviations"))]
    async fn list_deviations(
        &self,
        request: Request<pb::ListDeviationsRequest>,
    ) -> Result<Response<pb::ListDeviationsResponse>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        scope::unit_filter(&call, &r.business_unit)?;
        let deviations = self.app.query(|g| {
            view::deviations(g, |d| {
                (r.release.is_empty() || d.release == r.release)
                    && (r.business_unit.is_empty() || d.business_unit == r.business_unit)
                    && call.sees(&d.business_unit)
            })
        });
        Ok(Response::new(pb::ListDeviationsResponse { deviations }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "OpenRollbackDecision"))]
    async fn open_rollback_decision(
        &self,
        request: Request<pb::OpenRollbackDecisionRequest>,
    ) -> Result<Response<pb::RollbackDecision>, Status> {
        let call = Caller::of(&request)?;
        let mut decision: RollbackDecision = required("decision", request.into_inner().decision)?;
        decision.id = call.new_id(CREATED);
        decision.opened_at = Timestamp::now();
        call.allow_in(&decision.business_unit, &AccessContext::default())?;
        let id = decision.id;
        self.app
            .execute(OpenRollbackDecision { decision }, call.metadata())
            .await?;
        self.rollback_view(id)
    }

    #[tracing::instrument(skip_all, fields(rpc = "DecideRollback"))]
    async fn decide_rollback(
        &self,
        request: Request<pb::DecideRollbackRequest>,
    ) -> Result<Response<pb::RollbackDecision>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let id = uuid("decision_id", &r.decision_id)?;
        let unit = self.lookup(format!("rollback decision {id}"), |g| {
            g.rollbacks.get(&id).map(|d| d.business_unit.clone())
        })?;
        call.allow_in(&unit, &AccessContext::default())?;
        let command = DecideRollback {
            id,
            roll_back: r.roll_back,
            comment: r.comment,
            by: actor(&call),
            at: Timestamp::now(),
        };
        self.app.execute(command, call.metadata()).await?;
        self.rollback_view(id)
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListRollbackDecisions"))]
    async fn list_rollback_decisions(
        &self,
        request: Request<pb::ListRollbackDecisionsRequest>,
    ) -> Result<Response<pb::ListRollbackDecisionsResponse>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        scope::unit_filter(&call, &r.business_unit)?;
        let decisions = self.app.query(|g| {
            view::rollbacks(g, |d| {
                (r.release.is_empty() || d.release == r.release)
                    && (r.business_unit.is_empty() || d.business_unit == r.business_unit)
                    && call.sees(&d.business_unit)
            })
        });
        Ok(Response::new(pb::ListRollbackDecisionsResponse {
            decisions,
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "CheckGate"))]
    async fn check_gate(
        &self,
        request: Request<pb::CheckGateRequest>,
    ) -> Result<Response<pb::GateDecision>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let at = now_or("at", r.at.as_ref())?;
        let key = scope::key(r.release, r.environment)?;
        let (decision, unit) = self.app.check_gate(&key, at, r.emergency);
        if !unit.is_empty() {
            call.allow_in(&unit, &AccessContext::default())?;
        }
        // A denial of a check about now counts (callers such as orchestration send their
        // command's time); a what-if about another time does not.
        const NOW_MICROS: i64 = 5 * 60 * 1_000_000;
        if (at.as_micros() - Timestamp::now().as_micros()).abs() <= NOW_MICROS {
            self.app.denials().count(&decision);
        }
        Ok(Response::new(view::gate_pb(&key, at, &decision)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ProcessDeadlines"))]
    async fn process_deadlines(
        &self,
        request: Request<pb::ProcessDeadlinesRequest>,
    ) -> Result<Response<pb::ProcessDeadlinesResponse>, Status> {
        let call = Caller::of(&request)?;
        let now = now_or("now", request.get_ref().now.as_ref())?;
        // The scheduler may run late, never early: a time ahead of the server's clock would
        // expire requests and deviations before their time.
        if now.0 > Timestamp::now().0 + 60_000_000 {
            return Err(invalid(
                "now",
                "is ahead of the server's clock; deadlines are processed up to the present only",
            )
            .into());
        }
        let report = self.app.process_deadlines(now, call.metadata()).await?;
        Ok(Response::new(view::deadlines_pb(report)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ReplaceAccessPolicy"))]
    async fn replace_access_policy(
        &self,
        request: Request<pb::ReplaceAccessPolicyRequest>,
    ) -> Result<Response<pb::AccessPolicy>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        self.app
            .replace_access_policy(
                &r.policy,
                r.expected_version,
                Timestamp::now(),
                call.metadata(),
            )
            .await?;
        Ok(Response::new(self.access_policy_view()))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetAccessPolicy"))]
    async fn get_access_policy(
        &self,
        _request: Request<pb::GetAccessPolicyRequest>,
    ) -> Result<Response<pb::AccessPolicy>, Status> {
        Ok(Response::new(self.access_policy_view()))
    }
}
