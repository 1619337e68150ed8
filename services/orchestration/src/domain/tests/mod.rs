//! Orchestration's domain, given/when/then: artifacts and their standing, releases filled and
//! planned, promotion with every reason at once, deployments step by step, analyses, atomic
//! rollback in reverse order, test windows and drift.

use std::collections::BTreeMap;

use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::*;

mod deployments;
mod environments;
mod promotion;
mod releases;
mod rollback_decisions;

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
        committed_at: None,
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
                        hold: None,
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
                        hold: None,
                    }
                    .into(),
                )
                .expect("wait over");
            }
            Next::Waiting(_) | Next::Decide(_) | Next::Close | Next::Nothing => return t,
        }
        t += 1;
    }
    panic!("deployment did not settle")
}

pub(crate) fn kinds(d: &Deployment, rollback: bool) -> Vec<String> {
    d.steps
        .iter()
        .filter(|s| s.rollback == rollback)
        .map(|s| format!("{}:{}", s.service, s.kind.name()))
        .collect()
}
