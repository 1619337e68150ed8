//! `flotilla risk weights [set]`: the factor weights risk scores are computed with, versioned
//! by the service.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use flotilla_proto::risk::v1 as pb;
use serde::Serialize;

use super::Client;
use crate::client::failed;
use crate::format::print_json;
use crate::output::{Output, table};

// The arguments of `weights` (its help is on the `Weights` variant).
#[derive(Args, Debug)]
pub struct WeightsArgs {
    #[command(subcommand)]
    command: Option<WeightsCommand>,
}

#[derive(Subcommand, Debug)]
enum WeightsCommand {
    /// Set new factor weights (a new version; 0 leaves a factor out); a flag not given keeps
    /// its current value. Releases not yet everywhere are assessed with them.
    Set(SetArgs),
}

#[derive(Args, Debug)]
struct SetArgs {
    /// Weight of the most critical service's catalog tier.
    #[arg(long)]
    criticality_tier: Option<u32>,
    /// Weight of the services the impact analysis reaches beyond the release.
    #[arg(long)]
    blast_radius: Option<u32>,
    /// Weight of how many services change.
    #[arg(long)]
    change_size: Option<u32>,
    /// Weight of migrations that change a schema.
    #[arg(long)]
    schema_changes: Option<u32>,
    /// Weight of database migrations.
    #[arg(long)]
    migrations: Option<u32>,
    /// Weight of the services' recent failed or rolled-back deployments.
    #[arg(long)]
    change_failure_rate: Option<u32>,
    /// Weight of the FMEA's highest RPN.
    #[arg(long)]
    fmea_rpn: Option<u32>,
    /// Weight of being an emergency release.
    #[arg(long)]
    emergency: Option<u32>,
    /// Days of deployment history the change-failure rate is taken over.
    #[arg(long)]
    history_days: Option<u32>,
    /// An FMEA failure mode with an RPN at or above it requires an action and its owner.
    #[arg(long)]
    rpn_action_threshold: Option<u32>,
}

/// A version of the weights as `--output json` prints it (always in an array).
#[derive(Serialize)]
struct WeightsVersionView {
    /// 0: the defaults.
    version: u32,
    set_by: String,
    criticality_tier: u32,
    blast_radius: u32,
    change_size: u32,
    schema_changes: u32,
    migrations: u32,
    change_failure_rate: u32,
    fmea_rpn: u32,
    emergency: u32,
    history_days: u32,
    rpn_action_threshold: u32,
}

impl From<&pb::RiskWeightsVersion> for WeightsVersionView {
    fn from(v: &pb::RiskWeightsVersion) -> Self {
        let w = v.weights.unwrap_or_default();
        Self {
            version: v.version,
            set_by: v.set_by.clone(),
            criticality_tier: w.criticality_tier,
            blast_radius: w.blast_radius,
            change_size: w.change_size,
            schema_changes: w.schema_changes,
            migrations: w.migrations,
            change_failure_rate: w.change_failure_rate,
            fmea_rpn: w.fmea_rpn,
            emergency: w.emergency,
            history_days: w.history_days,
            rpn_action_threshold: w.rpn_action_threshold,
        }
    }
}

impl WeightsVersionView {
    const HEADERS: [&str; 3] = ["factor", "weight", "share"];

    /// Each factor with its weight and its share of the total weight (the most points it adds).
    fn rows(&self) -> Vec<Vec<String>> {
        let factors = [
            ("criticality_tier", self.criticality_tier),
            ("blast_radius", self.blast_radius),
            ("change_size", self.change_size),
            ("schema_changes", self.schema_changes),
            ("migrations", self.migrations),
            ("change_failure_rate", self.change_failure_rate),
            ("fmea_rpn", self.fmea_rpn),
            ("emergency", self.emergency),
        ];
        let total: u32 = factors.iter().map(|(_, w)| w).sum();
        factors
            .iter()
            .map(|(name, w)| {
                vec![
                    (*name).to_owned(),
                    w.to_string(),
                    format!("{:.1}%", f64::from(*w) * 100.0 / f64::from(total.max(1))),
                ]
            })
            .collect()
    }
}

fn print_weights(output: Output, v: &pb::RiskWeightsVersion) -> anyhow::Result<()> {
    let view = WeightsVersionView::from(v);
    match output {
        Output::Json => print_json(&[&view])?,
        Output::Table => {
            if view.version == 0 {
                println!("risk weights version 0 (the defaults)");
            } else {
                println!(
                    "risk weights version {} set by {}",
                    view.version, view.set_by
                );
            }
            table(&WeightsVersionView::HEADERS, &view.rows());
            println!(
                "change-failure rate over {} days; an FMEA failure mode with RPN {} or more needs an action",
                view.history_days, view.rpn_action_threshold
            );
        }
    }
    Ok(())
}

pub async fn run(c: &mut Client, output: Output, args: WeightsArgs) -> anyhow::Result<ExitCode> {
    let current = c
        .get_risk_weights(pb::GetRiskWeightsRequest {})
        .await
        .map_err(|s| failed("reading the risk weights", s))?
        .into_inner();
    let Some(WeightsCommand::Set(set)) = args.command else {
        print_weights(output, &current)?;
        return Ok(ExitCode::SUCCESS);
    };
    let w = current.weights.unwrap_or_default();
    let weights = pb::RiskWeights {
        criticality_tier: set.criticality_tier.unwrap_or(w.criticality_tier),
        blast_radius: set.blast_radius.unwrap_or(w.blast_radius),
        change_size: set.change_size.unwrap_or(w.change_size),
        schema_changes: set.schema_changes.unwrap_or(w.schema_changes),
        migrations: set.migrations.unwrap_or(w.migrations),
        change_failure_rate: set.change_failure_rate.unwrap_or(w.change_failure_rate),
        fmea_rpn: set.fmea_rpn.unwrap_or(w.fmea_rpn),
        emergency: set.emergency.unwrap_or(w.emergency),
        history_days: set.history_days.unwrap_or(w.history_days),
        rpn_action_threshold: set.rpn_action_threshold.unwrap_or(w.rpn_action_threshold),
    };
    let new = c
        .set_risk_weights(pb::SetRiskWeightsRequest {
            weights: Some(weights),
        })
        .await
        .map_err(|s| failed("setting the risk weights", s))?
        .into_inner();
    print_weights(output, &new)?;
    Ok(ExitCode::SUCCESS)
}
