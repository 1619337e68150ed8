//! Given/when/then: the decider alone, from recorded events to the events a command decides.

use super::*;

fn catalog_event() -> (StreamId, Event) {
    let service = crate::testing::every_kind(&["payments"])
        .into_iter()
        .find(|s| s.tier == 3 && !s.personal_data)
        .expect("service");
    (
        StreamKey::CatalogService(service.name.clone()).stream(),
        Event::CatalogServiceRecorded {
            service,
            source_event_id: Uuid::from_u128(1),
            source_sequence: 1,
        },
    )
}

fn opened() -> Command {
    Command::OpenApprovalRequest(OpenApprovalRequest {
        id: Uuid::from_u128(2),
        release: facts("r1", "prod", 3, 10, false),
        emergency: false,
        authoritative: false,
        authorized_unit: Some("payments".into()),
        by: actor("rita", &["release-manager"], "payments"),
        at: at(0),
    })
}

#[test]
fn an_approval_is_decided_on_the_request_and_recorded_on_its_stream() {
    let s = Scenario::<Governance>::given([catalog_event()])
        .as_of("rita", "payments", at(0))
        .when(opened())
        .then_on(&StreamKey::Approval(key("r1", "prod")).stream(), |events| {
            assert!(matches!(events, [Event::ApprovalRequestOpened(r)]
                if r.requirements == vec![RoleRequirement { role: "service-owner".into(), count: 1 }]));
        });
    assert_eq!(s.requests[&key("r1", "prod")].opened_by, "rita");
    s.as_of("olga", "payments", at(5))
        .when(Command::Approve(Approve {
            key: key("r1", "prod"),
            role: "service-owner".into(),
            comment: String::new(),
            by: actor("olga", &["service-owner"], "payments"),
            at: at(5),
        }))
        .then(vec![Event::ApprovalGranted {
            request_id: Uuid::from_u128(2),
            approval: Approval {
                approver: "olga".into(),
                role: "service-owner".into(),
                comment: String::new(),
                at: at(5),
                valid_until: None,
            },
        }]);
}

#[test]
fn the_author_and_the_opener_may_not_approve() {
    let s = Scenario::<Governance>::given([catalog_event()])
        .as_of("rita", "payments", at(0))
        .when(opened())
        .then_on(&StreamKey::Approval(key("r1", "prod")).stream(), |_| {});
    let approve = |who: &str| {
        Command::Approve(Approve {
            key: key("r1", "prod"),
            role: "service-owner".into(),
            comment: String::new(),
            by: actor(who, &["service-owner"], "payments"),
            at: at(1),
        })
    };
    let s = s.when(approve("alice")).then_refused(|e| {
        matches!(
            e,
            DomainError::SegregationOfDuties {
                rule: "sod-author-approves",
                ..
            }
        )
    });
    s.when(approve("rita")).then_refused(|e| {
        matches!(
            e,
            DomainError::SegregationOfDuties {
                rule: "sod-opener-approves",
                ..
            }
        )
    });
}

#[test]
fn a_decision_reads_the_policy_and_the_catalog_it_decided_on() {
    let d = Scenario::<Governance>::given([catalog_event()])
        .when(opened())
        .decision()
        .expect("opened");
    assert!(d.read.contains(&StreamKey::Policy.stream()));
    assert!(d.read.contains(&catalog_event().0));
}

#[test]
fn a_deadline_is_recorded_once() {
    let s = Scenario::<Governance>::given([catalog_event()])
        .when(opened())
        .then_on(&StreamKey::Approval(key("r1", "prod")).stream(), |_| {});
    let due = at(24 * 60 * 30);
    let escalate = || {
        Command::RecordDeadline(RecordDeadline {
            key: StreamKey::Approval(key("r1", "prod")),
            now: due,
        })
    };
    let s =
        s.when(escalate())
            .then_on(&StreamKey::Approval(key("r1", "prod")).stream(), |events| {
                assert!(matches!(events, [Event::ApprovalRequestExpired { .. }]));
            });
    s.when(escalate()).then(vec![]);
}
