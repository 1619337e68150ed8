//! Deployments step by step, analyses, and atomic rollback in reverse.

#![allow(unused_imports)]

use std::collections::{BTreeMap, BTreeSet};

use flotilla_core::decider::Decider;
use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::*;

#[test]
fn steps_follow_the_waves_and_each_strategy() {
    let (mut s, r) = released(world(), "r1");
    s.apply(promote(r, "dev", allowed(), 3)).expect("into dev");
    let d = &s.deployments[&s.releases[&r].deployments[0]];
    assert_eq!(
        kinds(d, false),
        vec![
            "ledger:migrate",
            "ledger:deploy-rolling",
            "api:deploy-preview",
            "api:analysis",
            "api:wait",
            "api:deploy-switch",
            "api:wait",
            "api:deploy-scale-down-old",
            "web:deploy-rolling",
        ]
    );
    // Step ids are stable: the same deployment plans the same ids.
    assert_eq!(d.steps[3].id, deployment::step_id(d.id, 3));
}

#[test]
fn a_failed_step_rolls_back_every_touched_service_in_reverse() {
    let (mut s, r) = released(world(), "r1");
    s.apply(promote(r, "dev", allowed(), 3)).expect("dev");
    let first = s.releases[&r].deployments[0];
    drive(&mut s, first, None, 4);
    s.apply(promote(r, "test", allowed(), 100)).expect("test");
    let d = s.releases[&r].deployments[1];
    // The blue-green analysis passes; web's rollout fails.
    drive(&mut s, d, Some(("web", "deploy-rolling")), 101);
    let dep = &s.deployments[&d];
    assert!(
        matches!(&dep.status, DeploymentStatus::RolledBack { reason } if reason.contains("web")),
        "{:?}",
        dep.status
    );
    // Consumers first: web, api, then ledger's deployment and then its migration.
    assert_eq!(
        kinds(dep, true),
        vec![
            "web:rollback-deploy",
            "api:rollback-deploy",
            "ledger:rollback-deploy",
            "ledger:rollback-migrate",
        ]
    );
    // What ran before is back (dev's versions were never in test: removed).
    assert!(
        s.environment("payments", "test")
            .expect("test")
            .running
            .is_empty()
    );
    assert!(
        matches!(&s.releases[&r].status, ReleaseStatus::RolledBack { environment } if environment == "test")
    );
}

#[test]
fn an_inconclusive_analysis_pauses_and_never_counts_as_a_pass() {
    let (mut s, r) = released(world(), "r1");
    s.apply(promote(r, "dev", allowed(), 3)).expect("dev");
    let d = s.releases[&r].deployments[0];
    let t = drive_until_waiting(&mut s, d, None, 4);
    assert!(
        matches!(s.deployments[&d].next(), Next::Waiting(_)),
        "waits for api-smoke"
    );
    let verdict = |v: Verdict, when: i64| {
        Command::from(RecordAnalysis {
            deployment: d,
            name: "api-smoke".into(),
            verdict: v,
            detail: "too few samples".into(),
            at: at(when),
        })
    };
    let s = s.when(verdict(Verdict::Inconclusive, t)).then_on(
        &StreamKey::Deployment(d).stream(),
        |e| {
            assert!(matches!(&e[1], Event::DeploymentPaused { .. }), "{e:?}");
        },
    );
    // A later "passed" does not slip it through: a person decides.
    let s = s.when(verdict(Verdict::Passed, t + 1)).then_refused(
        |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("inconclusive")),
    );
    let mut s = s
        .when(ResumeDeployment { deployment: d, by: "olga".into(), at: at(t + 2) }.into())
        .then_on(&StreamKey::Deployment(d).stream(), |e| {
            assert!(matches!(&e[1], Event::StepFinished { outcome, .. } if outcome.output_tail.contains("resumed by olga after an inconclusive analysis")));
        });
    drive(&mut s, d, None, t + 3);
    assert_eq!(s.deployments[&d].status, DeploymentStatus::Succeeded);
    // A failed verdict rolls back.
    let (mut s, r) = released(world(), "r2");
    s.apply(promote(r, "dev", allowed(), 3)).expect("dev");
    let d = s.releases[&r].deployments[0];
    let t = drive_until_waiting(&mut s, d, None, 4);
    s.apply(
        RecordAnalysis {
            deployment: d,
            name: "api-smoke".into(),
            verdict: Verdict::Failed,
            detail: "error rate 12%".into(),
            at: at(t),
        }
        .into(),
    )
    .expect("failed verdict");
    drive(&mut s, d, None, t + 1);
    assert!(matches!(
        &s.deployments[&d].status,
        DeploymentStatus::RolledBack { .. }
    ));
}

#[test]
fn only_what_was_deployed_is_rolled_back() {
    let (s, r) = released(world(), "r1");
    let mut s = s
        .when(
            RollbackRelease {
                release: r,
                reason: "monitoring".into(),
                by: "monitoring".into(),
                at: at(3),
            }
            .into(),
        )
        .then_refused(
            |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("never deployed")),
        );
    s.apply(promote(r, "dev", allowed(), 3)).expect("dev");
    let d = s.releases[&r].deployments[0];
    let t = drive(&mut s, d, None, 4);
    // A deployed release rolled back on request: all three services, consumers first.
    s.apply(
        RollbackRelease {
            release: r,
            reason: "error rate breached".into(),
            by: "monitoring".into(),
            at: at(t + 50),
        }
        .into(),
    )
    .expect("rollback");
    drive(&mut s, d, None, t + 51);
    assert_eq!(kinds(&s.deployments[&d], true)[0], "web:rollback-deploy");
    s.when(
        RollbackRelease {
            release: r,
            reason: "again".into(),
            by: "x".into(),
            at: at(t + 90),
        }
        .into(),
    )
    .then_refused(
        |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("rolled back already")),
    );
}

fn deployed_to_dev(name: &str) -> (Scenario<Orchestration>, Uuid, Uuid) {
    let (mut s, r) = released(world(), name);
    s.apply(promote(r, "dev", allowed(), 3)).expect("promote");
    let d = deployment_id(r, 0);
    (s, r, d)
}

#[test]
fn a_verdict_after_the_rollback_began_changes_nothing() {
    let (mut s, r, d) = deployed_to_dev("r1");
    drive_until_waiting(&mut s, d, None, 4);
    s.apply(
        RollbackRelease {
            release: r,
            reason: "by hand".into(),
            by: "rita".into(),
            at: at(50),
        }
        .into(),
    )
    .expect("rollback");
    let verdict = |v| {
        Command::from(RecordAnalysis {
            deployment: d,
            name: "api-smoke".into(),
            verdict: v,
            detail: String::new(),
            at: at(51),
        })
    };
    s.when(verdict(Verdict::Inconclusive)).then_refused(
        |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("not going forward")),
    );
}

#[test]
fn a_rollback_waits_for_the_forward_step_that_runs_and_that_step_decides_nothing() {
    let (mut s, r, d) = deployed_to_dev("r1");
    s.apply(
        StartStep {
            deployment: d,
            index: 0,
            at: at(4),
        }
        .into(),
    )
    .expect("start");
    s.apply(
        RollbackRelease {
            release: r,
            reason: "monitoring asked".into(),
            by: "monitoring".into(),
            at: at(5),
        }
        .into(),
    )
    .expect("rollback");
    assert_eq!(
        s.deployments[&d].next(),
        Next::Running(0),
        "the running migration is waited for"
    );
    let decision = s
        .apply(
            FinishStep {
                deployment: d,
                index: 0,
                outcome: ok(false),
                at: at(6),
                hold: None,
            }
            .into(),
        )
        .expect("finish");
    assert_eq!(
        decision.events.len(),
        1,
        "only the step's end: {:?}",
        decision.events
    );
    assert!(
        matches!(s.deployments[&d].next(), Next::Start(i) if s.deployments[&d].steps[i as usize].rollback)
    );
}

#[test]
fn a_release_rolled_back_out_of_an_environment_has_not_reached_it() {
    let (mut s, r, d) = deployed_to_dev("r1");
    let t = drive(&mut s, d, None, 4);
    assert_eq!(s.releases[&r].deployed_to, ["dev"]);
    s.apply(
        RollbackRelease {
            release: r,
            reason: "by hand".into(),
            by: "rita".into(),
            at: at(t + 1),
        }
        .into(),
    )
    .expect("rollback");
    drive(&mut s, d, None, t + 2);
    assert!(s.releases[&r].deployed_to.is_empty());
    s.when(promote(r, "test", allowed(), t + 10)).then_refused(
        |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("dev first")),
    );
}

#[test]
fn a_co_deployment_partner_keeps_the_version_it_runs() {
    let (mut s, _, d) = deployed_to_dev("r1");
    let t = drive(&mut s, d, None, 4);
    let web = s.environment("payments", "dev").expect("dev").running["web"].clone();
    s.apply(create(
        "r2",
        "payments",
        vec![item("api", Strategy::Rolling, Vec::new())],
    ))
    .expect("r2");
    let r2 = release_id("r2");
    let p = |svc: &str, group: Option<&str>| PlannedService {
        service: svc.into(),
        version: None,
        group: group.map(str::to_owned),
    };
    s.apply(
        PlanRelease {
            release: r2,
            plan: ReleasePlan {
                waves: vec![vec![p("api", Some("g")), p("web", Some("g"))]],
                impact: Vec::new(),
                skew: Vec::new(),
            },
            at: at(t + 1),
        }
        .into(),
    )
    .expect("plan");
    s.apply(promote(r2, "dev", allowed(), t + 2))
        .expect("promote r2");
    let d2 = deployment_id(r2, 0);
    drive(&mut s, d2, None, t + 3);
    assert_eq!(s.deployments[&d2].status, DeploymentStatus::Succeeded);
    assert_eq!(
        s.environment("payments", "dev").expect("dev").running["web"],
        web,
        "redeployed as it ran"
    );
}
