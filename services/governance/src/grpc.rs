//! gRPC edge of the governance service (`flotilla.governance.v1.GovernanceService`): converts
//! requests to domain commands, checks business-unit rights with the target's facts, and maps
//! errors to status codes in one place.

use std::sync::Arc;

use flotilla_auth::{AccessContext, AuthLayer, Caller};
use flotilla_core::event::Metadata;
use flotilla_core::store::StoreError;
use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::governance::v1 as pb;
use flotilla_proto::governance::v1::governance_service_server::{
    GovernanceService, GovernanceServiceServer,
};
use flotilla_runtime::ServiceContext;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::app::{AppError, GovernanceApp};
use crate::convert::{self, opt_ts, ts};
use crate::domain::{Actor, Command, DomainError, ReleaseEnv, Timestamp, ViolationTarget};

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.governance.v1.GovernanceService";

/// Scope checked for platform-wide changes: only central roles pass business-unit isolation.
const PLATFORM_SCOPE: &str = "*platform*";

/// How often the deadline scheduler runs, in seconds.
pub const DEADLINE_TICK_SECS: u64 = 30;

/// The one place errors become gRPC statuses.
fn status(e: AppError) -> Status {
    let s = match &e {
        AppError::Domain(d) => match d {
            DomainError::Invalid { .. } => Status::invalid_argument(e.to_string()),
            DomainError::NotFound(_) => Status::not_found(e.to_string()),
            DomainError::AlreadyExists(_) => Status::already_exists(e.to_string()),
            DomainError::FailedPrecondition(_) => Status::failed_precondition(e.to_string()),
            DomainError::SegregationOfDuties { .. } | DomainError::NotInRole(_) => {
                Status::permission_denied(e.to_string())
            }
            DomainError::StalePolicy { .. } => Status::aborted(e.to_string()),
            DomainError::NotYetKnown(_) => Status::failed_precondition(e.to_string()),
        },
        AppError::Store(StoreError::WrongExpectedVersion { .. }) => Status::aborted(e.to_string()),
        AppError::Store(StoreError::InvalidAppend(_) | StoreError::EmptyAppend { .. }) => {
            Status::invalid_argument(e.to_string())
        }
        AppError::Store(_) => Status::unavailable(e.to_string()),
        AppError::Decode { .. } => Status::data_loss(e.to_string()),
        AppError::AccessPolicy(_) => Status::invalid_argument(e.to_string()),
    };
    let message = flotilla_core::names::capped(s.message()).into_owned();
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::DataLoss => {
            tracing::error!(error = %message, "request failed")
        }
        _ => tracing::info!(error = %message, code = ?s.code(), "request refused"),
    }
    Status::new(s.code(), message)
}

fn domain(e: DomainError) -> Status {
    status(AppError::Domain(e))
}

/// The verified caller, its access checker and the event metadata for what it causes.
struct Call {
    caller: Caller,
    access: AuthLayer,
    md: Metadata,
}

impl Call {
    fn of<T>(req: &Request<T>) -> Result<Self, Status> {
        let (caller, access, md) = flotilla_runtime::access::caller_metadata(req)?;
        Ok(Self { caller, access, md })
    }

    fn actor(&self) -> Actor {
        Actor {
            subject: self.caller.identity.subject.clone(),
            roles: self.caller.identity.roles.clone(),
            business_unit: self.caller.identity.business_unit.clone(),
        }
    }

    /// Business-unit isolation (and, with `context`, segregation of duties) for one target.
    fn allow_in(&self, business_unit: &str, context: &AccessContext) -> Result<(), Status> {
        self.access
            .authorize_in(&self.caller, business_unit, context)
    }

    /// May the caller see targets of this unit? (Lists filter by it without recording refusals.)
    fn sees(&self, business_unit: &str) -> bool {
        self.access
            .decide_in(&self.caller, business_unit, &AccessContext::default())
            .allowed
    }

    /// The id of what this call creates: derived from the command id when the caller sent one,
    /// so a retry names the same thing; fresh otherwise.
    fn new_id(&self) -> Uuid {
        const NS: Uuid = Uuid::from_u128(0x0b8e_51c2_7d4f_4a61_9c3e_2f7a_6d5b_4e18);
        match self.md.command_id {
            Some(c) => Uuid::new_v5(&NS, c.as_bytes()),
            None => Uuid::now_v7(),
        }
    }

    fn with_md(&self, bu: &str) -> Metadata {
        let mut md = self.md.clone();
        md.business_unit = bu.to_owned();
        md
    }
}

/// The tonic service.
#[derive(Debug, Clone)]
pub struct GovernanceApi {
    ctx: ServiceContext,
    app: Arc<GovernanceApp>,
}

/// Builds the tonic server for the runtime: loads the state and starts the background
/// catch-up and deadline scheduler.
pub fn server(ctx: ServiceContext) -> GovernanceServiceServer<GovernanceApi> {
    let app = Arc::new(
        GovernanceApp::new(ctx.store.clone(), ctx.authorizer.clone())
            .with_signer(ctx.namespace(), ctx.policy_signer.clone()),
    );
    GovernanceApp::spawn_background(&app, std::time::Duration::from_secs(DEADLINE_TICK_SECS));
    let max = ctx.max_message_bytes();
    GovernanceServiceServer::new(GovernanceApi { ctx, app }).max_decoding_message_size(max)
}

/// A release and environment named to look something up: whatever was accepted before stays
/// reachable, so only length and control characters are refused.
fn key(release: String, environment: String) -> Result<ReleaseEnv, Status> {
    use flotilla_core::names;
    names::reference("release", &release, 128).map_err(|e| domain(crate::domain::name_error(e)))?;
    names::reference("environment", &environment, 64)
        .map_err(|e| domain(crate::domain::name_error(e)))?;
    Ok(ReleaseEnv {
        release,
        environment,
    })
}

/// An explicit unit filter: the caller must be allowed to see that unit (one rule for every
/// list: naming a unit you may not see is PERMISSION_DENIED; naming none lists what you see).
fn unit_filter(call: &Call, business_unit: &str) -> Result<(), Status> {
    if business_unit.is_empty() {
        return Ok(());
    }
    flotilla_core::names::reference("business_unit", business_unit, 128)
        .map_err(|e| domain(crate::domain::name_error(e)))?;
    call.allow_in(business_unit, &AccessContext::default())
}

fn now_or(field: &str, t: Option<&prost_types::Timestamp>) -> Result<Timestamp, Status> {
    Ok(opt_ts(field, t)
        .map_err(domain)?
        .unwrap_or_else(Timestamp::now))
}

impl GovernanceApi {
    /// A view of something in the state, or NOT_FOUND naming `what`.
    fn found<T>(
        &self,
        what: String,
        view: impl FnOnce(&crate::domain::Governance) -> Option<T>,
    ) -> Result<Response<T>, Status> {
        self.app
            .query(view)
            .map(Response::new)
            .ok_or_else(|| domain(DomainError::NotFound(what)))
    }

    /// A segregation-of-duties refusal by the access policy (a `sod-*` policy decided it) is
    /// recorded by governance too, so every violation is in its history.
    async fn record_policy_sod(
        &self,
        call: &Call,
        bu: &str,
        d: &flotilla_auth::Decision,
        target: &ViolationTarget,
        role: &str,
        at: Timestamp,
    ) {
        let Some(rule) = d.policies.iter().find(|p| p.starts_with("sod-")) else {
            return;
        };
        let what = match target {
            ViolationTarget::Request(k) => format!("approve release {}", k.release),
            ViolationTarget::Deviation(id) => format!("decide deviation {id}"),
        };
        let detail = format!(
            "{} may not {what} (policy {rule})",
            call.caller.identity.subject
        );
        if let Err(e) = self
            .app
            .record_violation(target, role, rule, &detail, at, call.with_md(bu))
            .await
        {
            tracing::error!(error = %e, "recording a segregation-of-duties violation failed");
        }
    }

    /// The caller of a request, once the state is loaded.
    async fn call<T>(&self, request: &Request<T>) -> Result<Call, Status> {
        let call = Call::of(request)?;
        self.app.ensure_loaded().await.map_err(status)?;
        Ok(call)
    }

    async fn request_view(
        &self,
        key: &ReleaseEnv,
        at: Timestamp,
    ) -> Result<Response<pb::ApprovalRequest>, Status> {
        self.app
            .query(|g| g.requests.get(key).map(|r| convert::request_pb(g, r, at)))
            .map(Response::new)
            .ok_or_else(|| {
                domain(DomainError::NotFound(format!(
                    "approval request of release {} in {}",
                    key.release, key.environment
                )))
            })
    }

    /// The unit and SoD facts of an existing approval request.
    fn request_scope(&self, key: &ReleaseEnv) -> Result<(String, AccessContext), Status> {
        self.app
            .query(|g| {
                g.requests.get(key).map(|r| {
                    (
                        r.release.business_unit.clone(),
                        AccessContext {
                            author: r.release.author.clone(),
                            committers: r.release.committers.clone(),
                            requester: String::new(),
                        },
                    )
                })
            })
            .ok_or_else(|| {
                domain(DomainError::NotFound(format!(
                    "approval request of release {} in {}",
                    key.release, key.environment
                )))
            })
    }

    async fn decide_approval(
        &self,
        request: Request<pb::DecideApprovalRequest>,
        approve: bool,
    ) -> Result<Response<pb::ApprovalRequest>, Status> {
        let call = self.call(&request).await?;
        let r = request.into_inner();
        let key = key(r.release, r.environment)?;
        let (bu, context) = self.request_scope(&key)?;
        let at = Timestamp::now();
        let d = call.access.decide_in(&call.caller, &bu, &context);
        if !d.allowed {
            if approve {
                let target = ViolationTarget::Request(key.clone());
                self.record_policy_sod(&call, &bu, &d, &target, &r.role, at)
                    .await;
            }
            return Err(call.access.refuse(&call.caller, &bu, d));
        }
        let command = if approve {
            Command::Approve {
                key: key.clone(),
                role: r.role,
                comment: r.comment,
                by: call.actor(),
                at,
            }
        } else {
            Command::Reject {
                key: key.clone(),
                role: r.role,
                comment: r.comment,
                by: call.actor(),
                at,
            }
        };
        self.app
            .execute(command, call.with_md(&bu))
            .await
            .map_err(status)?;
        self.request_view(&key, at).await
    }

    async fn decide_deviation(
        &self,
        request: Request<pb::DecideDeviationRequest>,
        approve: bool,
    ) -> Result<Response<pb::Deviation>, Status> {
        let call = self.call(&request).await?;
        let r = request.into_inner();
        let id = convert::uuid("deviation_id", &r.deviation_id).map_err(domain)?;
        let (bu, requester) = self
            .app
            .query(|g| {
                g.deviations
                    .get(&id)
                    .map(|d| (d.business_unit.clone(), d.requested_by.clone()))
            })
            .ok_or_else(|| domain(DomainError::NotFound(format!("deviation {id}"))))?;
        let d = call.access.decide_in(
            &call.caller,
            &bu,
            &AccessContext {
                requester,
                ..Default::default()
            },
        );
        if !d.allowed {
            if approve {
                let target = ViolationTarget::Deviation(id);
                self.record_policy_sod(&call, &bu, &d, &target, &r.role, Timestamp::now())
                    .await;
            }
            return Err(call.access.refuse(&call.caller, &bu, d));
        }
        self.app
            .execute(
                Command::DecideDeviation {
                    id,
                    approve,
                    role: r.role,
                    comment: r.comment,
                    by: call.actor(),
                    at: Timestamp::now(),
                },
                call.with_md(&bu),
            )
            .await
            .map_err(status)?;
        self.found(format!("deviation {id}"), |g| {
            g.deviations.get(&id).map(convert::deviation_pb)
        })
    }

    fn access_policy_view(&self) -> pb::AccessPolicy {
        let current = self.ctx.authorizer.policy();
        self.app.query(|g| match &g.access_policy {
            Some((version, text, sha, at)) => pb::AccessPolicy {
                version: *version,
                policy: text.clone(),
                sha256: sha.clone(),
                replaced_by: g.access_policy_replaced_by.clone(),
                replaced_at: Some(ts(*at)),
            },
            None => pb::AccessPolicy {
                version: 0,
                policy: current.text().to_owned(),
                sha256: current.digest().to_owned(),
                replaced_by: String::new(),
                replaced_at: None,
            },
        })
    }
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
        let call = self.call(&request).await?;
        let r = request.into_inner();
        // Sizes first: nothing is converted from a flood.
        if let Some(p) = &r.policy
            && p.approval_rules.len() > crate::domain::policy::MAX_RULES
        {
            return Err(domain(crate::domain::invalid(
                "policy.approval_rules",
                format!(
                    "{} rules, at most {} allowed",
                    p.approval_rules.len(),
                    crate::domain::policy::MAX_RULES
                ),
            )));
        }
        let policy = convert::policy(
            r.policy
                .ok_or_else(|| Status::invalid_argument("policy: is required"))?,
        )
        .map_err(domain)?;
        let at = Timestamp::now();
        self.app
            .execute(
                Command::SetPolicy {
                    policy,
                    expected_version: r.expected_version,
                    at,
                    known_roles: self.ctx.authorizer.policy().roles(),
                },
                call.with_md(""),
            )
            .await
            .map_err(status)?;
        self.get_policy(Request::new(pb::GetPolicyRequest { version: 0 }))
            .await
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetPolicy"))]
    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::PolicyVersion>, Status> {
        self.app.ensure_loaded().await.map_err(status)?;
        let v = request.into_inner().version;
        self.app
            .query(|g| {
                let version = if v == 0 { g.policy_version } else { v };
                if version == 0 {
                    return Some(pb::PolicyVersion {
                        version: 0,
                        policy: Some(convert::policy_pb(&g.policy)),
                        set_by: String::new(),
                        set_at: None,
                    });
                }
                g.policy_history
                    .get(&version)
                    .map(|(p, at)| pb::PolicyVersion {
                        version,
                        policy: Some(convert::policy_pb(p)),
                        set_by: g.policy_set_by.get(&version).cloned().unwrap_or_default(),
                        set_at: Some(ts(*at)),
                    })
            })
            .map(Response::new)
            .ok_or_else(|| domain(DomainError::NotFound(format!("policy version {v}"))))
    }

    #[tracing::instrument(skip_all, fields(rpc = "CheckReleaseName"))]
    async fn check_release_name(
        &self,
        request: Request<pb::CheckReleaseNameRequest>,
    ) -> Result<Response<pb::CheckReleaseNameResponse>, Status> {
        self.app.ensure_loaded().await.map_err(status)?;
        let version = request.into_inner().version;
        Ok(Response::new(self.app.query(|g| {
            let scheme = match &g.policy.naming.scheme {
                crate::domain::VersionScheme::Semver => "semver".to_owned(),
                crate::domain::VersionScheme::Calver(p) => format!("calver {p}"),
            };
            match g.policy.check_version(&version) {
                Ok(()) => pb::CheckReleaseNameResponse {
                    valid: true,
                    scheme,
                    reason: String::new(),
                },
                Err(e) => pb::CheckReleaseNameResponse {
                    valid: false,
                    scheme,
                    reason: e.to_string(),
                },
            }
        })))
    }

    #[tracing::instrument(skip_all, fields(rpc = "OpenApprovalRequest"))]
    async fn open_approval_request(
        &self,
        request: Request<pb::OpenApprovalRequestRequest>,
    ) -> Result<Response<pb::ApprovalRequest>, Status> {
        let call = self.call(&request).await?;
        let r = request.into_inner();
        let facts = convert::facts(r.release).map_err(domain)?;
        // The unit checked is the one the request will be opened in: the catalog's for a known
        // service (whatever the request says), else the one named, else the caller's own.
        let scope = self
            .app
            .query(|g| {
                g.catalog
                    .get(&facts.service)
                    .map(|s| s.business_unit.clone())
            })
            .or_else(|| (!facts.business_unit.is_empty()).then(|| facts.business_unit.clone()))
            .unwrap_or_else(|| call.caller.identity.business_unit.clone());
        call.allow_in(&scope, &AccessContext::default())?;
        let k = ReleaseEnv {
            release: facts.release.clone(),
            environment: facts.environment.clone(),
        };
        let at = Timestamp::now();
        let bu = scope;
        self.app
            .execute(
                Command::OpenApprovalRequest {
                    id: call.new_id(),
                    release: facts,
                    emergency: r.emergency,
                    authoritative: false,
                    authorized_unit: Some(bu.clone()),
                    by: call.actor(),
                    at,
                },
                call.with_md(&bu),
            )
            .await
            .map_err(status)?;
        self.request_view(&k, at).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetApprovalRequest"))]
    async fn get_approval_request(
        &self,
        request: Request<pb::GetApprovalRequestRequest>,
    ) -> Result<Response<pb::ApprovalRequest>, Status> {
        let call = self.call(&request).await?;
        let r = request.into_inner();
        let k = key(r.release, r.environment)?;
        let (bu, _) = self.request_scope(&k)?;
        call.allow_in(&bu, &AccessContext::default())?;
        self.request_view(&k, Timestamp::now()).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListApprovalRequests"))]
    async fn list_approval_requests(
        &self,
        request: Request<pb::ListApprovalRequestsRequest>,
    ) -> Result<Response<pb::ListApprovalRequestsResponse>, Status> {
        let call = self.call(&request).await?;
        let r = request.into_inner();
        unit_filter(&call, &r.business_unit)?;
        if r.status != 0 && pb::ApprovalStatus::try_from(r.status).is_err() {
            return Err(domain(crate::domain::invalid(
                "status",
                format!(
                    "{} is not an approval status; use APPROVAL_STATUS_PENDING, _APPROVED, _REJECTED or _EXPIRED (or leave it out)",
                    r.status
                ),
            )));
        }
        let at = Timestamp::now();
        let mut requests = self.app.query(|g| {
            g.requests
                .values()
                .filter(|x| {
                    r.business_unit.is_empty() || x.release.business_unit == r.business_unit
                })
                .filter(|x| r.release.is_empty() || x.release.release == r.release)
                .filter(|x| call.sees(&x.release.business_unit))
                .map(|x| convert::request_pb(g, x, at))
                .filter(|x| r.status == 0 || x.status == r.status)
                .collect::<Vec<_>>()
        });
        requests.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        Ok(Response::new(pb::ListApprovalRequestsResponse { requests }))
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
        let call = self.call(&request).await?;
        if let Some(d) = &request.get_ref().decision
            && (d.covers.len() > 1_000 || d.members.len() > 100 || d.satisfies_roles.len() > 10)
        {
            return Err(domain(crate::domain::invalid(
                "decision",
                "a CAB decision covers at most 1000 releases, names at most 100 members and 10 roles",
            )));
        }
        let decision = convert::cab(request.into_inner().decision, &call.caller.identity.subject)
            .map_err(domain)?;
        // The board acts for every unit whose releases it covers.
        let units: std::collections::BTreeSet<String> = self.app.query(|g| {
            decision
                .covers
                .iter()
                .filter_map(|c| g.business_unit_of(c).map(str::to_owned))
                .collect()
        });
        for bu in &units {
            call.allow_in(bu, &AccessContext::default())?;
        }
        let id = decision.change_request_id.clone();
        self.app
            .execute(
                Command::RecordCabDecision {
                    decision,
                    at: Timestamp::now(),
                },
                call.with_md(""),
            )
            .await
            .map_err(status)?;
        self.found(format!("CAB decision {id}"), |g| {
            g.cab.get(&id).map(convert::cab_pb)
        })
    }

    #[tracing::instrument(skip_all, fields(rpc = "CreateFreezeWindow"))]
    async fn create_freeze_window(
        &self,
        request: Request<pb::CreateFreezeWindowRequest>,
    ) -> Result<Response<pb::FreezeWindow>, Status> {
        let call = self.call(&request).await?;
        let id = call.new_id();
        let window = convert::window(
            request.into_inner().window,
            id,
            &call.caller.identity.subject,
        )
        .map_err(domain)?;
        // A unit's window covers that unit only and is set by its people; a platform-wide
        // window (no owning unit) needs a central role.
        let mut window = window;
        window.created_at = Timestamp::now();
        if window.business_unit.is_empty() {
            call.allow_in(PLATFORM_SCOPE, &AccessContext::default())?;
        } else {
            call.allow_in(&window.business_unit, &AccessContext::default())?;
            if window
                .scope
                .business_units
                .iter()
                .any(|b| *b != window.business_unit)
            {
                return Err(domain(crate::domain::invalid(
                    "window.scope.business_units",
                    "a unit's window may only cover its own unit",
                )));
            }
            window.scope.business_units = vec![window.business_unit.clone()];
        }
        let bu = window.business_unit.clone();
        self.app
            .execute(
                Command::CreateFreezeWindow {
                    window,
                    by: call.actor(),
                },
                call.with_md(&bu),
            )
            .await
            .map_err(status)?;
        self.found(format!("window {id}"), |g| {
            g.windows.get(&id).map(convert::window_pb)
        })
    }

    #[tracing::instrument(skip_all, fields(rpc = "CancelFreezeWindow"))]
    async fn cancel_freeze_window(
        &self,
        request: Request<pb::CancelFreezeWindowRequest>,
    ) -> Result<Response<pb::FreezeWindow>, Status> {
        let call = self.call(&request).await?;
        let r = request.into_inner();
        let id = convert::uuid("window_id", &r.window_id).map_err(domain)?;
        let owner = self
            .app
            .query(|g| g.windows.get(&id).map(|w| w.business_unit.clone()))
            .ok_or_else(|| domain(DomainError::NotFound(format!("window {id}"))))?;
        let scope = if owner.is_empty() {
            PLATFORM_SCOPE
        } else {
            owner.as_str()
        };
        call.allow_in(scope, &AccessContext::default())?;
        self.app
            .execute(
                Command::CancelFreezeWindow {
                    id,
                    reason: r.reason,
                    by: call.actor(),
                    at: Timestamp::now(),
                },
                call.with_md(""),
            )
            .await
            .map_err(status)?;
        self.found(format!("window {id}"), |g| {
            g.windows.get(&id).map(convert::window_pb)
        })
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListFreezeWindows"))]
    async fn list_freeze_windows(
        &self,
        request: Request<pb::ListFreezeWindowsRequest>,
    ) -> Result<Response<pb::ListFreezeWindowsResponse>, Status> {
        let call = self.call(&request).await?;
        let r = request.into_inner();
        unit_filter(&call, &r.business_unit)?;
        let active_at = opt_ts("active_at", r.active_at.as_ref()).map_err(domain)?;
        let windows = self.app.query(|g| {
            g.windows
                .values()
                .filter(|w| {
                    r.business_unit.is_empty()
                        || w.scope.business_units.is_empty()
                        || w.scope.business_units.contains(&r.business_unit)
                })
                .filter(|w| {
                    active_at.is_none_or(|t| !w.cancelled && w.schedule.active_at(t).is_some())
                })
                .filter(|w| w.business_unit.is_empty() || call.sees(&w.business_unit))
                .map(convert::window_pb)
                .collect()
        });
        Ok(Response::new(pb::ListFreezeWindowsResponse { windows }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "RequestDeviation"))]
    async fn request_deviation(
        &self,
        request: Request<pb::RequestDeviationRequest>,
    ) -> Result<Response<pb::Deviation>, Status> {
        let call = self.call(&request).await?;
        let id = call.new_id();
        let mut d = convert::deviation(request.into_inner().deviation, id).map_err(domain)?;
        call.allow_in(&d.business_unit, &AccessContext::default())?;
        if !call.caller.identity.roles.contains(&d.requester_role) {
            return Err(domain(DomainError::NotInRole(format!(
                "{} does not hold role {:?}; name one of your roles as requester_role",
                call.caller.identity.subject, d.requester_role
            ))));
        }
        d.requested_by = call.caller.identity.subject.clone();
        d.status = crate::domain::DeviationStatus::Requested;
        d.decided_by.clear();
        d.decider_role.clear();
        d.comment.clear();
        let bu = d.business_unit.clone();
        self.app
            .execute(
                Command::RequestDeviation {
                    deviation: d,
                    at: Timestamp::now(),
                },
                call.with_md(&bu),
            )
            .await
            .map_err(status)?;
        self.found(format!("deviation {id}"), |g| {
            g.deviations.get(&id).map(convert::deviation_pb)
        })
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
        let call = self.call(&request).await?;
        let r = request.into_inner();
        unit_filter(&call, &r.business_unit)?;
        let deviations = self.app.query(|g| {
            g.deviations
                .values()
                .filter(|d| r.release.is_empty() || d.release == r.release)
                .filter(|d| r.business_unit.is_empty() || d.business_unit == r.business_unit)
                .filter(|d| call.sees(&d.business_unit))
                .map(convert::deviation_pb)
                .collect()
        });
        Ok(Response::new(pb::ListDeviationsResponse { deviations }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "OpenRollbackDecision"))]
    async fn open_rollback_decision(
        &self,
        request: Request<pb::OpenRollbackDecisionRequest>,
    ) -> Result<Response<pb::RollbackDecision>, Status> {
        let call = self.call(&request).await?;
        let id = call.new_id();
        let at = Timestamp::now();
        let mut d = convert::rollback(request.into_inner().decision, id, at).map_err(domain)?;
        d.opened_at = at;
        call.allow_in(&d.business_unit, &AccessContext::default())?;
        let bu = d.business_unit.clone();
        self.app
            .execute(
                Command::OpenRollbackDecision { decision: d },
                call.with_md(&bu),
            )
            .await
            .map_err(status)?;
        self.found(format!("rollback decision {id}"), |g| {
            g.rollbacks.get(&id).map(convert::rollback_pb)
        })
    }

    #[tracing::instrument(skip_all, fields(rpc = "DecideRollback"))]
    async fn decide_rollback(
        &self,
        request: Request<pb::DecideRollbackRequest>,
    ) -> Result<Response<pb::RollbackDecision>, Status> {
        let call = self.call(&request).await?;
        let r = request.into_inner();
        let id = convert::uuid("decision_id", &r.decision_id).map_err(domain)?;
        let bu = self
            .app
            .query(|g| g.rollbacks.get(&id).map(|d| d.business_unit.clone()))
            .ok_or_else(|| domain(DomainError::NotFound(format!("rollback decision {id}"))))?;
        call.allow_in(&bu, &AccessContext::default())?;
        self.app
            .execute(
                Command::DecideRollback {
                    id,
                    roll_back: r.roll_back,
                    comment: r.comment,
                    by: call.actor(),
                    at: Timestamp::now(),
                },
                call.with_md(&bu),
            )
            .await
            .map_err(status)?;
        self.found(format!("rollback decision {id}"), |g| {
            g.rollbacks.get(&id).map(convert::rollback_pb)
        })
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListRollbackDecisions"))]
    async fn list_rollback_decisions(
        &self,
        request: Request<pb::ListRollbackDecisionsRequest>,
    ) -> Result<Response<pb::ListRollbackDecisionsResponse>, Status> {
        let call = self.call(&request).await?;
        let r = request.into_inner();
        unit_filter(&call, &r.business_unit)?;
        let decisions = self.app.query(|g| {
            g.rollbacks
                .values()
                .filter(|d| r.release.is_empty() || d.release == r.release)
                .filter(|d| r.business_unit.is_empty() || d.business_unit == r.business_unit)
                .filter(|d| call.sees(&d.business_unit))
                .map(convert::rollback_pb)
                .collect()
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
        let call = self.call(&request).await?;
        let r = request.into_inner();
        let at = now_or("at", r.at.as_ref())?;
        let k = key(r.release, r.environment)?;
        let (decision, bu) = self.app.check_gate(&k, at);
        if !bu.is_empty() {
            call.allow_in(&bu, &AccessContext::default())?;
        }
        Ok(Response::new(convert::gate_pb(&k, at, &decision)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ProcessDeadlines"))]
    async fn process_deadlines(
        &self,
        request: Request<pb::ProcessDeadlinesRequest>,
    ) -> Result<Response<pb::ProcessDeadlinesResponse>, Status> {
        let call = self.call(&request).await?;
        let now = now_or("now", request.get_ref().now.as_ref())?;
        // The scheduler may run late, never early: a time ahead of the server's clock would
        // expire requests and deviations before their time.
        if now.0 > Timestamp::now().0 + 60_000_000 {
            return Err(Status::invalid_argument(
                "now: is ahead of the server's clock; deadlines are processed up to the present only",
            ));
        }
        let report = self
            .app
            .process_deadlines(now, call.with_md(""))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ProcessDeadlinesResponse {
            escalated: report.escalated,
            expired: report.expired,
            rollback_decisions_overdue: report.rollbacks_overdue,
            deviations_expired: report.deviations_expired,
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ReplaceAccessPolicy"))]
    async fn replace_access_policy(
        &self,
        request: Request<pb::ReplaceAccessPolicyRequest>,
    ) -> Result<Response<pb::AccessPolicy>, Status> {
        let call = self.call(&request).await?;
        let r = request.into_inner();
        self.app
            .replace_access_policy(
                &r.policy,
                r.expected_version,
                Timestamp::now(),
                call.with_md(""),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(self.access_policy_view()))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetAccessPolicy"))]
    async fn get_access_policy(
        &self,
        _request: Request<pb::GetAccessPolicyRequest>,
    ) -> Result<Response<pb::AccessPolicy>, Status> {
        self.app.ensure_loaded().await.map_err(status)?;
        Ok(Response::new(self.access_policy_view()))
    }
}
