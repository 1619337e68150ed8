//! Orchestration figures for BENCHMARKS.md, on PostgreSQL and NATS with governance,
//! dependency-mapping, orchestration and monitoring in one served node and the command executor
//! running `true` for every step:
//!
//! - a release of 200 services in 10 dependency waves, planned through dependency-mapping and
//!   promoted through four environments (each promotion asks governance's gate): plan time,
//!   time per environment and per wave;
//! - the time from a breaching sample pushed to monitoring (its watch window open after the
//!   deployment) to the first rollback step started, through monitoring's `RollbackRequested`
//!   on NATS, over 50 rollbacks: p50, p99, max.
//!
//! `cargo bench -p flotilla-tests --bench orchestration` (services from `./scripts/services.sh`).
//! `FLOTILLA_ORCH_BENCH_SERVICES` sets the release's size (default 200, a multiple of 10),
//! `FLOTILLA_ORCH_BENCH_ROLLBACKS` the rollbacks measured (default 50).

use std::time::{Duration, Instant};

use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_proto::governance::v1 as gov;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::monitoring::v1 as mon;
use flotilla_proto::monitoring::v1::monitoring_service_client::MonitoringServiceClient;
use flotilla_proto::orchestration::v1 as pb;
use flotilla_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use flotilla_runtime::config::BusKind;
use flotilla_tests::{Deployment, RunningNode};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Authed = InterceptedService<Channel, flotilla_auth::Bearer>;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const ENVIRONMENTS: [&str; 4] = ["dev", "test", "staging", "prod"];

fn descriptor(service: &str) -> pb::Descriptor {
    pb::Descriptor {
        kind: pb::DescriptorKind::Helm as i32,
        reference: format!("oci://charts.example.com/{service}"),
        version: "1.0.0".into(),
        ..Default::default()
    }
}

async fn approve(
    node: &RunningNode,
    unit: &str,
    service: &str,
    release: &str,
    env: &str,
) -> anyhow::Result<()> {
    let mut rm =
        GovernanceServiceClient::new(node.as_caller("rita", &["release-manager"], unit).await?);
    let facts = gov::ReleaseFacts {
        release: release.into(),
        version: "1.0.0".into(),
        environment: env.into(),
        service: service.into(),
        business_unit: unit.into(),
        criticality_tier: 3,
        risk_score: 5,
        author: "alice".into(),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(s) = rm
        .open_approval_request(gov::OpenApprovalRequestRequest {
            release: Some(facts.clone()),
            emergency: false,
        })
        .await
    {
        anyhow::ensure!(
            s.message().contains("not in the service catalog") && Instant::now() < deadline,
            "{s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    GovernanceServiceClient::new(node.as_caller("sam", &["service-owner"], unit).await?)
        .approve(gov::DecideApprovalRequest {
            release: release.into(),
            environment: env.into(),
            role: "service-owner".into(),
            comment: "bench".into(),
        })
        .await?;
    Ok(())
}

/// Watches a deployment to its end; answers when each wave's first step was seen running and
/// when its last step was seen finished (client clock), and the status.
async fn watch(
    orch: &mut OrchestrationServiceClient<Authed>,
    id: &str,
) -> anyhow::Result<(Vec<(Instant, Instant)>, i32)> {
    let mut stream = orch
        .watch_deployment(pb::GetDeploymentRequest {
            deployment_id: id.into(),
        })
        .await?
        .into_inner();
    let mut waves: Vec<(Option<Instant>, Option<Instant>)> = Vec::new();
    let mut status = 0;
    while let Some(d) = stream.message().await? {
        let now = Instant::now();
        let n = d
            .steps
            .iter()
            .map(|s| s.wave as usize + 1)
            .max()
            .unwrap_or(0);
        waves.resize(n, (None, None));
        for (w, slot) in waves.iter_mut().enumerate() {
            let steps: Vec<&pb::Step> = d
                .steps
                .iter()
                .filter(|s| s.wave as usize == w && !s.rollback)
                .collect();
            if slot.0.is_none()
                && steps
                    .iter()
                    .any(|s| s.state != pb::StepState::Pending as i32)
            {
                slot.0 = Some(now);
            }
            if slot.1.is_none() && steps.iter().all(|s| s.outcome.is_some()) {
                slot.1 = Some(now);
            }
        }
        status = d.status;
    }
    Ok((
        waves
            .into_iter()
            .filter_map(|(a, b)| Some((a?, b?)))
            .collect(),
        status,
    ))
}

async fn release_of_200(node: &RunningNode, n: usize) -> anyhow::Result<()> {
    let unit = "payments";
    let admin = node.as_caller("ops", &["admin"], "central").await?;
    let mut orch =
        OrchestrationServiceClient::new(node.as_caller("rita", &["release-manager"], unit).await?);
    // Ten layers: each service calls one of the layer below, so the plan has ten waves.
    let layer = n / 10;
    let name = |i: usize| format!("svc-{i:03}");
    let mut yaml = String::new();
    for i in 0..n {
        let depends = if i >= layer {
            format!(", dependsOn: [\"component:{}\"]", name(i - layer))
        } else {
            String::new()
        };
        yaml.push_str(&format!(
            "---\nkind: Component\nmetadata: {{ name: {}, annotations: {{ flotilla.dev/business-unit: {unit} }} }}\nspec: {{ owner: team-{} {depends} }}\n",
            name(i),
            i % 7
        ));
    }
    DependencyMappingServiceClient::new(admin.clone())
        .import_backstage_catalog(dm::ImportBackstageCatalogRequest { catalog_yaml: yaml })
        .await?;
    for i in 0..n {
        orch.register_artifact(pb::RegisterArtifactRequest {
            service: name(i),
            version: "1.0.0".into(),
            commit: format!("{i:07x}"),
            repository: format!("https://git.example.com/{}", name(i)),
            image_digest: format!("sha256:{:064x}", i + 1),
            ..Default::default()
        })
        .await?;
    }
    for e in ENVIRONMENTS {
        orch.define_environment(pb::DefineEnvironmentRequest {
            spec: Some(pb::EnvironmentSpec {
                business_unit: unit.into(),
                name: e.into(),
                ..Default::default()
            }),
        })
        .await?;
    }
    orch.set_promotion_path(pb::SetPromotionPathRequest {
        business_unit: unit.into(),
        environments: ENVIRONMENTS.iter().map(|e| (*e).to_owned()).collect(),
    })
    .await?;
    let release = "payments-1.0.0";
    orch.create_release(pb::CreateReleaseRequest {
        name: release.into(),
        business_unit: unit.into(),
        items: (0..n)
            .map(|i| pb::RequestedItem {
                service: name(i),
                descriptor: Some(descriptor(&name(i))),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
    .await?;
    let t = Instant::now();
    let planned = orch
        .plan_release(pb::PlanReleaseRequest {
            release: release.into(),
        })
        .await?
        .into_inner();
    let plan_ms = t.elapsed().as_secs_f64() * 1e3;
    let waves = planned.plan.map(|p| p.waves.len()).unwrap_or(0);
    println!("release of {n} services, {waves} waves: planned in {plan_ms:.0} ms");
    println!("| environment | total s | per wave ms (mean) | slowest wave ms | steps |");
    println!("|---|---:|---:|---:|---:|");
    let all = Instant::now();
    for e in ENVIRONMENTS {
        approve(node, unit, &name(0), release, e).await?;
        let t = Instant::now();
        let d = orch
            .promote_release(pb::PromoteReleaseRequest {
                release: release.into(),
                environment: e.into(),
            })
            .await?
            .into_inner();
        let steps = d.steps.len();
        let (per_wave, status) = watch(&mut orch, &d.deployment_id).await?;
        anyhow::ensure!(
            status == pb::DeploymentStatus::Succeeded as i32,
            "{e}: deployment ended {status}"
        );
        let total = t.elapsed().as_secs_f64();
        let wave_ms: Vec<f64> = per_wave
            .iter()
            .map(|(a, b)| (*b - *a).as_secs_f64() * 1e3)
            .collect();
        let mean = wave_ms.iter().sum::<f64>() / wave_ms.len().max(1) as f64;
        let slowest = wave_ms.iter().copied().fold(0.0, f64::max);
        println!("| {e} | {total:.2} | {mean:.0} | {slowest:.0} | {steps} |");
    }
    println!(
        "plan + four promotions: {:.2} s",
        all.elapsed().as_secs_f64() + plan_ms / 1e3
    );
    Ok(())
}

/// Monitoring's open window for the deployment of `service` in `env`.
async fn open_watch(
    monitor: &mut MonitoringServiceClient<Authed>,
    service: &str,
    env: &str,
    deployment: &str,
) -> anyhow::Result<mon::Watch> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open = monitor
            .list_watches(mon::ListWatchesRequest {
                service: service.into(),
                environment: env.into(),
                status: mon::WatchStatus::Open as i32,
            })
            .await?
            .into_inner()
            .watches;
        if let Some(w) = open.into_iter().find(|w| w.deployment_id == deployment) {
            return Ok(w);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no watch window for {deployment}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn rollback_latency(
    node: &RunningNode,
    deployment: &Deployment,
    rounds: usize,
) -> anyhow::Result<()> {
    let unit = "cards";
    let admin = node.as_caller("ops", &["admin"], "central").await?;
    let mut orch =
        OrchestrationServiceClient::new(node.as_caller("carl", &["release-manager"], unit).await?);
    DependencyMappingServiceClient::new(admin)
        .register_service(dm::RegisterServiceRequest {
            service: Some(dm::ServiceEntry {
                name: "cards-api".into(),
                owner_team: "cards".into(),
                business_unit: unit.into(),
                criticality_tier: 3,
                data_classification: dm::DataClassification::Internal as i32,
                runtime: dm::Runtime::Microservice as i32,
                ..Default::default()
            }),
        })
        .await?;
    orch.define_environment(pb::DefineEnvironmentRequest {
        spec: Some(pb::EnvironmentSpec {
            business_unit: unit.into(),
            name: "prod".into(),
            ..Default::default()
        }),
    })
    .await?;
    orch.set_promotion_path(pb::SetPromotionPathRequest {
        business_unit: unit.into(),
        environments: vec!["prod".into()],
    })
    .await?;
    let _ = deployment;
    let mut monitor =
        MonitoringServiceClient::new(node.as_caller("sre", &["service-owner"], unit).await?);
    let mut latencies = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let version = format!("1.{i}.0");
        orch.register_artifact(pb::RegisterArtifactRequest {
            service: "cards-api".into(),
            version: version.clone(),
            commit: format!("{i:07x}"),
            repository: "https://git.example.com/cards-api".into(),
            image_digest: format!("sha256:{:064x}", 10_000 + i),
            ..Default::default()
        })
        .await?;
        let release = format!("cards-{version}");
        orch.create_release(pb::CreateReleaseRequest {
            name: release.clone(),
            business_unit: unit.into(),
            items: vec![pb::RequestedItem {
                service: "cards-api".into(),
                version: version.clone(),
                descriptor: Some(descriptor("cards-api")),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await?;
        orch.plan_release(pb::PlanReleaseRequest {
            release: release.clone(),
        })
        .await?;
        approve(node, unit, "cards-api", &release, "prod").await?;
        let d = orch
            .promote_release(pb::PromoteReleaseRequest {
                release: release.clone(),
                environment: "prod".into(),
            })
            .await?
            .into_inner();
        let (_, status) = watch(&mut orch, &d.deployment_id).await?;
        anyhow::ensure!(
            status == pb::DeploymentStatus::Succeeded as i32,
            "{release}: ended {status}"
        );
        // Monitoring's window for the deployment is open; one error-rate sample over the
        // tier's threshold goes in by PushSamples, and the clock runs until orchestration
        // (told through the bus) has started the first rollback step.
        let watch = open_watch(&mut monitor, "cards-api", "prod", &d.deployment_id).await?;
        let opened: std::time::SystemTime = watch
            .opened_at
            .and_then(|t| t.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("the watch has no opening time"))?;
        let breaching = mon::SampleBatch {
            service: "cards-api".into(),
            environment: "prod".into(),
            metric: "error_rate".into(),
            samples: vec![mon::Sample {
                at: Some((opened + Duration::from_millis(1)).into()),
                value: 0.5,
            }],
        };
        let sent = Instant::now();
        let pushed = monitor
            .push_samples(futures::stream::iter(vec![breaching]))
            .await?
            .into_inner();
        anyhow::ensure!(
            pushed.breach_ids.len() == 1,
            "{release}: no breach: {pushed:?}"
        );
        let started = loop {
            let d = orch
                .get_deployment(pb::GetDeploymentRequest {
                    deployment_id: d.deployment_id.clone(),
                })
                .await?
                .into_inner();
            if d.steps
                .iter()
                .any(|s| s.rollback && s.state != pb::StepState::Pending as i32)
            {
                break sent.elapsed();
            }
            anyhow::ensure!(
                sent.elapsed() < Duration::from_secs(10),
                "{release}: no rollback step after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        latencies.push(started.as_secs_f64() * 1e3);
        // The rollback finishes before the next round.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = orch
                .get_release(pb::GetReleaseRequest {
                    release: release.clone(),
                })
                .await?
                .into_inner();
            if r.status == pb::ReleaseStatus::RolledBack as i32 {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{release}: rollback did not finish"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "breaching sample pushed to monitoring -> RollbackRequested on NATS -> first rollback step started, {rounds} rollbacks: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_num("FLOTILLA_ORCH_BENCH_SERVICES", 200);
    let rounds = env_num("FLOTILLA_ORCH_BENCH_ROLLBACKS", 50);
    let mut deployment = Deployment::new(vec![BusKind::Nats])?;
    let mut executor = toml::Table::new();
    executor.insert("kind".into(), "command".into());
    let mut commands = toml::Table::new();
    for k in ["deploy", "migrate", "rollback_deploy", "rollback_migrate"] {
        commands.insert(k.into(), "true".into());
    }
    executor.insert("commands".into(), toml::Value::Table(commands));
    let dir = tempfile::tempdir()?;
    executor.insert("state_dir".into(), dir.path().display().to_string().into());
    let mut section = toml::Table::new();
    section.insert("executor".into(), toml::Value::Table(executor));
    deployment
        .config
        .sections
        .insert("orchestration".into(), section);
    let node = deployment
        .start(&[
            "governance",
            "dependency-mapping",
            "orchestration",
            "monitoring",
        ])
        .await?;
    release_of_200(&node, n).await?;
    rollback_latency(&node, &deployment, rounds).await?;
    node.stop().await?;
    Ok(())
}
