//! Every stored governance event type has a golden file (`tests/golden/<type>.v<version>.bin`,
//! the payload as recorded): today's encoding must produce exactly those bytes, the file must
//! decode to the event, and the files replayed through the app rebuild the state they describe.
//! Events recorded under a type name this build no longer writes (the access policy contract
//! before it moved to `flotilla.common.v1`) keep their files and must still decode.
//!
//! A new event type: add a sample below and record its file with `FLOTILLA_BLESS=1`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use flotilla_core::decider::StoredEvents;
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_core::{ExpectedVersion, MemoryStore};
use flotilla_governance::GovernanceModule;
use flotilla_governance::app::GovernanceApp;
use flotilla_governance::codec::GovernanceEvents;
use flotilla_governance::domain::*;
use flotilla_runtime::testkit::TestServer;
use uuid::Uuid;

const T: Timestamp = Timestamp(1_793_577_600_000_000);

fn at(minutes: i64) -> Timestamp {
    Timestamp(T.0 + minutes * 60_000_000)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 + n)
}

fn facts() -> ReleaseFacts {
    ReleaseFacts {
        release: "r-42".into(),
        version: "2.3.0".into(),
        environment: "prod".into(),
        service: "ledger".into(),
        business_unit: "payments".into(),
        tier: 1,
        risk_score: 72,
        personal_data: true,
        author: "ann".into(),
        committers: vec!["cid".into(), "dee".into()],
    }
}

fn policy() -> PolicyDocument {
    PolicyDocument {
        approval_rules: vec![ApprovalRule {
            tier: 1,
            min_risk: 0,
            max_risk: 100,
            requirements: vec![RoleRequirement {
                role: "security".into(),
                count: 2,
            }],
            business_unit: "payments".into(),
            environments: vec!["prod".into()],
        }],
        naming: NamingRule {
            scheme: VersionScheme::Calver("YYYY.MM.MICRO".into()),
        },
        rollback_criteria: vec![RollbackCriteria {
            tier: 1,
            decision_minutes: 15,
            thresholds: vec![RollbackThreshold {
                metric: "error_rate".into(),
                greater_than: true,
                value: 0.05,
            }],
            notify: vec!["release-manager".into()],
        }],
        decision_deadline_minutes: 60,
        expire_after_minutes: 1440,
        escalate_to: vec!["cab-chair".into()],
        approval_validity_minutes: 720,
    }
}

/// One sample of every event governance records, as decoding gives it back (fields that are
/// not stored, such as who opened a request, come from the envelope and are left empty).
fn samples() -> Vec<Event> {
    let request = id(1);
    let deviation = id(2);
    let rollback = id(3);
    let window = id(4);
    vec![
        Event::PolicySet {
            version: 3,
            policy: policy(),
            at: at(0),
        },
        Event::ApprovalRequestOpened(Box::new(ApprovalRequest {
            id: request,
            release: facts(),
            requirements: vec![RoleRequirement {
                role: "security".into(),
                count: 2,
            }],
            approvals: Vec::new(),
            opened_at: at(1),
            opened_by: String::new(),
            due_at: at(61),
            expires_at: at(1441),
            escalate_to: vec!["cab-chair".into()],
            validity_minutes: 720,
            policy_version: 3,
            emergency: false,
            assessed: true,
            escalated: false,
            expired: false,
            rejection: None,
            rejected_at: None,
            version: 0,
        })),
        Event::ApprovalGranted {
            request_id: request,
            approval: Approval {
                approver: "sam".into(),
                role: "security".into(),
                comment: "looked at the diff".into(),
                at: at(5),
                valid_until: Some(at(725)),
            },
        },
        Event::ApprovalRejected {
            request_id: request,
            approver: "sue".into(),
            role: "security".into(),
            comment: "no rollback plan".into(),
            at: at(6),
        },
        Event::ApprovalEscalated {
            request_id: request,
            at: at(61),
            notify: vec!["cab-chair".into()],
        },
        Event::ApprovalRequestExpired {
            request_id: request,
            at: at(1441),
        },
        Event::SegregationOfDutiesViolated {
            request_id: request,
            actor: "ann".into(),
            role: "security".into(),
            rule: "sod-author-approves".into(),
            detail: "ann is the author of release r-42 and may not approve it".into(),
            at: at(2),
        },
        Event::CabDecisionRecorded(CabDecision {
            change_request_id: "CHG0031234".into(),
            approved: true,
            covers: vec![ReleaseEnv {
                release: "r-42".into(),
                environment: "prod".into(),
            }],
            satisfies_roles: vec!["cab".into()],
            members: vec!["bob".into(), "bea".into()],
            decided_at: at(3),
            recorded_by: "board".into(),
            comment: "weekly CAB".into(),
        }),
        Event::FreezeWindowCreated(FreezeWindow {
            id: window,
            name: "year-end close".into(),
            kind: WindowKind::Embargo,
            scope: WindowScope {
                business_units: vec!["payments".into()],
                environments: vec!["prod".into()],
                tiers: vec![1, 2],
            },
            schedule: Schedule::Monthly(MonthlySchedule {
                months: vec![12],
                day: -2,
                start_minute: 1080,
                duration_minutes: 2880,
            }),
            reason: "ledger close".into(),
            created_by: "cora".into(),
            created_at: at(0),
            business_unit: "payments".into(),
            cancelled: false,
            cancelled_at: None,
        }),
        Event::FreezeWindowCancelled {
            window_id: window,
            reason: "close moved".into(),
            at: at(30),
        },
        Event::DeviationRequested {
            deviation: Deviation {
                id: deviation,
                rule: GateRule::Embargo,
                release: "r-42".into(),
                environment: "prod".into(),
                business_unit: "payments".into(),
                justification: "regulatory fix due by law".into(),
                compensating_controls: vec!["pair deploy".into(), "on-call DBA".into()],
                expires_at: at(600),
                requested_by: "rita".into(),
                requester_role: "release-manager".into(),
                status: DeviationStatus::Requested,
                decided_by: String::new(),
                decider_role: String::new(),
                comment: String::new(),
                decided_at: None,
            },
            at: at(10),
        },
        Event::DeviationApproved {
            deviation_id: deviation,
            approver: "cora".into(),
            role: "compliance-officer".into(),
            comment: "controls suffice".into(),
            at: at(11),
        },
        Event::DeviationRejected {
            deviation_id: deviation,
            approver: "cora".into(),
            role: "compliance-officer".into(),
            comment: "not without a DBA".into(),
            at: at(12),
        },
        Event::DeviationExpired {
            deviation_id: deviation,
            at: at(600),
        },
        Event::RollbackDecisionOpened(RollbackDecision {
            id: rollback,
            release: "r-42".into(),
            environment: "prod".into(),
            service: "ledger".into(),
            business_unit: "payments".into(),
            tier: 1,
            metric: "error_rate".into(),
            observed: 0.12,
            opened_at: at(20),
            decide_by: at(35),
            notify: vec!["release-manager".into()],
            status: RollbackStatus::Pending,
            overdue: false,
            decided_by: String::new(),
            comment: String::new(),
        }),
        Event::RollbackDecided {
            decision_id: rollback,
            roll_back: true,
            decided_by: "rita".into(),
            comment: "errors doubled".into(),
            at: at(25),
        },
        Event::RollbackDecisionOverdue {
            decision_id: rollback,
            at: at(36),
            notify: vec!["release-manager".into()],
        },
        Event::AccessPolicyReplaced {
            version: 2,
            policy: "permit (principal, action, resource);\n".into(),
            sha256: "5d2a6a7c8f0e1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4".into(),
            at: at(40),
            signed: PolicySignature {
                namespace: "acme".into(),
                signature: "c2lnbmF0dXJl".into(),
                signing_key: "a2V5".into(),
            },
        },
        Event::CatalogServiceRecorded {
            service: CatalogService {
                name: "ledger".into(),
                business_unit: "payments".into(),
                tier: 1,
                personal_data: true,
                owner_team: "core-banking".into(),
            },
            source_event_id: id(9),
            source_sequence: 77,
        },
        Event::FmeaActionsRecorded {
            release: "ledger-2.4.0".into(),
            business_unit: "payments".into(),
            open_actions: vec!["double charge".into()],
            at: at(12),
            source_event_id: id(10),
        },
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn file_of(ty: &str, version: u32) -> PathBuf {
    dir().join(format!("{ty}.v{version}.bin"))
}

/// Types recorded by earlier builds under names this one no longer writes.
const RETIRED: &[(&str, &str)] = &[(
    "flotilla.governance.v1.AccessPolicyReplaced",
    "flotilla.common.v1.AccessPolicyReplaced",
)];

#[test]
fn every_event_type_encodes_as_recorded_and_decodes() {
    let codec = GovernanceEvents;
    let mut written = BTreeSet::new();
    for sample in samples() {
        let (ty, version, payload) = codec.encode(&sample);
        flotilla_core::testing::golden(&file_of(&ty, version), &payload);
        let stored = std::fs::read(file_of(&ty, version)).expect("golden file");
        let decoded = codec.decode(&ty, version, &stored).expect("decodes");
        assert_eq!(decoded.as_ref(), Some(&sample), "{ty}");
        written.insert(format!("{ty}.v{version}.bin"));
    }
    assert_eq!(written.len(), samples().len(), "one sample per event type");
    // Retired names: the bytes of today's successor, recorded under the old name.
    for (old, new) in RETIRED {
        let successor = std::fs::read(file_of(new, 1)).expect("successor's golden file");
        flotilla_core::testing::golden(&file_of(old, 1), &successor);
        let decoded = codec
            .decode(old, 1, &std::fs::read(file_of(old, 1)).expect("file"))
            .expect("decodes");
        assert!(matches!(decoded, Some(Event::AccessPolicyReplaced { .. })));
        written.insert(format!("{old}.v1.bin"));
    }
    // No golden file without a sample (a type must not silently lose its test).
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .expect("golden dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(on_disk, written);
}

/// The golden files, appended to a store as they were recorded, replay into the state they
/// describe (nothing refused, whatever today's API rules are).
#[tokio::test]
async fn golden_files_replay() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let codec = GovernanceEvents;
    for sample in samples() {
        let (ty, version, _) = codec.encode(&sample);
        let payload = std::fs::read(file_of(&ty, version)).expect("golden file");
        let stream = match &sample {
            Event::PolicySet { .. } => StreamKey::Policy,
            Event::AccessPolicyReplaced { .. } => StreamKey::AccessPolicy,
            Event::CatalogServiceRecorded { service, .. } => {
                StreamKey::CatalogService(service.name.clone())
            }
            Event::FmeaActionsRecorded { release, .. } => StreamKey::Fmea(release.clone()),
            Event::CabDecisionRecorded(d) => StreamKey::Cab(d.change_request_id.clone()),
            Event::FreezeWindowCreated(w) => StreamKey::Window(w.id),
            Event::FreezeWindowCancelled { window_id, .. } => StreamKey::Window(*window_id),
            Event::DeviationRequested { deviation, .. } => StreamKey::Deviation(deviation.id),
            Event::DeviationApproved { deviation_id, .. }
            | Event::DeviationRejected { deviation_id, .. }
            | Event::DeviationExpired { deviation_id, .. } => StreamKey::Deviation(*deviation_id),
            Event::RollbackDecisionOpened(d) => StreamKey::Rollback(d.id),
            Event::RollbackDecided { decision_id, .. }
            | Event::RollbackDecisionOverdue { decision_id, .. } => {
                StreamKey::Rollback(*decision_id)
            }
            _ => StreamKey::Approval(facts().key()),
        };
        store
            .append(AppendRequest::new(
                stream.stream(),
                ExpectedVersion::Any,
                vec![NewEvent::new(
                    ty,
                    version,
                    payload,
                    Metadata::by("rita", "payments"),
                )],
            ))
            .await
            .expect("append");
    }
    let ctx = TestServer::context(&GovernanceModule, store);
    let (app, _) = GovernanceApp::start(&ctx).await.expect("replays");
    assert!(ctx.chain.broken().is_none());
    app.query(|g| {
        assert_eq!(g.policy_version, 3);
        assert_eq!(g.policy_set_by.get(&3).map(String::as_str), Some("rita"));
        let r = &g.requests[&facts().key()];
        assert_eq!(r.opened_by, "rita", "who opened it comes from the envelope");
        assert_eq!(r.approvals.len(), 1);
        assert!(r.escalated && r.expired && r.rejection.is_some());
        assert!(g.windows[&id(4)].cancelled);
        assert_eq!(g.deviations[&id(2)].status, DeviationStatus::Expired);
        assert_eq!(g.rollbacks[&id(3)].status, RollbackStatus::RollBack);
        assert_eq!(g.access_policy.as_ref().map(|p| p.0), Some(2));
        assert_eq!(g.catalog["ledger"].owner_team, "core-banking");
        assert!(g.cab.contains_key("CHG0031234"));
    });
}

/// What an older, looser rule accepted replays, whatever the API refuses today: a window
/// without a schedule or creation time, a catalog tier out of range, facts the API would
/// refuse.
#[tokio::test]
async fn what_older_rules_accepted_replays() {
    use flotilla_proto::governance::v1 as pb;
    use prost::Message;
    let window = pb::FreezeWindowCreated {
        window: Some(pb::FreezeWindow {
            window_id: id(50).to_string(),
            name: "old\twindow".into(),
            kind: 0,
            ..Default::default()
        }),
    };
    let catalog = pb::CatalogServiceRecorded {
        service: "Legacy Ledger".into(),
        business_unit: "payments".into(),
        criticality_tier: 9,
        source_event_id: id(51).to_string(),
        ..Default::default()
    };
    let opened = pb::ApprovalRequestOpened {
        request_id: id(52).to_string(),
        release: Some(pb::ReleaseFacts {
            release: "r old".into(),
            environment: "prod".into(),
            criticality_tier: 0,
            risk_score: 300,
            ..Default::default()
        }),
        ..Default::default()
    };
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    for (stream, ty, payload) in [
        (
            StreamKey::Window(id(50)),
            "flotilla.governance.v1.FreezeWindowCreated",
            window.encode_to_vec(),
        ),
        (
            StreamKey::CatalogService("Legacy Ledger".into()),
            "flotilla.governance.v1.CatalogServiceRecorded",
            catalog.encode_to_vec(),
        ),
        (
            StreamKey::Approval(ReleaseEnv {
                release: "r old".into(),
                environment: "prod".into(),
            }),
            "flotilla.governance.v1.ApprovalRequestOpened",
            opened.encode_to_vec(),
        ),
    ] {
        store
            .append(AppendRequest::new(
                stream.stream(),
                ExpectedVersion::NoStream,
                vec![NewEvent::new(ty, 1, payload, Metadata::by("old-build", ""))],
            ))
            .await
            .expect("append");
    }
    let ctx = TestServer::context(&GovernanceModule, store.clone());
    let (app, _) = GovernanceApp::start(&ctx).await.expect("replays");
    assert!(ctx.chain.broken().is_none(), "nothing unreadable");
    app.query(|g| {
        let w = &g.windows[&id(50)];
        assert!(w.created_at.0 > 0, "created when it was recorded");
        assert_eq!(w.name, "old\twindow");
        assert_eq!(g.catalog["Legacy Ledger"].tier, 9);
        assert_eq!(g.requests.len(), 1);
    });
}
