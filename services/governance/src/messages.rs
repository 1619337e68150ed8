//! Domain values as protobuf messages: what stored events carry and API answers show.

use flotilla_proto::governance::v1 as pb;

use crate::domain::*;

pub use flotilla_runtime::kit::time::to_proto as ts;

pub fn policy_pb(p: &PolicyDocument) -> pb::PolicyDocument {
    pb::PolicyDocument {
        approval_rules: p
            .approval_rules
            .iter()
            .map(|r| pb::ApprovalRule {
                tier: u32::from(r.tier),
                min_risk: u32::from(r.min_risk),
                max_risk: u32::from(r.max_risk),
                requirements: r.requirements.iter().map(requirement_pb).collect(),
                business_unit: r.business_unit.clone(),
                environments: r.environments.clone(),
            })
            .collect(),
        naming: Some(match &p.naming.scheme {
            VersionScheme::Semver => pb::NamingRule {
                scheme: pb::VersionScheme::Semver as i32,
                calver_pattern: String::new(),
            },
            VersionScheme::Calver(pattern) => pb::NamingRule {
                scheme: pb::VersionScheme::Calver as i32,
                calver_pattern: pattern.clone(),
            },
        }),
        rollback_criteria: p
            .rollback_criteria
            .iter()
            .map(|c| pb::RollbackCriteria {
                tier: u32::from(c.tier),
                decision_minutes: c.decision_minutes,
                thresholds: c
                    .thresholds
                    .iter()
                    .map(|t| pb::RollbackThreshold {
                        metric: t.metric.clone(),
                        comparison: if t.greater_than { ">" } else { "<" }.into(),
                        value: t.value,
                    })
                    .collect(),
                notify: c.notify.clone(),
            })
            .collect(),
        decision_deadline_minutes: p.decision_deadline_minutes,
        expire_after_minutes: p.expire_after_minutes,
        escalate_to: p.escalate_to.clone(),
        approval_validity_minutes: p.approval_validity_minutes,
    }
}

pub fn requirement_pb(q: &RoleRequirement) -> pb::RoleRequirement {
    pb::RoleRequirement {
        role: q.role.clone(),
        count: q.count,
    }
}

pub fn facts_pb(f: &ReleaseFacts) -> pb::ReleaseFacts {
    pb::ReleaseFacts {
        release: f.release.clone(),
        version: f.version.clone(),
        environment: f.environment.clone(),
        service: f.service.clone(),
        business_unit: f.business_unit.clone(),
        criticality_tier: u32::from(f.tier),
        risk_score: u32::from(f.risk_score),
        handles_personal_data: f.personal_data,
        author: f.author.clone(),
        committers: f.committers.clone(),
    }
}

pub fn approval_pb(a: &Approval) -> pb::Approval {
    pb::Approval {
        approver: a.approver.clone(),
        role: a.role.clone(),
        comment: a.comment.clone(),
        approved_at: Some(ts(a.at)),
        valid_until: a.valid_until.map(ts),
    }
}

pub fn cab_pb(d: &CabDecision) -> pb::CabDecision {
    pb::CabDecision {
        change_request_id: d.change_request_id.clone(),
        approved: d.approved,
        covers: d
            .covers
            .iter()
            .map(|c| pb::ReleaseEnvironment {
                release: c.release.clone(),
                environment: c.environment.clone(),
            })
            .collect(),
        satisfies_roles: d.satisfies_roles.clone(),
        members: d.members.clone(),
        decided_at: Some(ts(d.decided_at)),
        recorded_by: d.recorded_by.clone(),
        comment: d.comment.clone(),
    }
}

pub fn window_pb(w: &FreezeWindow) -> pb::FreezeWindow {
    pb::FreezeWindow {
        window_id: w.id.to_string(),
        name: w.name.clone(),
        kind: match w.kind {
            WindowKind::Freeze => pb::WindowKind::Freeze,
            WindowKind::Embargo => pb::WindowKind::Embargo,
        } as i32,
        scope: Some(pb::WindowScope {
            business_units: w.scope.business_units.clone(),
            environments: w.scope.environments.clone(),
            tiers: w.scope.tiers.iter().map(|t| u32::from(*t)).collect(),
        }),
        schedule: Some(match &w.schedule {
            Schedule::Once { start, end } => pb::freeze_window::Schedule::Once(pb::OnceSchedule {
                start: Some(ts(*start)),
                end: Some(ts(*end)),
            }),
            Schedule::Monthly(m) => pb::freeze_window::Schedule::Monthly(pb::MonthlySchedule {
                months: m.months.iter().map(|x| u32::from(*x)).collect(),
                day: i32::from(m.day),
                start_minute: m.start_minute,
                duration_minutes: m.duration_minutes,
            }),
            Schedule::Weekly(x) => pb::freeze_window::Schedule::Weekly(pb::WeeklySchedule {
                weekdays: x.weekdays.iter().map(|d| u32::from(*d)).collect(),
                start_minute: x.start_minute,
                duration_minutes: x.duration_minutes,
            }),
        }),
        reason: w.reason.clone(),
        created_by: w.created_by.clone(),
        cancelled: w.cancelled,
        business_unit: w.business_unit.clone(),
        created_at: (w.created_at.0 != 0).then(|| ts(w.created_at)),
    }
}

pub fn rule_pb(r: GateRule) -> pb::GateRule {
    match r {
        GateRule::Approvals => pb::GateRule::Approvals,
        GateRule::FreezeWindow => pb::GateRule::FreezeWindow,
        GateRule::Embargo => pb::GateRule::Embargo,
    }
}

pub fn deviation_pb(d: &Deviation) -> pb::Deviation {
    pb::Deviation {
        deviation_id: d.id.to_string(),
        rule: rule_pb(d.rule) as i32,
        release: d.release.clone(),
        environment: d.environment.clone(),
        business_unit: d.business_unit.clone(),
        justification: d.justification.clone(),
        compensating_controls: d.compensating_controls.clone(),
        expires_at: Some(ts(d.expires_at)),
        requested_by: d.requested_by.clone(),
        requester_role: d.requester_role.clone(),
        status: match d.status {
            DeviationStatus::Requested => pb::DeviationStatus::Requested,
            DeviationStatus::Approved => pb::DeviationStatus::Approved,
            DeviationStatus::Rejected => pb::DeviationStatus::Rejected,
            DeviationStatus::Expired => pb::DeviationStatus::Expired,
        } as i32,
        decided_by: d.decided_by.clone(),
        decider_role: d.decider_role.clone(),
        comment: d.comment.clone(),
    }
}

pub fn rollback_pb(d: &RollbackDecision) -> pb::RollbackDecision {
    pb::RollbackDecision {
        decision_id: d.id.to_string(),
        release: d.release.clone(),
        environment: d.environment.clone(),
        service: d.service.clone(),
        business_unit: d.business_unit.clone(),
        tier: u32::from(d.tier),
        metric: d.metric.clone(),
        observed: d.observed,
        opened_at: Some(ts(d.opened_at)),
        decide_by: Some(ts(d.decide_by)),
        notify: d.notify.clone(),
        status: match d.status {
            RollbackStatus::Pending => pb::RollbackStatus::Pending,
            RollbackStatus::RollBack => pb::RollbackStatus::RollBack,
            RollbackStatus::Continue => pb::RollbackStatus::Continue,
        } as i32,
        overdue: d.overdue,
        decided_by: d.decided_by.clone(),
        comment: d.comment.clone(),
    }
}
