//! `audit state` and `audit evidence`: point in time from the ledger. The state of any
//! aggregate as of an instant (each field's latest value, the events that set it), and what
//! was known when each approval of a request was given (the evidence and its digest). Every
//! event is cited with its ledger index; `--output json` carries the inclusion proofs.

use std::process::ExitCode;

use flotilla_proto::compliance::v1 as pb;
use serde::Serialize;

use super::{Client, hex, refused};
use crate::format::{print_json, show_time};
use crate::output::{Output, table};

#[derive(Serialize)]
struct CitedView {
    index: u64,
    service: String,
    sequence: u64,
    event_id: String,
    event_type: String,
    event_hash: String,
    actor: String,
    recorded_at: String,
    summary: String,
    leaf_hex: String,
    proof_hex: Vec<String>,
}

impl From<pb::CitedEvent> for CitedView {
    fn from(e: pb::CitedEvent) -> Self {
        CitedView {
            index: e.index,
            service: e.service,
            sequence: e.sequence,
            event_id: e.event_id,
            event_type: e.event_type,
            event_hash: e.event_hash,
            actor: e.actor,
            recorded_at: show_time(e.recorded_at.as_ref()),
            summary: e.summary,
            leaf_hex: hex(&e.leaf),
            proof_hex: e.proof.iter().map(|h| hex(h)).collect(),
        }
    }
}

#[derive(Serialize)]
struct FieldView {
    name: String,
    values: Vec<String>,
    set_by: u64,
    set_by_type: String,
}

#[derive(Serialize)]
struct AggregateView {
    service: String,
    stream: String,
    aggregate: String,
    version: u64,
    last_event_type: String,
    last_recorded_at: String,
    fields: Vec<FieldView>,
    events: Vec<CitedView>,
}

#[derive(Serialize)]
struct StateView {
    at: String,
    truncated: bool,
    tree_size: u64,
    checkpoint: String,
    states: Vec<AggregateView>,
}

fn cited_rows(events: &[CitedView]) -> Vec<Vec<String>> {
    events
        .iter()
        .map(|e| {
            vec![
                e.index.to_string(),
                e.recorded_at.clone(),
                format!("{}@{}", e.service, e.sequence),
                e.summary.clone(),
            ]
        })
        .collect()
}

const CITED: [&str; 4] = ["ledger index", "recorded at", "service@position", "event"];

/// `audit state AGGREGATE [KEY] [--service S] [--at T]`.
pub async fn state(
    c: &mut Client,
    output: Output,
    request: pb::GetStateAtRequest,
) -> anyhow::Result<ExitCode> {
    let what = if request.key.is_empty() {
        request.aggregate.clone()
    } else {
        format!("{} {}", request.aggregate, request.key)
    };
    let r = c
        .get_state_at(request)
        .await
        .map_err(|s| refused(&format!("the state of {what}"), s))?
        .into_inner();
    let view = StateView {
        at: show_time(r.at.as_ref()),
        truncated: r.truncated,
        tree_size: r.tree_size,
        checkpoint: r.checkpoint,
        states: r
            .states
            .into_iter()
            .map(|s| AggregateView {
                service: s.service,
                stream: s.stream,
                aggregate: s.aggregate,
                version: s.version,
                last_event_type: s.last_event_type,
                last_recorded_at: show_time(s.last_recorded_at.as_ref()),
                fields: s
                    .fields
                    .into_iter()
                    .map(|f| FieldView {
                        name: f.name,
                        values: f.values,
                        set_by: f.set_by,
                        set_by_type: f.set_by_type,
                    })
                    .collect(),
                events: s.events.into_iter().map(Into::into).collect(),
            })
            .collect(),
    };
    match output {
        Output::Json => print_json(&view)?,
        Output::Table => {
            for s in &view.states {
                println!(
                    "{} {} of {} as of {}: version {}, last {} at {}",
                    s.aggregate,
                    s.stream,
                    s.service,
                    view.at,
                    s.version,
                    s.last_event_type.rsplit('.').next().unwrap_or_default(),
                    s.last_recorded_at
                );
                let rows: Vec<Vec<String>> = s
                    .fields
                    .iter()
                    .map(|f| {
                        vec![
                            f.name.clone(),
                            f.values.join(", "),
                            format!(
                                "{} (#{})",
                                f.set_by_type.rsplit('.').next().unwrap_or_default(),
                                f.set_by
                            ),
                        ]
                    })
                    .collect();
                table(&["field", "value", "set by (ledger index)"], &rows);
                println!();
                table(&CITED, &cited_rows(&s.events));
                println!();
            }
            if view.truncated {
                eprintln!(
                    "more aggregates matched than one answer holds: name one (its name, id or stream id) as KEY"
                );
            }
            println!(
                "every event is proven against the ledger's checkpoint of size {} (--output json has the proofs)",
                view.tree_size
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct GivenView {
    approver: String,
    role: String,
    approval: Option<CitedView>,
    evidence_digest: String,
    evidence: Vec<CitedView>,
}

#[derive(Serialize)]
struct EvidenceView {
    request_id: String,
    release: String,
    environment: String,
    opened: Option<CitedView>,
    approvals: Vec<GivenView>,
    tree_size: u64,
    checkpoint: String,
}

/// `audit evidence REQUEST_ID [--approver A]`.
pub async fn evidence(
    c: &mut Client,
    output: Output,
    request: pb::GetApprovalEvidenceRequest,
) -> anyhow::Result<ExitCode> {
    let id = request.request_id.clone();
    let r = c
        .get_approval_evidence(request)
        .await
        .map_err(|s| refused(&format!("the evidence of approval request {id}"), s))?
        .into_inner();
    let view = EvidenceView {
        request_id: r.request_id,
        release: r.release,
        environment: r.environment,
        opened: r.opened.map(Into::into),
        approvals: r
            .approvals
            .into_iter()
            .map(|a| GivenView {
                approver: a.approver,
                role: a.role,
                approval: a.approval.map(Into::into),
                evidence_digest: a.evidence_digest,
                evidence: a.evidence.into_iter().map(Into::into).collect(),
            })
            .collect(),
        tree_size: r.tree_size,
        checkpoint: r.checkpoint,
    };
    match output {
        Output::Json => print_json(&view)?,
        Output::Table => {
            println!(
                "approval request {} of {} into {}",
                view.request_id, view.release, view.environment
            );
            if view.approvals.is_empty() {
                println!(
                    "no approval of this request has been given (by that approver, with --approver)"
                );
            }
            for a in &view.approvals {
                let at = a.approval.as_ref().map_or("", |e| e.recorded_at.as_str());
                println!();
                println!(
                    "{} ({}) approved at {}, knowing {} event(s), digest {}",
                    a.approver,
                    a.role,
                    at,
                    a.evidence.len(),
                    a.evidence_digest
                );
                table(&CITED, &cited_rows(&a.evidence));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct CaseView {
    subject: String,
    detail: String,
    events: Vec<CitedView>,
}

#[derive(Serialize)]
struct ControlView {
    id: String,
    objective: String,
    test: String,
    limits: String,
    population: u64,
    conclusion: String,
    exceptions: Vec<CaseView>,
    samples: Vec<CaseView>,
    operated: Vec<CitedView>,
}

#[derive(Serialize)]
struct PackView {
    from: String,
    to: String,
    sample_size: u32,
    tree_size: u64,
    checkpoint: String,
    controls: Vec<ControlView>,
}

fn conclusion_name(c: i32) -> String {
    pb::ControlConclusion::try_from(c).map_or_else(
        |_| format!("conclusion {c}"),
        |c| {
            c.as_str_name()
                .trim_start_matches("CONTROL_CONCLUSION_")
                .to_lowercase()
                .replace('_', " ")
        },
    )
}

/// `audit controls --from T --to T [--samples N] [--out FILE]`.
pub async fn controls(
    c: &mut Client,
    output: Output,
    request: pb::GetEvidencePackRequest,
    out: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let pack = c
        .get_evidence_pack(request)
        .await
        .map_err(|s| refused("the controls' evidence pack", s))?
        .into_inner();
    let case = |c: pb::ControlCase| CaseView {
        subject: c.subject,
        detail: c.detail,
        events: c.events.into_iter().map(Into::into).collect(),
    };
    let view = PackView {
        from: show_time(pack.from.as_ref()),
        to: show_time(pack.to.as_ref()),
        sample_size: pack.sample_size,
        tree_size: pack.tree_size,
        checkpoint: pack.checkpoint,
        controls: pack
            .controls
            .into_iter()
            .map(|c| ControlView {
                conclusion: conclusion_name(c.conclusion),
                id: c.id,
                objective: c.objective,
                test: c.test,
                limits: c.limits,
                population: c.population,
                exceptions: c.exceptions.into_iter().map(case).collect(),
                samples: c.samples.into_iter().map(case).collect(),
                operated: c.operated.into_iter().map(Into::into).collect(),
            })
            .collect(),
    };
    if let Some(path) = out {
        let json = serde_json::to_string_pretty(&view)?;
        std::fs::write(path, json)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    match output {
        Output::Json => print_json(&view)?,
        Output::Table => {
            println!("release controls tested from {} to {}", view.from, view.to);
            let rows: Vec<Vec<String>> = view
                .controls
                .iter()
                .map(|c| {
                    vec![
                        c.id.clone(),
                        c.population.to_string(),
                        c.exceptions.len().to_string(),
                        c.samples.len().to_string(),
                        c.operated.len().to_string(),
                        c.conclusion.clone(),
                    ]
                })
                .collect();
            table(
                &[
                    "control",
                    "population",
                    "exceptions",
                    "samples",
                    "operated",
                    "conclusion",
                ],
                &rows,
            );
            for c in view.controls.iter().filter(|c| !c.exceptions.is_empty()) {
                println!();
                println!("{}: {}", c.id, c.objective);
                for e in &c.exceptions {
                    println!("  - {}: {}", e.subject, e.detail);
                }
            }
            match out {
                Some(path) => println!(
                    "\nthe pack, with every case's events and their inclusion proofs against the checkpoint of size {}: {}",
                    view.tree_size,
                    path.display()
                ),
                None => println!(
                    "\nwrite the pack with every case's events and proofs with --out FILE (or --output json)"
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
