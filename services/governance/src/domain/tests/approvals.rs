//! Approvals with segregation of duties, CAB decisions, facts from the catalog.

use super::*;

#[test]
fn segregation_of_duties_and_one_role_per_person() {
    let mut g = with_catalog();
    let k = key("r1", "prod");
    open(&mut g, facts("r1", "prod", 1, 50, true), false, at(0));
    // tier 1, risk 50: service-owner, security, plus peer review (personal data).
    let author = actor("alice", &["service-owner"], "payments");
    let committer = actor("carol", &["security"], "payments");
    let err = approve(&mut g, &k, &author, "service-owner", at(1)).expect_err("refused");
    assert!(matches!(
        err,
        DomainError::SegregationOfDuties {
            rule: "sod-author-approves",
            ..
        }
    ));
    let err = approve(&mut g, &k, &committer, "security", at(1)).expect_err("refused");
    assert!(matches!(
        err,
        DomainError::SegregationOfDuties {
            rule: "sod-committer-approves",
            ..
        }
    ));
    let both = actor("dave", &["service-owner", "security"], "payments");
    approve(&mut g, &k, &both, "service-owner", at(2)).expect("first role");
    let err = approve(&mut g, &k, &both, "security", at(3)).expect_err("refused");
    assert!(matches!(
        err,
        DomainError::SegregationOfDuties {
            rule: "sod-one-person-one-role",
            ..
        }
    ));
    // A role the caller does not hold, and a role not required.
    let err = approve(
        &mut g,
        &k,
        &actor("erin", &["developer"], "payments"),
        "security",
        at(3),
    )
    .expect_err("refused");
    assert!(matches!(err, DomainError::NotInRole(_)));
    let err = approve(
        &mut g,
        &k,
        &actor("erin", &["business"], "payments"),
        "business",
        at(3),
    )
    .expect_err("refused");
    assert!(matches!(err, DomainError::FailedPrecondition(_)));
    // The violation event names the rule.
    let recorded = g
        .decide(Command::RecordViolation(RecordViolation {
            target: ViolationTarget::Request(k.clone()),
            actor: "alice".into(),
            role: "service-owner".into(),
            rule: "sod-author-approves".into(),
            detail: "x".into(),
            at: at(1),
        }))
        .expect("request exists");
    let e = recorded.events[0].clone();
    assert!(
        matches!(e, Event::SegregationOfDutiesViolated { ref rule, .. } if rule == "sod-author-approves")
    );
    assert_eq!(g.requests[&k].status(&g, at(4)), ApprovalStatus::Pending);
    approve(
        &mut g,
        &k,
        &actor("frank", &["security"], "payments"),
        "security",
        at(4),
    )
    .expect("security");
    approve(
        &mut g,
        &k,
        &actor("gina", &["developer"], "payments"),
        PEER_REVIEW,
        at(5),
    )
    .expect("peer review by a non-author");
    assert_eq!(g.requests[&k].status(&g, at(6)), ApprovalStatus::Approved);
    assert!(g.check_gate(&k, at(6)).allowed);
    // Approved requests take no more decisions and cannot be reopened.
    assert!(
        approve(
            &mut g,
            &k,
            &actor("h", &["security"], "payments"),
            "security",
            at(7)
        )
        .is_err()
    );
}

#[test]
fn cab_decision_satisfies_without_a_second_review() {
    let mut g = with_catalog();
    let k = key("r2", "prod");
    open(&mut g, facts("r2", "prod", 1, 80, false), false, at(0));
    run(
        &mut g,
        Command::RecordCabDecision(RecordCabDecision {
            at: at(10_000),
            decision: CabDecision {
                change_request_id: "CHG0031234".into(),
                approved: true,
                covers: vec![k.clone(), key("r3", "prod")],
                satisfies_roles: vec![],
                members: vec!["board".into()],
                decided_at: at(5),
                recorded_by: "cab-secretary".into(),
                comment: String::new(),
            },
        }),
    )
    .expect("cab");
    let err = approve(
        &mut g,
        &k,
        &actor("board-member", &["cab"], "central"),
        "cab",
        at(6),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("CHG0031234"), "{err}");
    let d = g.check_gate(&k, at(6));
    let missing: Vec<_> = d.reasons.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(missing, vec!["business", "security", "service-owner"]);
    // A request opened after the decision is covered too.
    open(&mut g, facts("r3", "prod", 1, 80, false), false, at(7));
    assert!(
        !g.check_gate(&key("r3", "prod"), at(8))
            .reasons
            .iter()
            .any(|r| r.subject == "cab")
    );
    // The same change request cannot be recorded twice.
    assert!(matches!(
        g.decide(Command::RecordCabDecision(RecordCabDecision {
            at: at(10_000),
            decision: g.cab["CHG0031234"].clone()
        })),
        Err(DomainError::AlreadyExists(_))
    ));
}

/// The lending release manager who opened a request for payments' `ledger` as lending, tier 4,
/// no personal data: refused with the catalog's facts; leaving them out takes the catalog's,
/// so security and a peer review are required; an unknown service and a release id of another
/// unit are refused.
#[test]
fn release_facts_come_from_the_catalog() {
    let mut g = with_catalog();
    run(
        &mut g,
        Command::RecordCatalogService(RecordCatalogService {
            service: CatalogService {
                name: "ledger".into(),
                business_unit: "payments".into(),
                tier: 1,
                personal_data: true,
                owner_team: "core-banking".into(),
            },
            source_event_id: Uuid::now_v7(),
            source_sequence: 1,
        }),
    )
    .expect("catalog");
    let lending_rm = actor("lena", &["release-manager"], "lending");
    let opening = |f: ReleaseFacts, by: &Actor| {
        Command::OpenApprovalRequest(OpenApprovalRequest {
            id: Uuid::now_v7(),
            release: f,
            emergency: false,
            authoritative: false,
            authorized_unit: None,
            by: by.clone(),
            at: at(0),
        })
    };
    let mut lie = facts("ledger-9", "prod", 4, 10, false);
    lie.service = "ledger".into();
    lie.business_unit = "lending".into();
    let err = g
        .decide(opening(lie.clone(), &lending_rm))
        .expect_err("contradicts the catalog");
    let DomainError::FailedPrecondition(m) = &err else {
        panic!("{err:?}")
    };
    assert!(
        m.contains("ledger belongs to unit payments, tier 1, handles personal data"),
        "{m}"
    );
    assert!(g.requests.is_empty(), "nothing was opened");
    // Leaving the facts out takes the catalog's.
    let mut plain = facts("ledger-9", "prod", 0, 90, false);
    plain.service = "ledger".into();
    plain.business_unit = String::new();
    run(
        &mut g,
        opening(plain, &actor("pia", &["release-manager"], "payments")),
    )
    .expect("opened");
    let r = &g.requests[&key("ledger-9", "prod")];
    assert_eq!(
        (
            r.release.business_unit.as_str(),
            r.release.tier,
            r.release.personal_data
        ),
        ("payments", 1, true)
    );
    assert!(r.requirements.iter().any(|q| q.role == "security"));
    assert!(r.requirements.iter().any(|q| q.role == PEER_REVIEW));
    assert!(!r.assessed, "the hand-given risk score is recorded as such");
    // The same release id in another unit's service is refused.
    let mut elsewhere = facts("ledger-9", "staging", 2, 10, false);
    elsewhere.service = service("lending", 2, false);
    elsewhere.business_unit = "lending".into();
    let err = g
        .decide(opening(elsewhere, &lending_rm))
        .expect_err("another unit's id");
    assert!(
        err.to_string().contains("belongs to unit payments"),
        "{err}"
    );
    // The unit the caller was checked against must be the one the request lands in (the
    // catalog may have moved the service since).
    let mut moved = facts("ledger-10", "prod", 0, 10, false);
    moved.service = "ledger".into();
    moved.business_unit = String::new();
    let err = g
        .decide(Command::OpenApprovalRequest(OpenApprovalRequest {
            id: Uuid::now_v7(),
            release: moved,
            emergency: false,
            authoritative: false,
            authorized_unit: Some("lending".into()),
            by: lending_rm.clone(),
            at: at(0),
        }))
        .expect_err("checked against another unit");
    assert!(err.to_string().contains("not lending"), "{err}");
    // Risk-validation's assessment takes the catalog's facts; one for a service not known yet
    // may be tried again later.
    let mut assessed = facts("ledger-11", "prod", 4, 95, false);
    assessed.service = "ledger".into();
    assessed.business_unit = "lending".into();
    run(
        &mut g,
        Command::OpenApprovalRequest(OpenApprovalRequest {
            id: Uuid::now_v7(),
            release: assessed,
            emergency: false,
            authoritative: true,
            authorized_unit: None,
            by: actor("risk-validation", &["scheduler"], ""),
            at: at(0),
        }),
    )
    .expect("assessed");
    let r = &g.requests[&key("ledger-11", "prod")];
    assert_eq!(
        (
            r.release.business_unit.as_str(),
            r.release.tier,
            r.release.personal_data
        ),
        ("payments", 1, true)
    );
    let mut early = facts("new-1", "prod", 2, 10, false);
    early.service = "not-yet".into();
    assert!(matches!(
        g.decide(Command::OpenApprovalRequest(OpenApprovalRequest {
            id: Uuid::now_v7(),
            release: early,
            emergency: false,
            authoritative: true,
            authorized_unit: None,
            by: actor("risk-validation", &["scheduler"], ""),
            at: at(0),
        })),
        Err(DomainError::NotYetKnown(_))
    ));
    // An older word of the catalog (redelivered out of order) never overwrites a newer one.
    let mut older = g.catalog["ledger"].clone();
    older.business_unit = "lending".into();
    let Decision { events, .. } = g
        .decide(Command::RecordCatalogService(RecordCatalogService {
            service: older,
            source_event_id: Uuid::now_v7(),
            source_sequence: 0,
        }))
        .expect("decide");
    assert!(events.is_empty(), "older sequence ignored");
    // A service the catalog does not know.
    let mut unknown = facts("x1", "prod", 2, 10, false);
    unknown.service = "ghost".into();
    let err = g
        .decide(opening(unknown, &lending_rm))
        .expect_err("unknown");
    assert!(
        err.to_string().contains("not in the service catalog"),
        "{err}"
    );
    // The catalog saying the same again records nothing.
    let Decision { events, .. } = g
        .decide(Command::RecordCatalogService(RecordCatalogService {
            service: g.catalog["ledger"].clone(),
            source_event_id: Uuid::now_v7(),
            source_sequence: 2,
        }))
        .expect("decide");
    assert!(events.is_empty());
}
