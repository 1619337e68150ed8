//! A `flotilla up` killed with SIGKILL in the middle of a deployment, and started again on the
//! same data: orchestration finds the step that was running (recorded as started, never
//! finished) and does not run it again; with no outcome kept for it, the step is failed as
//! interrupted and the deployment rolls back every service it touched, in reverse.

use std::process::Command;
use std::time::{Duration, Instant};

use flotilla_auth::Bearer;
use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_proto::governance::v1 as gov;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::orchestration::v1 as pb;
use flotilla_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

mod support;
use support::{stop, token, up};

type Authed = InterceptedService<Channel, Bearer>;

/// Logs each step; the api's deploy blocks (its pid kept) until the node is killed.
const SCRIPT: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$FLOTILLA_STEP $FLOTILLA_SERVICE $FLOTILLA_STEP_ID" >> "$dir/steps.log"
if [ "$FLOTILLA_STEP" = "deploy-rolling" ] && [ "$FLOTILLA_SERVICE" = "payments-api" ]; then
  echo $$ > "$dir/api.pid"
  exec sleep 30
fi
"#;

async fn channel(url: &str, token: &str) -> Authed {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(ch) = Channel::from_shared(url.to_owned())
            .expect("url")
            .connect()
            .await
        {
            return InterceptedService::new(ch, Bearer::new(token));
        }
        assert!(
            Instant::now() < deadline,
            "the node at {url} never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn descriptor(service: &str) -> pb::Descriptor {
    pb::Descriptor {
        kind: pb::DescriptorKind::Helm as i32,
        reference: format!("oci://charts.example.com/{service}"),
        version: "2.0.0".into(),
        ..Default::default()
    }
}

/// Retries a call while the node is still catching up (it answers UNAVAILABLE until then).
async fn ready<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match call().await {
            Ok(r) => return r.into_inner(),
            Err(s)
                if Instant::now() < deadline
                    && (s.code() == tonic::Code::Unavailable
                        || s.message().contains("not in the service catalog")) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_step_rolls_back_and_never_runs_the_step_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("deploy.sh"), SCRIPT).expect("script");
    let run = format!("sh {}", d.join("deploy.sh").display());
    std::fs::write(
        d.join("flotilla.toml"),
        format!("[orchestration.executor]\nkind = \"command\"\n[orchestration.executor.commands]\ndeploy = \"{run}\"\nrollback_deploy = \"{run}\"\n"),
    )
    .expect("config");
    let (mut node, url) = up(d);
    let admin = channel(&url, &token(d, "ops", "admin", "central")).await;
    let rm = channel(&url, &token(d, "rita", "release-manager", "payments")).await;
    let owner = channel(&url, &token(d, "sam", "service-owner", "payments")).await;

    let mut catalog = DependencyMappingServiceClient::new(admin.clone());
    for name in ["payments-ledger", "payments-api"] {
        let entry = dm::ServiceEntry {
            name: name.into(),
            owner_team: "payments-core".into(),
            business_unit: "payments".into(),
            criticality_tier: 3,
            data_classification: dm::DataClassification::Internal as i32,
            runtime: dm::Runtime::Microservice as i32,
            ..Default::default()
        };
        ready(|| {
            let (mut c, entry) = (catalog.clone(), entry.clone());
            async move {
                c.register_service(dm::RegisterServiceRequest {
                    service: Some(entry),
                })
                .await
            }
        })
        .await;
    }
    catalog
        .declare_dependency(dm::DeclareDependencyRequest {
            dependency: Some(dm::Dependency {
                consumer: "payments-api".into(),
                provider: "payments-ledger".into(),
                kind: dm::EdgeKind::SyncApi as i32,
                data_flows: vec![],
            }),
        })
        .await
        .expect("dependency");
    let mut orch = OrchestrationServiceClient::new(rm.clone());
    for (i, service) in ["payments-ledger", "payments-api"].into_iter().enumerate() {
        orch.register_artifact(pb::RegisterArtifactRequest {
            service: service.into(),
            version: "2.0.0".into(),
            commit: "9f2c1e7".into(),
            repository: format!("https://git.example.com/payments/{service}"),
            image_digest: format!("sha256:{}", format!("{:02x}", i + 1).repeat(32)),
            ..Default::default()
        })
        .await
        .expect("artifact");
    }
    orch.define_environment(pb::DefineEnvironmentRequest {
        spec: Some(pb::EnvironmentSpec {
            business_unit: "payments".into(),
            name: "dev".into(),
            ..Default::default()
        }),
    })
    .await
    .expect("environment");
    orch.set_promotion_path(pb::SetPromotionPathRequest {
        business_unit: "payments".into(),
        environments: vec!["dev".into()],
    })
    .await
    .expect("path");
    let items = ["payments-api", "payments-ledger"]
        .into_iter()
        .map(|s| pb::RequestedItem {
            service: s.into(),
            descriptor: Some(descriptor(s)),
            ..Default::default()
        })
        .collect();
    orch.create_release(pb::CreateReleaseRequest {
        name: "payments-2.0.0".into(),
        business_unit: "payments".into(),
        items,
        ..Default::default()
    })
    .await
    .expect("create");
    orch.plan_release(pb::PlanReleaseRequest {
        release: "payments-2.0.0".into(),
    })
    .await
    .expect("plan");
    // Risk-validation assesses the plan; governance opens the request for dev from it.
    let governance = GovernanceServiceClient::new(rm.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = governance
            .clone()
            .get_approval_request(gov::GetApprovalRequestRequest {
                release: "payments-2.0.0".into(),
                environment: "dev".into(),
            })
            .await;
        if r.as_ref().is_ok_and(|r| r.get_ref().risk_assessed) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no assessed approval request: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    GovernanceServiceClient::new(owner)
        .approve(gov::DecideApprovalRequest {
            release: "payments-2.0.0".into(),
            environment: "dev".into(),
            role: "service-owner".into(),
            comment: "ok".into(),
        })
        .await
        .expect("approve");
    let deployment = orch
        .promote_release(pb::PromoteReleaseRequest {
            release: "payments-2.0.0".into(),
            environment: "dev".into(),
        })
        .await
        .expect("promote")
        .into_inner();

    // The api's deploy is running: kill the node where it stands.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !d.join("api.pid").exists() {
        assert!(Instant::now() < deadline, "the api's deploy never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = Command::new("kill")
        .args(["-KILL", &node.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = node.wait();
    // The orphaned command ends too (a real executor's would be checked by its step id).
    let pid = std::fs::read_to_string(d.join("api.pid")).expect("pid");
    let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();

    let (node, url) = up(d);
    let rm = channel(&url, &token(d, "rita", "release-manager", "payments")).await;
    let orch = OrchestrationServiceClient::new(rm);
    let request = pb::GetDeploymentRequest {
        deployment_id: deployment.deployment_id.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let d = ready(|| {
            let (mut o, r) = (orch.clone(), request.clone());
            async move { o.get_deployment(r).await }
        })
        .await;
        if d.status == pb::DeploymentStatus::RolledBack as i32
            || d.status == pb::DeploymentStatus::Failed as i32
        {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "the deployment never ended after the restart: {d:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        done.status,
        pb::DeploymentStatus::RolledBack as i32,
        "{done:#?}"
    );
    let api = done
        .steps
        .iter()
        .find(|s| !s.rollback && s.service == "payments-api")
        .expect("the api's deploy step");
    let tail = &api.outcome.as_ref().expect("an outcome").output_tail;
    assert!(tail.contains("interrupted"), "{tail}");
    let log = std::fs::read_to_string(d.join("steps.log")).expect("log");
    let runs_of_api = log.lines().filter(|l| l.ends_with(&api.step_id)).count();
    assert_eq!(runs_of_api, 1, "the interrupted step ran once: {log}");
    let order: Vec<String> = log
        .lines()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        order,
        [
            "deploy-rolling payments-ledger",
            "deploy-rolling payments-api",
            "rollback-deploy payments-api",
            "rollback-deploy payments-ledger"
        ],
        "{log}"
    );
    stop(node);
}
