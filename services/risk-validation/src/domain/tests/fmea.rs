use super::*;

fn mode(name: &str, s: u8, o: u8, d: u8, action: &str) -> FailureMode {
    FailureMode {
        name: name.into(),
        effect: "customers are charged twice".into(),
        severity: s,
        occurrence: o,
        detection: d,
        action: action.into(),
        action_owner: if action.is_empty() {
            String::new()
        } else {
            "sam".into()
        },
        closed: None,
    }
}

fn record(modes: Vec<FailureMode>) -> Command {
    RecordFmea {
        release: "pay-1".into(),
        modes,
        by: "pia".into(),
        seed: Uuid::from_u128(11),
        at: day(1),
    }
    .into()
}

fn planned_release() -> Scenario<RiskValidation> {
    let mut s = known();
    s.apply(release("pay-1", vec![item("api", 0, 0)], false))
        .expect("noted");
    s.apply(planned("pay-1", &[], day(0))).expect("assessed");
    s
}

#[test]
fn rpn_is_the_product_and_modes_at_the_threshold_need_an_action() {
    let mut s = planned_release();
    // 9 x 4 x 3 = 108 >= 100: needs an action and its owner.
    let e = s
        .apply(record(vec![mode("double-charge", 9, 4, 3, "")]))
        .expect_err("no action");
    assert!(
        e.to_string()
            .contains("RPN 108 reaches the threshold 100, so it needs an action and its owner"),
        "{e}"
    );
    let d = s
        .apply(record(vec![
            mode("double-charge", 9, 4, 3, "idempotency keys on capture"),
            mode("slow-report", 3, 3, 3, ""),
        ]))
        .expect("recorded");
    let Event::FmeaRecorded(f) = &d.events[0] else {
        panic!("{:?}", d.events)
    };
    assert_eq!(f.highest_rpn(), 108);
    assert_eq!(f.open_actions(), ["double-charge"]);
    // The assessment follows: RPN 108 of 1000 -> 10 x 0.108 = 1.08 points more.
    let re = assessed(&d.events);
    assert_eq!(re.len(), 2);
    assert_eq!(re[0].cause, "FMEA recorded");
    let rpn = re[0]
        .factors
        .iter()
        .find(|f| f.name == "fmea_rpn")
        .expect("rpn");
    assert_eq!(rpn.value, 108.0);
    assert!(
        rpn.explanation.contains("1 required action open"),
        "{}",
        rpn.explanation
    );
}

#[test]
fn closing_the_required_action_opens_it_and_a_replaced_action_must_be_closed_again() {
    let mut s = planned_release();
    s.apply(record(vec![mode(
        "double-charge",
        9,
        4,
        3,
        "idempotency keys",
    )]))
    .expect("recorded");
    let close = |mode: &str| -> Command {
        CloseFmeaAction {
            release: "pay-1".into(),
            mode: mode.into(),
            evidence: "https://ci.example.com/run/7".into(),
            by: "sam".into(),
            seed: Uuid::from_u128(12),
            at: day(2),
        }
        .into()
    };
    let mut by_author = close("double-charge");
    if let Command::CloseFmeaAction(c) = &mut by_author {
        c.by = "rita".into();
    }
    let e = s.apply(by_author).expect_err("the author");
    assert!(matches!(e, DomainError::Forbidden(_)), "{e:?}");
    let e = s.apply(close("missing")).expect_err("unknown mode");
    assert!(matches!(e, DomainError::NotFound(_)), "{e:?}");
    s.apply(close("double-charge")).expect("closed");
    assert!(s.fmeas["pay-1"].open_actions().is_empty());
    let e = s.apply(close("double-charge")).expect_err("twice");
    assert!(e.to_string().contains("was closed by sam"), "{e}");
    // Recorded again with the same action: still closed; with another action: open again.
    s.apply(record(vec![mode(
        "double-charge",
        9,
        4,
        3,
        "idempotency keys",
    )]))
    .expect("same");
    assert!(s.fmeas["pay-1"].open_actions().is_empty());
    s.apply(record(vec![mode("double-charge", 9, 4, 3, "a saga")]))
        .expect("changed");
    assert_eq!(s.fmeas["pay-1"].open_actions(), ["double-charge"]);
    // Closed, then found likelier (a higher RPN): open again.
    s.apply(close("double-charge")).expect("closed");
    s.apply(record(vec![mode("double-charge", 9, 6, 3, "a saga")]))
        .expect("worse");
    assert_eq!(s.fmeas["pay-1"].open_actions(), ["double-charge"]);
}

#[test]
fn scores_outside_one_to_ten_are_refused() {
    let mut s = planned_release();
    for (sv, o, d) in [(0, 1, 1), (1, 11, 1), (1, 1, 255)] {
        let e = s
            .apply(record(vec![mode("m", sv, o, d, "x")]))
            .expect_err("out of range");
        assert!(e.to_string().contains("is not 1-10"), "{e}");
    }
}
