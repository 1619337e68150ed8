//! `GetAuditReport`: a checkpoint signed for what the ledger holds now, then the report of a
//! release against it, as JSON and HTML.

use flotilla_core::event::Metadata;
use flotilla_proto::compliance::v1 as pb;
use flotilla_runtime::kit::{Caller, status};
use tonic::{Code, Status};

use super::replay::{Filter, Walk};
use crate::app::Ledger;
use crate::report::{build, html};

pub async fn answer(
    ledger: &Ledger,
    release: &str,
    call: &Caller,
) -> Result<pb::AuditReport, Status> {
    // Every line is proven against a checkpoint that includes it: one for the ledger as it is.
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
    let report = ledger.query(|s| build(s, release, events, &checkpoint));
    let lines: usize = report.sections.iter().map(|s| s.lines.len()).sum();
    if lines == 0 {
        return Err(status(
            Code::NotFound,
            &format!(
                "the ledger holds no event about release {}; check the name (the release's name, not its id)",
                flotilla_core::names::shown(release)
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
