//! Conversions between protobuf messages (API and events) and domain types. Invalid input
//! becomes a `DomainError::Invalid` naming the field.

use flotilla_proto::governance::v1 as pb;
use uuid::Uuid;

use crate::domain::*;

type R<T> = std::result::Result<T, DomainError>;

pub fn ts(t: Timestamp) -> prost_types::Timestamp {
    let (seconds, nanos) = t.seconds_and_nanos();
    prost_types::Timestamp { seconds, nanos }
}

pub fn from_ts(field: &str, t: Option<&prost_types::Timestamp>) -> R<Timestamp> {
    let t = t.ok_or_else(|| invalid(field, "is required"))?;
    opt_ts(field, Some(t)).map(|t| t.unwrap_or_default())
}

pub fn opt_ts(field: &str, t: Option<&prost_types::Timestamp>) -> R<Option<Timestamp>> {
    let Some(t) = t else { return Ok(None) };
    if !(0..1_000_000_000).contains(&t.nanos) || t.seconds.abs() > 253_402_300_799 {
        return Err(invalid(field, "is not a valid timestamp"));
    }
    Ok(Some(Timestamp(
        t.seconds * 1_000_000 + i64::from(t.nanos) / 1000,
    )))
}

pub fn uuid(field: &str, s: &str) -> R<Uuid> {
    Uuid::parse_str(s).map_err(|_| invalid(field, format!("{s:?} is not a UUID")))
}

fn tier(field: &str, t: u32) -> R<u8> {
    u8::try_from(t)
        .ok()
        .filter(|t| (1..=4).contains(t))
        .ok_or_else(|| invalid(field, format!("{t} is not 1-4")))
}

fn small(field: &str, v: u32, max: u32) -> R<u8> {
    if v > max {
        return Err(invalid(field, format!("{v} is above {max}")));
    }
    Ok(v as u8)
}

// ---- policy ----

pub fn policy(p: pb::PolicyDocument) -> R<PolicyDocument> {
    let naming = match p.naming {
        None => NamingRule {
            scheme: VersionScheme::Semver,
        },
        Some(n) => match pb::VersionScheme::try_from(n.scheme) {
            Ok(pb::VersionScheme::Semver | pb::VersionScheme::Unspecified) => NamingRule {
                scheme: VersionScheme::Semver,
            },
            Ok(pb::VersionScheme::Calver) => NamingRule {
                scheme: VersionScheme::Calver(n.calver_pattern),
            },
            Err(_) => return Err(invalid("naming.scheme", format!("{} is unknown", n.scheme))),
        },
    };
    let mut rules = Vec::with_capacity(p.approval_rules.len());
    for (i, r) in p.approval_rules.into_iter().enumerate() {
        rules.push(ApprovalRule {
            tier: small(&format!("approval_rules[{i}].tier"), r.tier, 255)?,
            min_risk: small(&format!("approval_rules[{i}].min_risk"), r.min_risk, 100)?,
            max_risk: small(&format!("approval_rules[{i}].max_risk"), r.max_risk, 100)?,
            requirements: r
                .requirements
                .into_iter()
                .map(|q| RoleRequirement {
                    role: q.role,
                    count: q.count,
                })
                .collect(),
            business_unit: r.business_unit,
            environments: r.environments,
        });
    }
    let mut criteria = Vec::new();
    for c in p.rollback_criteria {
        let mut thresholds = Vec::new();
        for t in c.thresholds {
            let greater_than = match t.comparison.as_str() {
                ">" => true,
                "<" => false,
                other => {
                    return Err(invalid(
                        "rollback_criteria.thresholds.comparison",
                        format!("{other:?} is not \">\" or \"<\""),
                    ));
                }
            };
            if !t.value.is_finite() {
                return Err(invalid(
                    "rollback_criteria.thresholds.value",
                    "is not finite",
                ));
            }
            thresholds.push(RollbackThreshold {
                metric: t.metric,
                greater_than,
                value: t.value,
            });
        }
        criteria.push(RollbackCriteria {
            tier: small("rollback_criteria.tier", c.tier, 255)?,
            decision_minutes: c.decision_minutes,
            thresholds,
            notify: c.notify,
        });
    }
    Ok(PolicyDocument {
        approval_rules: rules,
        naming,
        rollback_criteria: criteria,
        decision_deadline_minutes: p.decision_deadline_minutes,
        expire_after_minutes: p.expire_after_minutes,
        escalate_to: p.escalate_to,
        approval_validity_minutes: p.approval_validity_minutes,
    })
}

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

fn requirement_pb(q: &RoleRequirement) -> pb::RoleRequirement {
    pb::RoleRequirement {
        role: q.role.clone(),
        count: q.count,
    }
}

// ---- releases and approvals ----

/// Release facts; tier 0 means "as the catalog says" (the domain fills it in).
pub fn facts(f: Option<pb::ReleaseFacts>) -> R<ReleaseFacts> {
    let f = f.ok_or_else(|| invalid("release", "is required"))?;
    Ok(ReleaseFacts {
        tier: match f.criticality_tier {
            0 => 0,
            t => tier("release.criticality_tier", t)?,
        },
        risk_score: small("release.risk_score", f.risk_score, 100)?,
        release: f.release,
        version: f.version,
        environment: f.environment,
        service: f.service,
        business_unit: f.business_unit,
        personal_data: f.handles_personal_data,
        author: f.author,
        committers: f.committers,
    })
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

pub fn approval(a: pb::Approval) -> R<Approval> {
    Ok(Approval {
        at: from_ts("approval.approved_at", a.approved_at.as_ref())?,
        valid_until: opt_ts("approval.valid_until", a.valid_until.as_ref())?,
        approver: a.approver,
        role: a.role,
        comment: a.comment,
    })
}

pub fn status_pb(s: ApprovalStatus) -> pb::ApprovalStatus {
    match s {
        ApprovalStatus::Pending => pb::ApprovalStatus::Pending,
        ApprovalStatus::Approved => pb::ApprovalStatus::Approved,
        ApprovalStatus::Rejected => pb::ApprovalStatus::Rejected,
        ApprovalStatus::Expired => pb::ApprovalStatus::Expired,
    }
}

/// The API view of a request at `at`.
pub fn request_pb(gov: &Governance, r: &ApprovalRequest, at: Timestamp) -> pb::ApprovalRequest {
    let key = ReleaseEnv {
        release: r.release.release.clone(),
        environment: r.release.environment.clone(),
    };
    pb::ApprovalRequest {
        risk_assessed: r.assessed,
        request_id: r.id.to_string(),
        release: Some(facts_pb(&r.release)),
        status: status_pb(r.status(gov, at)) as i32,
        requirements: r
            .requirements
            .iter()
            .map(|q| {
                let cab = gov.cab_satisfying(&key, &q.role, at);
                pb::RequirementState {
                    role: q.role.clone(),
                    required: q.count,
                    given: if cab.is_some() {
                        q.count
                    } else {
                        r.given(&q.role, at)
                    },
                    cab_change_request: cab
                        .map(|d| d.change_request_id.clone())
                        .unwrap_or_default(),
                }
            })
            .collect(),
        approvals: r.approvals.iter().map(approval_pb).collect(),
        opened_at: Some(ts(r.opened_at)),
        due_at: Some(ts(r.due_at)),
        expires_at: Some(ts(r.expires_at)),
        escalated: r.escalated,
        emergency: r.emergency,
        policy_version: r.policy_version,
        opened_by: r.opened_by.clone(),
        rejected_by: r
            .rejection
            .as_ref()
            .map(|x| x.0.clone())
            .unwrap_or_default(),
        rejection_comment: r
            .rejection
            .as_ref()
            .map(|x| x.1.clone())
            .unwrap_or_default(),
        version: r.version,
    }
}

// ---- CAB ----

pub fn cab(d: Option<pb::CabDecision>, recorded_by: &str) -> R<CabDecision> {
    let d = d.ok_or_else(|| invalid("decision", "is required"))?;
    Ok(CabDecision {
        decided_at: from_ts("decision.decided_at", d.decided_at.as_ref())?,
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
        recorded_by: recorded_by.to_owned(),
        comment: d.comment,
    })
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

// ---- windows ----

fn u8s(field: &str, v: &[u32]) -> R<Vec<u8>> {
    v.iter().map(|x| small(field, *x, 255)).collect()
}

pub fn window(w: Option<pb::FreezeWindow>, id: Uuid, created_by: &str) -> R<FreezeWindow> {
    let w = w.ok_or_else(|| invalid("window", "is required"))?;
    let kind = match pb::WindowKind::try_from(w.kind) {
        Ok(pb::WindowKind::Freeze) => WindowKind::Freeze,
        Ok(pb::WindowKind::Embargo) => WindowKind::Embargo,
        _ => return Err(invalid("window.kind", "must be FREEZE or EMBARGO")),
    };
    let schedule = match w.schedule {
        Some(pb::freeze_window::Schedule::Once(o)) => Schedule::Once {
            start: from_ts("window.once.start", o.start.as_ref())?,
            end: from_ts("window.once.end", o.end.as_ref())?,
        },
        Some(pb::freeze_window::Schedule::Monthly(m)) => Schedule::Monthly(MonthlySchedule {
            months: u8s("window.monthly.months", &m.months)?,
            day: i8::try_from(m.day)
                .map_err(|_| invalid("window.monthly.day", format!("{} is out of range", m.day)))?,
            start_minute: m.start_minute,
            duration_minutes: m.duration_minutes,
        }),
        Some(pb::freeze_window::Schedule::Weekly(x)) => Schedule::Weekly(WeeklySchedule {
            weekdays: u8s("window.weekly.weekdays", &x.weekdays)?,
            start_minute: x.start_minute,
            duration_minutes: x.duration_minutes,
        }),
        None => {
            return Err(invalid(
                "window.schedule",
                "once, monthly or weekly is required",
            ));
        }
    };
    let scope = w.scope.unwrap_or_default();
    Ok(FreezeWindow {
        id,
        name: w.name,
        kind,
        scope: WindowScope {
            business_units: scope.business_units,
            environments: scope.environments,
            tiers: u8s("window.scope.tiers", &scope.tiers)?,
        },
        schedule,
        reason: w.reason,
        created_by: created_by.to_owned(),
        created_at: opt_ts("window.created_at", w.created_at.as_ref())?.unwrap_or_default(),
        business_unit: w.business_unit,
        cancelled: false,
        cancelled_at: None,
    })
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

// ---- deviations ----

pub fn rule(r: i32) -> R<GateRule> {
    match pb::GateRule::try_from(r) {
        Ok(pb::GateRule::Approvals) => Ok(GateRule::Approvals),
        Ok(pb::GateRule::FreezeWindow) => Ok(GateRule::FreezeWindow),
        Ok(pb::GateRule::Embargo) => Ok(GateRule::Embargo),
        _ => Err(invalid(
            "deviation.rule",
            "must be APPROVALS, FREEZE_WINDOW or EMBARGO",
        )),
    }
}

pub fn rule_pb(r: GateRule) -> pb::GateRule {
    match r {
        GateRule::Approvals => pb::GateRule::Approvals,
        GateRule::FreezeWindow => pb::GateRule::FreezeWindow,
        GateRule::Embargo => pb::GateRule::Embargo,
    }
}

/// A deviation as requested through the API, or as stored (status and decider included).
pub fn deviation(d: Option<pb::Deviation>, id: Uuid) -> R<Deviation> {
    let d = d.ok_or_else(|| invalid("deviation", "is required"))?;
    let status = match pb::DeviationStatus::try_from(d.status) {
        Ok(pb::DeviationStatus::Approved) => DeviationStatus::Approved,
        Ok(pb::DeviationStatus::Rejected) => DeviationStatus::Rejected,
        Ok(pb::DeviationStatus::Expired) => DeviationStatus::Expired,
        _ => DeviationStatus::Requested,
    };
    Ok(Deviation {
        id,
        rule: rule(d.rule)?,
        expires_at: from_ts("deviation.expires_at", d.expires_at.as_ref())?,
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
    })
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

// ---- rollback decisions ----

pub fn rollback(d: Option<pb::RollbackDecision>, id: Uuid, at: Timestamp) -> R<RollbackDecision> {
    let d = d.ok_or_else(|| invalid("decision", "is required"))?;
    let status = match pb::RollbackStatus::try_from(d.status) {
        Ok(pb::RollbackStatus::RollBack) => RollbackStatus::RollBack,
        Ok(pb::RollbackStatus::Continue) => RollbackStatus::Continue,
        _ => RollbackStatus::Pending,
    };
    Ok(RollbackDecision {
        id,
        tier: tier("decision.tier", d.tier)?,
        opened_at: opt_ts("decision.opened_at", d.opened_at.as_ref())?.unwrap_or(at),
        decide_by: opt_ts("decision.decide_by", d.decide_by.as_ref())?.unwrap_or(at),
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
    })
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

// ---- gate ----

pub fn gate_pb(key: &ReleaseEnv, at: Timestamp, d: &GateDecision) -> pb::GateDecision {
    pb::GateDecision {
        allowed: d.allowed,
        reasons: d
            .reasons
            .iter()
            .map(|r| pb::GateReason {
                kind: match r.kind {
                    GateReasonKind::NoApprovalRequest => pb::GateReasonKind::NoApprovalRequest,
                    GateReasonKind::MissingApprovals => pb::GateReasonKind::MissingApprovals,
                    GateReasonKind::ApprovalExpired => pb::GateReasonKind::ApprovalExpired,
                    GateReasonKind::RequestExpired => pb::GateReasonKind::RequestExpired,
                    GateReasonKind::Rejected => pb::GateReasonKind::Rejected,
                    GateReasonKind::FreezeWindow => pb::GateReasonKind::FreezeWindow,
                    GateReasonKind::Embargo => pb::GateReasonKind::Embargo,
                } as i32,
                message: r.message.clone(),
                subject: r.subject.clone(),
                waived_by_deviation: r.waived_by.map(|u| u.to_string()).unwrap_or_default(),
            })
            .collect(),
        deviations_used: d.deviations_used.iter().map(Uuid::to_string).collect(),
        release: key.release.clone(),
        environment: key.environment.clone(),
        at: Some(ts(at)),
    }
}
