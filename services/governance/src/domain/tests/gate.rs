//! The gate answers as of its time.

use super::*;

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

/// The emergency flag travels with the question: approvals given for a normal change do not
/// cover an emergency, nor the other way round.
#[test]
fn a_release_asked_about_as_an_emergency_needs_an_emergency_request() {
    let mut g = with_catalog();
    let k = key("r9", "prod");
    open(&mut g, facts("r9", "prod", 4, 5, false), false, at(10));
    approve(
        &mut g,
        &k,
        &actor("sam", &["service-owner"], "payments"),
        "service-owner",
        at(20),
    )
    .expect("approve");
    assert!(
        g.check_gate_as(&k, at(30), None).allowed,
        "as its request says"
    );
    assert!(g.check_gate_as(&k, at(30), Some(false)).allowed);
    let d = g.check_gate_as(&k, at(30), Some(true));
    assert!(!d.allowed);
    assert_eq!(
        d.reasons.iter().map(|r| r.kind).collect::<Vec<_>>(),
        [GateReasonKind::EmergencyMismatch]
    );
    assert!(
        d.reasons[0]
            .message
            .contains("is an emergency where it is moved")
            && d.reasons[0].message.contains("opened as a normal release"),
        "{}",
        d.reasons[0].message
    );
}

#[test]
fn an_open_fmea_action_shuts_the_gate_until_risk_validation_says_it_is_closed() {
    let mut g = with_catalog();
    let k = key("r9", "prod");
    open(&mut g, facts("r9", "prod", 4, 5, false), false, at(10));
    approve(
        &mut g,
        &k,
        &actor("sam", &["service-owner"], "payments"),
        "service-owner",
        at(20),
    )
    .expect("approve");
    let fmea = |open: &[&str], t: i64| {
        Command::RecordFmeaActions(RecordFmeaActions {
            release: "r9".into(),
            business_unit: "payments".into(),
            open_actions: open.iter().map(|s| (*s).to_owned()).collect(),
            at: at(t),
            source_event_id: Uuid::from_u128(t as u128),
        })
    };
    run(&mut g, fmea(&["double charge"], 30)).expect("recorded");
    assert!(
        g.check_gate(&k, at(25)).allowed,
        "before the FMEA was recorded"
    );
    let shut = g.check_gate(&k, at(35));
    assert!(!shut.allowed);
    assert_eq!(shut.reasons[0].kind, GateReasonKind::FmeaActionOpen);
    assert_eq!(shut.reasons[0].subject, "double charge");
    assert!(
        shut.reasons[0]
            .message
            .contains("close it with its evidence")
    );
    // An older word arriving late changes nothing; the closing opens the gate.
    let late = g.decide(fmea(&[], 29)).expect("decided");
    assert!(late.events.is_empty());
    run(&mut g, fmea(&[], 40)).expect("closed");
    assert!(g.check_gate(&k, at(45)).allowed);
}
