//! `flotilla catalog …`: the dependency-mapping service's client.

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::dependency::v1 as pb;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use serde_json::json;

use crate::output::{Output, progress, table};

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Register or update every Component and Resource of a Backstage catalog-info.yaml, and
    /// declare their dependencies.
    Import { file: std::path::PathBuf },
    /// List catalog services.
    List {
        #[arg(long)]
        business_unit: Option<String>,
    },
    /// Every service that depends on SERVICE, ranked by risk (for emergency patches).
    Impact { service: String },
    /// Groups of services that must be deployed together, with reasons.
    Groups,
    /// Waves in which to deploy SERVICE@VERSION items, and what the release reaches.
    Plan {
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// The dependency matrix (services x services) as CSV or JSON.
    Matrix {
        #[arg(long, default_value = "csv")]
        format: String,
        #[arg(long)]
        business_unit: Option<String>,
        #[arg(long = "service")]
        services: Vec<String>,
    },
    /// Declared dependencies never observed, and observed calls never declared.
    Drift,
    /// Environments where deployed versions violate a consumer's declared range.
    Skew {
        #[arg(long)]
        environment: Option<String>,
    },
    /// Which service@version runs in ENVIRONMENT: now, as of a time, or a named tag.
    Footprint {
        environment: String,
        /// RFC 3339 time, e.g. 2026-11-01T00:00:00Z.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        tag: Option<String>,
    },
    /// Check (and unless --check-only, publish) a schema version against what consumers use.
    Schema {
        service: String,
        name: String,
        version: String,
        file: std::path::PathBuf,
        /// protobuf (an encoded FileDescriptorSet) or json-schema.
        #[arg(long)]
        format: String,
        #[arg(long)]
        check_only: bool,
    },
}

fn kind_name(k: i32) -> &'static str {
    match pb::EdgeKind::try_from(k) {
        Ok(pb::EdgeKind::SyncApi) => "sync_api",
        Ok(pb::EdgeKind::AsyncMessage) => "async_message",
        Ok(pb::EdgeKind::Database) => "database",
        Ok(pb::EdgeKind::SharedInfrastructure) => "shared_infrastructure",
        _ => "unspecified",
    }
}

fn impact_json(e: &pb::ImpactEntry) -> serde_json::Value {
    json!({"service": e.service, "distance": e.distance, "criticality_tier": e.criticality_tier, "business_unit": e.business_unit,
           "handles_personal_data": e.handles_personal_data, "edge_kinds": e.edge_kinds.iter().map(|k| kind_name(*k)).collect::<Vec<_>>(), "risk": e.risk})
}

fn impact_row(e: &pb::ImpactEntry) -> Vec<String> {
    vec![
        e.service.clone(),
        e.distance.to_string(),
        e.criticality_tier.to_string(),
        e.business_unit.clone(),
        if e.handles_personal_data {
            "yes".into()
        } else {
            String::new()
        },
        e.edge_kinds
            .iter()
            .map(|k| kind_name(*k))
            .collect::<Vec<_>>()
            .join(","),
        e.risk.to_string(),
    ]
}

const IMPACT_HEADERS: [&str; 7] = [
    "service",
    "distance",
    "tier",
    "business unit",
    "pii",
    "edges",
    "risk",
];

use crate::client::{Authed, Target, failed};

pub async fn run(
    target: &Target,
    output: Output,
    command: CatalogCommand,
) -> anyhow::Result<ExitCode> {
    let (channel, bearer) = target.connect("dependency-mapping").await?;
    let mut c = DependencyMappingServiceClient::with_interceptor(channel, bearer);
    match command {
        CatalogCommand::Import { file } => import(&mut c, &file, output).await,
        CatalogCommand::List { business_unit } => {
            let services = c
                .list_services(pb::ListServicesRequest {
                    business_unit: business_unit.unwrap_or_default(),
                })
                .await
                .map_err(|s| failed("list", s))?
                .into_inner()
                .services;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&services.iter().map(|s| json!({"name": s.name, "owner_team": s.owner_team, "business_unit": s.business_unit, "criticality_tier": s.criticality_tier, "handles_personal_data": s.handles_personal_data})).collect::<Vec<_>>())?
                ),
                Output::Table => table(
                    &["service", "owner", "business unit", "tier", "pii"],
                    &services.iter().map(|s| vec![s.name.clone(), s.owner_team.clone(), s.business_unit.clone(), s.criticality_tier.to_string(), if s.handles_personal_data { "yes".into() } else { String::new() }]).collect::<Vec<_>>(),
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Impact { service } => {
            let entries = c
                .analyze_impact(pb::AnalyzeImpactRequest {
                    service: service.clone(),
                })
                .await
                .map_err(|s| failed("impact", s))?
                .into_inner()
                .entries;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &entries.iter().map(impact_json).collect::<Vec<_>>()
                    )?
                ),
                Output::Table => {
                    table(
                        &IMPACT_HEADERS,
                        &entries.iter().map(impact_row).collect::<Vec<_>>(),
                    );
                    eprintln!("{} services depend on {service}", entries.len());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Groups => {
            let groups = c
                .get_co_deployment_groups(pb::GetCoDeploymentGroupsRequest {})
                .await
                .map_err(|s| failed("groups", s))?
                .into_inner()
                .groups;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&groups.iter().map(|g| json!({"name": g.name, "members": g.members.iter().map(|m| json!({"service": m.service, "reasons": m.reasons})).collect::<Vec<_>>()})).collect::<Vec<_>>())?
                ),
                Output::Table => table(
                    &["group", "service", "why"],
                    &groups.iter().flat_map(|g| g.members.iter().map(|m| vec![g.name.clone(), m.service.clone(), m.reasons.join("; ")])).collect::<Vec<_>>(),
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Plan { items } => {
            let items = items
                .iter()
                .map(|i| match i.split_once('@') {
                    Some((s, v)) if !s.is_empty() && !v.is_empty() => Ok(pb::ReleaseItem {
                        service: s.into(),
                        version: v.into(),
                    }),
                    _ => Err(anyhow::anyhow!(
                        "{i:?} is not SERVICE@VERSION, e.g. checkout@2.4.0"
                    )),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let plan = c
                .plan_release(pb::PlanReleaseRequest { items })
                .await
                .map_err(|s| failed("plan", s))?
                .into_inner();
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "waves": plan.waves.iter().map(|w| w.services.iter().map(|s| json!({"service": s.service, "version": s.version, "co_deployment_group": s.co_deployment_group})).collect::<Vec<_>>()).collect::<Vec<_>>(),
                        "impact": plan.impact.iter().map(impact_json).collect::<Vec<_>>(),
                        "skew_violations": skew_rows(&plan.skew_violations).1,
                    }))?
                ),
                Output::Table => {
                    let rows: Vec<Vec<String>> = plan
                        .waves
                        .iter()
                        .enumerate()
                        .flat_map(|(i, w)| {
                            w.services.iter().map(move |s| {
                                vec![
                                    (i + 1).to_string(),
                                    s.service.clone(),
                                    if s.version.is_empty() {
                                        "(as running)".into()
                                    } else {
                                        s.version.clone()
                                    },
                                    s.co_deployment_group.clone(),
                                ]
                            })
                        })
                        .collect();
                    table(
                        &["wave", "service", "version", "co-deployment group"],
                        &rows,
                    );
                    println!();
                    table(
                        &IMPACT_HEADERS,
                        &plan.impact.iter().map(impact_row).collect::<Vec<_>>(),
                    );
                    if !plan.skew_violations.is_empty() {
                        println!();
                        println!("this release would break declared version ranges:");
                        table(
                            &["environment", "consumer", "provider", "needs"],
                            &skew_rows(&plan.skew_violations).0,
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Matrix {
            format,
            business_unit,
            services,
        } => {
            let format = match format.as_str() {
                "csv" => pb::MatrixFormat::Csv,
                "json" => pb::MatrixFormat::Json,
                other => anyhow::bail!("--format {other:?}: use csv or json"),
            };
            let m = c
                .get_dependency_matrix(pb::GetDependencyMatrixRequest {
                    format: format as i32,
                    services,
                    business_unit: business_unit.unwrap_or_default(),
                })
                .await
                .map_err(|s| failed("matrix", s))?
                .into_inner();
            print!("{}", m.body);
            if format == pb::MatrixFormat::Json {
                println!();
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Skew { environment } => {
            let v = c
                .get_version_skew(pb::GetVersionSkewRequest {
                    environment: environment.unwrap_or_default(),
                })
                .await
                .map_err(|s| failed("skew", s))?
                .into_inner()
                .violations;
            let (rows, js) = skew_rows(&v);
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&js)?),
                Output::Table => table(&["environment", "consumer", "provider", "needs"], &rows),
            }
            Ok(if v.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        CatalogCommand::Footprint {
            environment,
            as_of,
            tag,
        } => {
            let as_of = as_of.as_deref().map(timestamp).transpose()?;
            let f = c
                .get_footprint(pb::GetFootprintRequest {
                    environment,
                    as_of,
                    tag: tag.unwrap_or_default(),
                })
                .await
                .map_err(|s| failed("footprint", s))?
                .into_inner();
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"environment": f.environment, "services": f.services.iter().map(|s| json!({"service": s.service, "version": s.version})).collect::<Vec<_>>()})
                    )?
                ),
                Output::Table => table(
                    &["service", "version"],
                    &f.services
                        .iter()
                        .map(|s| vec![s.service.clone(), s.version.clone()])
                        .collect::<Vec<_>>(),
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Schema {
            service,
            name,
            version,
            file,
            format,
            check_only,
        } => {
            let format = match format.as_str() {
                "protobuf" => pb::SchemaFormat::ProtobufDescriptorSet,
                "json-schema" => pb::SchemaFormat::JsonSchema,
                other => anyhow::bail!("--format {other:?}: use protobuf or json-schema"),
            };
            let content = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let v = c
                .publish_schema(pb::PublishSchemaRequest {
                    service,
                    name,
                    version,
                    format: format as i32,
                    content,
                    check_only,
                })
                .await
                .map_err(|s| failed("schema", s))?
                .into_inner();
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"compatible": v.compatible, "published": v.published, "breaking_changes": v.breaking_changes,
                        "compared_against": v.compared_against.iter().map(|b| json!({"used_by": b.used_by, "version": b.version})).collect::<Vec<_>>()})
                    )?
                ),
                Output::Table => {
                    let state = if v.compatible {
                        if v.published {
                            "compatible, published"
                        } else {
                            "compatible"
                        }
                    } else {
                        "BREAKING, not published"
                    };
                    println!("{} {} {}: {state}", v.service, v.name, v.version);
                    for b in &v.breaking_changes {
                        println!("  - {b}");
                    }
                }
            }
            Ok(if v.compatible {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        CatalogCommand::Drift => {
            let d = c
                .get_dependency_drift(pb::GetDependencyDriftRequest {})
                .await
                .map_err(|s| failed("drift", s))?
                .into_inner();
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "declared_not_observed": d.declared_not_observed.iter().map(|e| json!({"consumer": e.consumer, "provider": e.provider, "kind": kind_name(e.kind)})).collect::<Vec<_>>(),
                        "observed_not_declared": d.observed_not_declared.iter().map(|e| json!({"client": e.client, "server": e.server, "calls": e.calls})).collect::<Vec<_>>(),
                    }))?
                ),
                Output::Table => {
                    let mut rows: Vec<Vec<String>> = d
                        .declared_not_observed
                        .iter()
                        .map(|e| {
                            vec![
                                "declared, never observed".into(),
                                e.consumer.clone(),
                                e.provider.clone(),
                                kind_name(e.kind).into(),
                            ]
                        })
                        .collect();
                    rows.extend(d.observed_not_declared.iter().map(|e| {
                        vec![
                            "observed, never declared".into(),
                            e.client.clone(),
                            e.server.clone(),
                            format!("{} calls", e.calls),
                        ]
                    }));
                    table(&["finding", "consumer", "provider", "detail"], &rows);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn timestamp(s: &str) -> anyhow::Result<prost_types::Timestamp> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            anyhow::anyhow!("--as-of {s:?} is not an RFC 3339 time like 2026-11-01T00:00:00Z ({e})")
        })?;
    Ok(prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    })
}

fn skew_rows(v: &[pb::SkewViolation]) -> (Vec<Vec<String>>, serde_json::Value) {
    (
        v.iter().map(|x| vec![x.environment.clone(), format!("{}@{}", x.consumer, x.consumer_version), format!("{}@{}", x.provider, x.provider_version), x.requirement.clone()]).collect(),
        json!(v.iter().map(|x| json!({"environment": x.environment, "consumer": x.consumer, "consumer_version": x.consumer_version, "provider": x.provider, "provider_version": x.provider_version, "requirement": x.requirement})).collect::<Vec<_>>()),
    )
}

async fn import(
    c: &mut DependencyMappingServiceClient<Authed>,
    file: &std::path::Path,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let bar = progress(1, "importing");
    let r = c
        .import_backstage_catalog(pb::ImportBackstageCatalogRequest { catalog_yaml: text })
        .await
        .map_err(|st| failed(&format!("import {}", file.display()), st))?
        .into_inner();
    bar.finish_and_clear();
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"registered": r.registered, "updated": r.updated, "unchanged": r.unchanged, "dependencies_declared": r.dependencies_declared, "skipped": r.skipped, "catalog_version": r.catalog_version})
            )?
        ),
        Output::Table => {
            table(
                &[
                    "registered",
                    "updated",
                    "unchanged",
                    "dependencies declared",
                ],
                &[vec![
                    r.registered.to_string(),
                    r.updated.to_string(),
                    r.unchanged.to_string(),
                    r.dependencies_declared.to_string(),
                ]],
            );
            for s in &r.skipped {
                eprintln!("skipped: {s}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
