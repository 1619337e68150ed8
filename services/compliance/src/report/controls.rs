//! The evidence pack of the annual control assessment: each release control, tested over a
//! period against every ledgered event (the whole population, not a sample), with every
//! exception listed and a reproducible sample of passing cases for the assessor to re-perform,
//! each case citing its events with inclusion proofs.
//!
//! The controls:
//! - `pii-peer-review`: a deployment of a release touching a personal-data system follows a
//!   peer review by someone who neither wrote nor committed it;
//! - `segregation-of-duties`: no approval is given by the release's author or a committer
//!   (the refused attempts show the control operating);
//! - `embargo`: nothing is deployed in an embargo's scope while it holds, unless a compliance
//!   officer approved a deviation from it for that release and environment;
//! - `deviation-register`: every approved deviation has a justification, compensating controls,
//!   an expiry after its approval, and a decider other than its requester;
//! - `ledger-integrity`: every service's chain held as the ledger saw it (no chain alert).
//!
//! Samples are drawn without a choice anyone could steer: cases ranked by SHA-256 over the
//! checkpoint's root, the control's id and the case's key; the same checkpoint gives the same
//! sample.

use std::collections::{HashMap, HashSet};

use flotilla_proto::governance::v1 as gv;
use flotilla_proto::orchestration::v1 as orch;
use prost::Message;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::point_in_time::before;
use super::{Line, Read, line};
use crate::domain::{Alert, Checkpoint, Compliance, Ledgered, Timestamp};

/// The role governance asks of a peer reviewer, and of whoever approves a deviation from an
/// embargo (governance's words, as its events carry them).
const PEER_REVIEW: &str = "peer-review";
const COMPLIANCE_OFFICER: &str = "compliance-officer";

/// The period tested: `[from, to)`, by when each event's service recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Period {
    fn holds(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conclusion {
    /// Every case in the population passed.
    Effective,
    /// At least one case failed: see the exceptions.
    ExceptionsFound,
    /// Nothing in the period was in the control's scope.
    NotExercised,
}

/// One case: what it is, what was found, and the events that show it.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    pub subject: String,
    pub detail: String,
    pub events: Vec<Line>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ControlTest {
    pub id: &'static str,
    pub objective: &'static str,
    /// How the population was tested.
    pub test: &'static str,
    /// What the test cannot see (said, not hidden).
    pub limits: &'static str,
    pub population: u64,
    pub conclusion: Conclusion,
    /// Every failing case.
    pub exceptions: Vec<Case>,
    /// Passing cases drawn for re-performance.
    pub samples: Vec<Case>,
    /// Events that show the control operating (refused attempts, embargoes declared).
    pub operated: Vec<Line>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvidencePack {
    /// RFC 3339.
    pub from: String,
    pub to: String,
    pub sample_size: usize,
    pub controls: Vec<ControlTest>,
    /// The signed checkpoint every proof is against; its root seeds the samples.
    pub checkpoint: String,
    pub tree_size: u64,
}

/// A case of a population before it is cited: its key (for sampling), what it is, what failed
/// (if anything) and the ledger indexes of its events.
struct Item {
    key: String,
    subject: String,
    detail: String,
    exception: Option<String>,
    events: Vec<u64>,
}

/// What the tests read: the events by index, and governance's and orchestration's facts.
struct Facts<'a> {
    by_index: HashMap<u64, &'a Read>,
    opened: HashMap<String, (&'a Ledgered, gv::ApprovalRequestOpened)>,
    grants: HashMap<String, Vec<(&'a Ledgered, gv::Approval)>>,
    deployments: Vec<(&'a Ledgered, orch::Deployment)>,
    deviations: HashMap<String, (&'a Ledgered, gv::Deviation)>,
    deviation_decisions: Vec<(&'a Ledgered, gv::DeviationApproved)>,
    embargoes: Vec<(&'a Ledgered, gv::FreezeWindow)>,
    cancelled: HashMap<String, Timestamp>,
    refusals: Vec<&'a Ledgered>,
}

fn decoded<M: Message + Default>(l: &Ledgered, ty: &str) -> Option<M> {
    (l.event.event_type == ty)
        .then(|| M::decode(l.event.payload.as_slice()).ok())
        .flatten()
}

impl<'a> Facts<'a> {
    fn read(read: &'a [Read]) -> Self {
        let mut f = Facts {
            by_index: HashMap::new(),
            opened: HashMap::new(),
            grants: HashMap::new(),
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
            if let Some(o) = decoded::<gv::ApprovalRequestOpened>(l, &g("ApprovalRequestOpened")) {
                f.opened.entry(o.request_id.clone()).or_insert((l, o));
            } else if let Some(a) = decoded::<gv::ApprovalGranted>(l, &g("ApprovalGranted")) {
                if let Some(approval) = a.approval {
                    f.grants
                        .entry(a.request_id)
                        .or_default()
                        .push((l, approval));
                }
            } else if let Some(d) =
                decoded::<orch::DeploymentStarted>(l, "flotilla.orchestration.v1.DeploymentStarted")
            {
                if let Some(d) = d.deployment {
                    f.deployments.push((l, d));
                }
            } else if let Some(d) = decoded::<gv::DeviationRequested>(l, &g("DeviationRequested")) {
                if let Some(d) = d.deviation {
                    f.deviations.entry(d.deviation_id.clone()).or_insert((l, d));
                }
            } else if let Some(d) = decoded::<gv::DeviationApproved>(l, &g("DeviationApproved")) {
                f.deviation_decisions.push((l, d));
            } else if let Some(w) = decoded::<gv::FreezeWindowCreated>(l, &g("FreezeWindowCreated"))
            {
                if let Some(w) = w
                    .window
                    .filter(|w| w.kind == gv::WindowKind::Embargo as i32)
                {
                    f.embargoes.push((l, w));
                }
            } else if let Some(c) =
                decoded::<gv::FreezeWindowCancelled>(l, &g("FreezeWindowCancelled"))
            {
                f.cancelled.insert(c.window_id, l.event.recorded_at);
            } else if l.event.event_type == g("SegregationOfDutiesViolated") {
                f.refusals.push(l);
            }
        }
        f
    }

    /// Approval requests of a release into an environment.
    fn requests_of(
        &self,
        release: &str,
        env: &str,
    ) -> impl Iterator<Item = (&String, &(&'a Ledgered, gv::ApprovalRequestOpened))> {
        let (release, env) = (release.to_owned(), env.to_owned());
        self.opened.iter().filter(move |(_, (_, o))| {
            o.release
                .as_ref()
                .is_some_and(|f| f.release == release && f.environment == env)
        })
    }
}

/// Whether someone neither wrote nor committed the release the facts describe.
fn independent(who: &str, facts: &gv::ReleaseFacts) -> bool {
    who != facts.author && !facts.committers.iter().any(|c| c == who)
}

fn pii_peer_review(f: &Facts, period: Period) -> Vec<Item> {
    let mut items = Vec::new();
    for (l, d) in f
        .deployments
        .iter()
        .filter(|(l, _)| period.holds(l.event.recorded_at))
    {
        let requests: Vec<_> = f
            .requests_of(&d.release, &d.environment)
            .filter(|(_, (_, o))| o.release.as_ref().is_some_and(|r| r.handles_personal_data))
            .collect();
        if requests.is_empty() {
            continue;
        }
        let mut events = vec![l.index];
        let mut review = None;
        for (id, (opened, o)) in &requests {
            events.push(opened.index);
            let facts = o.release.clone().unwrap_or_default();
            review = review.or_else(|| {
                f.grants.get(*id).into_iter().flatten().find(|(g, a)| {
                    a.role == PEER_REVIEW && independent(&a.approver, &facts) && before(g, l)
                })
            });
        }
        let (detail, exception) = match review {
            Some((g, a)) => {
                events.push(g.index);
                (
                    format!(
                        "peer-reviewed by {} before {} deployed it",
                        a.approver, d.started_by
                    ),
                    None,
                )
            }
            None => (
                String::new(),
                Some(format!(
                    "deployed by {} with no peer review by someone who neither wrote nor committed it before it started",
                    d.started_by
                )),
            ),
        };
        items.push(Item {
            key: d.deployment_id.clone(),
            subject: format!(
                "{} into {} (deployment {})",
                d.release, d.environment, d.deployment_id
            ),
            detail,
            exception,
            events,
        });
    }
    items
}

fn segregation_of_duties(f: &Facts, period: Period) -> Vec<Item> {
    let mut items = Vec::new();
    for (id, grants) in &f.grants {
        let Some((opened, o)) = f.opened.get(id) else {
            continue;
        };
        let facts = o.release.clone().unwrap_or_default();
        for (g, a) in grants
            .iter()
            .filter(|(g, _)| period.holds(g.event.recorded_at))
        {
            let exception = (!independent(&a.approver, &facts)).then(|| {
                let did = if a.approver == facts.author {
                    "wrote"
                } else {
                    "committed to"
                };
                format!("{} approved as {} a release they {did}", a.approver, a.role)
            });
            items.push(Item {
                key: g.event.id.to_string(),
                subject: format!(
                    "{} into {}: {} as {}",
                    facts.release, facts.environment, a.approver, a.role
                ),
                detail: format!(
                    "author {}, committers [{}]",
                    facts.author,
                    facts.committers.join(", ")
                ),
                exception,
                events: vec![opened.index, g.index],
            });
        }
    }
    items
}

/// Whether a window's scope takes a deployment (tiers are not on the deployment: a window
/// limited to tiers is taken to apply).
fn in_scope(w: &gv::FreezeWindow, d: &orch::Deployment) -> bool {
    let scope = w.scope.clone().unwrap_or_default();
    let listed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    listed(&scope.business_units, &d.business_unit) && listed(&scope.environments, &d.environment)
}

/// The instants a once-scheduled window holds, as far as it was not cancelled.
fn holds_at(w: &gv::FreezeWindow, cancelled: Option<Timestamp>, t: Timestamp) -> Option<bool> {
    let gv::freeze_window::Schedule::Once(once) = w.schedule.clone()? else {
        return None;
    };
    let start = flotilla_runtime::kit::time::stored(once.start.as_ref());
    let end = flotilla_runtime::kit::time::stored(once.end.as_ref());
    Some(start <= t && t < end && cancelled.is_none_or(|c| t < c))
}

fn embargo(f: &Facts, period: Period) -> Vec<Item> {
    let mut items = Vec::new();
    for (l, d) in f
        .deployments
        .iter()
        .filter(|(l, _)| period.holds(l.event.recorded_at))
    {
        let at = l.event.recorded_at;
        for (w_event, w) in &f.embargoes {
            let cancelled = f.cancelled.get(&w.window_id).copied();
            if !in_scope(w, d) || holds_at(w, cancelled, at) != Some(true) {
                continue;
            }
            let waiver = f.deviation_decisions.iter().find_map(|(dl, a)| {
                let (rl, dev) = f.deviations.get(&a.deviation_id)?;
                let expires = flotilla_runtime::kit::time::stored(dev.expires_at.as_ref());
                (dev.rule == gv::GateRule::Embargo as i32
                    && dev.release == d.release
                    && dev.environment == d.environment
                    && a.role == COMPLIANCE_OFFICER
                    && before(dl, l)
                    && (dev.expires_at.is_none() || at < expires))
                    .then_some((*rl, *dl, a))
            });
            let mut events = vec![l.index, w_event.index];
            let (detail, exception) = match waiver {
                Some((rl, dl, a)) => {
                    events.extend([rl.index, dl.index]);
                    (
                        format!(
                            "under embargo {:?}, waived by {} ({})",
                            w.name, a.approver, a.role
                        ),
                        None,
                    )
                }
                None => (
                    String::new(),
                    Some(format!(
                        "started by {} inside embargo {:?} with no deviation a compliance officer approved",
                        d.started_by, w.name
                    )),
                ),
            };
            items.push(Item {
                key: format!("{}/{}", d.deployment_id, w.window_id),
                subject: format!(
                    "{} into {} (deployment {})",
                    d.release, d.environment, d.deployment_id
                ),
                detail,
                exception,
                events,
            });
        }
    }
    items
}

fn deviation_register(f: &Facts, period: Period) -> Vec<Item> {
    let mut items = Vec::new();
    for (l, a) in f
        .deviation_decisions
        .iter()
        .filter(|(l, _)| period.holds(l.event.recorded_at))
    {
        let Some((rl, d)) = f.deviations.get(&a.deviation_id) else {
            items.push(Item {
                key: a.deviation_id.clone(),
                subject: format!("deviation {}", a.deviation_id),
                detail: String::new(),
                exception: Some("approved, but the ledger holds no request of it".into()),
                events: vec![l.index],
            });
            continue;
        };
        let approved_at = l.event.recorded_at;
        let mut missing = Vec::new();
        if d.justification.trim().is_empty() {
            missing.push("no justification".to_owned());
        }
        if d.compensating_controls.iter().all(|c| c.trim().is_empty()) {
            missing.push("no compensating control".to_owned());
        }
        match &d.expires_at {
            None => missing.push("no expiry".to_owned()),
            Some(t) if flotilla_runtime::kit::time::stored(Some(t)) <= approved_at => {
                missing.push("it expired before it was approved".to_owned())
            }
            Some(_) => {}
        }
        if a.approver == d.requested_by {
            missing.push(format!("{} approved their own request", a.approver));
        }
        if d.rule == gv::GateRule::Embargo as i32 && a.role != COMPLIANCE_OFFICER {
            missing.push(format!(
                "an embargo was waived by a {}, not a {COMPLIANCE_OFFICER}",
                a.role
            ));
        }
        items.push(Item {
            key: a.deviation_id.clone(),
            subject: format!("deviation of {} into {}", d.release, d.environment),
            detail: format!(
                "requested by {}, approved by {} ({}); controls: {}",
                d.requested_by,
                a.approver,
                a.role,
                d.compensating_controls.join("; ")
            ),
            exception: (!missing.is_empty()).then(|| missing.join("; ")),
            events: vec![rl.index, l.index],
        });
    }
    items
}

/// The rank of a case in the sample: SHA-256 over the checkpoint's root, the control and the
/// case's key.
fn rank(root: &[u8; 32], control: &str, key: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(root);
    h.update(control.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    h.finalize().into()
}

struct Control {
    id: &'static str,
    objective: &'static str,
    test: &'static str,
    limits: &'static str,
}

const CONTROLS: [Control; 5] = [
    Control {
        id: "pii-peer-review",
        objective: "releases that touch personal-data systems are peer reviewed before they are deployed",
        test: "every deployment started in the period of a release whose approval request names a personal-data system: a peer-review approval by someone who is neither its author nor a committer, recorded before the deployment started",
        limits: "a release is known to touch personal data from its approval request's facts (governance takes them from the catalog)",
    },
    Control {
        id: "segregation-of-duties",
        objective: "nobody approves a release they wrote or committed",
        test: "every approval given in the period, against its request's author and committers; the refused attempts are listed as the control operating",
        limits: "",
    },
    Control {
        id: "embargo",
        objective: "nothing is deployed in an embargo's scope while it holds, unless a compliance officer approved a deviation",
        test: "every deployment started in the period, against every embargo in force at its start in its unit and environment, and the deviations approved before it",
        limits: "deployments are tested against embargoes scheduled once; recurring embargoes are listed under operated only; an embargo limited to tiers is taken to apply to every tier",
    },
    Control {
        id: "deviation-register",
        objective: "every deviation is justified, compensated, bounded in time and decided by a second person",
        test: "every deviation approved in the period: a justification, at least one compensating control, an expiry after the approval, an approver other than the requester (a compliance officer for an embargo)",
        limits: "",
    },
    Control {
        id: "ledger-integrity",
        objective: "no service's history is rewritten unseen",
        test: "every event ledgered in the period from every service, each link of each chain checked as it arrived; each chain alert raised in the period is an exception",
        limits: "an event withheld from the buses (an unauthenticated caller's refusal) is checked by how it links only",
    },
];

/// Tests every control over the period and draws up to `sample_size` passing cases of each.
pub fn evidence_pack(
    state: &Compliance,
    read: &[Read],
    period: Period,
    sample_size: usize,
    checkpoint: &Checkpoint,
) -> EvidencePack {
    let facts = Facts::read(read);
    let cite = |events: &[u64]| -> Vec<Line> {
        let mut seen = HashSet::new();
        events
            .iter()
            .filter(|i| seen.insert(**i))
            .filter_map(|i| facts.by_index.get(i))
            .map(|(l, f)| line(state, l, f.clone(), checkpoint))
            .collect()
    };
    let populations: [Vec<Item>; 4] = [
        pii_peer_review(&facts, period),
        segregation_of_duties(&facts, period),
        embargo(&facts, period),
        deviation_register(&facts, period),
    ];
    let operated: [Vec<&Ledgered>; 4] = [
        Vec::new(),
        facts
            .refusals
            .iter()
            .filter(|l| period.holds(l.event.recorded_at))
            .copied()
            .collect(),
        facts
            .embargoes
            .iter()
            .filter(|(l, _)| l.event.recorded_at < period.to)
            .map(|(l, _)| *l)
            .collect(),
        Vec::new(),
    ];
    let mut controls: Vec<ControlTest> = populations
        .into_iter()
        .zip(operated)
        .zip(&CONTROLS)
        .map(|((items, operated), c)| {
            let population = items.len() as u64;
            let (failed, mut passed): (Vec<Item>, Vec<Item>) =
                items.into_iter().partition(|i| i.exception.is_some());
            passed.sort_by_cached_key(|i| rank(&checkpoint.root, c.id, &i.key));
            passed.truncate(sample_size);
            let case = |i: Item| Case {
                detail: i.exception.unwrap_or(i.detail),
                subject: i.subject,
                events: cite(&i.events),
            };
            ControlTest {
                id: c.id,
                objective: c.objective,
                test: c.test,
                limits: c.limits,
                population,
                conclusion: conclusion(population, failed.len()),
                exceptions: failed.into_iter().map(case).collect(),
                samples: passed.into_iter().map(case).collect(),
                operated: cite(&operated.iter().map(|l| l.index).collect::<Vec<_>>()),
            }
        })
        .collect();
    controls.push(ledger_integrity(
        state,
        read,
        period,
        &CONTROLS[4],
        checkpoint,
    ));
    EvidencePack {
        from: period.from.to_rfc3339(),
        to: period.to.to_rfc3339(),
        sample_size,
        controls,
        checkpoint: checkpoint.note.clone(),
        tree_size: checkpoint.size,
    }
}

fn conclusion(population: u64, exceptions: usize) -> Conclusion {
    match (population, exceptions) {
        (0, _) => Conclusion::NotExercised,
        (_, 0) => Conclusion::Effective,
        _ => Conclusion::ExceptionsFound,
    }
}

fn ledger_integrity(
    state: &Compliance,
    read: &[Read],
    period: Period,
    c: &Control,
    checkpoint: &Checkpoint,
) -> ControlTest {
    let population = state
        .entries
        .iter()
        .filter(|e| period.holds(e.recorded_at))
        .count() as u64;
    let alerted = |a: &&Alert| period.holds(a.raised_at);
    let exceptions: Vec<Case> = state
        .alerts
        .iter()
        .filter(alerted)
        .map(|a| Case {
            subject: format!("{} of {} at {}", a.kind.as_str(), a.service, a.sequence),
            detail: a.detail.clone(),
            events: a
                .event_id
                .and_then(|id| state.by_event.get(&id))
                .and_then(|i| read.iter().find(|(l, _)| l.index == *i))
                .map(|(l, f)| vec![line(state, l, f.clone(), checkpoint)])
                .unwrap_or_default(),
        })
        .collect();
    ControlTest {
        id: c.id,
        objective: c.objective,
        test: c.test,
        limits: c.limits,
        population,
        conclusion: conclusion(population, exceptions.len()),
        exceptions,
        samples: Vec::new(),
        operated: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Alert, AlertKind};
    use crate::report::fixture::{event, ledger, secs};

    const GOV: &str = "governance";
    const ORCH: &str = "orchestration";

    fn g(name: &str) -> String {
        format!("flotilla.governance.v1.{name}")
    }

    fn opened(request: &str, release: &str, pii: bool) -> Vec<u8> {
        gv::ApprovalRequestOpened {
            request_id: request.into(),
            release: Some(gv::ReleaseFacts {
                release: release.into(),
                environment: "prod".into(),
                business_unit: "cards".into(),
                handles_personal_data: pii,
                author: "rita".into(),
                committers: vec!["carl".into()],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn granted(request: &str, approver: &str, role: &str) -> Vec<u8> {
        gv::ApprovalGranted {
            request_id: request.into(),
            approval: Some(gv::Approval {
                approver: approver.into(),
                role: role.into(),
                ..Default::default()
            }),
        }
        .encode_to_vec()
    }

    fn started(id: &str, release: &str) -> Vec<u8> {
        orch::DeploymentStarted {
            deployment: Some(orch::Deployment {
                deployment_id: id.into(),
                release: release.into(),
                environment: "prod".into(),
                business_unit: "cards".into(),
                started_by: "rita".into(),
                ..Default::default()
            }),
        }
        .encode_to_vec()
    }

    fn deviation(
        id: &str,
        release: &str,
        rule: gv::GateRule,
        controls: &[&str],
        expires: i64,
    ) -> Vec<u8> {
        gv::DeviationRequested {
            deviation: Some(gv::Deviation {
                deviation_id: id.into(),
                rule: rule as i32,
                release: release.into(),
                environment: "prod".into(),
                business_unit: "cards".into(),
                justification: "the regulator asked for the fix".into(),
                compensating_controls: controls.iter().map(|c| (*c).to_owned()).collect(),
                expires_at: Some(flotilla_runtime::kit::time::to_proto(secs(expires))),
                requested_by: "rita".into(),
                ..Default::default()
            }),
            requested_at: None,
        }
        .encode_to_vec()
    }

    fn decided(id: &str, approver: &str, role: &str) -> Vec<u8> {
        gv::DeviationApproved {
            deviation_id: id.into(),
            approver: approver.into(),
            role: role.into(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn embargo(id: &str, from: i64, to: i64) -> Vec<u8> {
        gv::FreezeWindowCreated {
            window: Some(gv::FreezeWindow {
                window_id: id.into(),
                name: "regulator's exam".into(),
                kind: gv::WindowKind::Embargo as i32,
                scope: Some(gv::WindowScope {
                    business_units: vec!["cards".into()],
                    ..Default::default()
                }),
                schedule: Some(gv::freeze_window::Schedule::Once(gv::OnceSchedule {
                    start: Some(flotilla_runtime::kit::time::to_proto(secs(from))),
                    end: Some(flotilla_runtime::kit::time::to_proto(secs(to))),
                })),
                ..Default::default()
            }),
        }
        .encode_to_vec()
    }

    const DEPLOYED: &str = "flotilla.orchestration.v1.DeploymentStarted";

    /// Two personal-data releases deployed to prod: cards-1 after an independent peer review,
    /// cards-2 after a "peer review" by its own committer (and an approval by its author);
    /// cards-3 (no personal data) needs none. An embargo from 100 to 200: cards-4 deployed in
    /// it with a compliance officer's deviation, cards-5 with a release manager's only.
    fn story() -> (Compliance, Vec<Read>, Checkpoint) {
        let events = vec![
            event(
                GOV,
                1,
                "approval-1",
                0,
                10,
                &g("ApprovalRequestOpened"),
                opened("r1", "cards-1", true),
            ),
            event(
                GOV,
                2,
                "approval-1",
                1,
                11,
                &g("ApprovalGranted"),
                granted("r1", "pam", PEER_REVIEW),
            ),
            event(
                ORCH,
                1,
                "deployment-1",
                0,
                12,
                DEPLOYED,
                started("d1", "cards-1"),
            ),
            event(
                GOV,
                3,
                "approval-2",
                0,
                20,
                &g("ApprovalRequestOpened"),
                opened("r2", "cards-2", true),
            ),
            event(
                GOV,
                4,
                "approval-2",
                1,
                21,
                &g("ApprovalGranted"),
                granted("r2", "carl", PEER_REVIEW),
            ),
            event(
                GOV,
                5,
                "approval-2",
                2,
                22,
                &g("ApprovalGranted"),
                granted("r2", "rita", "security"),
            ),
            event(
                ORCH,
                2,
                "deployment-2",
                0,
                23,
                DEPLOYED,
                started("d2", "cards-2"),
            ),
            event(
                GOV,
                6,
                "approval-3",
                0,
                30,
                &g("ApprovalRequestOpened"),
                opened("r3", "cards-3", false),
            ),
            event(
                ORCH,
                3,
                "deployment-3",
                0,
                31,
                DEPLOYED,
                started("d3", "cards-3"),
            ),
            event(
                GOV,
                7,
                "window-1",
                0,
                90,
                &g("FreezeWindowCreated"),
                embargo("w1", 100, 200),
            ),
            event(
                GOV,
                8,
                "deviation-4",
                0,
                110,
                &g("DeviationRequested"),
                deviation(
                    "v4",
                    "cards-4",
                    gv::GateRule::Embargo,
                    &["a second engineer watches"],
                    300,
                ),
            ),
            event(
                GOV,
                9,
                "deviation-4",
                1,
                111,
                &g("DeviationApproved"),
                decided("v4", "cora", COMPLIANCE_OFFICER),
            ),
            event(
                ORCH,
                4,
                "deployment-4",
                0,
                112,
                DEPLOYED,
                started("d4", "cards-4"),
            ),
            event(
                GOV,
                10,
                "deviation-5",
                0,
                120,
                &g("DeviationRequested"),
                deviation("v5", "cards-5", gv::GateRule::Embargo, &[], 300),
            ),
            event(
                GOV,
                11,
                "deviation-5",
                1,
                121,
                &g("DeviationApproved"),
                decided("v5", "rex", "release-manager"),
            ),
            event(
                ORCH,
                5,
                "deployment-5",
                0,
                122,
                DEPLOYED,
                started("d5", "cards-5"),
            ),
            event(
                ORCH,
                6,
                "deployment-6",
                0,
                250,
                DEPLOYED,
                started("d6", "cards-6"),
            ),
        ];
        ledger(events)
    }

    fn control<'a>(p: &'a EvidencePack, id: &str) -> &'a ControlTest {
        p.controls.iter().find(|c| c.id == id).expect("the control")
    }

    fn all_year() -> Period {
        Period {
            from: secs(0),
            to: secs(1_000),
        }
    }

    #[test]
    fn a_personal_data_release_deployed_without_an_independent_peer_review_is_an_exception() {
        let (state, read, cp) = story();
        let pack = evidence_pack(&state, &read, all_year(), 25, &cp);
        let c = control(&pack, "pii-peer-review");
        // d1 and d2 touch personal data; d3 does not; d4-d6 have no approval request.
        assert_eq!(c.population, 2);
        assert_eq!(c.conclusion, Conclusion::ExceptionsFound);
        assert_eq!(c.exceptions.len(), 1);
        assert!(
            c.exceptions[0].subject.contains("deployment d2"),
            "{:?}",
            c.exceptions
        );
        assert_eq!(c.samples.len(), 1);
        assert!(c.samples[0].detail.contains("peer-reviewed by pam"));
        // The sample cites the deployment, the request and the review, each proven.
        let cited: Vec<_> = c.samples[0]
            .events
            .iter()
            .map(|l| (l.service.as_str(), l.sequence))
            .collect();
        assert_eq!(cited, [(ORCH, 1), (GOV, 1), (GOV, 2)]);
        assert!(c.samples[0].events.iter().all(|l| !l.proof.is_empty()));
    }

    #[test]
    fn an_approval_by_the_author_or_a_committer_breaks_segregation_of_duties() {
        let (state, read, cp) = story();
        let c = evidence_pack(&state, &read, all_year(), 25, &cp)
            .controls
            .into_iter()
            .find(|c| c.id == "segregation-of-duties")
            .expect("control");
        assert_eq!(c.population, 3);
        let mut found: Vec<_> = c.exceptions.iter().map(|e| e.detail.clone()).collect();
        found.sort();
        assert_eq!(
            found,
            [
                "carl approved as peer-review a release they committed to",
                "rita approved as security a release they wrote",
            ]
        );
    }

    #[test]
    fn a_deployment_inside_an_embargo_needs_a_compliance_officers_deviation() {
        let (state, read, cp) = story();
        let pack = evidence_pack(&state, &read, all_year(), 25, &cp);
        let c = control(&pack, "embargo");
        // d4 and d5 started inside the embargo; d1-d3 before it, d6 after it.
        assert_eq!(c.population, 2);
        assert_eq!(c.exceptions.len(), 1);
        assert!(c.exceptions[0].subject.contains("deployment d5"));
        assert!(c.samples[0].detail.contains("waived by cora"));
        assert_eq!(c.operated.len(), 1, "the embargo declared");

        let r = control(&pack, "deviation-register");
        assert_eq!(r.population, 2);
        assert_eq!(r.exceptions.len(), 1);
        assert_eq!(
            r.exceptions[0].detail,
            "no compensating control; an embargo was waived by a release-manager, not a compliance-officer"
        );
    }

    #[test]
    fn the_period_bounds_the_population_and_the_sample_is_reproducible() {
        let (state, read, cp) = story();
        let early = Period {
            from: secs(0),
            to: secs(100),
        };
        let pack = evidence_pack(&state, &read, early, 25, &cp);
        assert_eq!(
            control(&pack, "embargo").conclusion,
            Conclusion::NotExercised
        );
        assert_eq!(control(&pack, "deviation-register").population, 0);
        assert_eq!(control(&pack, "pii-peer-review").population, 2);

        // One sample per control: the same checkpoint draws the same one, and no control gives
        // more than was asked.
        let one = evidence_pack(&state, &read, all_year(), 1, &cp);
        let again = evidence_pack(&state, &read, all_year(), 1, &cp);
        let subjects = |p: &EvidencePack| -> Vec<String> {
            p.controls
                .iter()
                .flat_map(|c| c.samples.iter().map(|s| s.subject.clone()))
                .collect()
        };
        assert_eq!(subjects(&one), subjects(&again));
        assert!(one.controls.iter().all(|c| c.samples.len() <= 1));
    }

    #[test]
    fn a_chain_alert_in_the_period_is_an_exception_to_the_ledgers_integrity() {
        let (mut state, read, cp) = story();
        let pack = evidence_pack(&state, &read, all_year(), 25, &cp);
        let c = control(&pack, "ledger-integrity");
        assert_eq!((c.population, c.conclusion), (17, Conclusion::Effective));
        state.alerts.push(Alert {
            number: 1,
            kind: AlertKind::Mismatch,
            service: ORCH.into(),
            sequence: 4,
            last: 4,
            expected: "aa".into(),
            found: "bb".into(),
            detail: "event 4's previous hash is not event 3's hash".into(),
            event_id: Some(read[12].0.event.id),
            raised_at: secs(113),
        });
        let pack = evidence_pack(&state, &read, all_year(), 25, &cp);
        let c = control(&pack, "ledger-integrity");
        assert_eq!(c.conclusion, Conclusion::ExceptionsFound);
        assert_eq!(c.exceptions[0].subject, "mismatch of orchestration at 4");
        assert_eq!(c.exceptions[0].events[0].sequence, 4);
        let later = Period {
            from: secs(200),
            to: secs(1_000),
        };
        let pack = evidence_pack(&state, &read, later, 25, &cp);
        assert_eq!(control(&pack, "ledger-integrity").exceptions.len(), 0);
    }
}
