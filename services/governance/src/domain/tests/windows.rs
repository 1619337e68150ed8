//! Freeze windows and embargoes: schedules, emergencies, deviations, creation times.

use super::*;

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
fn freezes_and_embargoes_hold_emergencies_too_unless_a_deviation_covers_them() {
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
    let d = g.check_gate(&urgent, at(100));
    assert!(!d.allowed, "an emergency is refused in a freeze");
    assert_eq!(
        d.reasons.iter().map(|r| r.kind).collect::<Vec<_>>(),
        vec![GateReasonKind::FreezeWindow]
    );
    assert!(
        d.reasons[0]
            .message
            .contains("only with an approved deviation"),
        "{}",
        d.reasons[0].message
    );
    // A deviation for the freeze, approved by a release manager other than its requester.
    let freeze_dev = Uuid::from_u128(6);
    run(
        &mut g,
        Command::RequestDeviation(RequestDeviation {
            deviation: Deviation {
                id: freeze_dev,
                rule: GateRule::FreezeWindow,
                release: "e1".into(),
                environment: "prod".into(),
                business_unit: "payments".into(),
                justification: "card authorisations failing".into(),
                compensating_controls: vec!["incident bridge open".into()],
                expires_at: at(800),
                requested_by: "sam".into(),
                requester_role: "service-owner".into(),
                status: DeviationStatus::Requested,
                decided_by: String::new(),
                decider_role: String::new(),
                comment: String::new(),
                decided_at: None,
            },
            at: at(101),
        }),
    )
    .expect("request the freeze deviation");
    run(
        &mut g,
        Command::DecideDeviation(DecideDeviation {
            id: freeze_dev,
            approve: true,
            role: "release-manager".into(),
            comment: String::new(),
            by: actor("rita", &["release-manager"], "payments"),
            at: at(102),
        }),
    )
    .expect("approve the freeze deviation");
    let d = g.check_gate(&urgent, at(200));
    assert!(d.allowed, "the deviation covers the freeze: {d:?}");
    assert_eq!(d.deviations_used, vec![freeze_dev]);
    assert!(
        !g.check_gate(&normal, at(200)).allowed,
        "it covers that release only"
    );
    let d = g.check_gate(&urgent, at(400));
    assert!(!d.allowed, "an embargo blocks emergencies");
    assert_eq!(
        d.reasons
            .iter()
            .filter(|r| r.waived_by.is_none())
            .map(|r| r.kind)
            .collect::<Vec<_>>(),
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
    assert_eq!(d.deviations_used, vec![freeze_dev, dev]);
    assert!(d.reasons.iter().all(|r| r.waived_by.is_some()), "{d:?}");
    // It expires on time.
    assert!(!g.check_gate(&urgent, at(500)).allowed);
    let due = g.deadlines(at(500));
    assert!(due.iter().any(
        |(_, e)| matches!(e, Event::DeviationExpired { deviation_id, .. } if *deviation_id == dev)
    ));
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
