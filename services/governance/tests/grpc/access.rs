//! Who may call what (the role x operation matrix), and access policy replacement: audited,
//! and in force again after a restart.

use super::*;

/// Every role against every governance operation at the interceptor: allowed calls get past it
/// (they fail later on the empty request), refused ones are PERMISSION_DENIED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_operation_matrix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir.path().join("g.db")).await;
    let server = TestServer::start(&GovernanceModule, store).await;
    let ch = server.channel().await;
    let allowed: &[(&str, &[&str])] = &[
        ("SetPolicy", &["admin"]),
        (
            "OpenApprovalRequest",
            &["admin", "release-manager", "scheduler"],
        ),
        (
            "Approve",
            &[
                "admin",
                "developer",
                "service-owner",
                "security",
                "business",
                "cab",
                "release-manager",
            ],
        ),
        (
            "Reject",
            &[
                "admin",
                "developer",
                "service-owner",
                "security",
                "business",
                "cab",
                "release-manager",
            ],
        ),
        ("RecordCabDecision", &["admin", "cab"]),
        (
            "CreateFreezeWindow",
            &["admin", "release-manager", "compliance-officer"],
        ),
        (
            "CancelFreezeWindow",
            &["admin", "release-manager", "compliance-officer"],
        ),
        (
            "RequestDeviation",
            &["admin", "release-manager", "developer", "service-owner"],
        ),
        (
            "ApproveDeviation",
            &["admin", "compliance-officer", "security", "release-manager"],
        ),
        (
            "RejectDeviation",
            &["admin", "compliance-officer", "security", "release-manager"],
        ),
        (
            "OpenRollbackDecision",
            &["admin", "release-manager", "scheduler", "service-owner"],
        ),
        (
            "DecideRollback",
            &["admin", "release-manager", "service-owner"],
        ),
        ("ProcessDeadlines", &["admin", "scheduler"]),
        ("ReplaceAccessPolicy", &["admin"]),
        ("CheckGate", flotilla_auth::KNOWN_ROLES),
        ("GetApprovalRequest", flotilla_auth::KNOWN_ROLES),
        ("ListApprovalRequests", flotilla_auth::KNOWN_ROLES),
        ("ListFreezeWindows", flotilla_auth::KNOWN_ROLES),
        ("ListDeviations", flotilla_auth::KNOWN_ROLES),
        ("ListRollbackDecisions", flotilla_auth::KNOWN_ROLES),
        ("GetPolicy", flotilla_auth::KNOWN_ROLES),
        ("CheckReleaseName", flotilla_auth::KNOWN_ROLES),
        ("GetAccessPolicy", flotilla_auth::KNOWN_ROLES),
        ("GetStatus", flotilla_auth::KNOWN_ROLES),
    ];
    let mut mismatches = Vec::new();
    let mut calls = 0;
    for role in flotilla_auth::KNOWN_ROLES {
        let mut c = gov(&ch, &format!("{role}-person"), &[role], "payments");
        for (op, roles) in allowed {
            let r: Result<(), tonic::Status> = match *op {
                "SetPolicy" => c
                    .set_policy(pb::SetPolicyRequest::default())
                    .await
                    .map(drop),
                "OpenApprovalRequest" => c
                    .open_approval_request(pb::OpenApprovalRequestRequest::default())
                    .await
                    .map(drop),
                "Approve" => c
                    .approve(pb::DecideApprovalRequest::default())
                    .await
                    .map(drop),
                "Reject" => c
                    .reject(pb::DecideApprovalRequest::default())
                    .await
                    .map(drop),
                "RecordCabDecision" => c
                    .record_cab_decision(pb::RecordCabDecisionRequest::default())
                    .await
                    .map(drop),
                "CreateFreezeWindow" => c
                    .create_freeze_window(pb::CreateFreezeWindowRequest::default())
                    .await
                    .map(drop),
                "CancelFreezeWindow" => c
                    .cancel_freeze_window(pb::CancelFreezeWindowRequest::default())
                    .await
                    .map(drop),
                "RequestDeviation" => c
                    .request_deviation(pb::RequestDeviationRequest::default())
                    .await
                    .map(drop),
                "ApproveDeviation" => c
                    .approve_deviation(pb::DecideDeviationRequest::default())
                    .await
                    .map(drop),
                "RejectDeviation" => c
                    .reject_deviation(pb::DecideDeviationRequest::default())
                    .await
                    .map(drop),
                "OpenRollbackDecision" => c
                    .open_rollback_decision(pb::OpenRollbackDecisionRequest::default())
                    .await
                    .map(drop),
                "DecideRollback" => c
                    .decide_rollback(pb::DecideRollbackRequest::default())
                    .await
                    .map(drop),
                "ProcessDeadlines" => c
                    .process_deadlines(pb::ProcessDeadlinesRequest::default())
                    .await
                    .map(drop),
                "ReplaceAccessPolicy" => c
                    .replace_access_policy(pb::ReplaceAccessPolicyRequest::default())
                    .await
                    .map(drop),
                "CheckGate" => c
                    .check_gate(pb::CheckGateRequest::default())
                    .await
                    .map(drop),
                "GetApprovalRequest" => c
                    .get_approval_request(pb::GetApprovalRequestRequest::default())
                    .await
                    .map(drop),
                "ListApprovalRequests" => c
                    .list_approval_requests(pb::ListApprovalRequestsRequest::default())
                    .await
                    .map(drop),
                "ListFreezeWindows" => c
                    .list_freeze_windows(pb::ListFreezeWindowsRequest::default())
                    .await
                    .map(drop),
                "ListDeviations" => c
                    .list_deviations(pb::ListDeviationsRequest::default())
                    .await
                    .map(drop),
                "ListRollbackDecisions" => c
                    .list_rollback_decisions(pb::ListRollbackDecisionsRequest::default())
                    .await
                    .map(drop),
                "GetPolicy" => c
                    .get_policy(pb::GetPolicyRequest::default())
                    .await
                    .map(drop),
                "CheckReleaseName" => c
                    .check_release_name(pb::CheckReleaseNameRequest::default())
                    .await
                    .map(drop),
                "GetAccessPolicy" => c
                    .get_access_policy(pb::GetAccessPolicyRequest::default())
                    .await
                    .map(drop),
                "GetStatus" => c
                    .get_status(flotilla_proto::common::v1::GetStatusRequest {})
                    .await
                    .map(drop),
                other => panic!("operation {other} not wired into the matrix"),
            };
            calls += 1;
            let refused = matches!(&r, Err(s) if s.code() == Code::PermissionDenied);
            let expected_refused = !roles.contains(role);
            if refused != expected_refused {
                mismatches.push(format!(
                    "{role} x {op}: expected {}, got {r:?}",
                    if expected_refused { "deny" } else { "allow" }
                ));
            }
        }
    }
    assert_eq!(calls, flotilla_auth::KNOWN_ROLES.len() * allowed.len());
    // Every governance operation in the access catalogue is in the matrix.
    let listed: Vec<_> = flotilla_auth::operations::all()
        .filter(|o| o.service == "flotilla.governance.v1.GovernanceService")
        .map(|o| o.method)
        .collect();
    for m in &listed {
        assert!(
            allowed.iter().any(|(op, _)| op == m),
            "{m} is not in the matrix"
        );
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // No token at all: UNAUTHENTICATED, recorded.
    let e = GovernanceServiceClient::new(ch.clone())
        .check_gate(pb::CheckGateRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(
        server
            .refusals
            .take()
            .iter()
            .any(|r| r.code == Code::Unauthenticated)
    );
    server.stop().await;
}

/// An admin replaces the access policy: recorded, in force at once, kept across restarts;
/// stale versions and policies that would lock admins out are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_policy_replacement_is_audited_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("g.db");
    let store = open_store(&db).await;
    let server = TestServer::start(&GovernanceModule, store.clone()).await;
    let ch = server.channel().await;
    let mut admin = gov(&ch, "root", &["admin"], "central");
    let mut dev = gov(&ch, "dev", &["developer"], "payments");
    let shipped = admin
        .get_access_policy(pb::GetAccessPolicyRequest {})
        .await
        .expect("get")
        .into_inner();
    assert_eq!(shipped.version, 0);
    assert!(shipped.policy.contains("business-unit-isolation"));
    let e = code(
        dev.process_deadlines(pb::ProcessDeadlinesRequest::default())
            .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = code(
        dev.replace_access_policy(pb::ReplaceAccessPolicyRequest {
            policy: shipped.policy.clone(),
            expected_version: 0,
        })
        .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied);
    let widened = format!(
        "{}\n@id(\"developers-run-deadlines\")\npermit (principal in Flotilla::Role::\"developer\", action == Flotilla::Action::\"governance:ProcessDeadlines\", resource);\n",
        shipped.policy
    );
    let e = code(
        admin
            .replace_access_policy(pb::ReplaceAccessPolicyRequest {
                policy: "permit (principal, action, resource".into(),
                expected_version: 0,
            })
            .await,
    );
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = code(
        admin
            .replace_access_policy(pb::ReplaceAccessPolicyRequest {
                policy: "@id(\"read-only\")\npermit (principal, action in Flotilla::Action::\"read\", resource);".into(),
                expected_version: 0,
            })
            .await,
    );
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("admins"), "{e:?}");
    let replaced = admin
        .replace_access_policy(pb::ReplaceAccessPolicyRequest {
            policy: widened.clone(),
            expected_version: 0,
        })
        .await
        .expect("replace")
        .into_inner();
    assert_eq!(replaced.version, 1);
    let e = code(
        admin
            .replace_access_policy(pb::ReplaceAccessPolicyRequest {
                policy: widened.clone(),
                expected_version: 0,
            })
            .await,
    );
    assert_eq!(e.code(), Code::Aborted);
    dev.process_deadlines(pb::ProcessDeadlinesRequest::default())
        .await
        .expect("now allowed");
    assert_eq!(
        events_of(&store, "flotilla.common.v1.AccessPolicyReplaced").await,
        1
    );
    // Signed for this deployment and version, so other services adopt it.
    let recorded = store
        .read_all(1, 1000)
        .await
        .expect("read")
        .into_iter()
        .find(|e| e.event_type == "flotilla.common.v1.AccessPolicyReplaced")
        .expect("recorded");
    let m = <flotilla_proto::common::v1::AccessPolicyReplaced as prost::Message>::decode(
        recorded.payload.as_slice(),
    )
    .expect("decode");
    let verifier =
        flotilla_auth::PolicyVerifier::new(&[testkit::test_signer().public_key()]).expect("key");
    verifier
        .verify("flotilla", 1, &m.sha256, &m.signature)
        .expect("governance signed the replacement");
    assert_eq!(m.namespace, "flotilla");
    server.stop().await;
    drop(store);
    let server = TestServer::start(&GovernanceModule, open_store(&db).await).await;
    let ch = server.channel().await;
    let mut dev = gov(&ch, "dev", &["developer"], "payments");
    let mut ok = false;
    // The restarted server loads its state on the first command or background catch-up.
    for _ in 0..50 {
        if dev
            .process_deadlines(pb::ProcessDeadlinesRequest::default())
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "the replaced policy is in force after a restart");
    server.stop().await;
}
