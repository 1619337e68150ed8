use std::collections::BTreeSet;

use flotilla_core::decider::{Decider, Decision};
use flotilla_core::ids::StreamId;
use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::*;

const MIN: i64 = 60_000_000;
/// 2026-11-02T00:00:00Z, a Monday.
const T0: Timestamp = Timestamp(1_793_577_600_000_000);

fn at(minutes: i64) -> Timestamp {
    Timestamp(T0.0 + minutes * MIN)
}

fn actor(subject: &str, roles: &[&str], bu: &str) -> Actor {
    Actor {
        subject: subject.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        business_unit: bu.into(),
    }
}

fn service(bu: &str, tier: u8, pii: bool) -> String {
    crate::testing::service_name(bu, tier, pii)
}

/// Governance knowing a catalog of services of every unit the tests use, each tier, with and
/// without personal data.
fn with_catalog() -> Scenario<Governance> {
    let mut g = Scenario::default();
    for service in
        crate::testing::every_kind(&["payments", "cards", "finance", "retail", "lending"])
    {
        run(
            &mut g,
            Command::RecordCatalogService(RecordCatalogService {
                service,
                source_event_id: Uuid::now_v7(),
                source_sequence: 1,
            }),
        )
        .expect("catalog");
    }
    g
}

fn facts(release: &str, env: &str, tier: u8, risk: u8, pii: bool) -> ReleaseFacts {
    ReleaseFacts {
        release: release.into(),
        version: "1.4.0".into(),
        environment: env.into(),
        service: service("payments", tier, pii),
        business_unit: "payments".into(),
        tier,
        risk_score: risk,
        personal_data: pii,
        author: "alice".into(),
        committers: vec!["carol".into()],
    }
}

/// The roles of the shipped access policy.
fn roles() -> BTreeSet<String> {
    flotilla_auth::KNOWN_ROLES
        .iter()
        .map(|r| (*r).to_owned())
        .collect()
}

fn key(release: &str, env: &str) -> ReleaseEnv {
    ReleaseEnv {
        release: release.into(),
        environment: env.into(),
    }
}

/// Decides a command and records its events as the store would (with their envelopes).
fn run(g: &mut Scenario<Governance>, c: Command) -> Result<StreamId> {
    g.apply(c).map(|d| d.stream_id)
}

/// Records every deadline passed by `now`, as the scheduler does.
fn record_deadlines(g: &mut Scenario<Governance>, now: Timestamp) {
    for key in g.due(now) {
        run(g, Command::RecordDeadline(RecordDeadline { key, now })).expect("deadline");
    }
}

fn open(g: &mut Scenario<Governance>, f: ReleaseFacts, emergency: bool, when: Timestamp) {
    run(
        g,
        Command::OpenApprovalRequest(OpenApprovalRequest {
            id: Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("{}/{}/{}", f.release, f.environment, when.0).as_bytes(),
            ),
            release: f,
            emergency,
            authoritative: false,
            authorized_unit: None,
            by: actor("rm", &["release-manager"], "payments"),
            at: when,
        }),
    )
    .expect("open");
}

fn approve(
    g: &mut Scenario<Governance>,
    k: &ReleaseEnv,
    who: &Actor,
    role: &str,
    when: Timestamp,
) -> Result<StreamId> {
    run(
        g,
        Command::Approve(Approve {
            key: k.clone(),
            role: role.into(),
            comment: String::new(),
            by: who.clone(),
            at: when,
        }),
    )
}

#[test]
fn requirements_follow_tier_risk_unit_overrides_and_personal_data() {
    let mut p = PolicyDocument::default();
    let roles = |v: Option<Vec<RoleRequirement>>| {
        v.expect("a rule matches")
            .into_iter()
            .map(|q| (q.role, q.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        roles(p.requirements_for("payments", "prod", 3, 10, false)),
        vec![("service-owner".to_owned(), 1)]
    );
    assert_eq!(
        roles(p.requirements_for("payments", "prod", 1, 90, true)),
        vec![
            ("business".to_owned(), 1),
            ("cab".to_owned(), 1),
            ("peer-review".to_owned(), 1),
            ("security".to_owned(), 1),
            ("service-owner".to_owned(), 1),
        ]
    );
    // A unit override replaces the defaults for that unit only; a partial one is refused,
    // since the unit would have releases no rule covers.
    let override_rule = |tier: u8| ApprovalRule {
        tier,
        min_risk: 0,
        max_risk: 100,
        requirements: vec![RoleRequirement {
            role: "service-owner".into(),
            count: 2,
        }],
        business_unit: "cards".into(),
        environments: vec![],
    };
    p.approval_rules.push(override_rule(3));
    assert!(
        p.validate()
            .expect_err("refused")
            .to_string()
            .contains("unit cards's rule"),
        "partial override"
    );
    assert!(
        p.requirements_for("cards", "prod", 1, 10, false).is_none(),
        "no matching rule is never 'no approvals'"
    );
    for tier in [1, 2, 4] {
        p.approval_rules.push(override_rule(tier));
    }
    assert_eq!(
        roles(p.requirements_for("cards", "prod", 3, 10, false)),
        vec![("service-owner".to_owned(), 2)]
    );
    assert_eq!(
        roles(p.requirements_for("payments", "prod", 3, 10, false)),
        vec![("service-owner".to_owned(), 1)]
    );
    p.validate().expect("valid");
    // A gap in the default bands is refused.
    let mut gap = PolicyDocument::default();
    gap.approval_rules
        .retain(|r| !(r.tier == 2 && r.min_risk == 40));
    assert!(
        gap.validate()
            .expect_err("refused")
            .to_string()
            .contains("tier 2 at risk score 40")
    );
}

#[test]
fn naming_rules_semver_and_calver() {
    let mut p = PolicyDocument::default();
    assert!(p.check_version("1.4.0").is_ok());
    assert!(p.check_version("2.0.0-rc.1").is_ok());
    assert!(p.check_version("1.4").is_err());
    p.naming.scheme = VersionScheme::Calver("YYYY.0M.MICRO".into());
    p.validate().expect("valid");
    assert!(p.check_version("2026.11.3").is_ok());
    assert!(p.check_version("2026.1.3").is_err(), "0M needs two digits");
    assert!(p.check_version("2026.13.0").is_err());
    assert!(p.check_version("26.11.3").is_err());
    assert!(p.check_version("2026.11").is_err());
    p.naming.scheme = VersionScheme::Calver("YYYY.QQ".into());
    assert!(p.validate().is_err());
}

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

fn window(name: &str, kind: WindowKind, schedule: Schedule, scope: WindowScope) -> Command {
    Command::CreateFreezeWindow(CreateFreezeWindow {
        window: FreezeWindow {
            id: Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()),
            name: name.into(),
            kind,
            scope,
            schedule,
            reason: String::new(),
            created_by: "rm".into(),
            // Known from the start of time, unless a test says otherwise.
            created_at: Timestamp(0),
            business_unit: String::new(),
            cancelled: false,
            cancelled_at: None,
        },
        by: actor("cora", &["compliance-officer"], "central"),
    })
}

#[test]
fn recurring_windows_are_active_on_their_days() {
    // Financial close: the last 2 days of every month from 00:00 for 3 days.
    let close = Schedule::Monthly(MonthlySchedule {
        months: vec![],
        day: -2,
        start_minute: 0,
        duration_minutes: 3 * 24 * 60,
    });
    // 2026-11-29 00:00 is T0 + 27 days.
    assert!(close.active_at(at(27 * 24 * 60 - 1)).is_none());
    assert!(close.active_at(at(27 * 24 * 60)).is_some());
    assert!(
        close.active_at(at(29 * 24 * 60 + 12 * 60)).is_some(),
        "Dec 1 noon is inside"
    );
    assert!(
        close.active_at(at(30 * 24 * 60)).is_none(),
        "Dec 2 is outside"
    );
    // Quarter-end audit: March, June, September, December only.
    let audit = Schedule::Monthly(MonthlySchedule {
        months: vec![3, 6, 9, 12],
        day: 1,
        start_minute: 0,
        duration_minutes: 24 * 60,
    });
    assert!(audit.active_at(at(0)).is_none(), "November is not audited");
    assert!(
        audit.active_at(at(29 * 24 * 60 + 60)).is_some(),
        "Dec 1 01:00"
    );
    // Peak trading: Fridays 16:00-22:00 UTC. T0 is a Monday.
    let peak = Schedule::Weekly(WeeklySchedule {
        weekdays: vec![5],
        start_minute: 16 * 60,
        duration_minutes: 6 * 60,
    });
    assert!(peak.active_at(at(4 * 24 * 60 + 17 * 60)).is_some());
    assert!(peak.active_at(at(4 * 24 * 60 + 23 * 60)).is_none());
    assert!(peak.active_at(at(3 * 24 * 60 + 17 * 60)).is_none());
    assert!(
        Schedule::Monthly(MonthlySchedule {
            months: vec![],
            day: 0,
            start_minute: 0,
            duration_minutes: 1
        })
        .validate()
        .is_err()
    );
}

#[test]
fn freeze_lets_emergencies_pass_embargo_does_not_unless_a_compliance_deviation() {
    let mut g = with_catalog();
    let all = WindowScope::default();
    run(
        &mut g,
        window(
            "peak",
            WindowKind::Freeze,
            Schedule::Once {
                start: at(0),
                end: at(600),
            },
            WindowScope {
                environments: vec!["prod".into()],
                ..all.clone()
            },
        ),
    )
    .expect("freeze");
    run(
        &mut g,
        window(
            "sec-exam",
            WindowKind::Embargo,
            Schedule::Once {
                start: at(300),
                end: at(900),
            },
            WindowScope {
                business_units: vec!["payments".into()],
                ..all
            },
        ),
    )
    .expect("embargo");
    let normal = key("n1", "prod");
    let urgent = key("e1", "prod");
    let mut low = facts("n1", "prod", 4, 5, false);
    open(&mut g, low.clone(), false, at(0));
    low.release = "e1".into();
    open(&mut g, low, true, at(0));
    let so = actor("sam", &["service-owner"], "payments");
    approve(&mut g, &normal, &so, "service-owner", at(1)).expect("ok");
    approve(&mut g, &urgent, &so, "service-owner", at(1)).expect("ok");
    let d = g.check_gate(&normal, at(100));
    assert!(!d.allowed);
    assert_eq!(d.reasons[0].kind, GateReasonKind::FreezeWindow);
    assert_eq!(d.reasons[0].subject, "peak");
    assert!(
        g.check_gate(&urgent, at(100)).allowed,
        "emergencies pass a freeze"
    );
    let d = g.check_gate(&urgent, at(400));
    assert!(!d.allowed, "an embargo blocks emergencies");
    assert_eq!(
        d.reasons.iter().map(|r| r.kind).collect::<Vec<_>>(),
        vec![GateReasonKind::Embargo]
    );
    // A deviation: requested by a release manager, approved by security: refused for an embargo.
    let dev = Uuid::from_u128(7);
    run(
        &mut g,
        Command::RequestDeviation(RequestDeviation {
            deviation: Deviation {
                id: dev,
                rule: GateRule::Embargo,
                release: "e1".into(),
                environment: "prod".into(),
                business_unit: "payments".into(),
                justification: "card outage fix".into(),
                compensating_controls: vec!["pair deploy".into(), "exam team told".into()],
                expires_at: at(500),
                requested_by: "rm".into(),
                requester_role: "release-manager".into(),
                status: DeviationStatus::Requested,
                decided_by: String::new(),
                decider_role: String::new(),
                comment: String::new(),
                decided_at: None,
            },
            at: at(350),
        }),
    )
    .expect("request");
    let decide = |who: Actor, role: &str| {
        Command::DecideDeviation(DecideDeviation {
            id: dev,
            approve: true,
            role: role.into(),
            comment: String::new(),
            by: who,
            at: at(360),
        })
    };
    assert!(matches!(
        g.decide(decide(actor("sec", &["security"], "central"), "security")),
        Err(DomainError::NotInRole(_))
    ));
    assert!(matches!(
        g.decide(decide(
            actor("rm", &["compliance-officer"], "central"),
            "compliance-officer"
        )),
        Err(DomainError::SegregationOfDuties {
            rule: "sod-deviation-self-approval",
            ..
        })
    ));
    assert!(matches!(
        g.decide(decide(
            actor("rm2", &["release-manager"], "central"),
            "release-manager"
        )),
        Err(DomainError::SegregationOfDuties {
            rule: "sod-deviation-same-role",
            ..
        })
    ));
    run(
        &mut g,
        decide(
            actor("cora", &["compliance-officer"], "central"),
            "compliance-officer",
        ),
    )
    .expect("approved");
    let d = g.check_gate(&urgent, at(400));
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.deviations_used, vec![dev]);
    assert_eq!(d.reasons[0].waived_by, Some(dev));
    // It expires on time.
    assert!(!g.check_gate(&urgent, at(500)).allowed);
    let due = g.deadlines(at(500));
    assert!(due.iter().any(
        |(_, e)| matches!(e, Event::DeviationExpired { deviation_id, .. } if *deviation_id == dev)
    ));
}

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
    if let Command::CreateFreezeWindow(CreateFreezeWindow { by, .. }) = &mut w {
        *by = actor("rm", &["release-manager"], "payments");
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

#[test]
fn the_gate_answers_as_of_its_time() {
    let mut g = with_catalog();
    let k = key("r8", "prod");
    run(
        &mut g,
        window(
            "month-end",
            WindowKind::Freeze,
            Schedule::Once {
                start: at(0),
                end: at(1000),
            },
            WindowScope::default(),
        ),
    )
    .expect("window");
    open(&mut g, facts("r8", "prod", 4, 5, false), false, at(10));
    approve(
        &mut g,
        &k,
        &actor("sam", &["service-owner"], "payments"),
        "service-owner",
        at(20),
    )
    .expect("approve");
    let wid = *g.windows.keys().next().expect("window id");
    run(
        &mut g,
        Command::CancelFreezeWindow(CancelFreezeWindow {
            id: wid,
            reason: "moved".into(),
            by: actor("cora", &["compliance-officer"], "central"),
            at: at(30),
        }),
    )
    .expect("cancel");
    let kinds = |t: i64| -> Vec<GateReasonKind> {
        g.check_gate(&k, at(t))
            .reasons
            .iter()
            .map(|r| r.kind)
            .collect()
    };
    assert_eq!(
        kinds(5),
        vec![
            GateReasonKind::NoApprovalRequest,
            GateReasonKind::FreezeWindow
        ],
        "before the request was opened"
    );
    assert_eq!(
        kinds(15),
        vec![
            GateReasonKind::MissingApprovals,
            GateReasonKind::FreezeWindow
        ],
        "opened, not approved yet"
    );
    assert_eq!(
        kinds(25),
        vec![GateReasonKind::FreezeWindow],
        "approved, window not cancelled yet"
    );
    assert!(g.check_gate(&k, at(35)).allowed, "after the cancellation");
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

/// A window created now does not change what the gate answered for a time before it existed,
/// and one that is over before it is created is refused.
#[test]
fn windows_count_from_when_they_were_created() {
    let mut g = with_catalog();
    open(&mut g, facts("r1", "prod", 3, 10, false), false, at(0));
    let k = key("r1", "prod");
    run(
        &mut g,
        Command::Approve(Approve {
            key: k.clone(),
            role: "service-owner".into(),
            comment: String::new(),
            by: actor("owen", &["service-owner"], "payments"),
            at: at(1),
        }),
    )
    .expect("approved");
    assert!(g.check_gate(&k, at(10)).allowed);
    let mut freeze = window(
        "late-freeze",
        WindowKind::Freeze,
        Schedule::Once {
            start: at(5),
            end: at(500),
        },
        WindowScope::default(),
    );
    if let Command::CreateFreezeWindow(CreateFreezeWindow { window, .. }) = &mut freeze {
        window.created_at = at(100);
    }
    run(&mut g, freeze).expect("created");
    assert!(
        g.check_gate(&k, at(10)).allowed,
        "at 10 the window (created at 100) was not known"
    );
    let later = g.check_gate(&k, at(200));
    assert!(!later.allowed);
    assert!(
        later.reasons[0]
            .message
            .contains("until 2026-11-02T08:20:00Z"),
        "times are RFC 3339: {:?}",
        later.reasons
    );
    let mut past = window(
        "already-over",
        WindowKind::Freeze,
        Schedule::Once {
            start: at(1),
            end: at(50),
        },
        WindowScope::default(),
    );
    if let Command::CreateFreezeWindow(CreateFreezeWindow { window, .. }) = &mut past {
        window.created_at = at(100);
    }
    let err = g.decide(past).expect_err("over before created");
    assert!(matches!(err, DomainError::Invalid { .. }), "{err:?}");
}
