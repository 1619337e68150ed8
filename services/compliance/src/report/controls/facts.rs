//! What the controls read of the ledger: governance's approvals, deviations and embargoes and
//! orchestration's deployments, each taken only from the service that owns it, in ledger order.

use std::collections::HashMap;

use flotilla_proto::governance::v1 as gv;
use flotilla_proto::orchestration::v1 as orch;
use prost::Message;

use crate::domain::{Ledgered, Timestamp};
use crate::report::Read;
use crate::report::point_in_time::before;

/// A release into an environment.
pub(super) type Target = (String, String);

/// What the tests read: the events by index, and governance's and orchestration's facts, each
/// list in ledger order, each fact taken only from the service that owns it.
pub(super) struct Facts<'a> {
    pub(super) by_index: HashMap<u64, &'a Read>,
    /// Approval requests by id, and each target's requests in ledger order.
    pub(super) opened: HashMap<String, (&'a Ledgered, gv::ApprovalRequestOpened)>,
    pub(super) requests: HashMap<Target, Vec<String>>,
    /// Approvals by request, and every approval in ledger order.
    pub(super) grants: HashMap<String, Vec<(&'a Ledgered, gv::Approval)>>,
    pub(super) approvals: Vec<(&'a Ledgered, String, gv::Approval)>,
    pub(super) deployments: Vec<(&'a Ledgered, orch::Deployment)>,
    pub(super) deviations: HashMap<String, (&'a Ledgered, gv::Deviation)>,
    pub(super) deviation_decisions: Vec<(&'a Ledgered, gv::DeviationApproved)>,
    pub(super) embargoes: Vec<(&'a Ledgered, gv::FreezeWindow)>,
    pub(super) cancelled: HashMap<String, Timestamp>,
    pub(super) refusals: Vec<&'a Ledgered>,
}

fn decoded<M: Message + Default>(l: &Ledgered, service: &str, ty: &str) -> Option<M> {
    (l.event.service == service && l.event.event_type == ty)
        .then(|| M::decode(l.event.payload.as_slice()).ok())
        .flatten()
}

impl<'a> Facts<'a> {
    pub(super) fn read(read: &'a [Read]) -> Self {
        let mut f = Facts {
            by_index: HashMap::new(),
            opened: HashMap::new(),
            requests: HashMap::new(),
            grants: HashMap::new(),
            approvals: Vec::new(),
            deployments: Vec::new(),
            deviations: HashMap::new(),
            deviation_decisions: Vec::new(),
            embargoes: Vec::new(),
            cancelled: HashMap::new(),
            refusals: Vec::new(),
        };
        for r in read {
            let l = &r.0;
            f.by_index.insert(l.index, r);
            let g = |name: &str| format!("flotilla.governance.v1.{name}");
            let gov = "governance";
            if let Some(o) =
                decoded::<gv::ApprovalRequestOpened>(l, gov, &g("ApprovalRequestOpened"))
            {
                if !f.opened.contains_key(&o.request_id) {
                    let facts = o.release.clone().unwrap_or_default();
                    f.requests
                        .entry((facts.release, facts.environment))
                        .or_default()
                        .push(o.request_id.clone());
                    f.opened.insert(o.request_id.clone(), (l, o));
                }
            } else if let Some(a) = decoded::<gv::ApprovalGranted>(l, gov, &g("ApprovalGranted")) {
                if let Some(approval) = a.approval {
                    f.grants
                        .entry(a.request_id.clone())
                        .or_default()
                        .push((l, approval.clone()));
                    f.approvals.push((l, a.request_id, approval));
                }
            } else if let Some(d) = decoded::<orch::DeploymentStarted>(
                l,
                "orchestration",
                "flotilla.orchestration.v1.DeploymentStarted",
            ) {
                if let Some(d) = d.deployment {
                    f.deployments.push((l, d));
                }
            } else if let Some(d) =
                decoded::<gv::DeviationRequested>(l, gov, &g("DeviationRequested"))
            {
                if let Some(d) = d.deviation {
                    f.deviations.entry(d.deviation_id.clone()).or_insert((l, d));
                }
            } else if let Some(d) =
                decoded::<gv::DeviationApproved>(l, gov, &g("DeviationApproved"))
            {
                f.deviation_decisions.push((l, d));
            } else if let Some(w) =
                decoded::<gv::FreezeWindowCreated>(l, gov, &g("FreezeWindowCreated"))
            {
                if let Some(w) = w
                    .window
                    .filter(|w| w.kind == gv::WindowKind::Embargo as i32)
                {
                    f.embargoes.push((l, w));
                }
            } else if let Some(c) =
                decoded::<gv::FreezeWindowCancelled>(l, gov, &g("FreezeWindowCancelled"))
            {
                f.cancelled.insert(c.window_id, l.event.recorded_at);
            } else if l.event.service == gov
                && l.event.event_type == g("SegregationOfDutiesViolated")
            {
                f.refusals.push(l);
            }
        }
        f
    }

    /// The deployments started in the period.
    pub(super) fn deployments_in(
        &self,
        period: super::Period,
    ) -> impl Iterator<Item = &(&'a Ledgered, orch::Deployment)> {
        self.deployments
            .iter()
            .filter(move |(l, _)| period.holds(l.event.recorded_at))
    }

    /// The approval request of a release into an environment in force when `at` was
    /// recorded: the last one opened before it (governance starts approvals over when it
    /// opens a new one).
    pub(super) fn request_before(
        &self,
        release: &str,
        env: &str,
        at: &Ledgered,
    ) -> Option<(&String, &(&'a Ledgered, gv::ApprovalRequestOpened))> {
        self.requests
            .get(&(release.to_owned(), env.to_owned()))?
            .iter()
            .filter_map(|id| self.opened.get_key_value(id))
            .filter(|(_, (opened, _))| before(opened, at))
            .max_by_key(|(_, (opened, _))| (opened.event.position, opened.index))
    }

    /// The deviations approved for a release into an environment: (request, decision,
    /// deviation, approval).
    pub(super) fn approved_deviations(
        &self,
    ) -> HashMap<
        Target,
        Vec<(
            &'a Ledgered,
            &'a Ledgered,
            &gv::Deviation,
            &gv::DeviationApproved,
        )>,
    > {
        let mut out: HashMap<Target, Vec<_>> = HashMap::new();
        for (dl, a) in &self.deviation_decisions {
            if let Some((rl, d)) = self.deviations.get(&a.deviation_id) {
                out.entry((d.release.clone(), d.environment.clone()))
                    .or_default()
                    .push((*rl, *dl, d, a));
            }
        }
        out
    }
}
