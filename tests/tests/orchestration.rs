//! Orchestration with governance and dependency-mapping on one embedded node: a release is
//! created (its name checked by governance), planned in dependency-mapping's waves, refused
//! promotion with every reason from every source at once, promoted through the command executor
//! running real scripts, and rolled back atomically, in reverse, when a step fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_proto::governance::v1 as gov;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::orchestration::v1 as pb;
use flotilla_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use flotilla_runtime::{Config, NodeMode};
use flotilla_tests::{RunningNode, all_services};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Authed = InterceptedService<Channel, flotilla_auth::Bearer>;
type Orch = OrchestrationServiceClient<Authed>;

const UNIT: &str = "payments";

/// The deploy script: logs what it is asked to do (one line per step), and fails a deploy (not
/// a rollback) of a service named in a `fail-<service>` file next to it.
const SCRIPT: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$FLOTILLA_STEP $FLOTILLA_SERVICE $FLOTILLA_VERSION $FLOTILLA_ENVIRONMENT ${FLOTILLA_PHASE:-} ${FLOTILLA_ROLLBACK_TO:-} $FLOTILLA_STEP_ID $FLOTILLA_DESCRIPTOR_REFERENCE" >> "$dir/steps.log"
echo "deploying $FLOTILLA_SERVICE to $FLOTILLA_ENVIRONMENT"
if [ -e "$dir/fail-$FLOTILLA_SERVICE" ] && [ "${FLOTILLA_STEP#deploy}" != "$FLOTILLA_STEP" ]; then
  echo "helm: release $FLOTILLA_SERVICE failed: timed out waiting for the condition" >&2
  exit 3
fi
"#;

struct Flow {
    node: RunningNode,
    dir: tempfile::TempDir,
    orch: Orch,
}

fn script_dir(dir: &Path) -> PathBuf {
    dir.join("scripts")
}

impl Flow {
    async fn start() -> Self {
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
        let data_dir = dir.path().join("data");
        let mut config = Config {
            data_dir: data_dir.clone(),
            ..Config::default()
        };
        config.sections.insert("orchestration".into(), section);
        let node = RunningNode::start(config, all_services(), NodeMode::Embedded { data_dir })
            .await
            .expect("node");
        let orch = OrchestrationServiceClient::new(authed(&node, "rita", &["release-manager"], UNIT).await);
        Self { node, dir, orch }
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(script_dir(self.dir.path()).join("steps.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn fail(&self, service: &str) {
        std::fs::write(script_dir(self.dir.path()).join(format!("fail-{service}")), "").expect("fail file");
    }

    async fn admin(&self) -> Authed {
        authed(&self.node, "ops", &["admin"], "central").await
    }

    /// Waits until the deployment is over; answers it.
    async fn finished(&mut self, id: &str) -> pb::Deployment {
        let mut stream = self
            .orch
            .watch_deployment(pb::GetDeploymentRequest { deployment_id: id.into() })
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

async fn authed(node: &RunningNode, subject: &str, roles: &[&str], bu: &str) -> Authed {
    node.as_caller(subject, roles, bu).await.expect("channel")
}

fn descriptor(service: &str) -> pb::Descriptor {
    pb::Descriptor {
        kind: pb::DescriptorKind::Helm as i32,
        reference: format!("oci://charts.example.com/{service}"),
        version: "2.0.0".into(),
        values: [("replicas".to_owned(), "3".to_owned())].into_iter().collect(),
        labels: [("team".to_owned(), "payments-core".to_owned())].into_iter().collect(),
        cpu_limit: "500m".into(),
        memory_limit: "512Mi".into(),
        uses: vec![],
    }
}

fn item(service: &str, version: &str) -> pb::RequestedItem {
    pb::RequestedItem {
        service: service.into(),
        version: version.into(),
        descriptor: Some(descriptor(service)),
        strategy: None,
        migrations: vec![],
    }
}

fn artifact(service: &str, version: &str, licence: &str) -> pb::RegisterArtifactRequest {
    let hex: String = format!("{service}{version}").bytes().map(|b| format!("{b:02x}")).collect();
    let digest = format!("sha256:{:0<64}", &hex[..hex.len().min(64)]);
    pb::RegisterArtifactRequest {
        service: service.into(),
        version: version.into(),
        commit: "9f2c1e7".into(),
        repository: format!("https://git.example.com/payments/{service}"),
        build_url: format!("https://ci.example.com/{service}/118"),
        tests: Some(pb::TestResults { passed: 412, failed: 0, skipped: 3 }),
        analysis: Some(pb::AnalysisResult { tool: "sonarqube".into(), passed: true, findings: 0 }),
        licences: vec![licence.into()],
        image_digest: digest,
    }
}

/// The catalog (ledger <- api <- web), the policy, the artifacts and the path.
async fn set_up(flow: &mut Flow) {
    let admin = flow.admin().await;
    let mut catalog = DependencyMappingServiceClient::new(admin.clone());
    for name in ["payments-ledger", "payments-api", "payments-web"] {
        catalog
            .register_service(dm::RegisterServiceRequest {
                service: Some(dm::ServiceEntry {
                    name: name.into(),
                    owner_team: "payments-core".into(),
                    business_unit: UNIT.into(),
                    criticality_tier: 3,
                    handles_personal_data: false,
                    data_classification: dm::DataClassification::Internal as i32,
                    runtime: dm::Runtime::Microservice as i32,
                }),
            })
            .await
            .expect("register service");
    }
    for (consumer, provider) in [("payments-api", "payments-ledger"), ("payments-web", "payments-api")] {
        catalog
            .declare_dependency(dm::DeclareDependencyRequest {
                dependency: Some(dm::Dependency {
                    consumer: consumer.into(),
                    provider: provider.into(),
                    kind: dm::EdgeKind::SyncApi as i32,
                    data_flows: vec![],
                }),
            })
            .await
            .expect("dependency");
    }
    let mut orch = OrchestrationServiceClient::new(admin);
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
    for service in ["payments-ledger", "payments-api", "payments-web"] {
        let a = flow
            .orch
            .register_artifact(artifact(service, "2.0.0", "Apache-2.0"))
            .await
            .expect("artifact")
            .into_inner();
        assert!(a.purl.starts_with(&format!("pkg:oci/{service}@sha256%3A")), "{}", a.purl);
        assert!(a.blocked.is_empty(), "{:?}", a.blocked);
    }
    let path = flow
        .orch
        .set_promotion_path(pb::SetPromotionPathRequest {
            business_unit: UNIT.into(),
            environments: vec!["dev".into(), "staging".into(), "prod".into()],
        })
        .await;
    // Environments first: a path names environments that exist.
    if path.is_err() {
        define_environments(flow).await;
        flow.orch
            .set_promotion_path(pb::SetPromotionPathRequest {
                business_unit: UNIT.into(),
                environments: vec!["dev".into(), "staging".into(), "prod".into()],
            })
            .await
            .expect("path");
    } else {
        define_environments(flow).await;
    }
}

async fn define_environments(flow: &mut Flow) {
    for (name, checks, data) in [
        ("dev", vec!["smoke".to_owned()], None),
        ("staging", vec![], Some(pb::DataRequirement { max_age_days: 7, min_volume_percent: 50 })),
        ("prod", vec![], None),
    ] {
        flow.orch
            .define_environment(pb::DefineEnvironmentRequest {
                spec: Some(pb::EnvironmentSpec {
                    business_unit: UNIT.into(),
                    name: name.into(),
                    checks,
                    data,
                    ..Default::default()
                }),
            })
            .await
            .expect("environment");
    }
}

async fn approve(flow: &Flow, release: &str, environment: &str) {
    let mut manager = GovernanceServiceClient::new(authed(&flow.node, "rita", &["release-manager"], UNIT).await);
    manager
        .open_approval_request(gov::OpenApprovalRequestRequest {
            release: Some(gov::ReleaseFacts {
                release: release.into(),
                version: "2.0.0".into(),
                environment: environment.into(),
                service: "payments-api".into(),
                business_unit: UNIT.into(),
                criticality_tier: 3,
                risk_score: 10,
                handles_personal_data: false,
                author: "alice".into(),
                committers: vec!["carol".into()],
            }),
            emergency: false,
        })
        .await
        .expect("approval request");
    let mut owner = GovernanceServiceClient::new(authed(&flow.node, "sam", &["service-owner"], UNIT).await);
    owner
        .approve(gov::DecideApprovalRequest {
            release: release.into(),
            environment: environment.into(),
            role: "service-owner".into(),
            comment: "staging evidence reviewed".into(),
        })
        .await
        .expect("approve");
}

fn refused<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>, code: Code, says: &[&str]) {
    let s = r.expect_err("expected a refusal");
    assert_eq!(s.code(), code, "{}", s.message());
    for part in says {
        assert!(s.message().contains(part), "{:?} does not say {part:?}", s.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_is_planned_gated_deployed_and_rolled_back_atomically() {
    let mut flow = Flow::start().await;
    set_up(&mut flow).await;

    // A name governance's rule (semantic versions) refuses.
    refused(
        flow.orch
            .create_release(pb::CreateReleaseRequest {
                name: "payments-next".into(),
                business_unit: UNIT.into(),
                items: vec![item("payments-api", "2.0.0")],
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        &["payments-next"],
    );

    let name = "payments-2.0.0";
    let release = flow
        .orch
        .create_release(pb::CreateReleaseRequest {
            name: name.into(),
            business_unit: UNIT.into(),
            items: ["payments-web", "payments-api", "payments-ledger"]
                .into_iter()
                .map(|s| item(s, ""))
                .collect(),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(release.items.len(), 3);
    assert!(release.items.iter().all(|i| i.version == "2.0.0"), "the newest artifacts fill the release");

    // Promoting before planning, and rolling back what never ran, change nothing.
    let promote = |env: &str| pb::PromoteReleaseRequest { release: name.into(), environment: env.into() };
    refused(flow.orch.promote_release(promote("dev")).await, Code::FailedPrecondition, &["not planned"]);
    refused(
        flow.orch
            .rollback_release(pb::RollbackReleaseRequest { release: name.into(), reason: String::new() })
            .await,
        Code::FailedPrecondition,
        &[],
    );

    let planned = flow
        .orch
        .plan_release(pb::PlanReleaseRequest { release: name.into() })
        .await
        .expect("plan")
        .into_inner();
    let waves: Vec<Vec<String>> = planned
        .plan
        .expect("a plan")
        .waves
        .into_iter()
        .map(|w| w.services.into_iter().map(|s| s.service).collect())
        .collect();
    assert_eq!(
        waves,
        vec![vec!["payments-ledger".to_owned()], vec!["payments-api".into()], vec!["payments-web".into()]],
        "providers go first"
    );

    refused(flow.orch.promote_release(promote("staging")).await, Code::FailedPrecondition, &["skip", "dev first"]);
    // No approval request for dev yet: governance's reason comes back.
    refused(flow.orch.promote_release(promote("dev")).await, Code::FailedPrecondition, &["governance:", "no approval request"]);

    approve(&flow, name, "dev").await;
    let started = flow.orch.promote_release(promote("dev")).await.expect("promote").into_inner();
    // A second promotion while the first runs is refused.
    refused(flow.orch.promote_release(promote("dev")).await, Code::FailedPrecondition, &["being deployed"]);
    let done = flow.finished(&started.deployment_id).await;
    assert_eq!(done.status, pb::DeploymentStatus::Succeeded as i32, "{done:#?}");
    let log = flow.log();
    let deployed: Vec<&str> = log.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(deployed, ["payments-ledger", "payments-api", "payments-web"], "{log:#?}");
    assert!(log[0].starts_with("deploy-rolling payments-ledger 2.0.0 dev rolling"), "{}", log[0]);
    assert!(log[0].ends_with("oci://charts.example.com/payments-ledger"), "{}", log[0]);
    let step = done.steps.iter().find(|s| s.service == "payments-api").expect("api step");
    let outcome = step.outcome.as_ref().expect("outcome");
    assert_eq!(outcome.exit_code, Some(0));
    assert!(outcome.output_tail.contains("deploying payments-api to dev"), "{}", outcome.output_tail);
    assert!(log[1].contains(&step.step_id), "the executor got the step id");

    // Leaving dev for staging: dev's check, governance and staging's data, all at once.
    refused(
        flow.orch.promote_release(promote("staging")).await,
        Code::FailedPrecondition,
        &["dev: check smoke has not been recorded", "governance: ", "staging: no data refresh recorded"],
    );
    flow.orch
        .record_validation(pb::RecordValidationRequest {
            business_unit: UNIT.into(),
            environment: "dev".into(),
            release: name.into(),
            check: "smoke".into(),
            passed: true,
        })
        .await
        .expect("validation");
    flow.orch
        .record_data_refresh(pb::RecordDataRefreshRequest {
            business_unit: UNIT.into(),
            environment: "staging".into(),
            masked: true,
            copied_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now() - Duration::from_secs(86_400))),
            volume_percent: 80,
        })
        .await
        .expect("refresh");
    approve(&flow, name, "staging").await;

    // The web tier's deploy fails in staging: everything the release touched there is put back,
    // in reverse.
    flow.fail("payments-web");
    let before = flow.log().len();
    let started = flow.orch.promote_release(promote("staging")).await.expect("promote").into_inner();
    let done = flow.finished(&started.deployment_id).await;
    assert_eq!(done.status, pb::DeploymentStatus::RolledBack as i32, "{done:#?}");
    assert!(done.reason.contains("payments-web"), "{}", done.reason);
    let log = flow.log();
    let staging: Vec<String> = log[before..]
        .iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        staging,
        [
            "deploy-rolling payments-ledger",
            "deploy-rolling payments-api",
            "deploy-rolling payments-web",
            "rollback-deploy payments-web",
            "rollback-deploy payments-api",
            "rollback-deploy payments-ledger",
        ],
        "{log:#?}"
    );
    let release = flow
        .orch
        .get_release(pb::GetReleaseRequest { release: name.into() })
        .await
        .expect("release")
        .into_inner();
    assert_eq!(release.status, pb::ReleaseStatus::RolledBack as i32);
    assert_eq!(release.deployed_to, ["dev"]);

    flow.node.stop().await.expect("stop");
}
