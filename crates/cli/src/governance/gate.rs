//! `flotilla governance gate`: may a release enter an environment?

use std::process::ExitCode;

use clap::Args;
use flotilla_proto::governance::v1 as pb;
use serde::Serialize;

use super::{Client, EXAMPLE_TIME};
use crate::client::failed;
use crate::format::{parse_time, print_json, show_time};
use crate::output::{Output, table};

// The arguments of `gate` (its help is on the `Gate` variant).
#[derive(Args, Debug)]
pub struct GateArgs {
    release: String,
    environment: String,
    /// RFC 3339 time, e.g. 2026-12-31T23:00:00Z.
    #[arg(long)]
    at: Option<String>,
    /// Ask as for an emergency release (`--emergency true`) or a normal one (`false`); by
    /// default as its approval request says.
    #[arg(long)]
    emergency: Option<bool>,
}

/// A gate decision as `--output json` prints it.
#[derive(Serialize)]
struct GateDecisionView {
    allowed: bool,
    release: String,
    environment: String,
    at: String,
    deviations_used: Vec<String>,
    reasons: Vec<GateReasonView>,
}

#[derive(Serialize)]
struct GateReasonView {
    kind: &'static str,
    subject: String,
    message: String,
    waived_by_deviation: String,
}

fn reason_kind(k: i32) -> &'static str {
    match pb::GateReasonKind::try_from(k) {
        Ok(pb::GateReasonKind::NoApprovalRequest) => "no-approval-request",
        Ok(pb::GateReasonKind::MissingApprovals) => "missing-approvals",
        Ok(pb::GateReasonKind::ApprovalExpired) => "approval-expired",
        Ok(pb::GateReasonKind::RequestExpired) => "request-expired",
        Ok(pb::GateReasonKind::Rejected) => "rejected",
        Ok(pb::GateReasonKind::FreezeWindow) => "freeze-window",
        Ok(pb::GateReasonKind::Embargo) => "embargo",
        Ok(pb::GateReasonKind::EmergencyMismatch) => "emergency-mismatch",
        Ok(pb::GateReasonKind::FmeaActionOpen) => "fmea-action-open",
        _ => "unknown",
    }
}

impl From<&pb::GateReason> for GateReasonView {
    fn from(r: &pb::GateReason) -> Self {
        Self {
            kind: reason_kind(r.kind),
            subject: r.subject.clone(),
            message: r.message.clone(),
            waived_by_deviation: r.waived_by_deviation.clone(),
        }
    }
}

impl From<&pb::GateDecision> for GateDecisionView {
    fn from(d: &pb::GateDecision) -> Self {
        Self {
            allowed: d.allowed,
            release: d.release.clone(),
            environment: d.environment.clone(),
            at: show_time(d.at.as_ref()),
            deviations_used: d.deviations_used.clone(),
            reasons: d.reasons.iter().map(GateReasonView::from).collect(),
        }
    }
}

impl GateReasonView {
    fn row(&self) -> Vec<String> {
        vec![
            self.kind.into(),
            self.subject.clone(),
            self.message.clone(),
            self.waived_by_deviation.clone(),
        ]
    }
}

/// Exits 0 when the release may enter, 1 when it may not.
pub async fn run(c: &mut Client, output: Output, args: GateArgs) -> anyhow::Result<ExitCode> {
    let GateArgs {
        release,
        environment,
        at,
        emergency,
    } = args;
    let at = at
        .map(|a| parse_time("--at", &a, EXAMPLE_TIME))
        .transpose()?;
    let d = c
        .check_gate(pb::CheckGateRequest {
            release,
            environment,
            at,
            emergency,
        })
        .await
        .map_err(|s| failed("gate check", s))?
        .into_inner();
    let view = GateDecisionView::from(&d);
    match output {
        Output::Json => print_json(&view)?,
        Output::Table => {
            println!(
                "{} {} at {}: {}",
                view.release,
                view.environment,
                view.at,
                if view.allowed { "ALLOWED" } else { "DENIED" }
            );
            if !view.reasons.is_empty() {
                table(
                    &["reason", "subject", "detail", "waived by"],
                    &view
                        .reasons
                        .iter()
                        .map(GateReasonView::row)
                        .collect::<Vec<_>>(),
                );
            }
        }
    }
    Ok(if view.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
