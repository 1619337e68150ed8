//! Artifacts and their standing, releases filled and held to the descriptor standard, plans.

#![allow(unused_imports)]

use std::collections::{BTreeMap, BTreeSet};

use flotilla_core::decider::Decider;
use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::*;

#[test]
fn an_artifact_is_registered_once_and_its_standing_is_checked() {
    let s = world();
    let a = artifact("ledger", "2.0.0", 1);
    // The same build again (a retried pipeline, the CDEvent after the gRPC call): nothing.
    let s = s
        .when(
            RegisterArtifact {
                artifact: a.clone(),
            }
            .into(),
        )
        .then(vec![]);
    let mut other = artifact("ledger", "2.0.0", 9);
    other.commit = "another".into();
    let s = s
        .when(RegisterArtifact { artifact: other }.into())
        .then_refused(|e| matches!(e, DomainError::AlreadyExists(m) if m.contains("a version names one build")));
    let mut wrong = artifact("api", "9.9.9", 7);
    wrong.purl = "pkg:oci/api@sha256%3Adeadbeef".into();
    let s = s
        .when(RegisterArtifact { artifact: wrong }.into())
        .then_refused(|e| matches!(e, DomainError::Invalid { field, .. } if field == "purl"));
    // A GPL build with failed analysis is registered, and blocked from releases with reasons.
    let mut gpl = artifact("ledger", "2.1.0", 10);
    gpl.licences = vec!["GPL-3.0-only".into()];
    gpl.analysis.passed = false;
    gpl.analysis.findings = 3;
    let mut s = s;
    s.apply(
        RegisterArtifact {
            artifact: gpl.clone(),
        }
        .into(),
    )
    .expect("registered");
    let reasons = s.blocked(&s.artifacts[&gpl.purl]);
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("GPL-3.0-only"));
    let mut wanted = item("ledger", Strategy::Rolling, Vec::new());
    wanted.version = Some(semver::Version::new(2, 1, 0));
    s.when(create("r-gpl", "payments", vec![wanted]))
        .then_refused(|e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("GPL-3.0-only") && m.contains("static analysis")));
}

#[test]
fn a_release_is_held_to_the_descriptor_standard_and_filled_from_artifacts() {
    let s = world();
    let mut bad = item("web", Strategy::Rolling, Vec::new());
    bad.descriptor.labels.clear();
    bad.descriptor.cpu_limit.clear();
    bad.descriptor
        .values
        .insert("image.tag".into(), "latest".into());
    let s = s
        .when(create("r1", "payments", vec![bad]))
        .then_refused(|e| {
            matches!(e, DomainError::FailedPrecondition(m)
                if m.contains("required label team") && m.contains("no cpu limit") && m.contains("latest tag"))
        });
    // Nothing named: every matching service's newest artifact not in dev yet.
    let fill = CreateRelease {
        name: "r2".into(),
        business_unit: "payments".into(),
        emergency: false,
        items: Vec::new(),
        include: vec!["api".into(), "led*".into()],
        default_descriptor: Some(descriptor("any")),
        name_refused: None,
        promote_to: None,
        by: "rita".into(),
        at: at(1),
    };
    let s = s
        .when(fill.into())
        .then_on(&StreamKey::Release(release_id("r2")).stream(), |e| {
            let Event::ReleaseCreated(r) = &e[0] else {
                panic!("{e:?}")
            };
            let names: BTreeSet<&str> = r.items.iter().map(|i| i.service.as_str()).collect();
            assert_eq!(names, ["api", "ledger"].into());
        });
    // Governance's naming rule refuses the name.
    let mut named = create(
        "Not A Name",
        "payments",
        vec![item("web", Strategy::Rolling, vec![])],
    );
    if let Command::CreateRelease(c) = &mut named {
        c.name = "2026-bad".into();
        c.name_refused = Some("2026-bad is not calver YYYY.MM.MICRO".into());
    }
    s.when(named)
        .then_refused(|e| matches!(e, DomainError::Invalid { field, reason } if field == "name" && reason.contains("naming rule")));
}

#[test]
fn a_plan_that_breaks_a_deployed_consumer_is_refused_with_the_range() {
    let mut s = world();
    s.apply(create(
        "r1",
        "payments",
        vec![item("api", Strategy::Rolling, vec![])],
    ))
    .expect("created");
    let mut broken = plan();
    broken.skew = vec!["prod: web 3.1.0 requires api >=1.0, <1.4 and would get 1.4.0".into()];
    s.when(PlanRelease { release: release_id("r1"), plan: broken, at: at(2) }.into())
        .then_refused(|e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("requires api >=1.0, <1.4")));
}
