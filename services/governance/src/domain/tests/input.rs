//! Bad input is refused and changes nothing; rules found in second readings.

use super::*;

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let g = with_catalog();
    let mut f = facts("r1", "prod", 1, 50, false);
    f.version = "not-a-version".into();
    let c = |f: ReleaseFacts| {
        Command::OpenApprovalRequest(OpenApprovalRequest {
            id: Uuid::nil(),
            release: f,
            emergency: false,
            authoritative: false,
            authorized_unit: None,
            by: actor("rm", &["release-manager"], "payments"),
            at: at(0),
        })
    };
    assert!(matches!(g.decide(c(f)), Err(DomainError::Invalid { .. })));
    let mut f = facts("r1", "prod", 1, 50, false);
    f.author = String::new();
    assert!(matches!(g.decide(c(f)), Err(DomainError::Invalid { .. })));
    let mut f = facts("r1", "prod", 1, 50, false);
    f.release = "x".repeat(129);
    assert!(matches!(g.decide(c(f)), Err(DomainError::Invalid { .. })));
    assert!(matches!(
        g.decide(Command::Approve(Approve {
            key: key("r1", "prod"),
            role: "security".into(),
            comment: String::new(),
            by: actor("x", &["security"], "p"),
            at: at(0)
        })),
        Err(DomainError::NotFound(_))
    ));
}

#[test]
fn second_reading_rules_hold() {
    let mut g = with_catalog();
    let k = key("r5", "prod");
    open(&mut g, facts("r5", "prod", 1, 80, true), false, at(0));
    let cab = |id: &str, approved: bool, roles: Vec<String>, members: Vec<String>| {
        Command::RecordCabDecision(RecordCabDecision {
            at: at(10_000),
            decision: CabDecision {
                change_request_id: id.into(),
                approved,
                covers: vec![key("r5", "prod")],
                satisfies_roles: roles,
                members,
                decided_at: at(1),
                recorded_by: "sec".into(),
                comment: String::new(),
            },
        })
    };
    // A CAB decision satisfies the cab requirement only, and not with the author on the board.
    assert!(matches!(
        g.decide(cab("CHG1", true, vec!["security".into()], vec![])),
        Err(DomainError::Invalid { .. })
    ));
    assert!(matches!(
        g.decide(cab("CHG1", true, vec![], vec!["alice".into()])),
        Err(DomainError::SegregationOfDuties {
            rule: "sod-cab-member-authored",
            ..
        })
    ));
    // A CAB refusal is a rejection nothing waives.
    run(&mut g, cab("CHG2", false, vec![], vec!["board".into()])).expect("refusal recorded");
    assert_eq!(g.requests[&k].status(&g, at(2)), ApprovalStatus::Rejected);
    let d = g.check_gate(&k, at(2));
    assert!(
        d.reasons
            .iter()
            .any(|r| r.kind == GateReasonKind::Rejected && r.subject == "CHG2")
    );

    // Risk-validation's facts supersede a pending request opened with others.
    let mut g = with_catalog();
    open(&mut g, facts("r6", "prod", 1, 5, true), false, at(0));
    let k = key("r6", "prod");
    let mut real = facts("r6", "prod", 1, 90, true);
    real.author = "mallory".into();
    let supersede = |f: ReleaseFacts, authoritative: bool| {
        Command::OpenApprovalRequest(OpenApprovalRequest {
            id: Uuid::from_u128(99),
            release: f,
            emergency: false,
            authoritative,
            authorized_unit: None,
            by: actor("risk-validation", &["scheduler"], ""),
            at: at(1),
        })
    };
    assert!(matches!(
        g.decide(supersede(real.clone(), false)),
        Err(DomainError::AlreadyExists(_))
    ));
    run(&mut g, supersede(real.clone(), true)).expect("superseded");
    assert_eq!(g.requests[&k].release.author, "mallory");
    assert_eq!(g.requests[&k].requirements.len(), 5);
    assert!(
        matches!(
            g.decide(supersede(real, true)),
            Err(DomainError::AlreadyExists(_))
        ),
        "the same facts again change nothing"
    );
    // The opener may not approve.
    let err = approve(
        &mut g,
        &k,
        &actor("risk-validation", &["security"], "payments"),
        "security",
        at(2),
    )
    .expect_err("refused");
    assert!(matches!(
        err,
        DomainError::SegregationOfDuties {
            rule: "sod-opener-approves",
            ..
        }
    ));

    // An emergency flag differing from the assessment is superseded too, and once assessed a
    // release cannot be reopened by hand with other facts.
    let mut urgent = g.requests[&k].release.clone();
    urgent.author = "mallory".into();
    assert!(
        g.decide(Command::OpenApprovalRequest(OpenApprovalRequest {
            id: Uuid::from_u128(100),
            release: urgent.clone(),
            emergency: true,
            authoritative: true,
            authorized_unit: None,
            by: actor("risk-validation", &["scheduler"], ""),
            at: at(1),
        }))
        .is_ok()
    );
    run(
        &mut g,
        Command::Reject(Reject {
            key: k.clone(),
            role: "security".into(),
            comment: "no".into(),
            by: actor("sec", &["security"], "payments"),
            at: at(2),
        }),
    )
    .expect("rejected");
    let mut softer = urgent;
    softer.tier = 4;
    assert!(matches!(
        g.decide(Command::OpenApprovalRequest(OpenApprovalRequest {
            id: Uuid::from_u128(101),
            release: softer,
            emergency: false,
            authoritative: false,
            authorized_unit: None,
            by: actor("rm", &["release-manager"], "payments"),
            at: at(3),
        })),
        Err(DomainError::FailedPrecondition(_))
    ));
    // Only compliance officers set or lift embargoes; a unit's deviation cannot serve another unit.
    let mut g = with_catalog();
    let mut w = window(
        "exam",
        WindowKind::Embargo,
        Schedule::Once {
            start: at(0),
            end: at(100),
        },
        WindowScope::default(),
    );
    if let Command::CreateFreezeWindow(c) = &mut w {
        c.by = actor("rm", &["release-manager"], "payments");
    }
    assert!(matches!(g.decide(w), Err(DomainError::NotInRole(_))));
    open(&mut g, facts("r7", "prod", 3, 10, true), false, at(0));
    let dev = |bu: &str, rule: GateRule| {
        Command::RequestDeviation(RequestDeviation {
            deviation: Deviation {
                id: Uuid::from_u128(5),
                rule,
                release: "r7".into(),
                environment: "prod".into(),
                business_unit: bu.into(),
                justification: "hotfix".into(),
                compensating_controls: vec!["pairing".into()],
                expires_at: at(500),
                requested_by: "rm".into(),
                requester_role: "release-manager".into(),
                status: DeviationStatus::Requested,
                decided_by: String::new(),
                decider_role: String::new(),
                comment: String::new(),
                decided_at: None,
            },
            at: at(1),
        })
    };
    assert!(matches!(
        g.decide(dev("cards", GateRule::Approvals)),
        Err(DomainError::Invalid { .. })
    ));
    run(&mut g, dev("payments", GateRule::Approvals)).expect("own unit");
    run(
        &mut g,
        Command::DecideDeviation(DecideDeviation {
            id: Uuid::from_u128(5),
            approve: true,
            role: "security".into(),
            comment: String::new(),
            by: actor("sec", &["security"], "payments"),
            at: at(2),
        }),
    )
    .expect("approved");
    // An approvals deviation waives the service-owner approval, never the peer review.
    let d = g.check_gate(&key("r7", "prod"), at(3));
    assert!(!d.allowed);
    let waived: Vec<_> = d
        .reasons
        .iter()
        .map(|r| (r.subject.as_str(), r.waived_by.is_some()))
        .collect();
    assert_eq!(
        waived,
        vec![("peer-review", false), ("service-owner", true)]
    );
}
