//! Every fact orchestration records, and the stream each aggregate's facts go to.

use std::collections::BTreeMap;

use flotilla_core::ids::StreamId;
use uuid::Uuid;

use super::*;

/// An environment's definition (what `DefineEnvironment` sets; what it reports is apart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvironmentSpec {
    pub business_unit: String,
    pub name: String,
    pub checks: Vec<String>,
    pub data: Option<DataRequirement>,
    pub test_teams: Vec<String>,
    pub shared: Vec<String>,
    pub desired: BTreeMap<String, String>,
}

/// An analysis verdict (risk-validation's canary judgement, or a person's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
    /// Neither: the deployment pauses for a person; it never counts as a pass.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// What one service's deployment came to (the contract other services consume).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceOutcome {
    Succeeded,
    Failed,
    RolledBack,
}

/// How a deployment ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    Succeeded,
    RolledBack { reason: String },
    Failed { reason: String },
}

/// Every fact orchestration records.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    PolicySet {
        policy: OrchestrationPolicy,
        at: Timestamp,
    },
    ArtifactRegistered(Box<Artifact>),
    PromotionPathSet {
        business_unit: String,
        environments: Vec<String>,
        at: Timestamp,
    },
    /// An environment removed (on no path, nothing deploying into it).
    EnvironmentRemoved {
        business_unit: String,
        name: String,
        at: Timestamp,
    },
    EnvironmentDefined {
        spec: EnvironmentSpec,
        /// It did not exist before (new, or defined again after it was removed).
        created: bool,
        at: Timestamp,
    },
    SharedInfrastructureDefined(SharedInfrastructure),
    TriggerRuleDefined(TriggerRule),
    TriggerRuleRemoved {
        id: Uuid,
    },
    ConfigurationReported {
        business_unit: String,
        environment: String,
        actual: BTreeMap<String, String>,
        at: Timestamp,
    },
    /// A key whose reported value differs from the desired one (None: absent on that side).
    DriftDetected {
        business_unit: String,
        environment: String,
        key: String,
        desired: Option<String>,
        actual: Option<String>,
        at: Timestamp,
    },
    DataRefreshed {
        business_unit: String,
        environment: String,
        refresh: DataRefresh,
    },
    TestWindowBooked {
        business_unit: String,
        environment: String,
        window: TestWindow,
    },
    TestWindowSignedOff {
        business_unit: String,
        environment: String,
        window: Uuid,
        sign_off: SignOff,
    },
    ValidationRecorded {
        business_unit: String,
        environment: String,
        release: String,
        check: String,
        passed: bool,
        at: Timestamp,
    },
    ReleaseCreated(Box<Release>),
    ReleasePlanned {
        release: Uuid,
        plan: ReleasePlan,
        at: Timestamp,
    },
    DeploymentStarted(Box<Deployment>),
    StepStarted {
        deployment: Uuid,
        index: u32,
        at: Timestamp,
    },
    StepFinished {
        deployment: Uuid,
        index: u32,
        outcome: StepOutcome,
        at: Timestamp,
    },
    DeploymentPaused {
        deployment: Uuid,
        reason: String,
        at: Timestamp,
    },
    DeploymentResumed {
        deployment: Uuid,
        by: String,
        at: Timestamp,
    },
    /// A forward step failed; the deployment holds for governance's rollback decision.
    RollbackDecisionAwaited {
        deployment: Uuid,
        decision: Uuid,
        reason: String,
        decide_by: Timestamp,
        notify: Vec<String>,
        at: Timestamp,
    },
    AnalysisRecorded {
        deployment: Uuid,
        index: u32,
        verdict: Verdict,
        detail: String,
        at: Timestamp,
    },
    RollbackStarted {
        deployment: Uuid,
        reason: String,
        steps: Vec<Step>,
        at: Timestamp,
    },
    /// One service of the release finished in the environment (`DeploymentFinished`).
    ServiceFinished {
        deployment: Uuid,
        release: String,
        environment: String,
        service: String,
        /// What runs after it (the previous version after a rollback; empty when none).
        version: String,
        /// The package URL of what runs after it (empty when unknown or nothing runs).
        artifact: String,
        /// What ran before the deployment (empty: the service is new in the environment).
        previous_version: String,
        outcome: ServiceOutcome,
        started_at: Timestamp,
        at: Timestamp,
        deployed_by: String,
    },
    DeploymentCompleted {
        deployment: Uuid,
        release: String,
        environment: String,
        ending: Ending,
        at: Timestamp,
    },
}

/// The stream an aggregate's facts go to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamKey {
    Policy,
    Artifact(String),
    Path(String),
    Environment { business_unit: String, name: String },
    Infrastructure(String),
    Trigger(Uuid),
    Release(Uuid),
    Deployment(Uuid),
}

/// The singleton stream of orchestration's policy (aggregate `policy`).
pub const POLICY_STREAM: &str = "orchestration-policy";

impl StreamKey {
    /// The store's stream: `<aggregate>-<uuid>` (v5 of the natural key where there is one).
    pub fn stream(&self) -> StreamId {
        const NS: Uuid = Uuid::from_u128(0x3c1e_9b07_2d5a_4f1e_8a6c_0b9d_4e2f_7a13);
        let v5 = |s: &str| Uuid::new_v5(&NS, s.as_bytes());
        match self {
            StreamKey::Policy => StreamId::singleton(POLICY_STREAM),
            StreamKey::Artifact(purl) => StreamId::for_aggregate("artifact", v5(purl)),
            StreamKey::Path(unit) => StreamId::for_aggregate("path", v5(unit)),
            StreamKey::Environment {
                business_unit,
                name,
            } => StreamId::for_aggregate("environment", v5(&format!("{business_unit}\n{name}"))),
            StreamKey::Infrastructure(name) => StreamId::for_aggregate("infrastructure", v5(name)),
            StreamKey::Trigger(id) => StreamId::for_aggregate("trigger", *id),
            StreamKey::Release(id) => StreamId::for_aggregate("release", *id),
            StreamKey::Deployment(id) => StreamId::for_aggregate("deployment", *id),
        }
    }
}

/// A release's id: from its name (one release per name).
pub fn release_id(name: &str) -> Uuid {
    const NS: Uuid = Uuid::from_u128(0x5e7f_11c2_9a4b_4c3d_b1e0_6f2a_8d9c_0e41);
    Uuid::new_v5(&NS, name.as_bytes())
}

/// The id of a release's `n`-th deployment: two promotions decided at once name the same
/// deployment, so one of them conflicts.
pub fn deployment_id(release: Uuid, n: usize) -> Uuid {
    Uuid::new_v5(&release, format!("deployment/{n}").as_bytes())
}
