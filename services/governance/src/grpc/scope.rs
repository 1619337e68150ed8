//! Whose things a call touches: the unit each target belongs to, checked against the caller
//! (business-unit isolation and, for approvals and deviations, segregation of duties), before
//! the app is asked.

use flotilla_auth::{AccessContext, Decision};
use flotilla_proto::governance::v1 as pb;
use flotilla_runtime::kit::Caller;
use tonic::{Request, Response, Status};

use super::{GovernanceApi, actor, uuid};
use crate::domain::*;

/// A release and environment named to look something up: whatever was accepted before stays
/// reachable, so only length and control characters are refused.
pub(super) fn key(release: String, environment: String) -> Result<ReleaseEnv, Status> {
    names::reference("release", &release, 128).map_err(name_error)?;
    names::reference("environment", &environment, 64).map_err(name_error)?;
    Ok(ReleaseEnv {
        release,
        environment,
    })
}

/// An explicit unit filter: the caller must be allowed to see that unit (one rule for every
/// list: naming a unit you may not see is PERMISSION_DENIED; naming none lists what you see).
pub(super) fn unit_filter(call: &Caller, business_unit: &str) -> Result<(), Status> {
    if business_unit.is_empty() {
        return Ok(());
    }
    names::reference("business_unit", business_unit, 128).map_err(name_error)?;
    call.allow_in(business_unit, &AccessContext::default())
}

/// The units of the releases a CAB decision covers (the board acts for each).
pub(super) fn units_covered(g: &Governance, d: &CabDecision) -> std::collections::BTreeSet<String> {
    d.covers
        .iter()
        .filter_map(|c| g.business_unit_of(c).map(str::to_owned))
        .collect()
}

/// A unit's window covers that unit only and is set by its people; a platform-wide window (no
/// owning unit) needs a central role.
pub(super) fn own_window(
    call: &Caller,
    window: &mut FreezeWindow,
    platform: &str,
) -> Result<(), Status> {
    if window.business_unit.is_empty() {
        return call.allow_in(platform, &AccessContext::default());
    }
    call.allow_in(&window.business_unit, &AccessContext::default())?;
    if window
        .scope
        .business_units
        .iter()
        .any(|b| *b != window.business_unit)
    {
        return Err(invalid(
            "window.scope.business_units",
            "a unit's window may only cover its own unit",
        )
        .into());
    }
    window.scope.business_units = vec![window.business_unit.clone()];
    Ok(())
}

/// A deviation as its requester asks for it: in a unit they act in, in a role they hold; what
/// only deciding sets is cleared.
pub(super) fn requested_deviation(
    call: &Caller,
    mut d: Deviation,
    id: uuid::Uuid,
) -> Result<Deviation, Status> {
    call.allow_in(&d.business_unit, &AccessContext::default())?;
    if !call.roles().contains(&d.requester_role) {
        return Err(DomainError::NotInRole(format!(
            "{} does not hold role {:?}; name one of your roles as requester_role",
            call.subject(),
            d.requester_role
        ))
        .into());
    }
    d.id = id;
    d.requested_by = call.subject().to_owned();
    d.status = DeviationStatus::Requested;
    d.decided_by.clear();
    d.decider_role.clear();
    d.comment.clear();
    Ok(d)
}

fn request_absent(key: &ReleaseEnv) -> Status {
    DomainError::NotFound(format!(
        "approval request of release {} in {}",
        key.release, key.environment
    ))
    .into()
}

impl GovernanceApi {
    /// The unit a request is opened in: the catalog's for a known service (whatever the request
    /// says), else the one named, else the caller's own.
    pub(super) fn opening_unit(&self, call: &Caller, release: &ReleaseFacts) -> String {
        self.app
            .query(|g| {
                g.catalog
                    .get(&release.service)
                    .map(|s| s.business_unit.clone())
            })
            .or_else(|| (!release.business_unit.is_empty()).then(|| release.business_unit.clone()))
            .unwrap_or_else(|| call.business_unit().to_owned())
    }

    /// The unit and segregation-of-duties facts of a request the caller may see. A request of
    /// another unit is answered exactly as one that does not exist (the refusal is recorded),
    /// so release names cannot be probed across units.
    pub(super) fn request_scope(
        &self,
        call: &Caller,
        key: &ReleaseEnv,
    ) -> Result<(String, AccessContext), Status> {
        let scope = self.app.query(|g| {
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
        });
        let Some((unit, context)) = scope else {
            return Err(request_absent(key));
        };
        call.allow_or_hide(&unit, || request_absent(key))?;
        Ok((unit, context))
    }

    pub(super) async fn decide_approval(
        &self,
        request: Request<pb::DecideApprovalRequest>,
        approve: bool,
    ) -> Result<Response<pb::ApprovalRequest>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let key = key(r.release, r.environment)?;
        let (unit, context) = self.request_scope(&call, &key)?;
        let at = Timestamp::now();
        let target = approve.then(|| ViolationTarget::Request(key.clone()));
        self.allow_or_record(&call, &unit, &context, target, &r.role, at)
            .await?;
        let (role, comment, by) = (r.role, r.comment, actor(&call));
        let command: Command = if approve {
            Approve {
                key: key.clone(),
                role,
                comment,
                by,
                at,
            }
            .into()
        } else {
            Reject {
                key: key.clone(),
                role,
                comment,
                by,
                at,
            }
            .into()
        };
        self.app.execute(command, call.metadata()).await?;
        self.request_view(&key, at)
    }

    pub(super) async fn decide_deviation(
        &self,
        request: Request<pb::DecideDeviationRequest>,
        approve: bool,
    ) -> Result<Response<pb::Deviation>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let id = uuid("deviation_id", &r.deviation_id)?;
        let (unit, requester) = self.lookup(format!("deviation {id}"), |g| {
            g.deviations
                .get(&id)
                .map(|d| (d.business_unit.clone(), d.requested_by.clone()))
        })?;
        let context = AccessContext {
            requester,
            ..Default::default()
        };
        let at = Timestamp::now();
        let target = approve.then_some(ViolationTarget::Deviation(id));
        self.allow_or_record(&call, &unit, &context, target, &r.role, at)
            .await?;
        let command = DecideDeviation {
            id,
            approve,
            role: r.role,
            comment: r.comment,
            by: actor(&call),
            at,
        };
        self.app.execute(command, call.metadata()).await?;
        self.deviation_view(id)
    }

    /// The access policies' answer for a target with its segregation-of-duties facts. A refusal
    /// that a `sod-*` policy decided is recorded by governance too (on `target`), so every
    /// violation is in its history.
    async fn allow_or_record(
        &self,
        call: &Caller,
        unit: &str,
        context: &AccessContext,
        target: Option<ViolationTarget>,
        role: &str,
        at: Timestamp,
    ) -> Result<(), Status> {
        let d = call.decide_in(unit, context);
        if d.allowed {
            return Ok(());
        }
        if let (Some(target), Some(rule)) = (target, sod_rule(&d)) {
            let what = match &target {
                ViolationTarget::Request(k) => format!("approve release {}", k.release),
                ViolationTarget::Deviation(id) => format!("decide deviation {id}"),
            };
            let attempt = RecordViolation {
                target,
                actor: call.subject().to_owned(),
                role: role.to_owned(),
                rule: rule.to_owned(),
                detail: format!("{} may not {what} (policy {rule})", call.subject()),
                at,
            };
            self.app.record_violation(attempt, call.metadata()).await;
        }
        Err(call.refuse(unit, d))
    }
}

fn sod_rule(d: &Decision) -> Option<&str> {
    d.policies
        .iter()
        .find(|p| p.starts_with("sod-"))
        .map(String::as_str)
}
