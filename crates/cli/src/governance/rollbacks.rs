//! `flotilla governance rollbacks …`: rollback decisions.

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::governance::v1 as pb;
use serde::Serialize;

use super::Client;
use crate::client::failed;
use crate::format::{print_json, show_time};
use crate::output::{Output, table};

#[derive(Subcommand, Debug)]
pub enum RollbacksCommand {
    List {
        #[arg(long)]
        release: Option<String>,
    },
    /// Decide: --roll-back, or continue without it.
    Decide {
        id: String,
        #[arg(long)]
        roll_back: bool,
        #[arg(long)]
        comment: Option<String>,
    },
}

/// A rollback decision as `--output json` prints it (always in an array).
#[derive(Serialize)]
struct RollbackDecisionView {
    decision_id: String,
    release: String,
    environment: String,
    metric: String,
    observed: f64,
    decide_by: String,
    overdue: bool,
    /// The `RollbackStatus` number, as the JSON has always carried it.
    status: i32,
}

impl From<&pb::RollbackDecision> for RollbackDecisionView {
    fn from(d: &pb::RollbackDecision) -> Self {
        Self {
            decision_id: d.decision_id.clone(),
            release: d.release.clone(),
            environment: d.environment.clone(),
            metric: d.metric.clone(),
            observed: d.observed,
            decide_by: show_time(d.decide_by.as_ref()),
            overdue: d.overdue,
            status: d.status,
        }
    }
}

impl RollbackDecisionView {
    const HEADERS: [&str; 6] = ["id", "release", "env", "metric", "decide by", "overdue"];

    fn row(&self) -> Vec<String> {
        vec![
            self.decision_id.clone(),
            self.release.clone(),
            self.environment.clone(),
            format!("{}={}", self.metric, self.observed),
            self.decide_by.clone(),
            self.overdue.to_string(),
        ]
    }
}

pub async fn run(
    c: &mut Client,
    output: Output,
    command: RollbacksCommand,
) -> anyhow::Result<ExitCode> {
    let decisions = match command {
        RollbacksCommand::List { release } => {
            c.list_rollback_decisions(pb::ListRollbackDecisionsRequest {
                release: release.unwrap_or_default(),
                business_unit: String::new(),
            })
            .await
            .map_err(|s| failed("listing rollback decisions", s))?
            .into_inner()
            .decisions
        }
        RollbacksCommand::Decide {
            id,
            roll_back,
            comment,
        } => vec![
            c.decide_rollback(pb::DecideRollbackRequest {
                decision_id: id,
                roll_back,
                comment: comment.unwrap_or_default(),
            })
            .await
            .map_err(|s| failed("deciding the rollback", s))?
            .into_inner(),
        ],
    };
    let views: Vec<RollbackDecisionView> =
        decisions.iter().map(RollbackDecisionView::from).collect();
    match output {
        Output::Json => print_json(&views)?,
        Output::Table => table(
            &RollbackDecisionView::HEADERS,
            &views
                .iter()
                .map(RollbackDecisionView::row)
                .collect::<Vec<_>>(),
        ),
    }
    Ok(ExitCode::SUCCESS)
}
