//! `flotilla report dora`: DORA's four keys and release telemetry of a business unit (or one of
//! its services) over a period, from monitoring. A table with a row per day or month for people;
//! `--output json` gives each metric as GitLab's DORA API shapes it (`[{date, value}]`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use flotilla_proto::monitoring::v1 as pb;
use flotilla_proto::monitoring::v1::monitoring_service_client::MonitoringServiceClient;
use serde::Serialize;

use crate::client::{Target, failed};
use crate::format::print_json;
use crate::output::{Output, table};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Interval {
    Daily,
    Monthly,
    All,
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Deployment frequency, lead time for changes, change failure rate, time to restore service,
    /// deploy duration, failure frequency and rollback incidence over a period.
    Dora {
        /// The business unit.
        #[arg(long)]
        bu: String,
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// First day, YYYY-MM-DD (UTC).
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD, inclusive.
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value_t = Interval::Daily)]
        interval: Interval,
    },
}

/// One point as GitLab's DORA API answers it.
#[derive(Serialize)]
struct Point {
    date: String,
    value: Option<f64>,
}

fn name_of(m: i32) -> &'static str {
    match pb::DoraMetric::try_from(m) {
        Ok(pb::DoraMetric::DeploymentFrequency) => "deployment_frequency",
        Ok(pb::DoraMetric::LeadTimeForChanges) => "lead_time_for_changes",
        Ok(pb::DoraMetric::ChangeFailureRate) => "change_failure_rate",
        Ok(pb::DoraMetric::TimeToRestoreService) => "time_to_restore_service",
        Ok(pb::DoraMetric::DeployDuration) => "deploy_duration",
        Ok(pb::DoraMetric::FailureFrequency) => "failure_frequency",
        Ok(pb::DoraMetric::RollbackIncidence) => "rollback_incidence",
        _ => "unknown",
    }
}

/// A value for people: counts whole, ratios in percent, seconds as h/m/s.
fn shown(unit: &str, v: Option<f64>) -> String {
    let Some(v) = v else {
        return "-".into();
    };
    match unit {
        "ratio" => format!("{:.1}%", v * 100.0),
        "seconds" => {
            let s = v.round() as i64;
            match (s / 3600, (s % 3600) / 60, s % 60) {
                (0, 0, s) => format!("{s}s"),
                (0, m, s) => format!("{m}m {s}s"),
                (h, m, _) => format!("{h}h {m}m"),
            }
        }
        _ => format!("{v}"),
    }
}

pub async fn run(
    target: &Target,
    output: Output,
    command: ReportCommand,
) -> anyhow::Result<ExitCode> {
    let ReportCommand::Dora {
        bu,
        service,
        from,
        to,
        interval,
    } = command;
    let (channel, bearer) = target.connect("monitoring").await?;
    let mut c = MonitoringServiceClient::with_interceptor(channel, bearer);
    let answer = c
        .get_dora_metrics(pb::GetDoraMetricsRequest {
            business_unit: bu.clone(),
            service: service.unwrap_or_default(),
            start_date: from,
            end_date: to,
            interval: match interval {
                Interval::Daily => pb::DoraInterval::Daily,
                Interval::Monthly => pb::DoraInterval::Monthly,
                Interval::All => pb::DoraInterval::All,
            } as i32,
            metrics: Vec::new(),
        })
        .await
        .map_err(|s| failed("dora metrics", s))?
        .into_inner();
    match output {
        Output::Json => {
            let by_metric: BTreeMap<&str, Vec<Point>> = answer
                .series
                .iter()
                .map(|s| {
                    (
                        name_of(s.metric),
                        s.points
                            .iter()
                            .map(|p| Point {
                                date: p.date.clone(),
                                value: p.value,
                            })
                            .collect(),
                    )
                })
                .collect();
            print_json(&by_metric)?;
        }
        Output::Table => {
            let mut headers = vec!["DATE"];
            let names: Vec<String> = answer
                .series
                .iter()
                .map(|s| name_of(s.metric).replace('_', " ").to_uppercase())
                .collect();
            headers.extend(names.iter().map(String::as_str));
            let dates: Vec<String> = answer
                .series
                .first()
                .map(|s| s.points.iter().map(|p| p.date.clone()).collect())
                .unwrap_or_default();
            let rows: Vec<Vec<String>> = dates
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let mut row = vec![d.clone()];
                    for s in &answer.series {
                        row.push(shown(&s.unit, s.points.get(i).and_then(|p| p.value)));
                    }
                    row
                })
                .collect();
            table(&headers, &rows);
            eprintln!(
                "production: {}; lead time counts from the commit (the build's registration where CI gave no commit time)",
                answer.production_environments.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
