//! The gate: may a release enter an environment at a time? Every reason is reported; a reason
//! an approved, unexpired deviation covers is shown as waived and does not deny.

use uuid::Uuid;

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateReasonKind {
    NoApprovalRequest,
    MissingApprovals,
    ApprovalExpired,
    RequestExpired,
    Rejected,
    FreezeWindow,
    Embargo,
    EmergencyMismatch,
    FmeaActionOpen,
}

impl GateReasonKind {
    /// The rule a deviation must name to waive this reason; `None` when nothing may waive it
    /// (a rejection is a decision, not a rule).
    fn rule(self) -> Option<GateRule> {
        match self {
            GateReasonKind::FreezeWindow => Some(GateRule::FreezeWindow),
            GateReasonKind::Embargo => Some(GateRule::Embargo),
            GateReasonKind::Rejected
            | GateReasonKind::EmergencyMismatch
            | GateReasonKind::FmeaActionOpen => None,
            _ => Some(GateRule::Approvals),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateReason {
    pub kind: GateReasonKind,
    pub message: String,
    /// The role missing approvals or the window's name.
    pub subject: String,
    pub waived_by: Option<Uuid>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateDecision {
    pub allowed: bool,
    pub reasons: Vec<GateReason>,
    pub deviations_used: Vec<Uuid>,
}

fn reason(kind: GateReasonKind, subject: impl Into<String>, message: String) -> GateReason {
    GateReason {
        kind,
        message,
        subject: subject.into(),
        waived_by: None,
    }
}

impl Governance {
    /// The answer at `at`, from what was decided by then: approvals, rejections, CAB and
    /// deviation decisions and window cancellations after `at` do not count.
    pub fn check_gate(&self, key: &ReleaseEnv, at: Timestamp) -> GateDecision {
        self.check_gate_as(key, at, None)
    }

    /// As [`Governance::check_gate`], for a release the caller says is (or is not) an
    /// emergency: a flag that differs from the approval request's is a reason, since approvals
    /// given for a normal change do not cover an emergency, nor the other way round.
    pub fn check_gate_as(
        &self,
        key: &ReleaseEnv,
        at: Timestamp,
        emergency: Option<bool>,
    ) -> GateDecision {
        let mut reasons = Vec::new();
        let request = self.requests.get(key).filter(|r| r.opened_at <= at);
        if let (Some(r), Some(said)) = (request, emergency)
            && r.emergency != said
        {
            let (is, opened) = if said {
                ("an emergency", "a normal release")
            } else {
                ("not an emergency", "an emergency")
            };
            reasons.push(reason(
                GateReasonKind::EmergencyMismatch,
                "",
                format!(
                    "release {} is {is} where it is moved, but its approval request for {} was opened as {opened}; open the request again with the right flag",
                    key.release, key.environment
                ),
            ));
        }
        if let Some((open, recorded)) = self.fmea_open.get(&key.release)
            && *recorded <= at
        {
            for mode in open {
                reasons.push(reason(
                    GateReasonKind::FmeaActionOpen,
                    mode.clone(),
                    format!(
                        "the FMEA of release {} has the required action of {mode} open; close it with its evidence (flotilla risk fmea close)",
                        key.release
                    ),
                ));
            }
        }
        match request {
            None => reasons.push(reason(
                GateReasonKind::NoApprovalRequest,
                "",
                format!(
                    "release {} has no approval request for {}",
                    key.release, key.environment
                ),
            )),
            Some(r) => {
                if let Some((by, comment)) = r.rejection.as_ref().filter(|_| r.rejected_by(at)) {
                    reasons.push(reason(
                        GateReasonKind::Rejected,
                        by.clone(),
                        format!("rejected by {by}: {comment}"),
                    ));
                }
                if let Some(d) = self.cab_refusal(key, at) {
                    reasons.push(reason(
                        GateReasonKind::Rejected,
                        d.change_request_id.clone(),
                        format!("CAB decision {} refused it", d.change_request_id),
                    ));
                }
                let mut missing = false;
                for q in &r.requirements {
                    if self.cab_satisfying(key, &q.role, at).is_some() {
                        continue;
                    }
                    let given = r.given(&q.role, at);
                    if given >= q.count {
                        continue;
                    }
                    missing = true;
                    let lapsed = r
                        .approvals
                        .iter()
                        .filter(|a| a.role == q.role && a.valid_until.is_some_and(|u| at >= u))
                        .count();
                    if lapsed > 0 {
                        reasons.push(reason(
                            GateReasonKind::ApprovalExpired,
                            q.role.clone(),
                            format!("{lapsed} {} approval(s) expired before this time", q.role),
                        ));
                    }
                    reasons.push(reason(
                        GateReasonKind::MissingApprovals,
                        q.role.clone(),
                        format!("{} needs {} approval(s), has {given}", q.role, q.count),
                    ));
                }
                if missing && !r.rejected_by(at) && at >= r.expires_at {
                    reasons.push(reason(
                        GateReasonKind::RequestExpired,
                        "",
                        "the approval request expired undecided; open a new one".to_owned(),
                    ));
                }
            }
        }
        let (bu, tier, emergency) = match request {
            Some(r) => (
                Some(r.release.business_unit.as_str()),
                Some(r.release.tier),
                r.emergency,
            ),
            None => (None, None, false),
        };
        for w in self.windows.values() {
            let cancelled = w.cancelled && w.cancelled_at.is_none_or(|c| c <= at);
            // A window created after `at` was not known then.
            if cancelled || w.created_at > at || !w.scope.covers(bu, &key.environment, tier) {
                continue;
            }
            let Some((_, end)) = w.schedule.active_at(at) else {
                continue;
            };
            match w.kind {
                // An emergency is refused in a freeze too: only a deviation lets it through.
                WindowKind::Freeze => reasons.push(reason(
                    GateReasonKind::FreezeWindow,
                    w.name.clone(),
                    format!(
                        "freeze window {:?} is active until {}{}",
                        w.name,
                        end.to_rfc3339(),
                        if emergency {
                            "; an emergency release passes it only with an approved deviation (rule freeze-window)"
                        } else {
                            ""
                        }
                    ),
                )),
                WindowKind::Embargo => reasons.push(reason(
                    GateReasonKind::Embargo,
                    w.name.clone(),
                    format!(
                        "embargo {:?} is active until {} (emergencies included)",
                        w.name,
                        end.to_rfc3339()
                    ),
                )),
            }
        }
        // Deviations: approved, unexpired, for this release and environment, in the release's
        // own unit. A rejection and the mandatory peer review of a personal-data system cannot
        // be waived.
        let mut used = Vec::new();
        if let (Some(ids), Some(bu)) = (self.deviations_by_release.get(key), bu) {
            for r in &mut reasons {
                let Some(rule) = r.kind.rule() else { continue };
                if r.kind == GateReasonKind::MissingApprovals && r.subject == PEER_REVIEW {
                    continue;
                }
                if let Some(d) = ids
                    .iter()
                    .filter_map(|id| self.deviations.get(id))
                    .find(|d| {
                        // Approved by `at`; one approved that expired since still counted then.
                        d.rule == rule
                            && d.business_unit == bu
                            && (d.status == DeviationStatus::Approved
                                || (d.status == DeviationStatus::Expired
                                    && !d.decided_by.is_empty()))
                            && d.decided_at.is_some_and(|t| t <= at)
                            && at < d.expires_at
                    })
                {
                    r.waived_by = Some(d.id);
                    if !used.contains(&d.id) {
                        used.push(d.id);
                    }
                }
            }
        }
        GateDecision {
            allowed: reasons.iter().all(|r| r.waived_by.is_some()),
            reasons,
            deviations_used: used,
        }
    }
}
