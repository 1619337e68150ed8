//! `flotilla env …`: environments of each unit and their promotion path, shared
//! infrastructure, reported configuration (drift) and parity, data refreshes, validations and
//! test windows.

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::orchestration::v1 as pb;
use serde::Serialize;

use crate::client::{Target, failed};
use crate::format::{now, parse_time, print_json, show_time};
use crate::output::{Output, table};

const EXAMPLE_TIME: &str = "2026-12-31T23:00:00Z";

#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// Environments, paths and shared infrastructure you may see.
    List {
        #[arg(long)]
        bu: Option<String>,
    },
    /// Define (or redefine) an environment of a unit.
    Define {
        #[arg(long)]
        bu: String,
        name: String,
        /// A validation a release must pass here before it leaves (repeatable).
        #[arg(long = "check")]
        checks: Vec<String>,
        /// A team that must sign off in a booked window before a release leaves (repeatable).
        #[arg(long = "test-team")]
        test_teams: Vec<String>,
        /// Shared infrastructure its deployments go into (repeatable).
        #[arg(long = "shared")]
        shared: Vec<String>,
        /// Requires a masked copy of production no older than this many days.
        #[arg(long)]
        data_max_age_days: Option<u32>,
        /// ... with at least this share of production's volume.
        #[arg(long, default_value_t = 0)]
        data_min_volume_percent: u32,
        /// Desired configuration KEY=VALUE (repeatable); reports that differ are drift.
        #[arg(long = "desired")]
        desired: Vec<String>,
    },
    /// Remove an environment that is on no promotion path and has nothing deploying into it.
    Remove {
        #[arg(long)]
        bu: String,
        name: String,
    },
    /// A unit's promotion path, in order (e.g. dev test staging prod).
    Path {
        #[arg(long)]
        bu: String,
        #[arg(required = true)]
        environments: Vec<String>,
    },
    /// Shared infrastructure that takes at most CAPACITY deployments at once.
    Infra {
        name: String,
        #[arg(long)]
        capacity: u32,
    },
    /// Report what an environment runs (KEY=VALUE ...); differences from desired are drift.
    Report {
        #[arg(long)]
        bu: String,
        name: String,
        #[arg(required = true)]
        actual: Vec<String>,
    },
    /// Two environments' reported configuration, key by key.
    Parity {
        #[arg(long)]
        bu: String,
        name: String,
        /// The other environment, as UNIT/NAME (or NAME in the same unit).
        other: String,
    },
    /// Record a data refresh (the job that refreshed it runs this).
    Refresh {
        #[arg(long)]
        bu: String,
        name: String,
        #[arg(long)]
        masked: bool,
        #[arg(long)]
        volume_percent: u32,
        /// When the copy was taken (RFC 3339; default now).
        #[arg(long)]
        copied_at: Option<String>,
    },
    /// Record a validation of a release in an environment.
    Validate {
        #[arg(long)]
        bu: String,
        name: String,
        release: String,
        check: String,
        /// The check failed (default: passed).
        #[arg(long)]
        failed: bool,
    },
    /// Book a test window for a release (QA, security, compliance).
    Book {
        #[arg(long)]
        bu: String,
        name: String,
        release: String,
        #[arg(long)]
        team: String,
        #[arg(long)]
        start: String,
        #[arg(long)]
        end: String,
    },
    /// Sign off a booked window (inside it).
    SignOff {
        #[arg(long)]
        bu: String,
        name: String,
        window_id: String,
        /// The team did not pass the release.
        #[arg(long)]
        failed: bool,
        #[arg(long, default_value = "")]
        comment: String,
    },
}

#[derive(Serialize)]
struct EnvironmentView {
    business_unit: String,
    name: String,
    checks: Vec<String>,
    test_teams: Vec<String>,
    shared: Vec<String>,
    drift: Vec<DifferenceView>,
    running: std::collections::BTreeMap<String, String>,
    last_refresh: String,
    windows: Vec<WindowView>,
}

#[derive(Serialize)]
struct DifferenceView {
    key: String,
    left: Option<String>,
    right: Option<String>,
}

#[derive(Serialize)]
struct WindowView {
    window_id: String,
    release: String,
    team: String,
    start: String,
    end: String,
    signed_off: String,
}

fn difference(d: &pb::ConfigDifference) -> DifferenceView {
    DifferenceView {
        key: d.key.clone(),
        left: d.desired_present.then(|| d.desired.clone()),
        right: d.actual_present.then(|| d.actual.clone()),
    }
}

/// A difference as a table row: the key, then each side ("(absent)" where it has none).
fn difference_row(d: &DifferenceView) -> Vec<String> {
    let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
    vec![d.key.clone(), side(&d.left), side(&d.right)]
}

fn window(w: &pb::TestWindow) -> WindowView {
    WindowView {
        window_id: w.window_id.clone(),
        release: w.release.clone(),
        team: w.team.clone(),
        start: show_time(w.start.as_ref()),
        end: show_time(w.end.as_ref()),
        signed_off: w
            .sign_off
            .as_ref()
            .map(|s| format!("{} by {}", if s.passed { "passed" } else { "failed" }, s.by))
            .unwrap_or_default(),
    }
}

fn environment(e: &pb::Environment) -> EnvironmentView {
    let spec = e.spec.clone().unwrap_or_default();
    EnvironmentView {
        business_unit: spec.business_unit,
        name: spec.name,
        checks: spec.checks,
        test_teams: spec.test_teams,
        shared: spec.shared,
        drift: e.drift.iter().map(difference).collect(),
        running: e.running.clone().into_iter().collect(),
        last_refresh: e
            .last_refresh
            .as_ref()
            .map(|r| {
                format!(
                    "{} {}%{}",
                    show_time(r.copied_at.as_ref()),
                    r.volume_percent,
                    if r.masked { " masked" } else { " NOT masked" }
                )
            })
            .unwrap_or_default(),
        windows: e.windows.iter().map(window).collect(),
    }
}

fn show(output: Output, e: &pb::Environment) -> anyhow::Result<()> {
    let v = environment(e);
    match output {
        Output::Json => print_json(&v),
        Output::Table => {
            println!("{}/{}", v.business_unit, v.name);
            let running: Vec<Vec<String>> = v
                .running
                .iter()
                .map(|(s, ver)| vec![s.clone(), ver.clone()])
                .collect();
            if !running.is_empty() {
                table(&["service", "running"], &running);
            }
            let drift: Vec<Vec<String>> = v.drift.iter().map(difference_row).collect();
            if !drift.is_empty() {
                table(&["drifted key", "desired", "actual"], &drift);
            }
            let windows: Vec<Vec<String>> = v
                .windows
                .iter()
                .map(|w| {
                    vec![
                        w.window_id.clone(),
                        w.release.clone(),
                        w.team.clone(),
                        format!("{} .. {}", w.start, w.end),
                        w.signed_off.clone(),
                    ]
                })
                .collect();
            if !windows.is_empty() {
                table(&["window", "release", "team", "when", "sign-off"], &windows);
            }
            Ok(())
        }
    }
}

fn time_or_now(field: &str, t: Option<&str>) -> anyhow::Result<prost_types::Timestamp> {
    t.map_or_else(now, |t| parse_time(field, t, EXAMPLE_TIME))
}

pub async fn run(target: &Target, output: Output, command: EnvCommand) -> anyhow::Result<ExitCode> {
    let mut c = super::connect(target).await?;
    match command {
        EnvCommand::List { bu } => {
            let l = c
                .list_environments(pb::ListEnvironmentsRequest {
                    business_unit: bu.unwrap_or_default(),
                })
                .await
                .map_err(|s| failed("list environments", s))?
                .into_inner();
            let envs: Vec<EnvironmentView> = l.environments.iter().map(environment).collect();
            match output {
                Output::Json => print_json(&serde_json::json!({
                    "environments": envs,
                    "paths": l.paths.iter().map(|p| serde_json::json!({"business_unit": p.business_unit, "environments": p.environments})).collect::<Vec<_>>(),
                    "infrastructure": l.infrastructure.iter().map(|i| serde_json::json!({"name": i.name, "capacity": i.capacity})).collect::<Vec<_>>(),
                }))?,
                Output::Table => {
                    let rows: Vec<Vec<String>> = envs
                        .iter()
                        .map(|e| {
                            vec![
                                e.business_unit.clone(),
                                e.name.clone(),
                                e.checks.join(","),
                                e.test_teams.join(","),
                                e.shared.join(","),
                                e.drift.len().to_string(),
                                e.running.len().to_string(),
                            ]
                        })
                        .collect();
                    table(
                        &[
                            "unit",
                            "environment",
                            "checks",
                            "test teams",
                            "shared",
                            "drift",
                            "services",
                        ],
                        &rows,
                    );
                    for p in &l.paths {
                        println!("{}: {}", p.business_unit, p.environments.join(" -> "));
                    }
                    for i in &l.infrastructure {
                        println!("shared {}: {} at once", i.name, i.capacity);
                    }
                }
            }
        }
        EnvCommand::Define {
            bu,
            name,
            checks,
            test_teams,
            shared,
            data_max_age_days,
            data_min_volume_percent,
            desired,
        } => {
            let e = c
                .define_environment(pb::DefineEnvironmentRequest {
                    spec: Some(pb::EnvironmentSpec {
                        business_unit: bu,
                        name,
                        checks,
                        data: data_max_age_days.map(|d| pb::DataRequirement {
                            max_age_days: d,
                            min_volume_percent: data_min_volume_percent,
                        }),
                        test_teams,
                        shared,
                        desired: super::pairs("--desired", &desired)?,
                    }),
                })
                .await
                .map_err(|s| failed("define environment", s))?
                .into_inner();
            show(output, &e)?;
        }
        EnvCommand::Remove { bu, name } => {
            c.remove_environment(pb::RemoveEnvironmentRequest {
                business_unit: bu.clone(),
                environment: name.clone(),
            })
            .await
            .map_err(|s| failed("remove environment", s))?;
            match output {
                Output::Json => {
                    print_json(&serde_json::json!({"business_unit": bu, "removed": name}))?
                }
                Output::Table => println!("{bu}/{name} removed"),
            }
        }
        EnvCommand::Path { bu, environments } => {
            let p = c
                .set_promotion_path(pb::SetPromotionPathRequest {
                    business_unit: bu,
                    environments,
                })
                .await
                .map_err(|s| failed("set promotion path", s))?
                .into_inner();
            match output {
                Output::Json => print_json(
                    &serde_json::json!({"business_unit": p.business_unit, "environments": p.environments}),
                )?,
                Output::Table => println!("{}: {}", p.business_unit, p.environments.join(" -> ")),
            }
        }
        EnvCommand::Infra { name, capacity } => {
            let i = c
                .define_shared_infrastructure(pb::DefineSharedInfrastructureRequest {
                    infrastructure: Some(pb::SharedInfrastructure { name, capacity }),
                })
                .await
                .map_err(|s| failed("define shared infrastructure", s))?
                .into_inner();
            match output {
                Output::Json => {
                    print_json(&serde_json::json!({"name": i.name, "capacity": i.capacity}))?
                }
                Output::Table => println!("shared {}: {} at once", i.name, i.capacity),
            }
        }
        EnvCommand::Report { bu, name, actual } => {
            let e = c
                .report_configuration(pb::ReportConfigurationRequest {
                    business_unit: bu,
                    environment: name,
                    actual: super::pairs("actual", &actual)?,
                })
                .await
                .map_err(|s| failed("report configuration", s))?
                .into_inner();
            show(output, &e)?;
        }
        EnvCommand::Parity { bu, name, other } => {
            let (other_bu, other_name) = other
                .split_once('/')
                .map_or((bu.clone(), other.clone()), |(u, n)| {
                    (u.to_owned(), n.to_owned())
                });
            let p = c
                .get_parity(pb::GetParityRequest {
                    business_unit: bu.clone(),
                    environment: name.clone(),
                    other_business_unit: other_bu.clone(),
                    other_environment: other_name.clone(),
                })
                .await
                .map_err(|s| failed("parity", s))?
                .into_inner();
            let diffs: Vec<DifferenceView> = p.differences.iter().map(difference).collect();
            match output {
                Output::Json => print_json(&diffs)?,
                Output::Table => {
                    let rows: Vec<Vec<String>> = diffs.iter().map(difference_row).collect();
                    table(
                        &[
                            "key",
                            &format!("{bu}/{name}"),
                            &format!("{other_bu}/{other_name}"),
                        ],
                        &rows,
                    );
                }
            }
        }
        EnvCommand::Refresh {
            bu,
            name,
            masked,
            volume_percent,
            copied_at,
        } => {
            let e = c
                .record_data_refresh(pb::RecordDataRefreshRequest {
                    business_unit: bu,
                    environment: name,
                    masked,
                    copied_at: Some(time_or_now("--copied-at", copied_at.as_deref())?),
                    volume_percent,
                })
                .await
                .map_err(|s| failed("record data refresh", s))?
                .into_inner();
            show(output, &e)?;
        }
        EnvCommand::Validate {
            bu,
            name,
            release,
            check,
            failed: did_fail,
        } => {
            let e = c
                .record_validation(pb::RecordValidationRequest {
                    business_unit: bu,
                    environment: name,
                    release,
                    check,
                    passed: !did_fail,
                })
                .await
                .map_err(|s| failed("record validation", s))?
                .into_inner();
            show(output, &e)?;
        }
        EnvCommand::Book {
            bu,
            name,
            release,
            team,
            start,
            end,
        } => {
            let w = c
                .book_test_window(pb::BookTestWindowRequest {
                    business_unit: bu,
                    environment: name,
                    release,
                    team,
                    start: Some(parse_time("--start", &start, EXAMPLE_TIME)?),
                    end: Some(parse_time("--end", &end, EXAMPLE_TIME)?),
                })
                .await
                .map_err(|s| failed("book test window", s))?
                .into_inner();
            print_window(output, &w)?;
        }
        EnvCommand::SignOff {
            bu,
            name,
            window_id,
            failed: did_fail,
            comment,
        } => {
            let w = c
                .sign_off_test_window(pb::SignOffTestWindowRequest {
                    business_unit: bu,
                    environment: name,
                    window_id,
                    passed: !did_fail,
                    comment,
                })
                .await
                .map_err(|s| failed("sign off test window", s))?
                .into_inner();
            print_window(output, &w)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_window(output: Output, w: &pb::TestWindow) -> anyhow::Result<()> {
    let v = window(w);
    match output {
        Output::Json => print_json(&v),
        Output::Table => {
            table(
                &["window", "release", "team", "when", "sign-off"],
                &[vec![
                    v.window_id,
                    v.release,
                    v.team,
                    format!("{} .. {}", v.start, v.end),
                    v.signed_off,
                ]],
            );
            Ok(())
        }
    }
}
