//! Stored messages as domain values, taken as they were recorded. Nothing here refuses: a
//! value the API accepted once is kept whatever the API's rules are today; a value out of the
//! domain's range is clamped (it cannot have been accepted, so only a hand-edited store, which
//! the hash chain catches, holds one).

use flotilla_proto::governance::v1 as pb;
use uuid::Uuid;

use crate::domain::*;

pub use flotilla_runtime::kit::time::stored as at;

fn at_opt(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    t.map(|t| at(Some(t)))
}

fn byte(v: u32) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

fn bytes(v: &[u32]) -> Vec<u8> {
    v.iter().map(|x| byte(*x)).collect()
}

pub fn policy(p: pb::PolicyDocument) -> PolicyDocument {
    let scheme = match p.naming {
        Some(n) if n.scheme == pb::VersionScheme::Calver as i32 => {
            VersionScheme::Calver(n.calver_pattern)
        }
        _ => VersionScheme::Semver,
    };
    PolicyDocument {
        approval_rules: p
            .approval_rules
            .into_iter()
            .map(|r| ApprovalRule {
                tier: byte(r.tier),
                min_risk: byte(r.min_risk),
                max_risk: byte(r.max_risk),
                requirements: r.requirements.into_iter().map(requirement).collect(),
                business_unit: r.business_unit,
                environments: r.environments,
            })
            .collect(),
        naming: NamingRule { scheme },
        rollback_criteria: p
            .rollback_criteria
            .into_iter()
            .map(|c| RollbackCriteria {
                tier: byte(c.tier),
                decision_minutes: c.decision_minutes,
                thresholds: c
                    .thresholds
                    .into_iter()
                    .map(|t| RollbackThreshold {
                        metric: t.metric,
                        greater_than: t.comparison != "<",
                        value: t.value,
                    })
                    .collect(),
                notify: c.notify,
            })
            .collect(),
        decision_deadline_minutes: p.decision_deadline_minutes,
        expire_after_minutes: p.expire_after_minutes,
        escalate_to: p.escalate_to,
        approval_validity_minutes: p.approval_validity_minutes,
    }
}

pub fn requirement(q: pb::RoleRequirement) -> RoleRequirement {
    RoleRequirement {
        role: q.role,
        count: q.count,
    }
}

pub fn facts(f: pb::ReleaseFacts) -> ReleaseFacts {
    ReleaseFacts {
        release: f.release,
        version: f.version,
        environment: f.environment,
        service: f.service,
        business_unit: f.business_unit,
        tier: byte(f.criticality_tier),
        risk_score: byte(f.risk_score),
        personal_data: f.handles_personal_data,
        author: f.author,
        committers: f.committers,
    }
}

pub fn approval(a: pb::Approval) -> Approval {
    Approval {
        at: at(a.approved_at.as_ref()),
        valid_until: at_opt(a.valid_until.as_ref()),
        approver: a.approver,
        role: a.role,
        comment: a.comment,
    }
}

pub fn cab(d: pb::CabDecision) -> CabDecision {
    CabDecision {
        decided_at: at(d.decided_at.as_ref()),
        change_request_id: d.change_request_id,
        approved: d.approved,
        covers: d
            .covers
            .into_iter()
            .map(|c| ReleaseEnv {
                release: c.release,
                environment: c.environment,
            })
            .collect(),
        satisfies_roles: d.satisfies_roles,
        members: d.members,
        recorded_by: d.recorded_by,
        comment: d.comment,
    }
}

pub fn window(w: pb::FreezeWindow, id: Uuid) -> FreezeWindow {
    let kind = if w.kind == pb::WindowKind::Embargo as i32 {
        WindowKind::Embargo
    } else {
        WindowKind::Freeze
    };
    let schedule = match w.schedule {
        Some(pb::freeze_window::Schedule::Once(o)) => Schedule::Once {
            start: at(o.start.as_ref()),
            end: at(o.end.as_ref()),
        },
        Some(pb::freeze_window::Schedule::Monthly(m)) => Schedule::Monthly(MonthlySchedule {
            months: bytes(&m.months),
            day: i8::try_from(m.day).unwrap_or(if m.day < 0 { i8::MIN } else { i8::MAX }),
            start_minute: m.start_minute,
            duration_minutes: m.duration_minutes,
        }),
        Some(pb::freeze_window::Schedule::Weekly(x)) => Schedule::Weekly(WeeklySchedule {
            weekdays: bytes(&x.weekdays),
            start_minute: x.start_minute,
            duration_minutes: x.duration_minutes,
        }),
        // Never active.
        None => Schedule::Once {
            start: Timestamp(0),
            end: Timestamp(0),
        },
    };
    let scope = w.scope.unwrap_or_default();
    FreezeWindow {
        id,
        name: w.name,
        kind,
        scope: WindowScope {
            business_units: scope.business_units,
            environments: scope.environments,
            tiers: bytes(&scope.tiers),
        },
        schedule,
        reason: w.reason,
        created_by: w.created_by,
        created_at: at(w.created_at.as_ref()),
        business_unit: w.business_unit,
        cancelled: false,
        cancelled_at: None,
    }
}

pub fn rule(r: i32) -> GateRule {
    match pb::GateRule::try_from(r) {
        Ok(pb::GateRule::FreezeWindow) => GateRule::FreezeWindow,
        Ok(pb::GateRule::Embargo) => GateRule::Embargo,
        _ => GateRule::Approvals,
    }
}

pub fn deviation(d: pb::Deviation, id: Uuid) -> Deviation {
    let status = match pb::DeviationStatus::try_from(d.status) {
        Ok(pb::DeviationStatus::Approved) => DeviationStatus::Approved,
        Ok(pb::DeviationStatus::Rejected) => DeviationStatus::Rejected,
        Ok(pb::DeviationStatus::Expired) => DeviationStatus::Expired,
        _ => DeviationStatus::Requested,
    };
    Deviation {
        id,
        rule: rule(d.rule),
        expires_at: at(d.expires_at.as_ref()),
        release: d.release,
        environment: d.environment,
        business_unit: d.business_unit,
        justification: d.justification,
        compensating_controls: d.compensating_controls,
        requested_by: d.requested_by,
        requester_role: d.requester_role,
        status,
        decided_by: d.decided_by,
        decider_role: d.decider_role,
        comment: d.comment,
        decided_at: None,
    }
}

pub fn rollback(d: pb::RollbackDecision, id: Uuid) -> RollbackDecision {
    let status = match pb::RollbackStatus::try_from(d.status) {
        Ok(pb::RollbackStatus::RollBack) => RollbackStatus::RollBack,
        Ok(pb::RollbackStatus::Continue) => RollbackStatus::Continue,
        _ => RollbackStatus::Pending,
    };
    RollbackDecision {
        id,
        tier: byte(d.tier),
        opened_at: at(d.opened_at.as_ref()),
        decide_by: at(d.decide_by.as_ref()),
        release: d.release,
        environment: d.environment,
        service: d.service,
        business_unit: d.business_unit,
        metric: d.metric,
        observed: d.observed,
        notify: d.notify,
        status,
        overdue: d.overdue,
        decided_by: d.decided_by,
        comment: d.comment,
    }
}
