//! Every stored orchestration event type has a golden file (`tests/golden/<type>.v<version>.bin`,
//! the payload as recorded): today's encoding must produce exactly those bytes, each file must
//! decode to its event, and the history they come from, decoded, rebuilds the same state.
//!
//! The history is decided by the domain itself (a release planned, promoted, paused by an
//! inconclusive analysis, resumed, finished and rolled back), so every type appears as it really
//! is recorded. A new event type: make the history reach it and record its file with
//! `FLOTILLA_BLESS=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use flotilla_core::decider::{Decider, Recorded, StoredEvents};
use flotilla_core::event::Metadata;
use flotilla_core::ids::StreamId;
use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::OrchestrationEvents;
use crate::domain::tests::*;
use crate::domain::*;

struct History {
    scenario: Scenario<Orchestration>,
    events: Vec<(StreamId, Event)>,
}

impl History {
    fn run(&mut self, c: impl Into<Command>) {
        let d = self
            .scenario
            .apply(c.into())
            .unwrap_or_else(|e| panic!("the history's command was refused: {e}"));
        self.events
            .extend(d.events.into_iter().map(|e| (d.stream_id.clone(), e)));
    }

    /// Runs a deployment as the runner and people would until it is over: steps succeed,
    /// waits end, the first analysis is inconclusive (then resumed), later ones pass.
    fn drive(&mut self, d: Uuid, mut t: i64) -> i64 {
        let mut inconclusive_once = true;
        for _ in 0..200 {
            t += 1;
            let dep = self.scenario.deployments[&d].clone();
            match dep.next() {
                Next::Start(index) => self.run(StartStep {
                    deployment: d,
                    index,
                    at: at(t),
                }),
                Next::Running(index) | Next::WaitUntil(index, _) => self.run(FinishStep {
                    deployment: d,
                    index,
                    outcome: ok(true),
                    at: at(t),
                    hold: None,
                }),
                Next::Waiting(index) => match &dep.step(index).map(|s| s.kind.clone()) {
                    Some(StepKind::Analysis { name, .. })
                        if !matches!(dep.status, DeploymentStatus::Paused { .. }) =>
                    {
                        let verdict = if std::mem::take(&mut inconclusive_once) {
                            Verdict::Inconclusive
                        } else {
                            Verdict::Passed
                        };
                        self.run(RecordAnalysis {
                            deployment: d,
                            name: name.clone(),
                            verdict,
                            detail: "p = 0.21 (too few samples)".into(),
                            at: at(t),
                        });
                    }
                    _ => self.run(ResumeDeployment {
                        deployment: d,
                        by: "olga".into(),
                        at: at(t),
                    }),
                },
                Next::Decide(_) | Next::Close | Next::Nothing => return t,
            }
        }
        panic!("the deployment did not settle")
    }
}

fn history() -> History {
    let mut h = History {
        scenario: Scenario::<Orchestration>::default().as_of("rita", "payments", at(0)),
        events: Vec::new(),
    };
    h.run(SetPolicy {
        policy: OrchestrationPolicy {
            licence_allow_list: ["Apache-2.0".to_owned(), "MIT".to_owned()].into(),
            descriptor_standard: DescriptorStandard {
                required_labels: vec!["team".into()],
                require_resource_limits: true,
                forbid_latest_tags: true,
            },
        },
        at: at(0),
    });
    h.run(DefineSharedInfrastructure {
        infrastructure: SharedInfrastructure {
            name: "db-cluster".into(),
            capacity: 2,
        },
    });
    let mut dev = env("payments", "dev");
    dev.desired = [("tls".to_owned(), "1.3".to_owned())].into();
    dev.shared = vec!["db-cluster".into()];
    dev.checks = vec!["smoke".into()];
    h.run(DefineEnvironment {
        spec: dev,
        at: at(0),
    });
    let mut staging = env("payments", "staging");
    staging.test_teams = vec!["qa".into()];
    staging.data = Some(DataRequirement {
        max_age_days: 7,
        min_volume_percent: 20,
    });
    h.run(DefineEnvironment {
        spec: staging,
        at: at(0),
    });
    h.run(DefineEnvironment {
        spec: env("payments", "sandbox"),
        at: at(0),
    });
    h.run(RemoveEnvironment {
        business_unit: "payments".into(),
        name: "sandbox".into(),
        at: at(0),
    });
    h.run(SetPromotionPath {
        business_unit: "payments".into(),
        environments: vec!["dev".into(), "staging".into()],
        at: at(0),
    });
    h.run(RegisterArtifact {
        artifact: artifact("ledger", "2.0.0", 1),
    });
    h.run(RegisterArtifact {
        artifact: artifact("api", "1.4.0", 2),
    });
    let rule = Uuid::from_u128(0x7);
    h.run(DefineTriggerRule {
        rule: TriggerRule {
            id: rule,
            business_unit: "payments".into(),
            services: "payments-*".into(),
            up_to: Bump::Patch,
            environment: "dev".into(),
        },
    });
    h.run(RemoveTriggerRule { id: rule });
    h.run(ReportConfiguration {
        business_unit: "payments".into(),
        environment: "dev".into(),
        actual: [("tls".to_owned(), "1.2".to_owned())].into(),
        at: at(1),
    });
    h.run(RecordDataRefresh {
        business_unit: "payments".into(),
        environment: "staging".into(),
        refresh: DataRefresh {
            masked: true,
            copied_at: at(1),
            volume_percent: 25,
            recorded_by: "refresh-job".into(),
        },
    });
    let blue_green = Strategy::BlueGreen {
        pre_promotion_analysis: Some("api-smoke".into()),
        post_promotion_analysis: None,
        scale_down_delay_secs: 30,
        session_drain_secs: 10,
    };
    h.run(create(
        "r1",
        "payments",
        vec![
            item("ledger", Strategy::Rolling, vec![migration("v2-accounts")]),
            item("api", blue_green, Vec::new()),
        ],
    ));
    h.run(BookTestWindow {
        business_unit: "payments".into(),
        environment: "staging".into(),
        window: TestWindow {
            id: Uuid::from_u128(0x9),
            release: "r1".into(),
            team: "qa".into(),
            start: at(10),
            end: at(600),
            signed_off: None,
        },
        at: at(2),
    });
    h.run(SignOffTestWindow {
        business_unit: "payments".into(),
        environment: "staging".into(),
        window: Uuid::from_u128(0x9),
        sign_off: SignOff {
            by: "qa-lead".into(),
            at: at(20),
            passed: true,
            comment: "regression suite green".into(),
        },
    });
    h.run(RecordValidation {
        business_unit: "payments".into(),
        environment: "dev".into(),
        release: "r1".into(),
        check: "smoke".into(),
        passed: true,
        at: at(3),
    });
    let release = release_id("r1");
    let p = |s: &str| PlannedService {
        service: s.into(),
        version: None,
        group: None,
    };
    h.run(PlanRelease {
        release,
        plan: ReleasePlan {
            waves: vec![vec![p("ledger")], vec![p("api")]],
            impact: vec!["api".into()],
            skew: Vec::new(),
        },
        at: at(4),
    });
    h.run(promote(release, "dev", allowed(), 5));
    let t = h.drive(deployment_id(release, 0), 5);
    h.run(RollbackRelease {
        release,
        reason: "error rate 7% over 5%".into(),
        by: "monitoring".into(),
        at: at(t + 1),
    });
    let t = h.drive(deployment_id(release, 0), t + 1);
    // Into dev again: ledger's migration fails, governance gives people time to decide, and
    // they decide not to roll back.
    h.run(promote(release, "dev", allowed(), t + 1));
    let again = deployment_id(release, 1);
    h.run(StartStep {
        deployment: again,
        index: 0,
        at: at(t + 2),
    });
    h.run(FinishStep {
        deployment: again,
        index: 0,
        outcome: ok(false),
        at: at(t + 3),
        hold: Some(RollbackHold {
            decision: Uuid::from_u128(0xdec1),
            decide_by: at(t + 60),
            notify: vec!["release-manager".into()],
        }),
    });
    h.run(DeclineRollback {
        deployment: again,
        decision: Uuid::from_u128(0xdec1),
        by: "rita".into(),
        comment: "fixing forward".into(),
        at: at(t + 4),
    });
    h
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn every_event_type_encodes_as_recorded_and_decodes() {
    let codec = OrchestrationEvents;
    let h = history();
    let mut written = BTreeSet::new();
    for (_, event) in &h.events {
        let (ty, version, payload) = codec.encode(event);
        let file = dir().join(format!("{ty}.v{version}.bin"));
        if written.insert(
            file.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ) {
            flotilla_core::testing::golden(&file, &payload);
        }
        let stored = std::fs::read(&file).expect("golden file");
        let decoded = codec
            .decode(&ty, version, &payload)
            .expect("decodes")
            .expect("its own type");
        assert_eq!(&decoded, event, "{ty} round-trips");
        if stored == payload {
            continue;
        }
        // Later samples of a type differ from its golden one; the golden one must still decode.
        codec
            .decode(&ty, version, &stored)
            .expect("the golden file decodes")
            .expect("its own type");
    }
    assert_eq!(written.len(), 26, "one file per event type: {written:#?}");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .expect("golden dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(on_disk, written, "no golden file without its event type");
}

/// The history, encoded and decoded again, rebuilds exactly the state the domain decided it on.
#[test]
fn the_decoded_history_rebuilds_the_state() {
    let codec = OrchestrationEvents;
    let h = history();
    let mut state = Orchestration::default();
    let mut versions: BTreeMap<StreamId, u64> = BTreeMap::new();
    for (position, (stream, event)) in h.events.iter().enumerate() {
        let (ty, version, payload) = codec.encode(event);
        let decoded = codec
            .decode(&ty, version, &payload)
            .expect("decodes")
            .expect("its own type");
        let v = versions
            .entry(stream.clone())
            .and_modify(|v| *v += 1)
            .or_insert(0);
        state.evolve(&Recorded {
            event: decoded,
            stream_id: stream.clone(),
            stream_version: *v,
            position: position as u64 + 1,
            recorded_at: at(0),
            metadata: Metadata::by("rita", "payments"),
        });
    }
    // Every map of the state is ordered, so equal states print the same.
    assert_eq!(format!("{state:?}"), format!("{:?}", h.scenario.state()));
    let d = &state.deployments[&deployment_id(release_id("r1"), 0)];
    assert!(
        matches!(d.status, DeploymentStatus::RolledBack { .. }),
        "{:?}",
        d.status
    );
}
