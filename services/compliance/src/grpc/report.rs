//! `GetAuditReport`: a checkpoint signed for what the ledger holds now, then the report of a
//! release, or of the releases that ran in an environment at an instant, against it, as JSON
//! and HTML.

use flotilla_core::event::Metadata;
use flotilla_proto::compliance::v1 as pb;
use flotilla_runtime::kit::{Caller, status};
use tonic::{Code, Status};

use super::replay::{Filter, Walk};
use crate::app::Ledger;
use crate::domain::{Checkpoint, Ledgered, Timestamp};
use flotilla_core::personal::PersonalData;

use crate::report::{build, environment, html};

/// What a report is of.
pub enum Subject {
    /// A release, with what was recorded up to an instant (absent: everything).
    Release(String, Option<Timestamp>),
    /// What ran in an environment at an instant.
    Environment(String, Timestamp),
}

impl TryFrom<pb::GetAuditReportRequest> for Subject {
    type Error = Status;

    fn try_from(r: pb::GetAuditReportRequest) -> Result<Self, Status> {
        let invalid = |m: String| status(Code::InvalidArgument, &m);
        let checked = |field: &str, v: &str| {
            flotilla_core::names::text(field, v, 256)
                .map_err(|e| invalid(format!("{}: {}", e.field, e.reason)))
        };
        let at =
            r.at.map(|t| {
                flotilla_runtime::kit::time::from_request(&t)
                    .map_err(|e| invalid(format!("at: {e}")))
            })
            .transpose()?;
        match (r.release.is_empty(), r.environment.is_empty()) {
            (false, true) => {
                checked("release", &r.release)?;
                Ok(Subject::Release(r.release, at))
            }
            (true, false) => {
                checked("environment", &r.environment)?;
                Ok(Subject::Environment(
                    r.environment,
                    at.unwrap_or_else(Timestamp::now),
                ))
            }
            _ => Err(invalid(
                "release: name a release, or leave it empty and name an environment (with at)"
                    .into(),
            )),
        }
    }
}

/// A checkpoint signed for the ledger as it is (so that every line is proven against one
/// that includes it) and every ledgered event of the units the caller sees.
pub async fn everything(
    ledger: &Ledger,
    call: &Caller,
) -> Result<(Checkpoint, Vec<Ledgered>), Status> {
    let checkpoint = ledger
        .sign(Metadata::by(
            format!("compliance-report:{}", call.subject()),
            "",
        ))
        .await?;
    let filter = Filter::default();
    let mut walk = Walk::new(ledger, &filter, |u| call.sees(u));
    let mut events = Vec::new();
    while let Some(page) = walk.page().await? {
        events.extend(page);
    }
    Ok((checkpoint, events))
}

/// The report's personal values opened (or their placeholders) before it is rendered, so the
/// JSON and the HTML escape them as any other text; the proofs are over the sealed events.
async fn reveal(report: &mut crate::report::Report, personal: &PersonalData) {
    for s in &mut report.sections {
        for l in &mut s.lines {
            l.actor = personal.reveal(&l.actor).await;
            l.summary = personal.reveal(&l.summary).await;
            for f in &mut l.fields {
                f.value = personal.reveal(&f.value).await;
            }
        }
    }
}

pub async fn answer(
    ledger: &Ledger,
    subject: Subject,
    call: &Caller,
    personal: &PersonalData,
) -> Result<pb::AuditReport, Status> {
    let (checkpoint, mut events) = everything(ledger, call).await?;
    let (title, releases) = match &subject {
        Subject::Release(r, None) => (r.clone(), vec![r.clone()]),
        Subject::Release(r, Some(at)) => {
            // What was recorded by then, wherever the ledger took it later.
            events.retain(|l| l.event.recorded_at <= *at);
            (format!("{r} as of {}", at.to_rfc3339()), vec![r.clone()])
        }
        Subject::Environment(env, at) => {
            let (releases, running) = environment::running_at(&events, env, *at);
            if releases.is_empty() {
                return Err(status(
                    Code::NotFound,
                    &format!(
                        "the ledger saw no release running in {} at {}",
                        flotilla_core::names::shown(env),
                        at.to_rfc3339()
                    ),
                ));
            }
            let what: Vec<String> = running
                .iter()
                .map(|(service, (version, release))| format!("{service} {version} ({release})"))
                .collect();
            (
                format!("{env} at {}: {}", at.to_rfc3339(), what.join(", ")),
                releases,
            )
        }
    };
    let mut report = ledger.query(|s| build(s, &title, &releases, events, &checkpoint));
    reveal(&mut report, personal).await;
    let lines: usize = report.sections.iter().map(|s| s.lines.len()).sum();
    if lines == 0 {
        return Err(status(
            Code::NotFound,
            &format!(
                "the ledger holds no event about release {}; check the name (the release's name, not its id)",
                flotilla_core::names::shown(&title)
            ),
        ));
    }
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| status(Code::Internal, &format!("the report does not encode: {e}")))?;
    Ok(pb::AuditReport {
        release: report.release.clone(),
        checkpoint: report.checkpoint.clone(),
        tree_size: report.tree_size,
        html: html::render(&report),
        json,
        lines: lines as u64,
    })
}
