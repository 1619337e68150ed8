//! A node with every service on embedded defaults and orchestration's command executor running
//! a real script, and what the orchestration tests do with it: catalog, policy, artifacts,
//! environments, approvals, and watching a deployment to its end.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_proto::governance::v1 as gov;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::orchestration::v1 as pb;
use flotilla_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use flotilla_proto::risk::v1 as risk;
use flotilla_proto::risk::v1::risk_validation_service_client::RiskValidationServiceClient;
use flotilla_runtime::{Config, NodeMode};
use flotilla_tests::{RunningNode, all_services};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Authed = InterceptedService<Channel, flotilla_auth::Bearer>;
pub type Orch = OrchestrationServiceClient<Authed>;

pub const UNIT: &str = "payments";

/// The deploy script: logs what it is asked to do (one line per step), and fails a deploy (not
/// a rollback) of a service named in a `fail-<service>` file next to it.
const SCRIPT: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$FLOTILLA_STEP $FLOTILLA_SERVICE $FLOTILLA_VERSION $FLOTILLA_ENVIRONMENT ${FLOTILLA_PHASE:-} ${FLOTILLA_ROLLBACK_TO:-} $FLOTILLA_STEP_ID $FLOTILLA_DESCRIPTOR_REFERENCE" >> "$dir/steps.log"
case "$FLOTILLA_STEP" in
  migrate|rollback-migrate)
    if [ -f "$dir/db" ]; then
      psql "$(cat "$dir/db")" -X -q -v ON_ERROR_STOP=1 -c "$FLOTILLA_SCRIPT" || exit $?
      echo "$FLOTILLA_STEP $FLOTILLA_MIGRATION ran"
      exit 0
    fi;;
esac
echo "deploying $FLOTILLA_SERVICE to $FLOTILLA_ENVIRONMENT"
if [ -e "$dir/fail-$FLOTILLA_SERVICE" ] && [ "${FLOTILLA_STEP#deploy}" != "$FLOTILLA_STEP" ]; then
  echo "helm: release $FLOTILLA_SERVICE failed: timed out waiting for the condition" >&2
  exit 3
fi
"#;

pub struct Flow {
    pub node: RunningNode,
    pub dir: tempfile::TempDir,
    pub orch: Orch,
}

fn script_dir(dir: &Path) -> PathBuf {
    dir.join("scripts")
}

impl Flow {
    pub async fn start() -> Self {
        Self::start_with(toml::Table::new()).await
    }

    /// As [`Flow::start`], with more configuration sections (e.g. `[monitoring]`).
    pub async fn start_with(sections: toml::Table) -> Self {
        Self::start_configured(sections, |_| {}).await
    }

    /// As [`Flow::start_with`], with the node's configuration changed by `tweak`.
    pub async fn start_configured(sections: toml::Table, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let scripts = script_dir(dir.path());
        std::fs::create_dir_all(&scripts).expect("scripts");
        std::fs::write(scripts.join("deploy.sh"), SCRIPT).expect("script");
        let run = format!("sh {}", scripts.join("deploy.sh").display());
        let mut commands = toml::Table::new();
        for kind in ["deploy", "rollback_deploy", "migrate", "rollback_migrate"] {
            commands.insert(kind.into(), toml::Value::String(run.clone()));
        }
        let mut executor = toml::Table::new();
        executor.insert("kind".into(), "command".into());
        executor.insert("commands".into(), toml::Value::Table(commands));
        executor.insert("timeout_secs".into(), 30.into());
        let mut section = toml::Table::new();
        section.insert("executor".into(), toml::Value::Table(executor));
        // Trigger rules' releases are planned and promoted with a service account's token.
        section.insert(
            "service_token".into(),
            flotilla_runtime::testkit::token("orchestration-bot", &["scheduler"], "central").into(),
        );
        let data_dir = dir.path().join("data");
        let mut config = Config {
            data_dir: data_dir.clone(),
            ..Config::default()
        };
        config.sections.insert("orchestration".into(), section);
        for (name, value) in sections {
            if let toml::Value::Table(t) = value {
                config.sections.insert(name, t);
            }
        }
        tweak(&mut config);
        let node = RunningNode::start(config, all_services(), NodeMode::Embedded { data_dir })
            .await
            .expect("node");
        let orch = OrchestrationServiceClient::new(
            authed(&node, "rita", &["release-manager"], UNIT).await,
        );
        Self { node, dir, orch }
    }

    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(script_dir(self.dir.path()).join("steps.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Migrations run their SQL with psql on this database.
    pub fn migrate_on(&self, url: &str) {
        std::fs::write(script_dir(self.dir.path()).join("db"), url).expect("db file");
    }

    pub fn succeed(&self, service: &str) {
        let _ = std::fs::remove_file(script_dir(self.dir.path()).join(format!("fail-{service}")));
    }

    pub fn fail(&self, service: &str) {
        std::fs::write(
            script_dir(self.dir.path()).join(format!("fail-{service}")),
            "",
        )
        .expect("fail file");
    }

    pub async fn admin(&self) -> Authed {
        authed(&self.node, "ops", &["admin"], "central").await
    }

    /// The head of orchestration's store (what a refused command must leave as it was).
    pub async fn head(&mut self) -> u64 {
        self.orch
            .get_status(flotilla_proto::common::v1::GetStatusRequest {})
            .await
            .expect("status")
            .into_inner()
            .head_position
    }

    /// Waits until the deployment is as `wanted` says; answers it.
    pub async fn until(
        &mut self,
        id: &str,
        what: &str,
        wanted: impl Fn(&pb::Deployment) -> bool,
    ) -> pb::Deployment {
        let mut stream = self
            .orch
            .watch_deployment(pb::GetDeploymentRequest {
                deployment_id: id.into(),
            })
            .await
            .expect("watch")
            .into_inner();
        let mut last = None;
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(d) = stream.message().await.expect("watched") {
                if wanted(&d) {
                    return Some(d);
                }
                last = Some(d);
            }
            None
        })
        .await;
        match found {
            Ok(Some(d)) => d,
            _ => panic!("deployment {id} never came to {what}: {last:#?}"),
        }
    }

    /// Waits until the deployment is over; answers it.
    pub async fn finished(&mut self, id: &str) -> pb::Deployment {
        let mut stream = self
            .orch
            .watch_deployment(pb::GetDeploymentRequest {
                deployment_id: id.into(),
            })
            .await
            .expect("watch")
            .into_inner();
        let mut last = None;
        let outcome = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(d) = stream.message().await.expect("watched") {
                last = Some(d);
            }
        })
        .await;
        assert!(outcome.is_ok(), "deployment {id} did not finish: {last:#?}");
        last.expect("the watch answers the deployment at least once")
    }
}

pub async fn authed(node: &RunningNode, subject: &str, roles: &[&str], bu: &str) -> Authed {
    node.as_caller(subject, roles, bu).await.expect("channel")
}

pub fn descriptor(service: &str) -> pb::Descriptor {
    pb::Descriptor {
        kind: pb::DescriptorKind::Helm as i32,
        reference: format!("oci://charts.example.com/{service}"),
        version: "2.0.0".into(),
        values: [("replicas".to_owned(), "3".to_owned())]
            .into_iter()
            .collect(),
        labels: [("team".to_owned(), "payments-core".to_owned())]
            .into_iter()
            .collect(),
        cpu_limit: "500m".into(),
        memory_limit: "512Mi".into(),
        uses: vec![],
    }
}

/// The step the deployment waits at (started, not finished), if any.
pub fn waiting_at(d: &pb::Deployment) -> Option<&pb::Step> {
    d.steps
        .iter()
        .find(|s| s.state == pb::StepState::Started as i32 && s.outcome.is_none())
}

pub fn item(service: &str, version: &str) -> pb::RequestedItem {
    pb::RequestedItem {
        service: service.into(),
        version: version.into(),
        descriptor: Some(descriptor(service)),
        strategy: None,
        migrations: vec![],
    }
}

pub fn artifact(service: &str, version: &str, licence: &str) -> pb::RegisterArtifactRequest {
    let hex: String = format!("{service}{version}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let digest = format!("sha256:{:0<64}", &hex[..hex.len().min(64)]);
    pb::RegisterArtifactRequest {
        service: service.into(),
        version: version.into(),
        commit: "9f2c1e7".into(),
        repository: format!("https://git.example.com/payments/{service}"),
        build_url: format!("https://ci.example.com/{service}/118"),
        tests: Some(pb::TestResults {
            passed: 412,
            failed: 0,
            skipped: 3,
        }),
        analysis: Some(pb::AnalysisResult {
            tool: "sonarqube".into(),
            passed: true,
            findings: 0,
        }),
        licences: vec![licence.into()],
        image_digest: digest,
        // Committed two hours before the build registered.
        committed_at: Some((std::time::SystemTime::now() - Duration::from_secs(7_200)).into()),
    }
}

/// Services of a unit in the catalog, with who calls whom (consumer, provider).
pub async fn catalog(flow: &Flow, unit: &str, services: &[&str], calls: &[(&str, &str)]) {
    let mut catalog = DependencyMappingServiceClient::new(flow.admin().await);
    for name in services {
        catalog
            .register_service(dm::RegisterServiceRequest {
                service: Some(dm::ServiceEntry {
                    name: (*name).into(),
                    owner_team: format!("{unit}-core"),
                    business_unit: unit.into(),
                    criticality_tier: 3,
                    handles_personal_data: false,
                    data_classification: dm::DataClassification::Internal as i32,
                    runtime: dm::Runtime::Microservice as i32,
                }),
            })
            .await
            .expect("register service");
    }
    for (consumer, provider) in calls {
        catalog
            .declare_dependency(dm::DeclareDependencyRequest {
                dependency: Some(dm::Dependency {
                    consumer: (*consumer).into(),
                    provider: (*provider).into(),
                    kind: dm::EdgeKind::SyncApi as i32,
                    data_flows: vec![],
                }),
            })
            .await
            .expect("dependency");
    }
}

/// Orchestration's policy: two licences, labelled descriptors with limits and no `latest`.
pub async fn policy(flow: &Flow) {
    let mut orch = OrchestrationServiceClient::new(flow.admin().await);
    orch.set_policy(pb::SetPolicyRequest {
        policy: Some(pb::OrchestrationPolicy {
            licence_allow_list: vec!["MIT".into(), "Apache-2.0".into()],
            descriptor_standard: Some(pb::DescriptorStandard {
                required_labels: vec!["team".into()],
                require_resource_limits: true,
                forbid_latest_tags: true,
            }),
        }),
    })
    .await
    .expect("policy");
}

/// Waits until the deployment holds for governance's rollback decision after a failed step;
/// a release manager of the unit takes it (`roll_back`). Answers the deployment as it held.
pub async fn decide_rollback(flow: &mut Flow, deployment: &str, roll_back: bool) -> pb::Deployment {
    let held = flow
        .until(deployment, "awaiting a rollback decision", |d| {
            d.status == pb::DeploymentStatus::AwaitingRollbackDecision as i32
        })
        .await;
    GovernanceServiceClient::new(authed(&flow.node, "rita", &["release-manager"], UNIT).await)
        .decide_rollback(gov::DecideRollbackRequest {
            decision_id: held.rollback_decision_id.clone(),
            roll_back,
            comment: String::new(),
        })
        .await
        .expect("decide the rollback");
    held
}

/// Registers a clean build of each service at `version`.
pub async fn artifacts(flow: &mut Flow, services: &[&str], version: &str) {
    for service in services {
        let a = flow
            .orch
            .register_artifact(artifact(service, version, "Apache-2.0"))
            .await
            .expect("artifact")
            .into_inner();
        assert!(
            a.purl.starts_with(&format!("pkg:oci/{service}@sha256%3A")),
            "{}",
            a.purl
        );
        assert!(a.blocked.is_empty(), "{:?}", a.blocked);
    }
}

/// A unit's environments (as given) and its path through them, in order.
pub async fn environments(flow: &mut Flow, unit: &str, specs: Vec<pb::EnvironmentSpec>) {
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    for mut spec in specs {
        spec.business_unit = unit.into();
        flow.orch
            .define_environment(pb::DefineEnvironmentRequest { spec: Some(spec) })
            .await
            .expect("environment");
    }
    flow.orch
        .set_promotion_path(pb::SetPromotionPathRequest {
            business_unit: unit.into(),
            environments: names,
        })
        .await
        .expect("path");
}

pub fn env(name: &str) -> pb::EnvironmentSpec {
    pb::EnvironmentSpec {
        name: name.into(),
        ..Default::default()
    }
}

/// The catalog (ledger <- api <- web), the policy, the artifacts and the path.
pub async fn set_up(flow: &mut Flow) {
    let services = ["payments-ledger", "payments-api", "payments-web"];
    catalog(
        flow,
        UNIT,
        &services,
        &[
            ("payments-api", "payments-ledger"),
            ("payments-web", "payments-api"),
        ],
    )
    .await;
    policy(flow).await;
    artifacts(flow, &services, "2.0.0").await;
    environments(
        flow,
        UNIT,
        vec![
            pb::EnvironmentSpec {
                checks: vec!["smoke".into()],
                ..env("dev")
            },
            pb::EnvironmentSpec {
                data: Some(pb::DataRequirement {
                    max_age_days: 7,
                    min_volume_percent: 50,
                }),
                ..env("staging")
            },
            env("prod"),
        ],
    )
    .await;
}

/// Waits for governance's approval request for the release entering the environment (opened
/// from risk-validation's assessment of the plan) and gives every approval it requires.
pub async fn approve(flow: &Flow, release: &str, environment: &str) {
    approve_in(flow, UNIT, release, environment).await;
}

/// As [`approve`], in `unit`: each required role's approvals are given by people of the unit
/// holding it (the service owner is sam), none of them the release's author. Answers the
/// request as it was before the approvals.
pub async fn approve_in(
    flow: &Flow,
    unit: &str,
    release: &str,
    environment: &str,
) -> gov::ApprovalRequest {
    let mut reader =
        GovernanceServiceClient::new(authed(&flow.node, "rita", &["release-manager"], unit).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let request = loop {
        let answer = reader
            .get_approval_request(gov::GetApprovalRequestRequest {
                release: release.into(),
                environment: environment.into(),
            })
            .await
            .map(tonic::Response::into_inner);
        let current = current_assessment(flow, unit, release, environment).await;
        match answer {
            Ok(r)
                if r.risk_assessed
                    && current.as_ref().is_some_and(|a| {
                        r.release.as_ref().is_some_and(|f| {
                            f.risk_score == a.risk_score && f.criticality_tier == a.criticality_tier
                        })
                    }) =>
            {
                break r;
            }
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "governance opened no approval request from risk-validation's assessment of {release} for {environment}: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    for q in &request.requirements {
        for i in 0..q.required.saturating_sub(q.given) {
            let who = if q.role == "service-owner" && i == 0 {
                "sam".to_owned()
            } else {
                format!("{}-{}", q.role, i + 1)
            };
            GovernanceServiceClient::new(authed(&flow.node, &who, &[q.role.as_str()], unit).await)
                .approve(gov::DecideApprovalRequest {
                    release: release.into(),
                    environment: environment.into(),
                    role: q.role.clone(),
                    comment: "evidence reviewed".into(),
                })
                .await
                .unwrap_or_else(|s| panic!("{who} approving as {}: {s:?}", q.role));
        }
    }
    request
}

/// Risk-validation's current assessment of the release in the environment, if there is one.
pub async fn current_assessment(
    flow: &Flow,
    unit: &str,
    release: &str,
    environment: &str,
) -> Option<risk::RiskAssessed> {
    RiskValidationServiceClient::new(authed(&flow.node, "rita", &["release-manager"], unit).await)
        .get_risk_assessments(risk::GetRiskAssessmentsRequest {
            release: release.into(),
            environment: environment.into(),
        })
        .await
        .ok()?
        .into_inner()
        .assessments
        .into_iter()
        .next()
}

/// As [`approve_in`], checking the request names `service` (the release's most critical).
pub async fn approve_for(flow: &Flow, unit: &str, service: &str, release: &str, environment: &str) {
    let request = approve_in(flow, unit, release, environment).await;
    assert_eq!(
        request.release.as_ref().map(|f| f.service.as_str()),
        Some(service),
        "{request:?}"
    );
}

pub fn refused<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    says: &[&str],
) {
    let s = r.expect_err("expected a refusal");
    assert_eq!(s.code(), code, "{}", s.message());
    for part in says {
        assert!(
            s.message().contains(part),
            "{:?} does not say {part:?}",
            s.message()
        );
    }
}

mod prometheus;
#[allow(unused_imports)]
pub use prometheus::{Exporter, Target, prometheus_url};
mod releases;
pub use releases::*;
