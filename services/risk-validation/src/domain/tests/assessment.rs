use super::*;

fn factor<'a>(a: &'a Assessment, name: &str) -> &'a RiskFactor {
    a.factors
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("factor {name}"))
}

#[test]
fn a_planned_release_is_scored_for_every_environment_with_each_factor_explained() {
    let mut s = known();
    s.apply(release(
        "pay-1",
        vec![item("api", 0, 0), item("ledger", 2, 1)],
        false,
    ))
    .expect("noted");
    let d = s
        .apply(planned(
            "pay-1",
            &["api", "ledger", "web", "mobile"],
            day(1),
        ))
        .expect("assessed");
    let a = assessed(&d.events);
    assert_eq!(
        a.iter().map(|a| a.environment.as_str()).collect::<Vec<_>>(),
        ["dev", "prod"]
    );
    let prod = a[1];
    // The most critical service names the request: ledger, tier 1, with personal data.
    assert_eq!((prod.service.as_str(), prod.tier), ("ledger", 1));
    assert!(prod.personal_data);
    assert_eq!(prod.author, "rita");
    // Default weights (they add up to 100, so points = weight x share):
    // tier 1 -> 25; 2 services beyond the release of 10 -> 15 x 0.2 = 3; 2 services of 10 ->
    // 10 x 0.2 = 2; 1 schema change of 3 -> 10 / 3; 2 migrations of 5 -> 10 x 0.4 = 4; no
    // history, no FMEA, no emergency -> 0. 25 + 3 + 2 + 3.333 + 4 = 37.3 -> 37.
    let points: Vec<(&str, f64)> = prod
        .factors
        .iter()
        .map(|f| (f.name.as_str(), (f.points * 1000.0).round() / 1000.0))
        .collect();
    assert_eq!(
        points,
        [
            ("criticality_tier", 25.0),
            ("blast_radius", 3.0),
            ("change_size", 2.0),
            ("schema_changes", 3.333),
            ("migrations", 4.0),
            ("change_failure_rate", 0.0),
            ("fmea_rpn", 0.0),
            ("emergency", 0.0),
        ]
    );
    assert_eq!(prod.score, 37);
    let blast = factor(prod, "blast_radius");
    assert!(
        blast
            .explanation
            .contains("2 services beyond the release (web, mobile)"),
        "{}",
        blast.explanation
    );
    assert!(
        factor(prod, "schema_changes")
            .explanation
            .contains("1 migration (ledger) changes a schema")
    );
    assert!(
        factor(prod, "change_failure_rate")
            .explanation
            .contains("no deployment of these services finished in the last 90 days")
    );
}

#[test]
fn the_services_recent_change_failure_rate_counts_inside_the_history_window() {
    let mut s = known();
    s.apply(release("pay-2", vec![item("api", 0, 0)], true))
        .expect("noted");
    for (n, outcome, when) in [
        (1, Outcome::Succeeded, day(-10)),
        (2, Outcome::RolledBack, day(-5)),
        (3, Outcome::Failed, day(-3)),
        (4, Outcome::Succeeded, day(-1)),
        // Outside the 90 days: not counted.
        (5, Outcome::Failed, day(-120)),
        // Deployment 4 again, rolled back later: one deployment, a failed change.
        (4, Outcome::RolledBack, day(-1)),
    ] {
        s.apply(deployment(n, "older", "api", "prod", outcome, when))
            .expect("noted");
    }
    let d = s.apply(planned("pay-2", &[], day(0))).expect("assessed");
    let prod = assessed(&d.events)[1];
    let cfr = factor(prod, "change_failure_rate");
    assert_eq!(cfr.value, 0.75);
    assert!(
        cfr.explanation.contains(
            "3 of 4 deployments of these services in the last 90 days failed or were rolled back"
        ),
        "{}",
        cfr.explanation
    );
    // tier 3 -> 25/3; 1 service -> 1; rate 0.75 -> 7.5; emergency -> 10: 26.83 -> 27.
    assert_eq!(prod.score, 27);
    assert!(prod.emergency);
    assert_eq!(factor(prod, "emergency").points, 10.0);
}

#[test]
fn a_reassessment_supersedes_only_where_the_facts_change() {
    let mut s = known();
    s.apply(release("pay-3", vec![item("api", 0, 0)], false))
        .expect("noted");
    let first = s.apply(planned("pay-3", &[], day(0))).expect("assessed");
    let first: Vec<Uuid> = assessed(&first.events).iter().map(|a| a.id).collect();
    // Planned again with the same facts: nothing new (governance's approvals stand).
    let again = s.apply(planned("pay-3", &[], day(1))).expect("same");
    assert!(again.events.is_empty(), "{:?}", again.events);
    // The catalog says api is tier 1 now: both environments are assessed again.
    let d = s.apply(catalog("api", 1, false)).expect("noted");
    let re = assessed(&d.events);
    assert_eq!(re.len(), 2);
    assert_eq!(re[0].supersedes, Some(first[0]));
    assert_eq!(re[0].cause, "the catalog changed");
    assert_eq!(re[0].tier, 1);
    let current: Vec<Uuid> = s.assessments_of("pay-3").map(|a| a.id).collect();
    assert_eq!(current, vec![re[0].id, re[1].id]);
    // The superseded one is still there to read.
    assert!(s.assessments.contains_key(&first[0]));
}

#[test]
fn an_environment_the_release_reached_is_not_assessed_again() {
    let mut s = known();
    s.apply(release("pay-4", vec![item("api", 0, 0)], false))
        .expect("noted");
    s.apply(planned("pay-4", &[], day(0))).expect("assessed");
    s.apply(deployment(
        9,
        "pay-4",
        "api",
        "dev",
        Outcome::Succeeded,
        day(0),
    ))
    .expect("noted");
    let d = s.apply(catalog("api", 2, false)).expect("noted");
    let re = assessed(&d.events);
    assert_eq!(re.len(), 1);
    assert_eq!(re[0].environment, "prod");
}

#[test]
fn new_weights_are_a_version_and_rescore_releases() {
    let mut s = known();
    s.apply(release("pay-5", vec![item("api", 0, 0)], false))
        .expect("noted");
    s.apply(planned("pay-5", &[], day(0))).expect("assessed");
    let only_tier = RiskWeights {
        criticality_tier: 1,
        blast_radius: 0,
        change_size: 0,
        schema_changes: 0,
        migrations: 0,
        change_failure_rate: 0,
        fmea_rpn: 0,
        emergency: 0,
        ..RiskWeights::default()
    };
    let d = s
        .apply(
            SetRiskWeights {
                weights: only_tier,
                by: "admin".into(),
                seed: Uuid::from_u128(7),
                at: day(1),
            }
            .into(),
        )
        .expect("set");
    assert!(matches!(
        d.events[0],
        Event::RiskWeightsSet { version: 1, .. }
    ));
    let re = assessed(&d.events);
    // Only the tier counts: tier 3 is a third of its range -> 33.
    assert_eq!(re[0].score, 33);
    assert_eq!(re[0].weights_version, 1);
    assert_eq!(re[0].cause, "risk weights version 1");
    let zero = RiskWeights {
        criticality_tier: 0,
        ..only_tier
    };
    let refused = s
        .apply(
            SetRiskWeights {
                weights: zero,
                by: "admin".into(),
                seed: Uuid::from_u128(8),
                at: day(1),
            }
            .into(),
        )
        .expect_err("all zero");
    assert!(
        refused.to_string().contains("every weight is 0"),
        "{refused}"
    );
}

#[test]
fn a_release_not_noted_or_not_planned_is_refused_clearly() {
    let mut s = known();
    let e = s.apply(planned("nope", &[], day(0))).expect_err("unknown");
    assert!(matches!(e, DomainError::NotFound(_)), "{e:?}");
    s.apply(release("pay-6", vec![item("api", 0, 0)], false))
        .expect("noted");
    let e = s
        .apply(
            Reassess {
                release: "pay-6".into(),
                by: "rita".into(),
                seed: Uuid::from_u128(3),
                at: day(0),
            }
            .into(),
        )
        .expect_err("not planned");
    assert!(e.to_string().contains("not planned yet"), "{e}");
}

#[test]
fn a_service_missing_from_the_catalog_counts_as_the_most_critical() {
    let mut s = known();
    s.apply(release("pay-7", vec![item("unknown", 0, 0)], false))
        .expect("noted");
    let d = s.apply(planned("pay-7", &[], day(0))).expect("assessed");
    let a = assessed(&d.events)[0];
    assert_eq!(a.tier, 1);
    assert!(
        factor(a, "criticality_tier")
            .explanation
            .contains("not in the catalog, so it counts as tier 1")
    );
}

#[test]
fn a_plan_that_comes_before_the_units_path_is_assessed_when_the_path_comes() {
    // Another partition of the bus may bring the path after the plan.
    let mut s = Scenario::<RiskValidation>::given_commands([catalog("api", 3, false)]);
    s.apply(release("pay-8", vec![item("api", 0, 0)], false))
        .expect("noted");
    let d = s.apply(planned("pay-8", &["web"], day(0))).expect("kept");
    assert!(assessed(&d.events).is_empty());
    let d = s.apply(path(&["dev", "prod"])).expect("path");
    let a = assessed(&d.events);
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].cause, "the promotion path changed");
    assert_eq!(a[0].impact, ["web"]);
}
