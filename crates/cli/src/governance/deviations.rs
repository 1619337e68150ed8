//! `flotilla governance deviations …`: deviations (break-glass).

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::governance::v1 as pb;
use serde::Serialize;

use super::{Client, EXAMPLE_TIME};
use crate::client::failed;
use crate::format::{parse_time, print_json, show_time};
use crate::output::{Output, table};

#[derive(Subcommand, Debug)]
pub enum DeviationsCommand {
    /// Request a deviation for one release in one environment.
    Request {
        /// approvals, freeze-window or embargo.
        #[arg(long)]
        rule: String,
        #[arg(long)]
        release: String,
        #[arg(long)]
        env: String,
        #[arg(long)]
        bu: String,
        #[arg(long)]
        justification: String,
        #[arg(long = "control", required = true)]
        controls: Vec<String>,
        /// RFC 3339 expiry.
        #[arg(long)]
        expires: String,
        /// The role you request it in.
        #[arg(long)]
        role: String,
    },
    Approve {
        id: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        comment: Option<String>,
    },
    Reject {
        id: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        comment: Option<String>,
    },
    List {
        #[arg(long)]
        release: Option<String>,
    },
}

/// A deviation as `--output json` prints it (always in an array).
#[derive(Serialize)]
struct DeviationView {
    deviation_id: String,
    release: String,
    environment: String,
    /// The `GateRule` number, as the JSON has always carried it.
    rule: i32,
    status: &'static str,
    requested_by: String,
    decided_by: String,
    expires_at: String,
    compensating_controls: Vec<String>,
}

fn status_name(s: i32) -> &'static str {
    match pb::DeviationStatus::try_from(s) {
        Ok(pb::DeviationStatus::Requested) => "requested",
        Ok(pb::DeviationStatus::Approved) => "approved",
        Ok(pb::DeviationStatus::Rejected) => "rejected",
        Ok(pb::DeviationStatus::Expired) => "expired",
        _ => "unknown",
    }
}

impl From<&pb::Deviation> for DeviationView {
    fn from(d: &pb::Deviation) -> Self {
        Self {
            deviation_id: d.deviation_id.clone(),
            release: d.release.clone(),
            environment: d.environment.clone(),
            rule: d.rule,
            status: status_name(d.status),
            requested_by: d.requested_by.clone(),
            decided_by: d.decided_by.clone(),
            expires_at: show_time(d.expires_at.as_ref()),
            compensating_controls: d.compensating_controls.clone(),
        }
    }
}

impl DeviationView {
    const HEADERS: [&str; 7] = [
        "id",
        "release",
        "env",
        "status",
        "requested by",
        "decided by",
        "expires",
    ];

    fn row(&self) -> Vec<String> {
        vec![
            self.deviation_id.clone(),
            self.release.clone(),
            self.environment.clone(),
            self.status.into(),
            self.requested_by.clone(),
            self.decided_by.clone(),
            self.expires_at.clone(),
        ]
    }
}

fn print_deviations(output: Output, deviations: &[pb::Deviation]) -> anyhow::Result<()> {
    let views: Vec<DeviationView> = deviations.iter().map(DeviationView::from).collect();
    match output {
        Output::Json => print_json(&views)?,
        Output::Table => table(
            &DeviationView::HEADERS,
            &views.iter().map(DeviationView::row).collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

fn parse_rule(s: &str) -> anyhow::Result<pb::GateRule> {
    Ok(match s {
        "approvals" => pb::GateRule::Approvals,
        "freeze-window" => pb::GateRule::FreezeWindow,
        "embargo" => pb::GateRule::Embargo,
        other => anyhow::bail!("--rule {other:?}: use approvals, freeze-window or embargo"),
    })
}

pub async fn run(
    c: &mut Client,
    output: Output,
    command: DeviationsCommand,
) -> anyhow::Result<ExitCode> {
    let deviations = match command {
        DeviationsCommand::Request {
            rule,
            release,
            env,
            bu,
            justification,
            controls,
            expires,
            role,
        } => vec![
            c.request_deviation(pb::RequestDeviationRequest {
                deviation: Some(pb::Deviation {
                    rule: parse_rule(&rule)? as i32,
                    release,
                    environment: env,
                    business_unit: bu,
                    justification,
                    compensating_controls: controls,
                    expires_at: Some(parse_time("--expires", &expires, EXAMPLE_TIME)?),
                    requester_role: role,
                    ..Default::default()
                }),
            })
            .await
            .map_err(|s| failed("requesting the deviation", s))?
            .into_inner(),
        ],
        DeviationsCommand::Approve { id, role, comment } => vec![
            c.approve_deviation(decide(id, role, comment))
                .await
                .map_err(|s| failed("deciding the deviation", s))?
                .into_inner(),
        ],
        DeviationsCommand::Reject { id, role, comment } => vec![
            c.reject_deviation(decide(id, role, comment))
                .await
                .map_err(|s| failed("deciding the deviation", s))?
                .into_inner(),
        ],
        DeviationsCommand::List { release } => {
            c.list_deviations(pb::ListDeviationsRequest {
                release: release.unwrap_or_default(),
                business_unit: String::new(),
            })
            .await
            .map_err(|s| failed("listing deviations", s))?
            .into_inner()
            .deviations
        }
    };
    print_deviations(output, &deviations)?;
    Ok(ExitCode::SUCCESS)
}

fn decide(id: String, role: String, comment: Option<String>) -> pb::DecideDeviationRequest {
    pb::DecideDeviationRequest {
        deviation_id: id,
        role,
        comment: comment.unwrap_or_default(),
    }
}
