//! Input governance must refuse, with the field named and the right code, appending nothing:
//! policies naming roles nobody holds or with overlapping bands, names with control, invisible
//! or reserved characters, unbounded and repeated lists, CAB decisions from the future, unknown
//! filter values, and another unit's lists.

use flotilla_governance::GovernanceModule;
use flotilla_proto::governance::v1 as pb;
use flotilla_runtime::testkit::TestServer;
use tonic::Code;

mod support;
use support::*;

fn rule(tier: u32, min: u32, max: u32, role: &str) -> pb::ApprovalRule {
    pb::ApprovalRule {
        tier,
        min_risk: min,
        max_risk: max,
        requirements: vec![pb::RoleRequirement {
            role: role.into(),
            count: 1,
        }],
        business_unit: String::new(),
        environments: vec![],
    }
}

/// Rules that partition 0-100 for every tier, with `role` required.
fn partition(role: &str) -> Vec<pb::ApprovalRule> {
    (1..=4).map(|t| rule(t, 0, 100, role)).collect()
}

fn policy(rules: Vec<pb::ApprovalRule>) -> pb::SetPolicyRequest {
    pb::SetPolicyRequest {
        policy: Some(pb::PolicyDocument {
            approval_rules: rules,
            decision_deadline_minutes: 60,
            expire_after_minutes: 120,
            ..Default::default()
        }),
        expected_version: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_precisely_and_appends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir.path().join("g.db")).await;
    let server = TestServer::start(&GovernanceModule, store.clone()).await;
    let ch = server.channel().await;
    let mut admin = gov(&ch, "root", &["admin"], "central");
    let head = store.head().await.expect("head").position;

    // Policies: roles nobody holds, overlapping bands, duplicates, empty rules, floods.
    let e = code(admin.set_policy(policy(partition("janitor"))).await);
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("janitor") && e.message().contains("release-manager"),
        "{e:?}"
    );
    let mut overlapping = partition("security");
    overlapping.push(rule(2, 40, 60, "business"));
    let e = code(admin.set_policy(policy(overlapping)).await);
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("overlaps"), "{e:?}");
    let mut empty = partition("security");
    empty[0].requirements.clear();
    let e = code(admin.set_policy(policy(empty)).await);
    assert!(e.message().contains("requires no approval"), "{e:?}");
    let mut twice = partition("security");
    let again = twice[1].requirements[0].clone();
    twice[1].requirements.push(again);
    let e = code(admin.set_policy(policy(twice)).await);
    assert!(e.message().contains("repeats"), "{e:?}");
    let flood = (0..10_000).map(|_| rule(1, 0, 100, "security")).collect();
    let e = code(admin.set_policy(policy(flood)).await);
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("at most 500"), "{e:?}");
    let mut escalate = policy(partition("security"));
    if let Some(p) = escalate.policy.as_mut() {
        p.escalate_to = vec!["night-watch".into()];
    }
    let e = code(admin.set_policy(escalate).await);
    assert!(e.message().contains("night-watch"), "{e:?}");
    admin
        .set_policy(policy(partition("security")))
        .await
        .expect("a partition of known roles is fine");

    // Names: one rule for units, environments and ids.
    let mut rm = gov(&ch, "rita", &["release-manager"], "payments");
    for (field, change) in [
        (
            "release.environment",
            (|f: &mut pb::ReleaseFacts| f.environment = "prod\n".into())
                as fn(&mut pb::ReleaseFacts),
        ),
        ("release.release", |f| f.release = "r\u{200b}1".into()),
        ("release.release", |f| f.release = "r\u{0}1".into()),
        ("release.business_unit", |f| {
            f.business_unit = "*platform*".into()
        }),
        ("release.environment", |f| {
            f.environment = "pro\u{202e}d".into()
        }),
        ("release.release", |f| f.release = "x".repeat(300_000)),
    ] {
        let mut f = facts("r1", "payments", 2, 10, false);
        change(&mut f);
        let e = code(
            rm.open_approval_request(pb::OpenApprovalRequestRequest {
                release: Some(f),
                emergency: false,
            })
            .await,
        );
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().starts_with(field), "{field}: {e:?}");
        assert!(
            e.message().len() < 400,
            "never echoed whole: {} bytes",
            e.message().len()
        );
    }
    let e = code(
        gov(&ch, "aud", &["auditor"], "central")
            .check_gate(pb::CheckGateRequest {
                release: "r1".into(),
                environment: "prod\n".into(),
                at: None,
                emergency: None,
            })
            .await,
    );
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("environment"), "{e:?}");

    // An empty role names its field.
    rm.open_approval_request(pb::OpenApprovalRequestRequest {
        release: Some(facts("r1", "payments", 2, 10, false)),
        emergency: false,
    })
    .await
    .expect("open");
    let e = code(
        gov(&ch, "sam", &["security"], "payments")
            .approve(decide("r1", ""))
            .await,
    );
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("role"), "{e:?}");

    // A CAB decision from the future.
    let e = code(
        gov(&ch, "cara", &["cab"], "central")
            .record_cab_decision(pb::RecordCabDecisionRequest {
                decision: Some(pb::CabDecision {
                    change_request_id: "CHG1".into(),
                    approved: true,
                    covers: vec![pb::ReleaseEnvironment {
                        release: "r1".into(),
                        environment: "prod".into(),
                    }],
                    members: vec!["board".into()],
                    decided_at: Some(ts(now_secs() + 86_400)),
                    ..Default::default()
                }),
            })
            .await,
    );
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("decision.decided_at") && e.message().contains("future"),
        "{e:?}"
    );

    // Lists: capped and without repeats.
    let window = |units: Vec<String>| pb::CreateFreezeWindowRequest {
        window: Some(pb::FreezeWindow {
            name: "close".into(),
            kind: pb::WindowKind::Freeze as i32,
            scope: Some(pb::WindowScope {
                business_units: units,
                environments: vec![],
                tiers: vec![],
            }),
            schedule: Some(pb::freeze_window::Schedule::Once(pb::OnceSchedule {
                start: Some(ts(now_secs() + 3_600)),
                end: Some(ts(now_secs() + 7_200)),
            })),
            ..Default::default()
        }),
    };
    let e = code(
        admin
            .create_freeze_window(window((0..500).map(|i| format!("u{i}")).collect()))
            .await,
    );
    assert!(e.message().contains("at most 100"), "{e:?}");
    let e = code(
        admin
            .create_freeze_window(window(vec!["payments".into(), "payments".into()]))
            .await,
    );
    assert!(e.message().contains("repeats"), "{e:?}");
    let e = code(
        rm.request_deviation(pb::RequestDeviationRequest {
            deviation: Some(pb::Deviation {
                rule: pb::GateRule::Approvals as i32,
                release: "r1".into(),
                environment: "prod".into(),
                business_unit: "payments".into(),
                justification: "outage".into(),
                compensating_controls: vec!["pairing".into(), "pairing".into()],
                expires_at: Some(ts(now_secs() + 3_600)),
                requester_role: "release-manager".into(),
                ..Default::default()
            }),
        })
        .await,
    );
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("compensating_controls"), "{e:?}");

    // Filters: an unknown status is refused; another unit's list is refused the same way for
    // every list.
    let e = code(
        rm.list_approval_requests(pb::ListApprovalRequestsRequest {
            status: 99,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("status"), "{e:?}");
    let e = code(
        rm.list_deviations(pb::ListDeviationsRequest {
            business_unit: "cards".into(),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = code(
        rm.list_rollback_decisions(pb::ListRollbackDecisionsRequest {
            business_unit: "cards".into(),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = code(
        rm.list_approval_requests(pb::ListApprovalRequestsRequest {
            business_unit: "cards".into(),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // Only the policy and the one request were appended (and the refusals recorded apart).
    let appended: Vec<String> = store
        .read_all(head + 1, 1_000)
        .await
        .expect("read")
        .into_iter()
        .filter(|e| e.stream_id.as_str() != "access-refusals")
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        appended,
        vec![
            "flotilla.governance.v1.PolicySet",
            "flotilla.governance.v1.ApprovalRequestOpened"
        ]
    );
    server.stop().await;
}
