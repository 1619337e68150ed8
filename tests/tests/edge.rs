//! The edge every node shares, seen by a generic client: a one-service process reflects and
//! reports health for what it serves only, says where an unserved service is not, answers an
//! oversized message RESOURCE_EXHAUSTED under the one configured limit, and holds a read after
//! a position only for a caller it let in.

use flotilla_proto::governance::v1 as pb;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use flotilla_runtime::config::BusKind;
use flotilla_tests::{Deployment, RunningNode, reflected_services};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_service_process_tells_only_of_what_it_serves() {
    let mut deployment = Deployment::new(vec![BusKind::Nats]).expect("deployment");
    deployment.config.max_message_bytes = 64 * 1024;
    let node = deployment.start(&["governance"]).await.expect("start");
    let ch = node.channel().await.expect("connect");

    let names = reflected_services(ch.clone()).await;
    assert!(
        names.contains("flotilla.governance.v1.GovernanceService"),
        "{names:?}"
    );
    assert!(names.contains("grpc.health.v1.Health"), "{names:?}");
    for unserved in [
        "flotilla.dependency.v1.DependencyMappingService",
        "flotilla.orchestration.v1.OrchestrationService",
        "flotilla.compliance.v1.ComplianceService",
    ] {
        assert!(
            !names.contains(unserved),
            "{unserved} is not served here: {names:?}"
        );
    }
    let mut health = HealthClient::new(ch.clone());
    let ok = health
        .check(HealthCheckRequest {
            service: "flotilla.governance.v1.GovernanceService".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(ok.status, ServingStatus::Serving as i32);
    let unknown = health
        .check(HealthCheckRequest {
            service: "flotilla.orchestration.v1.OrchestrationService".into(),
        })
        .await
        .expect_err("not served");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // A call to a service that runs elsewhere says so, with or without a token.
    let e = OrchestrationServiceClient::new(ch.clone())
        .get_status(flotilla_proto::common::v1::GetStatusRequest {})
        .await
        .expect_err("not served");
    assert_eq!(e.code(), tonic::Code::Unimplemented);
    assert!(
        e.message()
            .contains("flotilla.orchestration.v1.OrchestrationService")
            && e.message().contains("not served by this process")
            && e.message()
                .contains("flotilla.governance.v1.GovernanceService"),
        "{e:?}"
    );

    // One size limit, RESOURCE_EXHAUSTED with both sizes.
    let mut gov = GovernanceServiceClient::with_interceptor(
        ch.clone(),
        RunningNode::bearer("ops", &["admin"], "central"),
    );
    let e = gov
        .replace_access_policy(pb::ReplaceAccessPolicyRequest {
            policy: "x".repeat(100 * 1024),
            expected_version: 0,
        })
        .await
        .expect_err("too large");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("65536") && e.message().contains("max_message_bytes"),
        "{e:?}"
    );

    // A read after a position the state has not reached waits only for a caller let in: one
    // without a token is refused at once, one with a token after the wait it asked for.
    let read_after = |to: &mut tonic::Request<flotilla_proto::common::v1::GetStatusRequest>| {
        let h = to.metadata_mut();
        h.insert(
            "x-flotilla-min-position",
            "1000000000".parse().expect("ascii"),
        );
        h.insert("x-flotilla-wait-ms", "3000".parse().expect("ascii"));
    };
    let mut anonymous = tonic::Request::new(flotilla_proto::common::v1::GetStatusRequest {});
    read_after(&mut anonymous);
    let e = GovernanceServiceClient::new(ch.clone())
        .get_status(anonymous)
        .await
        .expect_err("no token");
    // (Were the wait before the access check, this would be UNAVAILABLE after 3 s.)
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let mut known = tonic::Request::new(flotilla_proto::common::v1::GetStatusRequest {});
    read_after(&mut known);
    let e = gov.get_status(known).await.expect_err("not reached");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains("1000000000"), "{e:?}");
    node.stop().await.expect("stop");
}
