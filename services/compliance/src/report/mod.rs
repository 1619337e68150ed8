//! The audit report of a release: every ledgered event about it, from source to production,
//! in sections, each line citing its event (service, position, hash) with its inclusion proof
//! against one signed checkpoint, and every field of the event as it was recorded.
//!
//! Which events are about a release: those with a field equal to its name; then those with a
//! field equal to an id one of those carries in a linking field (the release's id, its
//! deployments', approval requests', judgements', deviations'), to three steps; and the artifacts its items name (service and version).
//! Matching is on whole field values, read with the platform's descriptor set (`fields`), so
//! it needs no code per event type and a new event type is reported the day it exists.

pub mod controls;
pub mod environment;
pub mod fields;
#[cfg(test)]
pub(crate) mod fixture;
pub mod html;
pub mod point_in_time;

use std::collections::{BTreeMap, HashSet};

use flotilla_proto::orchestration::v1 as orch;
use prost::Message;
use serde::Serialize;

use crate::domain::{Checkpoint, Compliance, Ledgered};
pub use fields::Field;

/// How many steps of ids are followed from the events that name the release.
const STEPS: usize = 3;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub release: String,
    /// The signed checkpoint (C2SP note) every proof is against.
    pub checkpoint: String,
    pub tree_size: u64,
    pub sections: Vec<Section>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Section {
    pub title: &'static str,
    pub lines: Vec<Line>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Line {
    /// RFC 3339.
    pub at: String,
    #[serde(skip)]
    pub recorded_at: crate::domain::Timestamp,
    pub summary: String,
    pub actor: String,
    pub service: String,
    pub sequence: u64,
    pub event_hash: String,
    pub event_id: String,
    pub event_type: String,
    pub index: u64,
    /// The leaf data (flotilla.ledger.v1), hex: its RFC 9162 hash is what the proof proves.
    pub leaf: String,
    /// The inclusion proof against the checkpoint, hex hashes nearest first.
    pub proof: Vec<String>,
    pub fields: Vec<Field>,
}

/// The section of an event type, in the order a release goes: from its source to what
/// production said.
fn section_of(event_type: &str) -> usize {
    let name = event_type.rsplit('.').next().unwrap_or(event_type);
    match name {
        "ReleaseCreated" | "ReleasePlanned" | "ReleaseNoted" | "PlanNoted" => 0,
        "ArtifactRegistered" | "ArtifactNoted" => 1,
        "CompatibilityChecked"
        | "SchemaPublished"
        | "SchemaUseDeclared"
        | "VersionRequirementDeclared" => 2,
        "RiskAssessed"
        | "FmeaRecorded"
        | "FmeaActionsRecorded"
        | "ValidationRecorded"
        | "TestWindowBooked"
        | "TestWindowSignedOff"
        | "DataRefreshed" => 3,
        n if n.starts_with("Approval")
            || n == "SegregationOfDutiesViolated"
            || n == "CabDecisionRecorded" =>
        {
            4
        }
        n if n.starts_with("Deviation") => 7,
        n if n.starts_with("Deployment")
            || n.starts_with("Step")
            || n == "RollbackStarted"
            || n == "AnalysisRecorded"
            || n == "RollbackDecisionAwaited"
            || n == "DeploymentRecorded" =>
        {
            5
        }
        "CanaryJudged"
        | "WatchOpened"
        | "WatchClosed"
        | "SamplesObserved"
        | "RollbackThresholdBreached"
        | "RollbackRequested"
        | "TicketRecorded"
        | "PostmortemRecorded"
        | "RollbackDecisionOpened"
        | "RollbackDecided" => 6,
        _ => 8,
    }
}

const TITLES: [&str; 9] = [
    "Release",
    "Artifacts: commit, build, tests, scans, licences",
    "Compatibility verdicts",
    "Risk assessment, FMEA and validations",
    "Approvals: who, which role, when, on what evidence",
    "Deployments: who, and what the executor said",
    "Post-deploy verdicts",
    "Deviations and their compensating controls",
    "Other events about the release",
];

/// A field that names a thing by its id (`release_id`, `deployment_ids`, `request_id`): its
/// value links events about the same thing. Other uuids (a freeze window's, a rule's) are
/// shared by many releases and do not.
fn is_link(f: &Field) -> bool {
    let leaf = f.name.rsplit('.').next().unwrap_or(&f.name);
    let linking = [
        "release_id",
        "deployment_id",
        "deployment_ids",
        "request_id",
        "judgement_id",
        "deviation_id",
        "assessment_id",
        "validation_id",
        "watch_id",
        "breach_id",
        "breach_ids",
        "decision_id",
        "rollback_request_id",
        "rollback_decision_id",
        "ticket_id",
    ];
    linking.contains(&leaf) && f.value.len() == 36 && uuid::Uuid::parse_str(&f.value).is_ok()
}

/// Field names whose values are shown in a line's summary, when the event has them.
const SUMMARY_FIELDS: [&str; 10] = [
    "role",
    "decision",
    "outcome",
    "environment",
    "verdict",
    "label",
    "score",
    "reason",
    "service",
    "version",
];

fn summary(l: &Ledgered, fields: &[Field]) -> String {
    let name = l.event.event_type.rsplit('.').next().unwrap_or_default();
    let mut parts = Vec::new();
    for key in SUMMARY_FIELDS {
        if let Some(f) = fields
            .iter()
            .find(|f| f.name == key || f.name.ends_with(&format!(".{key}")))
            .filter(|f| !f.value.is_empty())
        {
            parts.push(format!("{key} {}", f.value));
        }
    }
    let by = if l.event.metadata.actor.is_empty() {
        String::new()
    } else {
        format!(" by {}", l.event.metadata.actor)
    };
    if parts.is_empty() {
        format!("{name}{by}")
    } else {
        format!("{name}{by}: {}", parts.join(", "))
    }
}

/// A ledgered event with its fields read.
pub type Read = (Ledgered, Vec<Field>);

/// The ledgered events a checkpoint covers, each with its fields read (withheld events have
/// none to read and are left out).
pub fn read(events: Vec<Ledgered>, checkpoint: &Checkpoint) -> Vec<Read> {
    events
        .into_iter()
        .filter(|l| l.index < checkpoint.size && !l.event.withheld)
        .map(|l| {
            let f = fields::fields(&l.event.event_type, &l.event.payload);
            (l, f)
        })
        .collect()
}

/// The ledger indexes of the events about the `releases` (by name): those with a field equal
/// to one of the names, then those linked to them by an id, to `STEPS` steps, and the
/// artifacts the releases' items name; only among the events `within` takes.
pub fn about(
    read: &[Read],
    releases: &[String],
    within: impl Fn(&Ledgered) -> bool,
) -> HashSet<u64> {
    let mut about: HashSet<u64> = HashSet::new();
    let mut names: HashSet<String> = releases.iter().cloned().collect();
    let mut artifacts: HashSet<(String, String)> = HashSet::new();
    for _ in 0..=STEPS {
        let before = about.len();
        // The names this step matches: those known when it began.
        let known = names.clone();
        let mut found = Vec::new();
        for (l, f) in read {
            if about.contains(&l.index) || !within(l) {
                continue;
            }
            let by_artifact = l.event.event_type == "flotilla.orchestration.v1.ArtifactRegistered"
                && orch::ArtifactRegistered::decode(l.event.payload.as_slice())
                    .ok()
                    .and_then(|a| a.artifact)
                    .is_some_and(|a| artifacts.contains(&(a.service, a.version)));
            if by_artifact || f.iter().any(|x| known.contains(&x.value)) {
                found.push(l.index);
                for x in f.iter().filter(|x| is_link(x)) {
                    names.insert(x.value.clone());
                }
                if l.event.event_type == "flotilla.orchestration.v1.ReleaseCreated"
                    && let Ok(c) = orch::ReleaseCreated::decode(l.event.payload.as_slice())
                {
                    for i in c.release.map(|r| r.items).unwrap_or_default() {
                        artifacts.insert((i.service, i.version));
                    }
                }
            }
        }
        about.extend(found);
        if about.len() == before {
            break;
        }
    }
    about
}

/// An event as a report line: cited (service, position, hash, ledger index) and proven
/// against the checkpoint, with every field.
pub fn line(state: &Compliance, l: &Ledgered, fields: Vec<Field>, checkpoint: &Checkpoint) -> Line {
    let proof = state
        .tree
        .inclusion_proof(l.index as usize, checkpoint.size as usize)
        .map(|p| p.iter().map(hex::encode).collect())
        .unwrap_or_default();
    Line {
        at: l.event.recorded_at.to_rfc3339(),
        recorded_at: l.event.recorded_at,
        summary: summary(l, &fields),
        actor: l.event.metadata.actor.clone(),
        service: l.event.service.clone(),
        sequence: l.event.position,
        event_hash: l.event.hash.to_hex(),
        event_id: l.event.id.to_string(),
        event_type: l.event.event_type.clone(),
        index: l.index,
        leaf: hex::encode(l.event.leaf().encode()),
        proof,
        fields,
    }
}

/// Picks the events about the `releases` from every ledgered event (in ledger order) and
/// builds the report titled `title` against `checkpoint`; events after it are left for the
/// next checkpoint.
pub fn build(
    state: &Compliance,
    title: &str,
    releases: &[String],
    events: Vec<Ledgered>,
    checkpoint: &Checkpoint,
) -> Report {
    let read = read(events, checkpoint);
    let about = about(&read, releases, |_| true);
    let mut sections: BTreeMap<usize, Vec<Line>> = BTreeMap::new();
    for (l, f) in read.into_iter().filter(|(l, _)| about.contains(&l.index)) {
        sections
            .entry(section_of(&l.event.event_type))
            .or_default()
            .push(line(state, &l, f, checkpoint));
    }
    Report {
        release: title.to_owned(),
        checkpoint: checkpoint.note.clone(),
        tree_size: checkpoint.size,
        sections: sections
            .into_iter()
            .map(|(i, lines)| Section {
                title: TITLES[i],
                lines,
            })
            .collect(),
    }
}
