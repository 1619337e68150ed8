//! Governance's domain metrics: gate denials by reason (a counter of the answers this process
//! gave: a denial changes nothing in the store), and the approval requests pending per business
//! unit with the age of the oldest, read from the state at each scrape.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flotilla_core::event::Timestamp;
use flotilla_runtime::kit::{Gauges, Sample};

use crate::app::GovernanceApp;
use crate::domain::{ApprovalStatus, GateDecision, GateReasonKind};

const KINDS: [GateReasonKind; 9] = [
    GateReasonKind::NoApprovalRequest,
    GateReasonKind::MissingApprovals,
    GateReasonKind::ApprovalExpired,
    GateReasonKind::RequestExpired,
    GateReasonKind::Rejected,
    GateReasonKind::FreezeWindow,
    GateReasonKind::Embargo,
    GateReasonKind::EmergencyMismatch,
    GateReasonKind::FmeaActionOpen,
];

/// A reason as a label value.
fn reason(kind: GateReasonKind) -> &'static str {
    match kind {
        GateReasonKind::NoApprovalRequest => "no_approval_request",
        GateReasonKind::MissingApprovals => "missing_approvals",
        GateReasonKind::ApprovalExpired => "approval_expired",
        GateReasonKind::RequestExpired => "request_expired",
        GateReasonKind::Rejected => "rejected",
        GateReasonKind::FreezeWindow => "freeze_window",
        GateReasonKind::Embargo => "embargo",
        GateReasonKind::EmergencyMismatch => "emergency_mismatch",
        GateReasonKind::FmeaActionOpen => "fmea_action_open",
    }
}

/// The gate's denials this process answered, per reason (a denial with two reasons counts
/// under both; waived reasons do not count).
#[derive(Debug, Default)]
pub struct GateDenials([AtomicU64; KINDS.len()]);

impl GateDenials {
    pub fn count(&self, decision: &GateDecision) {
        if decision.allowed {
            return;
        }
        for r in decision.reasons.iter().filter(|r| r.waived_by.is_none()) {
            if let Some(i) = KINDS.iter().position(|k| *k == r.kind) {
                self.0[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

pub fn of(app: Arc<GovernanceApp>) -> Gauges {
    Arc::new(move || {
        let mut samples: Vec<Sample> = KINDS
            .iter()
            .zip(&app.denials().0)
            .map(|(kind, n)| {
                Sample::counter(
                    "flotilla_gate_denials_total",
                    "Gate checks this process answered with a denial, by reason.",
                    n.load(Ordering::Relaxed) as f64,
                )
                .label("reason", reason(*kind))
            })
            .collect();
        let now = Timestamp::now();
        let pending = app.query(|g| {
            let mut by_unit: BTreeMap<String, (u64, i64)> = BTreeMap::new();
            for r in g
                .requests
                .values()
                .filter(|r| r.status(g, now) == ApprovalStatus::Pending)
            {
                let e = by_unit
                    .entry(r.release.business_unit.clone())
                    .or_insert((0, i64::MAX));
                e.0 += 1;
                e.1 = e.1.min(r.opened_at.as_micros());
            }
            by_unit
        });
        for (unit, (n, oldest)) in pending {
            samples.push(
                Sample::new(
                    "flotilla_approvals_pending",
                    "Approval requests waiting for approvals, by business unit.",
                    n as f64,
                )
                .label("business_unit", unit.clone()),
            );
            samples.push(
                Sample::new(
                    "flotilla_approvals_oldest_pending_age_seconds",
                    "How long the oldest pending approval request has waited, by business unit.",
                    (now.as_micros() - oldest).max(0) as f64 / 1e6,
                )
                .label("business_unit", unit),
            );
        }
        samples
    })
}
