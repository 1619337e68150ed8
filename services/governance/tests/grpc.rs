//! Governance over gRPC on a real SQLite store, behind the access interceptor: the approval flow
//! with segregation of duties, CAB reuse, windows, embargo and deviations; access policy
//! replacement; and identical gate answers after a restart on the same store.

use flotilla_governance::GovernanceModule;
use flotilla_proto::governance::v1 as pb;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::testkit::{self, TestServer};
use tonic::Code;

mod support;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_flow_windows_deviations_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("governance.db");
    let store = open_store(&db).await;
    let server = TestServer::start(&GovernanceModule, store.clone()).await;
    let ch = server.channel().await;
    let now = now_secs();

    let mut admin = gov(&ch, "root", &["admin"], "central");
    let mut rm = gov(&ch, "rita", &["release-manager"], "payments");

    // Policy: versioned, stale writes are ABORTED.
    let current = admin
        .get_policy(pb::GetPolicyRequest { version: 0 })
        .await
        .expect("policy")
        .into_inner();
    assert_eq!(current.version, 0);
    let mut doc = current.policy.expect("doc");
    doc.approval_validity_minutes = 24 * 60;
    let v1 = admin
        .set_policy(pb::SetPolicyRequest {
            policy: Some(doc.clone()),
            expected_version: 0,
        })
        .await
        .expect("set")
        .into_inner();
    assert_eq!(v1.version, 1);
    let e = code(
        admin
            .set_policy(pb::SetPolicyRequest {
                policy: Some(doc.clone()),
                expected_version: 0,
            })
            .await,
    );
    assert_eq!(e.code(), Code::Aborted, "{e:?}");
    let e = code(
        gov(&ch, "dev", &["developer"], "payments")
            .set_policy(pb::SetPolicyRequest {
                policy: Some(doc),
                expected_version: 1,
            })
            .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // Opening: naming rule, unit isolation.
    let mut bad = facts("r1", "payments", 1, 80, true);
    bad.version = "banana".into();
    let e = code(
        rm.open_approval_request(pb::OpenApprovalRequestRequest {
            release: Some(bad),
            emergency: false,
        })
        .await,
    );
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("semantic version"), "{e:?}");
    let e = code(
        gov(&ch, "otto", &["release-manager"], "cards")
            .open_approval_request(pb::OpenApprovalRequestRequest {
                release: Some(facts("r1", "payments", 1, 80, true)),
                emergency: false,
            })
            .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("business-unit-isolation"), "{e:?}");
    let opened = rm
        .open_approval_request(pb::OpenApprovalRequestRequest {
            release: Some(facts("r1", "payments", 1, 80, true)),
            emergency: false,
        })
        .await
        .expect("open")
        .into_inner();
    let roles: Vec<_> = opened
        .requirements
        .iter()
        .map(|r| r.role.as_str())
        .collect();
    assert_eq!(
        roles,
        vec![
            "business",
            "cab",
            "peer-review",
            "security",
            "service-owner"
        ]
    );
    let e = code(
        rm.open_approval_request(pb::OpenApprovalRequestRequest {
            release: Some(facts("r1", "payments", 1, 80, true)),
            emergency: false,
        })
        .await,
    );
    assert_eq!(e.code(), Code::AlreadyExists);

    // Segregation of duties: the author (policy) and one person in two roles (domain).
    let e = code(
        gov(&ch, "alice", &["service-owner"], "payments")
            .approve(decide("r1", "service-owner"))
            .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("sod-author-approves"), "{e:?}");
    let mut dave = gov(&ch, "dave", &["service-owner", "security"], "payments");
    dave.approve(decide("r1", "service-owner"))
        .await
        .expect("owner");
    let e = code(dave.approve(decide("r1", "security")).await);
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("sod-one-person-one-role"), "{e:?}");
    assert_eq!(
        events_of(&store, "flotilla.governance.v1.SegregationOfDutiesViolated").await,
        2
    );
    // A person of another unit cannot approve, reject or look at it: to them it does not
    // exist (answered exactly as a release nobody opened a request for), and the refusal is
    // recorded.
    let mut outsider = gov(&ch, "sec2", &["security"], "cards");
    let absent = code(outsider.approve(decide("r-none", "security")).await);
    assert_eq!(absent.code(), Code::NotFound);
    let before = server.refusals.take().len();
    let e = code(outsider.approve(decide("r1", "security")).await);
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(e.message(), absent.message().replace("r-none", "r1"));
    let e = code(outsider.reject(decide("r1", "security")).await);
    assert_eq!(e.code(), Code::NotFound);
    let e = code(
        outsider
            .get_approval_request(pb::GetApprovalRequestRequest {
                release: "r1".into(),
                environment: "prod".into(),
            })
            .await,
    );
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(e.message(), absent.message().replace("r-none", "r1"));
    assert_eq!(
        server.refusals.take().len(),
        3,
        "each attempt is recorded (had {before})"
    );

    // CAB decision covers it: the cab requirement is met and not reviewed again.
    gov(&ch, "board", &["cab"], "central")
        .record_cab_decision(pb::RecordCabDecisionRequest {
            decision: Some(pb::CabDecision {
                change_request_id: "CHG0031234".into(),
                approved: true,
                covers: vec![pb::ReleaseEnvironment {
                    release: "r1".into(),
                    environment: "prod".into(),
                }],
                decided_at: Some(ts(now)),
                members: vec!["board-chair".into(), "risk-officer".into()],
                ..Default::default()
            }),
        })
        .await
        .expect("cab");
    let e = code(
        gov(&ch, "member", &["cab"], "central")
            .approve(decide("r1", "cab"))
            .await,
    );
    assert_eq!(e.code(), Code::AlreadyExists);
    assert!(e.message().contains("CHG0031234"), "{e:?}");

    let d = rm
        .check_gate(gate("r1", now_secs() + 1))
        .await
        .expect("gate")
        .into_inner();
    assert!(!d.allowed);
    let missing: Vec<_> = d.reasons.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(missing, vec!["business", "peer-review", "security"]);
    gov(&ch, "sue", &["security"], "payments")
        .approve(decide("r1", "security"))
        .await
        .expect("security");
    gov(&ch, "bob", &["business"], "payments")
        .approve(decide("r1", "business"))
        .await
        .expect("business");
    gov(&ch, "pete", &["developer", "service-owner"], "payments")
        .approve(decide("r1", "peer-review"))
        .await
        .expect("peer review");
    let d = rm
        .check_gate(gate("r1", now_secs() + 1))
        .await
        .expect("gate")
        .into_inner();
    assert!(d.allowed, "{d:?}");

    // A unit's freeze window (release manager) and a platform embargo (compliance officer).
    let e = code(
        rm.create_freeze_window(pb::CreateFreezeWindowRequest {
            window: Some(pb::FreezeWindow {
                name: "all-hands".into(),
                kind: pb::WindowKind::Freeze as i32,
                schedule: Some(pb::freeze_window::Schedule::Once(pb::OnceSchedule {
                    start: Some(ts(now)),
                    end: Some(ts(now + 3600)),
                })),
                ..Default::default()
            }),
        })
        .await,
    );
    assert_eq!(
        e.code(),
        Code::PermissionDenied,
        "platform windows need a central role"
    );
    rm.create_freeze_window(pb::CreateFreezeWindowRequest {
        window: Some(pb::FreezeWindow {
            name: "payments month-end".into(),
            kind: pb::WindowKind::Freeze as i32,
            business_unit: "payments".into(),
            schedule: Some(pb::freeze_window::Schedule::Once(pb::OnceSchedule {
                start: Some(ts(now + 3600)),
                end: Some(ts(now + 7200)),
            })),
            ..Default::default()
        }),
    })
    .await
    .expect("freeze");
    let mut co = gov(&ch, "cora", &["compliance-officer"], "central");
    co.create_freeze_window(pb::CreateFreezeWindowRequest {
        window: Some(pb::FreezeWindow {
            name: "regulator exam".into(),
            kind: pb::WindowKind::Embargo as i32,
            schedule: Some(pb::freeze_window::Schedule::Once(pb::OnceSchedule {
                start: Some(ts(now + 7200)),
                end: Some(ts(now + 10800)),
            })),
            ..Default::default()
        }),
    })
    .await
    .expect("embargo");
    let d = rm
        .check_gate(gate("r1", now + 3700))
        .await
        .expect("gate")
        .into_inner();
    assert_eq!(
        (d.allowed, d.reasons[0].kind, d.reasons[0].subject.as_str()),
        (
            false,
            pb::GateReasonKind::FreezeWindow as i32,
            "payments month-end"
        )
    );
    // A deviation from the embargo: requested by the release manager, approved by compliance.
    let dev = rm
        .request_deviation(pb::RequestDeviationRequest {
            deviation: Some(pb::Deviation {
                rule: pb::GateRule::Embargo as i32,
                release: "r1".into(),
                environment: "prod".into(),
                business_unit: "payments".into(),
                justification: "regulator asked for the fix".into(),
                compensating_controls: vec!["exam team informed".into()],
                expires_at: Some(ts(now + 9000)),
                requester_role: "release-manager".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("deviation")
        .into_inner();
    let e = code(
        gov(&ch, "sue", &["security"], "payments")
            .approve_deviation(pb::DecideDeviationRequest {
                deviation_id: dev.deviation_id.clone(),
                role: "security".into(),
                comment: String::new(),
            })
            .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("compliance-officer"), "{e:?}");
    co.approve_deviation(pb::DecideDeviationRequest {
        deviation_id: dev.deviation_id.clone(),
        role: "compliance-officer".into(),
        comment: "ok for the exam fix".into(),
    })
    .await
    .expect("approve deviation");
    let during = rm
        .check_gate(gate("r1", now + 8000))
        .await
        .expect("gate")
        .into_inner();
    assert!(during.allowed, "{during:?}");
    assert_eq!(during.deviations_used, vec![dev.deviation_id.clone()]);
    let after_expiry = rm
        .check_gate(gate("r1", now + 9500))
        .await
        .expect("gate")
        .into_inner();
    assert!(!after_expiry.allowed);

    // Bad input: unknown ids, malformed ids.
    let e = code(
        co.approve_deviation(pb::DecideDeviationRequest {
            deviation_id: "nope".into(),
            role: "compliance-officer".into(),
            comment: String::new(),
        })
        .await,
    );
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = code(rm.approve(decide("ghost", "security")).await);
    assert_eq!(e.code(), Code::NotFound);

    // Restart on the same store: identical answers.
    let probes = [now, now + 3700, now + 8000, now + 9500];
    let mut before = Vec::new();
    for at in probes {
        before.push(
            rm.check_gate(gate("r1", at))
                .await
                .expect("gate")
                .into_inner(),
        );
    }
    server.stop().await;
    drop(store);
    let store = open_store(&db).await;
    let server = TestServer::start(&GovernanceModule, store).await;
    let ch = server.channel().await;
    let mut rm = gov(&ch, "rita", &["release-manager"], "payments");
    for (at, b) in probes.iter().zip(before) {
        let a = rm
            .check_gate(gate("r1", *at))
            .await
            .expect("gate")
            .into_inner();
        assert_eq!(a, b, "gate at {at} changed after restart");
    }
    server.stop().await;
}

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

/// Raw bytes through gRPC, to send what no generated client would.
#[derive(Clone, Default)]
struct RawCodec;

#[derive(Default)]
struct RawCoder;

impl tonic::codec::Encoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCoder;
    type Decoder = RawCoder;
    fn encoder(&mut self) -> RawCoder {
        RawCoder
    }
    fn decoder(&mut self) -> RawCoder {
        RawCoder
    }
}

/// Bytes that are not the method's message are INVALID_ARGUMENT (not INTERNAL) and change
/// nothing; without a token they are UNAUTHENTICATED before anything is decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_is_invalid_argument() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir.path().join("g.db")).await;
    let server = TestServer::start(&GovernanceModule, store.clone()).await;
    let ch = server.channel().await;
    let call = |token: Option<String>| {
        let ch = ch.clone();
        async move {
            let mut grpc = tonic::client::Grpc::new(ch);
            grpc.ready().await.expect("ready");
            let mut req = tonic::Request::new(vec![0xff, 0xff, 0xff, 0x0f, 0x01]);
            if let Some(t) = token {
                req = testkit::with_token(req, &t);
            }
            grpc.unary::<Vec<u8>, Vec<u8>, _>(
                req,
                http::uri::PathAndQuery::from_static(
                    "/flotilla.governance.v1.GovernanceService/OpenApprovalRequest",
                ),
                RawCodec,
            )
            .await
        }
    };
    let e = call(None).await.expect_err("no token");
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = call(Some(testkit::token(
        "rita",
        &["release-manager"],
        "payments",
    )))
    .await
    .expect_err("garbage");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("decode"), "{e:?}");
    assert_eq!(
        events_of(&store, "flotilla.governance.v1.ApprovalRequestOpened").await,
        0
    );
    server.stop().await;
}

/// The probe that opened a request for payments' ledger as lending, tier 4, without personal
/// data: the lending release manager is refused by unit (the catalog's unit is checked), the
/// payments one is refused with the catalog's facts, and leaving them out opens it as the
/// catalog says, so CheckGate waits for security and a peer review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_facts_are_the_catalogs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir.path().join("g.db")).await;
    let server = TestServer::start(&GovernanceModule, store.clone()).await;
    let ch = server.channel().await;
    let ledger = service("payments", 1, true);
    let mut lie = facts("rel-ledger", "lending", 4, 10, false);
    lie.service = ledger.clone();
    let e = code(
        gov(&ch, "lena", &["release-manager"], "lending")
            .open_approval_request(pb::OpenApprovalRequestRequest {
                release: Some(lie.clone()),
                emergency: false,
            })
            .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("\"payments\""), "{e:?}");
    let mut rm = gov(&ch, "pia", &["release-manager"], "payments");
    let e = code(
        rm.open_approval_request(pb::OpenApprovalRequestRequest {
            release: Some(lie.clone()),
            emergency: false,
        })
        .await,
    );
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message()
            .contains("belongs to unit payments, tier 1, handles personal data"),
        "{e:?}"
    );
    let mut plain = lie;
    plain.business_unit.clear();
    plain.criticality_tier = 0;
    plain.risk_score = 90;
    let opened = rm
        .open_approval_request(pb::OpenApprovalRequestRequest {
            release: Some(plain),
            emergency: false,
        })
        .await
        .expect("opened with the catalog's facts")
        .into_inner();
    let f = opened.release.expect("facts");
    assert_eq!(
        (
            f.business_unit.as_str(),
            f.criticality_tier,
            f.handles_personal_data
        ),
        ("payments", 1, true)
    );
    assert!(!opened.risk_assessed, "a hand-given score is shown as such");
    let roles: Vec<_> = opened
        .requirements
        .iter()
        .map(|r| r.role.as_str())
        .collect();
    assert!(
        roles.contains(&"security") && roles.contains(&"peer-review"),
        "{roles:?}"
    );
    let d = gov(&ch, "aud", &["auditor"], "central")
        .check_gate(pb::CheckGateRequest {
            release: "rel-ledger".into(),
            environment: "prod".into(),
            at: None,
        })
        .await
        .expect("gate")
        .into_inner();
    assert!(!d.allowed);
    // Unknown services are refused.
    let mut ghost = facts("rel-ghost", "payments", 2, 10, false);
    ghost.service = "ghost".into();
    let e = code(
        rm.open_approval_request(pb::OpenApprovalRequestRequest {
            release: Some(ghost),
            emergency: false,
        })
        .await,
    );
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("not in the service catalog"), "{e:?}");
    server.stop().await;
}
