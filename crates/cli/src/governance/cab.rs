//! `flotilla governance cab`: record a change advisory board decision.

use std::process::ExitCode;

use clap::Args;
use flotilla_proto::governance::v1 as pb;
use serde::Serialize;

use super::Client;
use crate::client::failed;
use crate::format::{now, print_json_line};
use crate::output::Output;

// The arguments of `cab` (its help is on the `Cab` variant).
#[derive(Args, Debug)]
pub struct CabArgs {
    change_request: String,
    /// RELEASE@ENVIRONMENT, repeatable.
    #[arg(long = "covers", required = true)]
    covers: Vec<String>,
    /// A board member who took the decision (repeatable, at least one).
    #[arg(long = "member", required = true)]
    members: Vec<String>,
    /// Record a refusal instead of an approval.
    #[arg(long)]
    rejected: bool,
    #[arg(long)]
    comment: Option<String>,
}

/// A recorded CAB decision as `--output json` prints it (on one line).
#[derive(Serialize)]
struct CabDecisionView {
    change_request_id: String,
    approved: bool,
    /// RELEASE@ENVIRONMENT.
    covers: Vec<String>,
    satisfies_roles: Vec<String>,
}

impl From<&pb::CabDecision> for CabDecisionView {
    fn from(d: &pb::CabDecision) -> Self {
        Self {
            change_request_id: d.change_request_id.clone(),
            approved: d.approved,
            covers: d
                .covers
                .iter()
                .map(|c| format!("{}@{}", c.release, c.environment))
                .collect(),
            satisfies_roles: d.satisfies_roles.clone(),
        }
    }
}

pub async fn run(c: &mut Client, output: Output, args: CabArgs) -> anyhow::Result<ExitCode> {
    let CabArgs {
        change_request,
        covers,
        members,
        rejected,
        comment,
    } = args;
    let covers = covers
        .iter()
        .map(|c| {
            c.split_once('@')
                .map(|(r, e)| pb::ReleaseEnvironment {
                    release: r.into(),
                    environment: e.into(),
                })
                .ok_or_else(|| anyhow::anyhow!("--covers {c:?} is not RELEASE@ENVIRONMENT"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let d = c
        .record_cab_decision(pb::RecordCabDecisionRequest {
            decision: Some(pb::CabDecision {
                change_request_id: change_request,
                approved: !rejected,
                covers,
                members,
                decided_at: Some(now()?),
                comment: comment.unwrap_or_default(),
                ..Default::default()
            }),
        })
        .await
        .map_err(|s| failed("recording the CAB decision", s))?
        .into_inner();
    let view = CabDecisionView::from(&d);
    match output {
        Output::Json => print_json_line(&view)?,
        Output::Table => println!(
            "recorded CAB decision {} ({}) covering {} release(s), satisfying {}",
            view.change_request_id,
            if view.approved {
                "approved"
            } else {
                "rejected"
            },
            view.covers.len(),
            view.satisfies_roles.join(", ")
        ),
    }
    Ok(ExitCode::SUCCESS)
}
