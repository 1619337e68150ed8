//! `flotilla risk fmea show|record|close`: a release's FMEA, its failure modes' RPN and the
//! actions required at or above the threshold.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::risk::v1 as pb;
use serde::{Deserialize, Serialize};

use super::{Client, NO_RELEASE, refused};
use crate::format::{print_json, show_time};
use crate::output::{Output, table};

#[derive(Subcommand, Debug)]
pub enum FmeaCommand {
    /// Show a release's FMEA.
    Show { release: String },
    /// Record (or replace) a release's FMEA from a JSON array of failure modes: {"name",
    /// "effect", "severity", "occurrence", "detection", "action", "action_owner"} (severity,
    /// occurrence and detection 1-10).
    Record {
        release: String,
        /// The JSON array of failure modes.
        #[arg(long)]
        file: PathBuf,
    },
    /// Close the required action of a failure mode, with the evidence that it was done.
    Close {
        release: String,
        /// The failure mode's name.
        #[arg(long)]
        mode: String,
        #[arg(long)]
        evidence: String,
    },
}

/// A failure mode as `fmea record --file` reads it; keeps its `…File` name because serde names
/// it in parse errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailureModeFile {
    name: String,
    #[serde(default)]
    effect: String,
    severity: u32,
    occurrence: u32,
    detection: u32,
    #[serde(default)]
    action: String,
    #[serde(default)]
    action_owner: String,
}

/// An FMEA as `--output json` prints it (always in an array).
#[derive(Serialize)]
struct FmeaView {
    release: String,
    business_unit: String,
    /// An RPN at or above it requires an action.
    rpn_action_threshold: u32,
    highest_rpn: u32,
    /// Failure modes whose required action is open (governance's gate stays shut meanwhile).
    open_actions: Vec<String>,
    recorded_by: String,
    recorded_at: String,
    modes: Vec<FailureModeView>,
}

#[derive(Serialize)]
struct FailureModeView {
    name: String,
    effect: String,
    severity: u32,
    occurrence: u32,
    detection: u32,
    rpn: u32,
    action: String,
    action_owner: String,
    action_required: bool,
    action_closed: bool,
    closed_by: String,
    closing_evidence: String,
    closed_at: String,
}

impl From<&pb::FailureMode> for FailureModeView {
    fn from(m: &pb::FailureMode) -> Self {
        Self {
            name: m.name.clone(),
            effect: m.effect.clone(),
            severity: m.severity,
            occurrence: m.occurrence,
            detection: m.detection,
            rpn: m.rpn,
            action: m.action.clone(),
            action_owner: m.action_owner.clone(),
            action_required: m.action_required,
            action_closed: m.action_closed,
            closed_by: m.closed_by.clone(),
            closing_evidence: m.closing_evidence.clone(),
            closed_at: show_time(m.closed_at.as_ref()),
        }
    }
}

impl From<&pb::Fmea> for FmeaView {
    fn from(f: &pb::Fmea) -> Self {
        Self {
            release: f.release.clone(),
            business_unit: f.business_unit.clone(),
            rpn_action_threshold: f.rpn_action_threshold,
            highest_rpn: f.highest_rpn,
            open_actions: f.open_actions.clone(),
            recorded_by: f.recorded_by.clone(),
            recorded_at: show_time(f.recorded_at.as_ref()),
            modes: f.modes.iter().map(FailureModeView::from).collect(),
        }
    }
}

impl FailureModeView {
    const HEADERS: [&str; 8] = ["mode", "s", "o", "d", "rpn", "action", "owner", "status"];

    /// Where its action stands: required and open, closed, or not required.
    fn status(&self) -> String {
        if self.action_closed {
            format!("closed by {}", self.closed_by)
        } else if self.action_required {
            "required-open".into()
        } else {
            "not required".into()
        }
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.severity.to_string(),
            self.occurrence.to_string(),
            self.detection.to_string(),
            self.rpn.to_string(),
            self.action.clone(),
            self.action_owner.clone(),
            self.status(),
        ]
    }
}

fn print_fmea(output: Output, f: &pb::Fmea) -> anyhow::Result<()> {
    let view = FmeaView::from(f);
    match output {
        Output::Json => print_json(&[&view])?,
        Output::Table => {
            println!(
                "FMEA of {} ({}): highest RPN {}, action required at RPN {} or more, recorded by {} at {}",
                view.release,
                view.business_unit,
                view.highest_rpn,
                view.rpn_action_threshold,
                view.recorded_by,
                view.recorded_at
            );
            table(
                &FailureModeView::HEADERS,
                &view
                    .modes
                    .iter()
                    .map(FailureModeView::row)
                    .collect::<Vec<_>>(),
            );
            if !view.open_actions.is_empty() {
                println!(
                    "open actions keep governance's gate shut: {}; close each with `flotilla risk fmea close {} --mode NAME --evidence TEXT`",
                    view.open_actions.join(", "),
                    view.release
                );
            }
        }
    }
    Ok(())
}

/// The failure modes of a `fmea record --file`; errors name the file.
fn read_modes(file: &Path) -> anyhow::Result<Vec<pb::FailureMode>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let modes: Vec<FailureModeFile> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a JSON array of failure modes ({e}); each is {{\"name\", \"effect\", \"severity\", \"occurrence\", \"detection\", \"action\", \"action_owner\"}} with severity, occurrence and detection 1-10",
            file.display()
        )
    })?;
    Ok(modes
        .into_iter()
        .map(|m| pb::FailureMode {
            name: m.name,
            effect: m.effect,
            severity: m.severity,
            occurrence: m.occurrence,
            detection: m.detection,
            action: m.action,
            action_owner: m.action_owner,
            ..Default::default()
        })
        .collect())
}

pub async fn run(c: &mut Client, output: Output, command: FmeaCommand) -> anyhow::Result<ExitCode> {
    let f = match command {
        FmeaCommand::Show { release } => c
            .get_fmea(pb::GetFmeaRequest {
                release: release.clone(),
            })
            .await
            .map_err(|s| {
                refused(
                    "reading the FMEA",
                    s,
                    &format!(
                        "check the release's name with `flotilla release list`; a release has no FMEA until one is recorded: flotilla risk fmea record {release} --file modes.json"
                    ),
                )
            })?
            .into_inner(),
        FmeaCommand::Record { release, file } => {
            let modes = read_modes(&file)?;
            c.record_fmea(pb::RecordFmeaRequest { release, modes })
                .await
                .map_err(|s| refused("recording the FMEA", s, NO_RELEASE))?
                .into_inner()
        }
        FmeaCommand::Close {
            release,
            mode,
            evidence,
        } => c
            .close_fmea_action(pb::CloseFmeaActionRequest {
                release: release.clone(),
                failure_mode: mode,
                evidence,
            })
            .await
            .map_err(|s| {
                refused(
                    "closing the FMEA action",
                    s,
                    &format!("see the release's failure modes with `flotilla risk fmea show {release}`"),
                )
            })?
            .into_inner(),
    };
    print_fmea(output, &f)?;
    Ok(ExitCode::SUCCESS)
}
