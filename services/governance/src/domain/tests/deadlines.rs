//! Escalations, expiries and overdue rollback decisions.

use super::*;

#[test]
fn deadlines_escalate_then_expire_and_gate_reports_every_reason() {
    let mut g = with_catalog();
    let p = PolicyDocument {
        decision_deadline_minutes: 60,
        expire_after_minutes: 120,
        approval_validity_minutes: 30,
        ..PolicyDocument::default()
    };
    run(
        &mut g,
        Command::SetPolicy(SetPolicy {
            known_roles: roles(),
            policy: p,
            expected_version: 0,
            at: at(0),
        }),
    )
    .expect("policy");
    assert!(matches!(
        g.decide(Command::SetPolicy(SetPolicy {
            known_roles: roles(),
            policy: PolicyDocument::default(),
            expected_version: 0,
            at: at(0)
        })),
        Err(DomainError::StalePolicy {
            expected: 0,
            current: 1
        })
    ));
    let k = key("r9", "prod");
    open(&mut g, facts("r9", "prod", 2, 50, false), false, at(0));
    approve(
        &mut g,
        &k,
        &actor("sam", &["service-owner"], "payments"),
        "service-owner",
        at(10),
    )
    .expect("so");
    // At 45 the service-owner approval (valid 30 min) has lapsed; security is missing.
    let d = g.check_gate(&k, at(45));
    let kinds: Vec<_> = d
        .reasons
        .iter()
        .map(|r| (r.kind, r.subject.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (GateReasonKind::MissingApprovals, "security"),
            (GateReasonKind::ApprovalExpired, "service-owner"),
            (GateReasonKind::MissingApprovals, "service-owner"),
        ]
    );
    assert!(g.deadlines(at(59)).is_empty());
    let due = g.deadlines(at(60));
    assert!(
        matches!(due.as_slice(), [(_, Event::ApprovalEscalated { notify, .. })] if notify == &vec!["release-manager".to_owned()])
    );
    record_deadlines(&mut g, at(60));
    assert!(g.deadlines(at(61)).is_empty(), "escalates once");
    let due = g.deadlines(at(120));
    assert!(matches!(
        due.as_slice(),
        [(_, Event::ApprovalRequestExpired { .. })]
    ));
    record_deadlines(&mut g, at(120));
    let d = g.check_gate(&k, at(121));
    assert!(
        d.reasons
            .iter()
            .any(|r| r.kind == GateReasonKind::RequestExpired)
    );
    // An expired request may be opened again.
    open(&mut g, facts("r9", "prod", 2, 50, false), false, at(130));
    assert_eq!(g.requests[&k].status(&g, at(131)), ApprovalStatus::Pending);
    // Unknown release: one reason.
    let d = g.check_gate(&key("nope", "prod"), at(0));
    assert_eq!(d.reasons.len(), 1);
    assert_eq!(d.reasons[0].kind, GateReasonKind::NoApprovalRequest);
}

#[test]
fn rollback_decisions_are_due_by_tier_and_flagged_when_late() {
    let mut g = with_catalog();
    let id = Uuid::from_u128(42);
    run(
        &mut g,
        Command::OpenRollbackDecision(OpenRollbackDecision {
            decision: RollbackDecision {
                id,
                release: "r1".into(),
                environment: "prod".into(),
                service: "checkout".into(),
                business_unit: "payments".into(),
                tier: 1,
                metric: "error_rate".into(),
                observed: 0.09,
                opened_at: at(0),
                decide_by: at(0),
                notify: vec![],
                status: RollbackStatus::Pending,
                overdue: false,
                decided_by: String::new(),
                comment: String::new(),
            },
        }),
    )
    .expect("open");
    assert_eq!(
        g.rollbacks[&id].decide_by,
        at(15),
        "tier 1 decides within 15 minutes"
    );
    assert!(g.deadlines(at(14)).is_empty());
    let due = g.deadlines(at(15));
    assert!(
        matches!(due.as_slice(), [(_, Event::RollbackDecisionOverdue { notify, .. })] if notify.contains(&"release-manager".to_owned()))
    );
    run(
        &mut g,
        Command::DecideRollback(DecideRollback {
            id,
            roll_back: true,
            comment: "late but clear".into(),
            by: actor("rm", &["release-manager"], "payments"),
            at: at(16),
        }),
    )
    .expect("decide");
    assert_eq!(g.rollbacks[&id].status, RollbackStatus::RollBack);
    assert!(g.deadlines(at(100)).is_empty());
}
