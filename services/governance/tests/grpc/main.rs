//! Governance over gRPC on a real SQLite store, behind the access interceptor: the approval flow
//! with segregation of duties, CAB reuse, windows, embargo and deviations, and identical gate
//! answers after a restart on the same store; malformed input; release facts from the catalog.
//! Access (who may call what, policy replacement) is in `access`.

use flotilla_governance::GovernanceModule;
use flotilla_proto::governance::v1 as pb;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::testkit::{self, TestServer};
use tonic::Code;

#[path = "../support/mod.rs"]
mod support;
use support::*;

mod access;

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
            emergency: None,
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
