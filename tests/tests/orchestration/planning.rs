//! Releases made by trigger rules, and plans refused for breaking a deployed consumer's range.

use flotilla_proto::orchestration::v1 as pb;
use std::time::Duration;
use tonic::Code;

use crate::flow::*;

/// A trigger rule on service-level versions: a patch of a `payments-*` service creates a release
/// of it (with the descriptor its last release used) that is planned and promoted into dev by
/// itself; a major bump needs a planned release.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_patch_of_a_matching_service_is_released_by_its_trigger_rule() {
    let mut flow = Flow::start().await;
    policy(&flow).await;
    catalog(&flow, UNIT, &["payments-api"], &[]).await;
    artifacts(&mut flow, &["payments-api"], "2.0.0").await;
    environments(&mut flow, UNIT, vec![env("dev"), env("prod")]).await;
    deployed(
        &mut flow,
        "payments-2.0.0",
        vec![item("payments-api", "2.0.0")],
        "dev",
    )
    .await;
    flow.orch
        .define_trigger_rule(pb::DefineTriggerRuleRequest {
            rule: Some(pb::TriggerRule {
                business_unit: UNIT.into(),
                services: "payments-*".into(),
                up_to: pb::Bump::Patch as i32,
                environment: "dev".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("trigger rule");
    let _ = flow
        .orch
        .register_artifact(crate::flow::artifact("payments-api", "2.0.1", "Apache-2.0"))
        .await
        .expect("patch build");
    // Its plan is assessed and governance opens the request for dev; once approved, the
    // blocked promotion is tried again by itself (governance's gate still decides).
    approve(&flow, "payments-api-2.0.1", "dev").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let release = loop {
        let r = flow
            .orch
            .get_release(pb::GetReleaseRequest {
                release: "payments-api-2.0.1".into(),
            })
            .await
            .map(tonic::Response::into_inner);
        if let Ok(r) = &r
            && r.status == pb::ReleaseStatus::Deployed as i32
        {
            break r.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the patch was not released into dev by its rule: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        release.deployed_to,
        ["dev"],
        "up to the rule's environment, not beyond"
    );
    assert_eq!(release.promote_to, "dev");
    assert_eq!(
        release.items[0]
            .descriptor
            .as_ref()
            .map(|d| d.version.as_str()),
        Some("2.0.1")
    );
    assert!(
        flow.log()
            .iter()
            .any(|l| l.starts_with("deploy-rolling payments-api 2.0.1 dev")),
        "{:#?}",
        flow.log()
    );

    // A rebuild of an older version, and a major bump, create nothing by themselves.
    let _ = flow
        .orch
        .register_artifact(crate::flow::artifact(
            "payments-api",
            "2.0.0-hotfix.1",
            "Apache-2.0",
        ))
        .await
        .expect("older rebuild");
    refused(
        flow.orch
            .get_release(pb::GetReleaseRequest {
                release: "payments-api-2.0.0-hotfix.1".into(),
            })
            .await,
        Code::NotFound,
        &[],
    );
    let _ = flow
        .orch
        .register_artifact(crate::flow::artifact("payments-api", "3.0.0", "Apache-2.0"))
        .await
        .expect("major build");
    tokio::time::sleep(Duration::from_millis(500)).await;
    refused(
        flow.orch
            .get_release(pb::GetReleaseRequest {
                release: "payments-api-3.0.0".into(),
            })
            .await,
        Code::NotFound,
        &[],
    );
    flow.node.stop().await.expect("stop");
}

/// A planned release that would break a deployed consumer's declared range is refused with the
/// range, from dependency-mapping's own answer (its footprint of dev comes from orchestration's
/// DeploymentFinished events).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plan_that_breaks_a_deployed_consumers_range_is_refused() {
    let mut flow = Flow::start().await;
    policy(&flow).await;
    catalog(
        &flow,
        UNIT,
        &["payments-api", "payments-web"],
        &[("payments-web", "payments-api")],
    )
    .await;
    let admin = flow.admin().await;
    flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient::new(admin)
        .declare_version_requirement(flotilla_proto::dependency::v1::DeclareVersionRequirementRequest {
            consumer: "payments-web".into(),
            provider: "payments-api".into(),
            requirement: ">=2.0.0, <3.0.0".into(),
        })
        .await
        .expect("requirement");
    artifacts(&mut flow, &["payments-api", "payments-web"], "2.0.0").await;
    artifacts(&mut flow, &["payments-api"], "3.0.0").await;
    environments(&mut flow, UNIT, vec![env("dev")]).await;
    let d = deployed(
        &mut flow,
        "payments-2.0.0",
        vec![item("payments-api", "2.0.0"), item("payments-web", "2.0.0")],
        "dev",
    )
    .await;
    assert_eq!(d.status, pb::DeploymentStatus::Succeeded as i32);
    flow.orch
        .create_release(pb::CreateReleaseRequest {
            name: "payments-3.0.0".into(),
            business_unit: UNIT.into(),
            items: vec![item("payments-api", "3.0.0")],
            ..Default::default()
        })
        .await
        .expect("create 3.0.0");
    // Dependency-mapping learns what runs in dev from orchestration's events: wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match flow
            .orch
            .plan_release(pb::PlanReleaseRequest {
                release: "payments-3.0.0".into(),
            })
            .await
        {
            Err(s) if s.code() == Code::FailedPrecondition => {
                assert!(
                    s.message()
                        .contains("payments-web@2.0.0 requires payments-api >=2.0.0, <3.0.0"),
                    "{}",
                    s.message()
                );
                break;
            }
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the plan was never refused: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    flow.node.stop().await.expect("stop");
}
