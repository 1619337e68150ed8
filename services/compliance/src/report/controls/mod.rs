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
use serde::Serialize;
use sha2::{Digest, Sha256};

mod facts;

use super::point_in_time::before;
use super::{Line, Read, line};
use crate::domain::{Alert, Checkpoint, Compliance, Ledgered, Timestamp};
use facts::Facts;

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
    /// What ranks it in the sample (a deployment's id, an approval's event id...).
    pub key: String,
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

/// A deployment as a case's subject.
fn deployed(d: &orch::Deployment) -> String {
    format!(
        "{} into {} (deployment {})",
        d.release, d.environment, d.deployment_id
    )
}

/// Whether someone neither wrote nor committed the release the facts describe.
fn independent(who: &str, facts: &gv::ReleaseFacts) -> bool {
    who != facts.author && !facts.committers.iter().any(|c| c == who)
}

fn pii_peer_review(f: &Facts, period: Period) -> Vec<Item> {
    let mut items = Vec::new();
    for (l, d) in f.deployments_in(period) {
        let Some((id, (opened, o))) = f.request_before(&d.release, &d.environment, l) else {
            continue;
        };
        let facts = o.release.clone().unwrap_or_default();
        if !facts.handles_personal_data {
            continue;
        }
        let mut events = vec![l.index, opened.index];
        let review = f.grants.get(id).into_iter().flatten().find(|(g, a)| {
            a.role == PEER_REVIEW && independent(&a.approver, &facts) && before(g, l)
        });
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
                    "deployed by {} with no peer review, by someone who neither wrote nor committed it, of request {id} before it started",
                    d.started_by
                )),
            ),
        };
        items.push(Item {
            key: d.deployment_id.clone(),
            subject: deployed(d),
            detail,
            exception,
            events,
        });
    }
    items
}

fn segregation_of_duties(f: &Facts, period: Period) -> Vec<Item> {
    let mut items = Vec::new();
    for (g, id, a) in f
        .approvals
        .iter()
        .filter(|(g, _, _)| period.holds(g.event.recorded_at))
    {
        let Some((opened, o)) = f.opened.get(id) else {
            items.push(Item {
                key: g.event.id.to_string(),
                subject: format!("request {id}: {} as {}", a.approver, a.role),
                detail: String::new(),
                exception: Some(format!(
                    "approved, but the ledger holds no opening of request {id}: its author and committers are unknown"
                )),
                events: vec![g.index],
            });
            continue;
        };
        let facts = o.release.clone().unwrap_or_default();
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
    let deviations = f.approved_deviations();
    for (l, d) in f.deployments_in(period) {
        let at = l.event.recorded_at;
        // Embargoes declared before the deployment started (as governance's gate counts them).
        for (w_event, w) in f.embargoes.iter().filter(|(w_event, _)| before(w_event, l)) {
            let cancelled = f.cancelled.get(&w.window_id).copied();
            if !in_scope(w, d) || holds_at(w, cancelled, at) != Some(true) {
                continue;
            }
            let target = (d.release.clone(), d.environment.clone());
            let waiver = deviations
                .get(&target)
                .into_iter()
                .flatten()
                .find(|(_, dl, dev, a)| {
                    let expires = flotilla_runtime::kit::time::stored(dev.expires_at.as_ref());
                    dev.rule == gv::GateRule::Embargo as i32
                        && a.role == COMPLIANCE_OFFICER
                        && before(dl, l)
                        && (dev.expires_at.is_none() || at < expires)
                });
            let mut events = vec![l.index, w_event.index];
            let (detail, exception) = match waiver {
                Some((rl, dl, _, a)) => {
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
                subject: deployed(d),
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
        limits: "the population is every event the ledger holds below the checkpoint, of every unit; an event withheld from the buses (an unauthenticated caller's refusal) is checked by how it links only",
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
                key: i.key,
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
        &facts.by_index,
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
        (_, 1..) => Conclusion::ExceptionsFound,
        (0, 0) => Conclusion::NotExercised,
        _ => Conclusion::Effective,
    }
}

fn ledger_integrity(
    state: &Compliance,
    by_index: &HashMap<u64, &Read>,
    period: Period,
    c: &Control,
    checkpoint: &Checkpoint,
) -> ControlTest {
    let population = state
        .entries
        .iter()
        .take(checkpoint.size as usize)
        .filter(|e| period.holds(e.recorded_at))
        .count() as u64;
    let alerted = |a: &&Alert| period.holds(a.raised_at);
    let exceptions: Vec<Case> = state
        .alerts
        .iter()
        .filter(alerted)
        .map(|a| Case {
            key: a.number.to_string(),
            subject: format!("{} of {} at {}", a.kind.as_str(), a.service, a.sequence),
            detail: a.detail.clone(),
            events: a
                .event_id
                .and_then(|id| state.by_event.get(&id))
                .and_then(|i| by_index.get(i))
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
mod tests;
