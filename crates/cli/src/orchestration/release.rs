//! `flotilla release create|plan|promote|rollback|show|list`: releases, from content to rollback.
//!
//! A release's content is a TOML file (`--file`), one `[[items]]` per service:
//!
//! ```toml
//! [[items]]
//! service = "payments-api"
//! version = "2.4.1"            # optional: the newest registered build
//! [items.descriptor]
//! kind = "helm"                # helm, terraform or kustomize
//! reference = "oci://charts.example.com/payments-api"
//! version = "2.4.1"
//! labels = { team = "payments-core" }
//! cpu_limit = "500m"
//! memory_limit = "512Mi"
//! [items.strategy.blue_green]   # or rolling = {}, or canary = { steps = [...] }
//! pre_promotion_analysis = "smoke"
//! [[items.migrations]]
//! name = "004-iban"
//! forward = "psql -f 004-iban.up.sql"
//! rollback = "psql -f 004-iban.down.sql"
//! ```
//!
//! Or, without a file, `--service` names services that take the newest builds with one
//! descriptor built from `--chart` (`{service}` is replaced) and the label/limit flags.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use flotilla_proto::orchestration::v1 as pb;
use serde::Deserialize;

use super::view::{
    DeploymentView, RELEASE_HEADERS, ReleaseView, STEP_HEADERS, release_row, step_row,
};
use crate::client::{Target, failed};
use crate::format::print_json;
use crate::output::{Output, table};

#[derive(Subcommand, Debug)]
pub enum ReleaseCommand {
    /// Create a release (its name is checked against governance's naming rule).
    Create(CreateArgs),
    /// Plan it through dependency-mapping: waves, co-deployment groups, impact, version skew.
    Plan { release: String },
    /// Promote it into ENVIRONMENT (the next on its unit's path). Exits 1 when blocked, with
    /// every reason.
    Promote {
        release: String,
        environment: String,
        /// Watch the deployment to its end.
        #[arg(long)]
        watch: bool,
    },
    /// Roll back its deployment where it runs: every touched service, in reverse order.
    Rollback {
        release: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// One release, its plan and its last deployment.
    Show { release: String },
    /// Releases you may see.
    List {
        #[arg(long)]
        bu: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: String,
    #[arg(long)]
    pub bu: String,
    /// Out of cycle: passes freeze windows only where a deviation covers it.
    #[arg(long)]
    pub emergency: bool,
    /// The release's items as TOML (see `flotilla release --help`).
    #[arg(long, conflicts_with = "services")]
    pub file: Option<std::path::PathBuf>,
    /// A service (SERVICE or SERVICE@VERSION) with the descriptor the flags below build.
    #[arg(long = "service")]
    pub services: Vec<String>,
    /// Chart reference; `{service}` is replaced by the service name.
    #[arg(long, default_value = "oci://charts.example.com/{service}")]
    pub chart: String,
    #[arg(long = "label")]
    pub labels: Vec<String>,
    #[arg(long, default_value = "")]
    pub cpu: String,
    #[arg(long, default_value = "")]
    pub memory: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseFile {
    items: Vec<ItemFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemFile {
    service: String,
    #[serde(default)]
    version: String,
    descriptor: DescriptorFile,
    #[serde(default)]
    strategy: Option<StrategyFile>,
    #[serde(default)]
    migrations: Vec<MigrationFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescriptorFile {
    kind: String,
    reference: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    values: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    cpu_limit: String,
    #[serde(default)]
    memory_limit: String,
    #[serde(default)]
    uses: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum StrategyFile {
    Rolling {},
    BlueGreen {
        #[serde(default)]
        pre_promotion_analysis: String,
        #[serde(default)]
        post_promotion_analysis: String,
        #[serde(default)]
        scale_down_delay_seconds: u32,
        #[serde(default)]
        session_drain_seconds: u32,
    },
    Canary {
        steps: Vec<CanaryStepFile>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum CanaryStepFile {
    SetWeight(u32),
    /// Seconds; 0 waits for a person.
    Pause(u32),
    Analysis(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MigrationFile {
    name: String,
    forward: String,
    rollback: String,
}

fn kind(k: &str) -> anyhow::Result<i32> {
    Ok(match k {
        "helm" => pb::DescriptorKind::Helm,
        "terraform" => pb::DescriptorKind::Terraform,
        "kustomize" => pb::DescriptorKind::Kustomize,
        other => anyhow::bail!("descriptor kind {other:?}: use helm, terraform or kustomize"),
    } as i32)
}

impl DescriptorFile {
    fn into_pb(self) -> anyhow::Result<pb::Descriptor> {
        Ok(pb::Descriptor {
            kind: kind(&self.kind)?,
            reference: self.reference,
            version: self.version,
            values: self.values,
            labels: self.labels,
            cpu_limit: self.cpu_limit,
            memory_limit: self.memory_limit,
            uses: self.uses,
        })
    }
}

impl StrategyFile {
    fn into_pb(self) -> pb::Strategy {
        use pb::strategy::Kind;
        let kind = match self {
            StrategyFile::Rolling {} => Kind::Rolling(pb::RollingStrategy {}),
            StrategyFile::BlueGreen {
                pre_promotion_analysis,
                post_promotion_analysis,
                scale_down_delay_seconds,
                session_drain_seconds,
            } => Kind::BlueGreen(pb::BlueGreenStrategy {
                pre_promotion_analysis,
                post_promotion_analysis,
                scale_down_delay_seconds,
                session_drain_seconds,
            }),
            StrategyFile::Canary { steps } => Kind::Canary(pb::CanaryStrategy {
                steps: steps
                    .into_iter()
                    .map(|s| pb::CanaryStep {
                        step: Some(match s {
                            CanaryStepFile::SetWeight(w) => pb::canary_step::Step::SetWeight(w),
                            CanaryStepFile::Pause(secs) => {
                                pb::canary_step::Step::Pause(pb::Pause {
                                    duration_seconds: secs,
                                    indefinite: secs == 0,
                                })
                            }
                            CanaryStepFile::Analysis(a) => pb::canary_step::Step::Analysis(a),
                        }),
                    })
                    .collect(),
            }),
        };
        pb::Strategy { kind: Some(kind) }
    }
}

fn items(args: &CreateArgs) -> anyhow::Result<Vec<pb::RequestedItem>> {
    if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let file: ReleaseFile = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a release file ({e}); see `flotilla release --help`",
                path.display()
            )
        })?;
        return file
            .items
            .into_iter()
            .map(|i| {
                Ok(pb::RequestedItem {
                    service: i.service,
                    version: i.version,
                    descriptor: Some(i.descriptor.into_pb()?),
                    strategy: i.strategy.map(StrategyFile::into_pb),
                    migrations: i
                        .migrations
                        .into_iter()
                        .map(|m| pb::Migration {
                            name: m.name,
                            forward: m.forward,
                            rollback: m.rollback,
                        })
                        .collect(),
                })
            })
            .collect();
    }
    if args.services.is_empty() {
        anyhow::bail!(
            "name what the release carries: --file release.toml, or --service NAME[@VERSION] (repeatable)"
        );
    }
    let labels = super::pairs("--label", &args.labels)?;
    Ok(args
        .services
        .iter()
        .map(|s| {
            let (service, version) = s.split_once('@').unwrap_or((s.as_str(), ""));
            pb::RequestedItem {
                service: service.to_owned(),
                version: version.to_owned(),
                descriptor: Some(pb::Descriptor {
                    kind: pb::DescriptorKind::Helm as i32,
                    reference: args.chart.replace("{service}", service),
                    version: version.to_owned(),
                    labels: labels.clone(),
                    cpu_limit: args.cpu.clone(),
                    memory_limit: args.memory.clone(),
                    ..Default::default()
                }),
                strategy: None,
                migrations: Vec::new(),
            }
        })
        .collect())
}

fn show_releases(output: Output, releases: &[pb::Release]) -> anyhow::Result<()> {
    let views: Vec<ReleaseView> = releases.iter().map(ReleaseView::from).collect();
    match output {
        Output::Json => print_json(&views),
        Output::Table => {
            table(
                &RELEASE_HEADERS,
                &views.iter().map(release_row).collect::<Vec<_>>(),
            );
            Ok(())
        }
    }
}

pub async fn run(
    target: &Target,
    output: Output,
    command: ReleaseCommand,
) -> anyhow::Result<ExitCode> {
    let mut c = super::connect(target).await?;
    match command {
        ReleaseCommand::Create(args) => {
            let r = c
                .create_release(pb::CreateReleaseRequest {
                    items: items(&args)?,
                    name: args.name,
                    business_unit: args.bu,
                    emergency: args.emergency,
                    include: Vec::new(),
                    default_descriptor: None,
                })
                .await
                .map_err(|s| failed("create release", s))?
                .into_inner();
            show_releases(output, &[r])?;
        }
        ReleaseCommand::Plan { release } => {
            let r = c
                .plan_release(pb::PlanReleaseRequest { release })
                .await
                .map_err(|s| failed("plan release", s))?
                .into_inner();
            let view = ReleaseView::from(&r);
            match output {
                Output::Json => print_json(&view)?,
                Output::Table => {
                    let rows: Vec<Vec<String>> = view
                        .waves
                        .iter()
                        .enumerate()
                        .map(|(i, w)| vec![(i + 1).to_string(), w.join(", ")])
                        .collect();
                    table(&["wave", "services"], &rows);
                    if !view.impact.is_empty() {
                        println!("reaches: {}", view.impact.join(", "));
                    }
                }
            }
        }
        ReleaseCommand::Promote {
            release,
            environment,
            watch,
        } => {
            let promoted = c
                .promote_release(pb::PromoteReleaseRequest {
                    release: release.clone(),
                    environment: environment.clone(),
                })
                .await;
            let d = match promoted {
                Ok(d) => d.into_inner(),
                Err(s)
                    if s.code() == tonic::Code::FailedPrecondition
                        && s.message().contains(" may not enter ") =>
                {
                    // "release R may not enter E: reason; reason; …"
                    let reasons: Vec<&str> = s
                        .message()
                        .split_once(": ")
                        .map_or(vec![s.message()], |(_, r)| r.split("; ").collect());
                    match output {
                        Output::Json => print_json(&serde_json::json!({
                            "release": release, "environment": environment, "allowed": false, "reasons": reasons,
                        }))?,
                        Output::Table => {
                            eprintln!("{release} may not enter {environment}:");
                            for r in &reasons {
                                eprintln!("  - {r}");
                            }
                        }
                    }
                    return Ok(ExitCode::from(1));
                }
                Err(s) => return Err(failed("promote release", s)),
            };
            if watch {
                return super::deploy::watch_deployment(&mut c, output, &d.deployment_id).await;
            }
            let view = DeploymentView::from(&d);
            match output {
                Output::Json => print_json(&view)?,
                Output::Table => {
                    println!(
                        "deployment {} of {} into {} started",
                        view.deployment_id, view.release, view.environment
                    );
                    table(
                        &STEP_HEADERS,
                        &view.steps.iter().map(step_row).collect::<Vec<_>>(),
                    );
                    println!("follow it: flotilla deploy watch {release}");
                }
            }
        }
        ReleaseCommand::Rollback { release, reason } => {
            let d = c
                .rollback_release(pb::RollbackReleaseRequest {
                    release: release.clone(),
                    reason,
                })
                .await
                .map_err(|s| failed("roll back release", s))?
                .into_inner();
            let view = DeploymentView::from(&d);
            match output {
                Output::Json => print_json(&view)?,
                Output::Table => {
                    println!(
                        "rolling back {} in {}: {}",
                        view.release, view.environment, view.reason
                    );
                    println!("follow it: flotilla deploy watch {release}");
                }
            }
        }
        ReleaseCommand::Show { release } => {
            let r = c
                .get_release(pb::GetReleaseRequest { release })
                .await
                .map_err(|s| failed("get release", s))?
                .into_inner();
            let view = ReleaseView::from(&r);
            match output {
                Output::Json => print_json(&view)?,
                Output::Table => {
                    table(&RELEASE_HEADERS, &[release_row(&view)]);
                    println!();
                    let rows: Vec<Vec<String>> = view
                        .items
                        .iter()
                        .map(|i| {
                            vec![
                                i.service.clone(),
                                i.version.clone(),
                                i.strategy.to_owned(),
                                i.descriptor.clone(),
                                i.migrations.join(", "),
                            ]
                        })
                        .collect();
                    table(
                        &["service", "version", "strategy", "descriptor", "migrations"],
                        &rows,
                    );
                    for (i, w) in view.waves.iter().enumerate() {
                        println!("wave {}: {}", i + 1, w.join(", "));
                    }
                }
            }
        }
        ReleaseCommand::List { bu } => {
            let list = c
                .list_releases(pb::ListReleasesRequest {
                    business_unit: bu.unwrap_or_default(),
                })
                .await
                .map_err(|s| failed("list releases", s))?
                .into_inner();
            show_releases(output, &list.releases)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
