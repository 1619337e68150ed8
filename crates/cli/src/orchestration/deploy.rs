//! `flotilla deploy watch|show|resume|analysis`: deployments as they run.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use flotilla_proto::orchestration::v1 as pb;

use super::Client;
use super::view::{DeploymentView, STEP_HEADERS, StepView, progress_line, step_row};
use crate::client::{Target, failed};
use crate::format::{print_json, print_json_line};
use crate::output::{Output, table};

#[derive(Subcommand, Debug)]
pub enum DeployCommand {
    /// Follow RELEASE's current deployment wave by wave until it is over (a line per step;
    /// JSON lines with --output json). Exits 0 when it succeeded, 1 otherwise.
    Watch { release: String },
    /// One deployment, every step.
    Show { deployment_id: String },
    /// Resume a deployment held by `pause {}` or paused by an inconclusive analysis.
    Resume { deployment_id: String },
    /// Record the verdict of the analysis a deployment waits for.
    Analysis {
        deployment_id: String,
        /// The analysis step's name.
        name: String,
        #[arg(value_enum)]
        verdict: VerdictArg,
        #[arg(long, default_value = "")]
        detail: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum VerdictArg {
    Passed,
    Failed,
    Inconclusive,
}

fn show(output: Output, d: &pb::Deployment) -> anyhow::Result<()> {
    let view = DeploymentView::from(d);
    match output {
        Output::Json => print_json(&view),
        Output::Table => {
            println!(
                "deployment {} of {} into {}: {} {}",
                view.deployment_id, view.release, view.environment, view.status, view.reason
            );
            table(
                &STEP_HEADERS,
                &view.steps.iter().map(step_row).collect::<Vec<_>>(),
            );
            Ok(())
        }
    }
}

/// Streams a deployment until it is over, printing each step that changed.
pub async fn watch_deployment(
    c: &mut Client,
    output: Output,
    deployment_id: &str,
) -> anyhow::Result<ExitCode> {
    let mut stream = c
        .watch_deployment(pb::GetDeploymentRequest {
            deployment_id: deployment_id.to_owned(),
        })
        .await
        .map_err(|s| failed("watch deployment", s))?
        .into_inner();
    let mut seen: Vec<StepView> = Vec::new();
    let mut last_status = "";
    let mut last: Option<DeploymentView> = None;
    while let Some(d) = stream
        .message()
        .await
        .map_err(|s| failed("watch deployment", s))?
    {
        let view = DeploymentView::from(&d);
        for s in &view.steps {
            let before = seen.iter().find(|x| x.index == s.index);
            if s.state != "pending" && before.is_none_or(|b| b != s) {
                match output {
                    Output::Json => print_json_line(s)?,
                    Output::Table => println!("{}", progress_line(&view, s)),
                }
            }
        }
        if view.status != last_status && output == Output::Table {
            if view.status == "paused" || view.status == "rolling-back" {
                println!("{}: {}", view.status, view.reason);
            }
            if view.status == "awaiting-rollback-decision" {
                println!(
                    "{}: {}\n  governance's rollback decision {} is open until {} ({} told); it rolls back then if nobody decides: `flotilla governance rollbacks decide {} --roll-back` (or without --roll-back to keep it as it stands)",
                    view.status,
                    view.reason,
                    view.rollback_decision_id,
                    view.decide_by,
                    view.notify.join(", "),
                    view.rollback_decision_id
                );
            }
            last_status = view.status;
        }
        seen = view.steps.clone();
        last = Some(view);
    }
    let Some(view) = last else {
        anyhow::bail!(
            "deployment {deployment_id} sent nothing; try `flotilla deploy show {deployment_id}`"
        );
    };
    match output {
        Output::Json => print_json_line(&serde_json::json!({
            "deployment_id": view.deployment_id, "status": view.status, "reason": view.reason,
        }))?,
        Output::Table => {
            println!();
            table(
                &STEP_HEADERS,
                &view.steps.iter().map(step_row).collect::<Vec<_>>(),
            );
            println!(
                "{} into {}: {} {}",
                view.release, view.environment, view.status, view.reason
            );
        }
    }
    Ok(if view.status == "succeeded" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn run(
    target: &Target,
    output: Output,
    command: DeployCommand,
) -> anyhow::Result<ExitCode> {
    let mut c = super::connect(target).await?;
    match command {
        DeployCommand::Watch { release } => {
            let r = c
                .get_release(pb::GetReleaseRequest {
                    release: release.clone(),
                })
                .await
                .map_err(|s| failed("get release", s))?
                .into_inner();
            let Some(id) = r.deployment_ids.last() else {
                anyhow::bail!(
                    "release {release} has not been promoted yet; promote it: flotilla release promote {release} ENVIRONMENT"
                );
            };
            watch_deployment(&mut c, output, id).await
        }
        DeployCommand::Show { deployment_id } => {
            let d = c
                .get_deployment(pb::GetDeploymentRequest { deployment_id })
                .await
                .map_err(|s| failed("get deployment", s))?
                .into_inner();
            show(output, &d)?;
            Ok(ExitCode::SUCCESS)
        }
        DeployCommand::Resume { deployment_id } => {
            let d = c
                .resume_deployment(pb::ResumeDeploymentRequest { deployment_id })
                .await
                .map_err(|s| failed("resume deployment", s))?
                .into_inner();
            show(output, &d)?;
            Ok(ExitCode::SUCCESS)
        }
        DeployCommand::Analysis {
            deployment_id,
            name,
            verdict,
            detail,
        } => {
            let verdict = match verdict {
                VerdictArg::Passed => pb::Verdict::Passed,
                VerdictArg::Failed => pb::Verdict::Failed,
                VerdictArg::Inconclusive => pb::Verdict::Inconclusive,
            };
            let d = c
                .record_analysis(pb::RecordAnalysisRequest {
                    deployment_id,
                    analysis: name,
                    verdict: verdict as i32,
                    detail,
                })
                .await
                .map_err(|s| failed("record analysis", s))?
                .into_inner();
            show(output, &d)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
