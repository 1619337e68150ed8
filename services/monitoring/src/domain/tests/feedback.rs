//! Tickets linked to releases, and adoption against declared targets.

use super::*;

fn ticket(id: &str, service: &str, labels: &[&str], minutes: i64, severity: Severity) -> Command {
    RecordTicket {
        ticket: Ticket {
            id: id.into(),
            reporter: String::new(),
            service: service.into(),
            environment: "prod".into(),
            business_unit: String::new(),
            severity,
            summary: "customers cannot pay".into(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            opened_at: at(minutes),
            release: String::new(),
            link: String::new(),
        },
    }
    .into()
}

fn target(due_minutes: i64) -> Command {
    DeclareAdoptionTarget {
        target: AdoptionTarget {
            release: "checkout-2.1.0".into(),
            feature: "wallet".into(),
            metric: "wallet_share".into(),
            target: 0.3,
            due: at(due_minutes),
            business_unit: "payments".into(),
            by: "pia".into(),
        },
    }
    .into()
}

fn adopted(value: f64, minutes: i64) -> Command {
    RecordAdoption {
        release: "checkout-2.1.0".into(),
        feature: "wallet".into(),
        value,
        at: at(minutes),
    }
    .into()
}

#[test]
fn a_ticket_is_linked_to_the_last_release_of_its_service_or_the_one_its_label_names() {
    let mut s = watched();
    s.apply(ticket("INC-1", "checkout", &[], 120, Severity::Sev3))
        .expect("recorded");
    let t = &s.tickets["INC-1"];
    assert_eq!(t.release, "checkout-2.1.0");
    assert_eq!(t.business_unit, "payments");
    assert!(
        t.link
            .contains("was deployed to prod 2 h before the ticket"),
        "{}",
        t.link
    );
    s.apply(ticket(
        "INC-2",
        "checkout",
        &["release:checkout-2.0.9"],
        120,
        Severity::Sev3,
    ))
    .expect("recorded");
    // A label naming a release monitoring does not know in the unit is not followed.
    assert_eq!(s.tickets["INC-2"].release, "checkout-2.1.0");
    assert!(!s.tickets["INC-2"].link.contains("label"));
    // More than a week after the deployment, or another service: not linked.
    s.apply(ticket(
        "INC-3",
        "checkout",
        &[],
        8 * 24 * 60,
        Severity::Sev3,
    ))
    .expect("recorded");
    assert_eq!(s.tickets["INC-3"].release, "");
    let e = s
        .state()
        .decide(ticket("", "checkout", &[], 1, Severity::Sev3))
        .expect_err("no id");
    assert!(matches!(e, DomainError::Invalid { .. }));
}

#[test]
fn the_objective_is_met_when_every_feature_reached_its_target_and_no_serious_ticket() {
    let mut s = watched();
    s.apply(target(14 * 24 * 60)).expect("declared");
    let outcome = |s: &Scenario<Monitoring>, m: i64| s.release_outcome("checkout-2.1.0", at(m));
    assert_eq!(
        outcome(&s, 60).objective_met,
        None,
        "nothing measured yet, still time"
    );
    s.apply(adopted(0.12, 60)).expect("measured");
    assert_eq!(
        outcome(&s, 120).features[0].verdict,
        AdoptionVerdict::Pending
    );
    assert_eq!(
        outcome(&s, 15 * 24 * 60).features[0].verdict,
        AdoptionVerdict::Missed
    );
    s.apply(adopted(0.34, 600)).expect("measured");
    let o = outcome(&s, 15 * 24 * 60);
    assert_eq!(o.features[0].verdict, AdoptionVerdict::Achieved);
    assert_eq!(o.objective_met, Some(true));
    s.apply(ticket("INC-9", "checkout", &[], 700, Severity::Sev2))
        .expect("recorded");
    assert_eq!(
        outcome(&s, 15 * 24 * 60).objective_met,
        Some(false),
        "a sev-2 ticket"
    );
    let e = s
        .state()
        .decide(
            RecordAdoption {
                release: "checkout-2.1.0".into(),
                feature: "unknown".into(),
                value: 1.0,
                at: at(1),
            }
            .into(),
        )
        .expect_err("undeclared");
    assert!(e.to_string().contains("declare it first"), "{e}");
    let e = s.state().decide(adopted(f64::NAN, 900)).expect_err("nan");
    assert!(e.to_string().contains("is not a finite number"), "{e}");
}

#[test]
fn a_postmortem_is_for_a_failed_release_and_is_found_by_service_and_factor() {
    let mut s = watched();
    let record = |release: &str| -> Command {
        RecordPostmortem {
            release: release.into(),
            summary: "the ratio dropped".into(),
            factors: vec![ContributingFactor {
                kind: FactorKind::Dependency,
                description: "the card network timed out".into(),
            }],
            actions: vec![],
            by: "rita".into(),
            at: at(90),
        }
        .into()
    };
    let e = s
        .state()
        .decide(record("checkout-2.1.0"))
        .expect_err("not failed");
    assert!(
        e.to_string()
            .contains("a post-mortem is for a failed release"),
        "{e}"
    );
    s.apply(samples("checkout_success_ratio", &[(1, 0.5)], 1).into())
        .expect("breach");
    s.apply(record("checkout-2.1.0")).expect("recorded");
    assert_eq!(
        s.find_postmortems(Some("checkout"), Some(FactorKind::Dependency))
            .count(),
        1
    );
    assert_eq!(s.find_postmortems(None, Some(FactorKind::Code)).count(), 0);
    let timeline = s.timeline("checkout-2.1.0");
    let sources: Vec<&str> = timeline.iter().map(|e| e.source.as_str()).collect();
    assert_eq!(
        sources,
        ["orchestration", "monitoring", "monitoring"],
        "{timeline:#?}"
    );
}
