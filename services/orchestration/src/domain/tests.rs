//! Orchestration's domain, given/when/then: artifacts and their standing, releases filled and
//! planned, promotion with every reason at once, deployments step by step, analyses, atomic
//! rollback in reverse order, test windows and drift.

use std::collections::{BTreeMap, BTreeSet};

use flotilla_core::decider::Decider;
use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::*;

pub(crate) const MIN: i64 = 60_000_000;
pub(crate) const T0: Timestamp = Timestamp(1_793_577_600_000_000);

pub(crate) fn at(minutes: i64) -> Timestamp {
    Timestamp(T0.0 + minutes * MIN)
}

pub(crate) fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

pub(crate) fn artifact(service: &str, version: &str, n: u8) -> Artifact {
    let image_digest = digest(n);
    Artifact {
        purl: Artifact::purl_of(service, &image_digest),
        service: service.into(),
        version: semver::Version::parse(version).expect("version"),
        commit: format!("c0ffee{n:02x}"),
        repository: format!("https://git.example.com/{service}"),
        build_url: String::new(),
        tests: TestResults {
            passed: 10,
            failed: 0,
            skipped: 0,
        },
        analysis: Analysis {
            tool: "sonar".into(),
            passed: true,
            findings: 0,
        },
        licences: vec!["Apache-2.0".into()],
        image_digest,
        registered_at: at(0),
        source: ArtifactSource::Api,
    }
}

pub(crate) fn descriptor(service: &str) -> Descriptor {
    Descriptor {
        kind: DescriptorKind::Helm,
        reference: format!("oci://charts/{service}"),
        version: "1.0.0".into(),
        values: BTreeMap::new(),
        labels: [("team".to_owned(), "payments-team".to_owned())].into(),
        cpu_limit: "500m".into(),
        memory_limit: "512Mi".into(),
        uses: Vec::new(),
    }
}

pub(crate) fn env(unit: &str, name: &str) -> EnvironmentSpec {
    EnvironmentSpec {
        business_unit: unit.into(),
        name: name.into(),
        checks: Vec::new(),
        data: None,
        test_teams: Vec::new(),
        shared: Vec::new(),
        desired: BTreeMap::new(),
    }
}

/// Two units: payments with dev -> test -> staging -> prod (staging tested by qa and security,
/// smoke-checked; prod shares the database cluster, which takes one deployment at a time);
/// cards with dev, sharing the cluster too. Artifacts of ledger, api and web.
pub(crate) fn world() -> Scenario<Orchestration> {
    let mut s = Scenario::<Orchestration>::default().as_of("platform", "", at(0));
    let mut run = |c: Command| {
        s.apply(c).unwrap_or_else(|e| panic!("setup: {e}"));
    };
    run(SetPolicy {
        policy: OrchestrationPolicy {
            licence_allow_list: ["Apache-2.0".to_owned(), "MIT".to_owned()].into(),
            descriptor_standard: DescriptorStandard {
                required_labels: vec!["team".into()],
                require_resource_limits: true,
                forbid_latest_tags: true,
            },
        },
        at: at(0),
    }
    .into());
    run(DefineSharedInfrastructure {
        infrastructure: SharedInfrastructure {
            name: "db-cluster".into(),
            capacity: 1,
        },
    }
    .into());
    for name in ["dev", "test", "staging", "prod"] {
        let mut spec = env("payments", name);
        if name == "staging" {
            spec.checks = vec!["smoke".into()];
            spec.test_teams = vec!["qa".into(), "security".into()];
        }
        if name == "prod" {
            spec.shared = vec!["db-cluster".into()];
        }
        if name == "test" {
            spec.data = Some(DataRequirement {
                max_age_days: 7,
                min_volume_percent: 20,
            });
        }
        run(DefineEnvironment { spec, at: at(0) }.into());
    }
    let mut cards = env("cards", "dev");
    cards.shared = vec!["db-cluster".into()];
    run(DefineEnvironment {
        spec: cards,
        at: at(0),
    }
    .into());
    run(SetPromotionPath {
        business_unit: "payments".into(),
        environments: vec!["dev".into(), "test".into(), "staging".into(), "prod".into()],
        at: at(0),
    }
    .into());
    run(SetPromotionPath {
        business_unit: "cards".into(),
        environments: vec!["dev".into()],
        at: at(0),
    }
    .into());
    for (i, (service, version)) in [("ledger", "2.0.0"), ("api", "1.4.0"), ("web", "3.1.0")]
        .into_iter()
        .enumerate()
    {
        run(RegisterArtifact {
            artifact: artifact(service, version, i as u8 + 1),
        }
        .into());
    }
    run(RecordDataRefresh {
        business_unit: "payments".into(),
        environment: "test".into(),
        refresh: DataRefresh {
            masked: true,
            copied_at: at(0),
            volume_percent: 25,
            recorded_by: "refresh-job".into(),
        },
    }
    .into());
    s
}

pub(crate) fn item(service: &str, strategy: Strategy, migrations: Vec<Migration>) -> RequestedItem {
    RequestedItem {
        service: service.into(),
        version: None,
        descriptor: descriptor(service),
        strategy,
        migrations,
    }
}

pub(crate) fn create(name: &str, unit: &str, items: Vec<RequestedItem>) -> Command {
    CreateRelease {
        name: name.into(),
        business_unit: unit.into(),
        emergency: false,
        items,
        include: Vec::new(),
        default_descriptor: None,
        name_refused: None,
        promote_to: None,
        by: "rita".into(),
        at: at(1),
    }
    .into()
}

/// ledger first, then api and web (api -> ledger, web -> api).
pub(crate) fn plan() -> ReleasePlan {
    let p = |s: &str| PlannedService {
        service: s.into(),
        version: None,
        group: None,
    };
    ReleasePlan {
        waves: vec![vec![p("ledger")], vec![p("api")], vec![p("web")]],
        impact: vec!["api".into(), "web".into()],
        skew: Vec::new(),
    }
}

pub(crate) fn migration(name: &str) -> Migration {
    Migration {
        name: name.into(),
        forward: format!("psql -f {name}.up.sql"),
        rollback: format!("psql -f {name}.down.sql"),
    }
}

pub(crate) fn released(s: Scenario<Orchestration>, name: &str) -> (Scenario<Orchestration>, Uuid) {
    let mut s = s;
    s.apply(create(
        name,
        "payments",
        vec![
            item("ledger", Strategy::Rolling, vec![migration("v2-accounts")]),
            item(
                "api",
                Strategy::BlueGreen {
                    pre_promotion_analysis: Some("api-smoke".into()),
                    post_promotion_analysis: None,
                    scale_down_delay_secs: 30,
                    session_drain_secs: 10,
                },
                Vec::new(),
            ),
            item("web", Strategy::Rolling, Vec::new()),
        ],
    ))
    .expect("created");
    let id = release_id(name);
    s.apply(
        PlanRelease {
            release: id,
            plan: plan(),
            at: at(2),
        }
        .into(),
    )
    .expect("planned");
    (s, id)
}

pub(crate) fn allowed() -> GateAnswer {
    GateAnswer {
        allowed: true,
        reasons: Vec::new(),
    }
}

pub(crate) fn promote(release: Uuid, env: &str, gate: GateAnswer, when: i64) -> Command {
    PromoteRelease {
        release,
        environment: env.into(),
        gate,
        by: "rita".into(),
        at: at(when),
    }
    .into()
}

pub(crate) fn ok(succeeded: bool) -> StepOutcome {
    StepOutcome {
        succeeded,
        exit_code: Some(if succeeded { 0 } else { 1 }),
        duration_ms: 5,
        output_tail: if succeeded { "done" } else { "boom" }.into(),
    }
}

/// Runs the deployment as the runner would until it is over: steps that run succeed unless
/// `fail` names them (service, kind name), waits end, analyses pass, holds are resumed.
pub(crate) fn drive(
    s: &mut Scenario<Orchestration>,
    d: Uuid,
    fail: Option<(&str, &str)>,
    t: i64,
) -> i64 {
    let mut t = t;
    loop {
        t = drive_until_waiting(s, d, fail, t);
        let dep = s.deployments[&d].clone();
        let Next::Waiting(i) = dep.next() else {
            return t;
        };
        let command: Command = match &dep.step(i).expect("step").kind {
            StepKind::Analysis { name, .. }
                if !matches!(dep.status, DeploymentStatus::Paused { .. }) =>
            {
                RecordAnalysis {
                    deployment: d,
                    name: name.clone(),
                    verdict: Verdict::Passed,
                    detail: String::new(),
                    at: at(t),
                }
                .into()
            }
            _ => ResumeDeployment {
                deployment: d,
                by: "olga".into(),
                at: at(t),
            }
            .into(),
        };
        s.apply(command).expect("verdict or resume");
        t += 1;
    }
}

/// As [`drive`], but stops where the deployment waits for a verdict or a person.
pub(crate) fn drive_until_waiting(
    s: &mut Scenario<Orchestration>,
    d: Uuid,
    fail: Option<(&str, &str)>,
    mut t: i64,
) -> i64 {
    for _ in 0..500 {
        let dep = s.deployments[&d].clone();
        match dep.next() {
            Next::Start(i) => {
                s.apply(
                    StartStep {
                        deployment: d,
                        index: i,
                        at: at(t),
                    }
                    .into(),
                )
                .expect("start");
            }
            Next::Running(i) => {
                let step = dep.step(i).expect("step");
                let failed =
                    fail.is_some_and(|(svc, kind)| step.service == svc && step.kind.name() == kind);
                s.apply(
                    FinishStep {
                        deployment: d,
                        index: i,
                        outcome: ok(!failed),
                        at: at(t),
                    }
                    .into(),
                )
                .expect("finish");
            }
            Next::WaitUntil(i, _) => {
                t += 1;
                s.apply(
                    FinishStep {
                        deployment: d,
                        index: i,
                        outcome: ok(true),
                        at: at(t),
                    }
                    .into(),
                )
                .expect("wait over");
            }
            Next::Waiting(_) | Next::Close | Next::Nothing => return t,
        }
        t += 1;
    }
    panic!("deployment did not settle")
}

fn kinds(d: &Deployment, rollback: bool) -> Vec<String> {
    d.steps
        .iter()
        .filter(|s| s.rollback == rollback)
        .map(|s| format!("{}:{}", s.service, s.kind.name()))
        .collect()
}

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

#[test]
fn promotion_follows_the_path_and_says_every_reason_at_once() {
    let mut s = world();
    s.apply(create(
        "r0",
        "payments",
        vec![item("web", Strategy::Rolling, vec![])],
    ))
    .expect("created");
    // Not planned: refused, nothing recorded.
    let s = s
        .when(promote(release_id("r0"), "dev", allowed(), 3))
        .then_refused(
            |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("not planned")),
        );
    let (s, r) = released(s, "r1");
    // Skipping dev.
    let s = s
        .when(promote(r, "test", allowed(), 3))
        .then_refused(|e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("promote it into dev first")));
    // Governance's reasons come through with the others.
    let denied = GateAnswer {
        allowed: false,
        reasons: vec!["freeze window \"close\" is active".into()],
    };
    let mut s = s
        .when(promote(r, "dev", denied, 3))
        .then_refused(|e| matches!(e, DomainError::Blocked { reasons, .. } if reasons == &vec!["governance: freeze window \"close\" is active".to_owned()]));
    s.apply(promote(r, "dev", allowed(), 3)).expect("into dev");
    let d = s.releases[&r].deployments[0];
    // A second promotion while the first runs.
    let mut s = s.when(promote(r, "dev", allowed(), 4)).then_refused(
        |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("is being deployed")),
    );
    drive(&mut s, d, None, 5);
    assert_eq!(s.deployments[&d].status, DeploymentStatus::Succeeded);
    assert_eq!(
        s.environment("payments", "dev")
            .expect("dev")
            .running
            .get("ledger")
            .map(String::as_str),
        Some("2.0.0")
    );
    s.apply(promote(r, "test", allowed(), 100))
        .expect("into test");
    let d = s.releases[&r].deployments[1];
    drive(&mut s, d, None, 101);
    s.apply(promote(r, "staging", allowed(), 200))
        .expect("into staging");
    let d = s.releases[&r].deployments[2];
    drive(&mut s, d, None, 201);
    // Leaving staging: its check and both teams' sign-offs are missing; prod's database cluster
    // is held by cards; governance denies too. Every reason, once.
    let mut cards = world_cards_on_the_cluster(s);
    let reasons = match cards.state().decide(promote(
        r,
        "prod",
        GateAnswer {
            allowed: false,
            reasons: vec!["no approval request".into()],
        },
        300,
    )) {
        Err(DomainError::Blocked { reasons, .. }) => reasons,
        other => panic!("{other:?}"),
    };
    assert!(
        reasons
            .iter()
            .any(|x| x.starts_with("governance: no approval request")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("check smoke has not been recorded")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|x| x.contains("qa has no test window")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("security has no test window")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|x| x.starts_with("CapacityConflict: db-cluster")
                && x.contains("release c1 of cards")),
        "{reasons:?}"
    );
    // Checks, sign-offs in their windows, the cluster free: allowed.
    let mut run = |c: Command| cards.apply(c).expect("setup");
    run(RecordValidation {
        business_unit: "payments".into(),
        environment: "staging".into(),
        release: "r1".into(),
        check: "smoke".into(),
        passed: true,
        at: at(301),
    }
    .into());
    for (i, team) in ["qa", "security"].into_iter().enumerate() {
        let window = Uuid::from_u128(i as u128 + 1);
        run(BookTestWindow {
            business_unit: "payments".into(),
            environment: "staging".into(),
            window: TestWindow {
                id: window,
                release: "r1".into(),
                team: team.into(),
                start: at(310 + 20 * i as i64),
                end: at(320 + 20 * i as i64),
                signed_off: None,
            },
            at: at(302),
        }
        .into());
        run(SignOffTestWindow {
            business_unit: "payments".into(),
            environment: "staging".into(),
            window,
            sign_off: SignOff {
                by: format!("{team}-lead"),
                at: at(315 + 20 * i as i64),
                passed: true,
                comment: String::new(),
            },
        }
        .into());
    }
    let cards_deployment = cards.releases[&release_id("c1")].deployments[0];
    drive(&mut cards, cards_deployment, None, 360);
    cards
        .when(promote(r, "prod", allowed(), 400))
        .then_on(&StreamKey::Deployment(deployment_id(r, 3)).stream(), |e| {
            assert!(matches!(&e[0], Event::DeploymentStarted(d) if d.holds == vec!["db-cluster".to_owned()]));
        });
}

/// `s` with cards' release c1 deploying into cards/dev, which holds the database cluster.
fn world_cards_on_the_cluster(mut s: Scenario<Orchestration>) -> Scenario<Orchestration> {
    s.apply(
        RegisterArtifact {
            artifact: artifact("cardsvc", "1.0.0", 40),
        }
        .into(),
    )
    .expect("artifact");
    s.apply(create(
        "c1",
        "cards",
        vec![item("cardsvc", Strategy::Rolling, vec![])],
    ))
    .expect("created");
    let p = ReleasePlan {
        waves: vec![vec![PlannedService {
            service: "cardsvc".into(),
            version: None,
            group: None,
        }]],
        impact: vec![],
        skew: vec![],
    };
    s.apply(
        PlanRelease {
            release: release_id("c1"),
            plan: p,
            at: at(250),
        }
        .into(),
    )
    .expect("planned");
    s.apply(promote(release_id("c1"), "dev", allowed(), 251))
        .expect("cards into dev");
    s
}

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

#[test]
fn test_windows_do_not_overlap_and_sign_offs_happen_inside_them() {
    let (s, _) = released(world(), "r1");
    let book = |id: u128, start: i64, end: i64| {
        Command::from(BookTestWindow {
            business_unit: "payments".into(),
            environment: "staging".into(),
            window: TestWindow {
                id: Uuid::from_u128(id),
                release: "r1".into(),
                team: "qa".into(),
                start: at(start),
                end: at(end),
                signed_off: None,
            },
            at: at(5),
        })
    };
    let s = s.when(book(1, 60, 120)).then_on(
        &StreamKey::Environment {
            business_unit: "payments".into(),
            name: "staging".into(),
        }
        .stream(),
        |_| {},
    );
    let s = s.when(book(2, 100, 180)).then_refused(
        |e| matches!(e, DomainError::AlreadyExists(m) if m.contains("do not overlap")),
    );
    s.when(
        SignOffTestWindow {
            business_unit: "payments".into(),
            environment: "staging".into(),
            window: Uuid::from_u128(1),
            sign_off: SignOff {
                by: "qa-lead".into(),
                at: at(130),
                passed: true,
                comment: String::new(),
            },
        }
        .into(),
    )
    .then_refused(
        |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("sign off inside it")),
    );
}

#[test]
fn reported_configuration_drifts_once_per_difference() {
    let mut s = world();
    let mut spec = env("payments", "prod");
    spec.shared = vec!["db-cluster".into()];
    spec.desired = [
        ("kafka".to_owned(), "3.7".to_owned()),
        ("tls".to_owned(), "1.3".to_owned()),
    ]
    .into();
    s.apply(DefineEnvironment { spec, at: at(1) }.into())
        .expect("desired");
    let report = |kafka: &str, when: i64| {
        Command::from(ReportConfiguration {
            business_unit: "payments".into(),
            environment: "prod".into(),
            actual: [
                ("kafka".to_owned(), kafka.to_owned()),
                ("tls".to_owned(), "1.3".to_owned()),
                ("extra".to_owned(), "x".to_owned()),
            ]
            .into(),
            at: at(when),
        })
    };
    let prod = StreamKey::Environment {
        business_unit: "payments".into(),
        name: "prod".into(),
    }
    .stream();
    let s = s.when(report("3.6", 2)).then_on(&prod, |e| {
        let drifts: Vec<&str> = e
            .iter()
            .filter_map(|e| match e {
                Event::DriftDetected { key, .. } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(drifts, vec!["extra", "kafka"]);
    });
    // The same report again: no new drift events.
    let s = s
        .when(report("3.6", 3))
        .then_on(&prod, |e| assert_eq!(e.len(), 1));
    assert_eq!(s.drift("payments", "prod").len(), 2);
}
