//! Requests of the API as domain values: every rule of the API's shape is checked here (sizes
//! and required fields, enum values, ranges), and a breach is `INVALID_ARGUMENT` naming the
//! field. What the server decides itself (ids, who, when) is set by the handler.

use flotilla_proto::governance::v1 as pb;
use uuid::Uuid;

use crate::domain::*;

type R<T> = std::result::Result<T, DomainError>;

/// A required message field, converted.
pub fn required<T, U: TryFrom<T, Error = DomainError>>(field: &str, value: Option<T>) -> R<U> {
    value
        .ok_or_else(|| invalid(field, "is required"))?
        .try_into()
}

pub fn from_ts(field: &str, t: Option<&prost_types::Timestamp>) -> R<Timestamp> {
    let t = t.ok_or_else(|| invalid(field, "is required"))?;
    opt_ts(field, Some(t)).map(|t| t.unwrap_or_default())
}

pub fn opt_ts(field: &str, t: Option<&prost_types::Timestamp>) -> R<Option<Timestamp>> {
    t.map(|t| {
        flotilla_runtime::kit::time::from_request(t)
            .map_err(|reason| invalid(field, format!("is not a valid timestamp: {reason}")))
    })
    .transpose()
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

impl TryFrom<pb::PolicyDocument> for PolicyDocument {
    type Error = DomainError;

    fn try_from(p: pb::PolicyDocument) -> R<Self> {
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
        Ok(Self {
            approval_rules: rules,
            naming,
            rollback_criteria: criteria,
            decision_deadline_minutes: p.decision_deadline_minutes,
            expire_after_minutes: p.expire_after_minutes,
            escalate_to: p.escalate_to,
            approval_validity_minutes: p.approval_validity_minutes,
        })
    }
}

impl TryFrom<pb::ReleaseFacts> for ReleaseFacts {
    type Error = DomainError;

    fn try_from(f: pb::ReleaseFacts) -> R<Self> {
        Ok(Self {
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
}

impl TryFrom<pb::CabDecision> for CabDecision {
    type Error = DomainError;

    fn try_from(d: pb::CabDecision) -> R<Self> {
        Ok(Self {
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
            recorded_by: String::new(),
            comment: d.comment,
        })
    }
}

fn u8s(field: &str, v: &[u32]) -> R<Vec<u8>> {
    v.iter().map(|x| small(field, *x, 255)).collect()
}

impl TryFrom<pb::FreezeWindow> for FreezeWindow {
    type Error = DomainError;

    fn try_from(w: pb::FreezeWindow) -> R<Self> {
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
                day: i8::try_from(m.day).map_err(|_| {
                    invalid("window.monthly.day", format!("{} is out of range", m.day))
                })?,
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
        Ok(Self {
            id: Uuid::nil(),
            name: w.name,
            kind,
            scope: WindowScope {
                business_units: scope.business_units,
                environments: scope.environments,
                tiers: u8s("window.scope.tiers", &scope.tiers)?,
            },
            schedule,
            reason: w.reason,
            created_by: String::new(),
            created_at: opt_ts("window.created_at", w.created_at.as_ref())?.unwrap_or_default(),
            business_unit: w.business_unit,
            cancelled: false,
            cancelled_at: None,
        })
    }
}

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

impl TryFrom<pb::Deviation> for Deviation {
    type Error = DomainError;

    fn try_from(d: pb::Deviation) -> R<Self> {
        let status = match pb::DeviationStatus::try_from(d.status) {
            Ok(pb::DeviationStatus::Approved) => DeviationStatus::Approved,
            Ok(pb::DeviationStatus::Rejected) => DeviationStatus::Rejected,
            Ok(pb::DeviationStatus::Expired) => DeviationStatus::Expired,
            _ => DeviationStatus::Requested,
        };
        Ok(Self {
            id: Uuid::nil(),
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
}

impl TryFrom<pb::RollbackDecision> for RollbackDecision {
    type Error = DomainError;

    fn try_from(d: pb::RollbackDecision) -> R<Self> {
        let status = match pb::RollbackStatus::try_from(d.status) {
            Ok(pb::RollbackStatus::RollBack) => RollbackStatus::RollBack,
            Ok(pb::RollbackStatus::Continue) => RollbackStatus::Continue,
            _ => RollbackStatus::Pending,
        };
        Ok(Self {
            id: Uuid::nil(),
            tier: tier("decision.tier", d.tier)?,
            opened_at: opt_ts("decision.opened_at", d.opened_at.as_ref())?.unwrap_or_default(),
            decide_by: opt_ts("decision.decide_by", d.decide_by.as_ref())?.unwrap_or_default(),
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
}
