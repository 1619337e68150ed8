//! `flotilla governance deadlines`: run the deadline scheduler now.

use std::process::ExitCode;

use flotilla_proto::governance::v1 as pb;
use serde::Serialize;

use super::Client;
use crate::client::failed;
use crate::format::print_json_line;
use crate::output::{Output, table};

/// What one pass of the deadline scheduler did, as `--output json` prints it (on one line).
#[derive(Serialize)]
struct DeadlinesView {
    escalated: u32,
    expired: u32,
    rollback_decisions_overdue: u32,
    deviations_expired: u32,
}

impl From<&pb::ProcessDeadlinesResponse> for DeadlinesView {
    fn from(r: &pb::ProcessDeadlinesResponse) -> Self {
        Self {
            escalated: r.escalated,
            expired: r.expired,
            rollback_decisions_overdue: r.rollback_decisions_overdue,
            deviations_expired: r.deviations_expired,
        }
    }
}

impl DeadlinesView {
    const HEADERS: [&str; 4] = [
        "escalated",
        "expired",
        "rollbacks overdue",
        "deviations expired",
    ];

    fn row(&self) -> Vec<String> {
        vec![
            self.escalated.to_string(),
            self.expired.to_string(),
            self.rollback_decisions_overdue.to_string(),
            self.deviations_expired.to_string(),
        ]
    }
}

pub async fn run(c: &mut Client, output: Output) -> anyhow::Result<ExitCode> {
    let r = c
        .process_deadlines(pb::ProcessDeadlinesRequest { now: None })
        .await
        .map_err(|s| failed("processing deadlines", s))?
        .into_inner();
    let view = DeadlinesView::from(&r);
    match output {
        Output::Json => print_json_line(&view)?,
        Output::Table => table(&DeadlinesView::HEADERS, &[view.row()]),
    }
    Ok(ExitCode::SUCCESS)
}
