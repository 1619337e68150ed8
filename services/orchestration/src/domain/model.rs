//! What orchestration keeps: artifacts from CI, the policy they and descriptors are held to,
//! environments on each unit's promotion path, shared infrastructure, trigger rules, releases
//! and their deployments, step by step.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;

/// Test results CI reported for an artifact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResults {
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
}

/// A static-analysis result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    pub tool: String,
    pub passed: bool,
    pub findings: u32,
}

/// Where an artifact's registration came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArtifactSource {
    /// gRPC (a pipeline step, `flotilla artifact register`).
    Api,
    /// A CDEvent (`dev.cdevents.artifact.packaged` / `published`) read from the bus.
    CdEvents,
}

/// A build of one service version, as CI registered it. Its id is a package URL with the
/// image's SHA-256 digest: `pkg:oci/<service>@sha256%3A<hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub purl: String,
    pub service: String,
    pub version: semver::Version,
    pub commit: String,
    pub repository: String,
    pub build_url: String,
    pub tests: TestResults,
    pub analysis: Analysis,
    /// SPDX licence ids of what it contains.
    pub licences: Vec<String>,
    /// `sha256:<64 hex>`.
    pub image_digest: String,
    pub registered_at: Timestamp,
    pub source: ArtifactSource,
    /// When its commit was made, as CI said.
    pub committed_at: Option<Timestamp>,
}

impl Artifact {
    /// The package URL of a service's image with a digest (`sha256:<hex>`).
    pub fn purl_of(service: &str, image_digest: &str) -> String {
        format!("pkg:oci/{service}@{}", image_digest.replacen(':', "%3A", 1))
    }
}

/// How a service is deployed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DescriptorKind {
    Helm,
    Terraform,
    Kustomize,
}

impl DescriptorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DescriptorKind::Helm => "helm",
            DescriptorKind::Terraform => "terraform",
            DescriptorKind::Kustomize => "kustomize",
        }
    }
}

/// The standard deployment descriptor of a service in a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    pub kind: DescriptorKind,
    /// Chart, module or overlay reference (e.g. `oci://charts/payments`).
    pub reference: String,
    pub version: String,
    pub values: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// CPU and memory limits, when set (e.g. `500m`, `512Mi`).
    pub cpu_limit: String,
    pub memory_limit: String,
    /// Shared infrastructure it deploys into (counts against that infrastructure's capacity).
    pub uses: Vec<String>,
}

/// What descriptors are held to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorStandard {
    pub required_labels: Vec<String>,
    pub require_resource_limits: bool,
    pub forbid_latest_tags: bool,
}

/// Orchestration's policy: what artifacts may go into releases and what descriptors must say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrchestrationPolicy {
    /// SPDX ids an artifact's licences must be among (empty: any).
    pub licence_allow_list: BTreeSet<String>,
    pub descriptor_standard: DescriptorStandard,
}

/// One step of a canary, in Argo Rollouts' terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CanaryStep {
    /// Send this percentage of traffic to the new version.
    SetWeight(u8),
    /// Wait this many seconds, or (None) until a person resumes it.
    Pause(Option<u32>),
    /// Wait for the named analysis (risk-validation's canary judgement).
    Analysis(String),
}

/// How a service's new version replaces the old one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    Rolling,
    BlueGreen {
        pre_promotion_analysis: Option<String>,
        post_promotion_analysis: Option<String>,
        /// How long the old colour is kept after the switch, for instant rollback.
        scale_down_delay_secs: u32,
        /// How long sticky sessions are drained before the switch.
        session_drain_secs: u32,
    },
    Canary {
        steps: Vec<CanaryStep>,
    },
}

/// A database schema migration run with the service: forward before it, rollback (in reverse)
/// when the release is rolled back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    pub name: String,
    pub forward: String,
    pub rollback: String,
}

/// One service of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseItem {
    pub service: String,
    pub version: semver::Version,
    pub purl: String,
    pub descriptor: Descriptor,
    pub strategy: Strategy,
    pub migrations: Vec<Migration>,
}

/// A service of a planned wave (a co-deployment partner the release did not name is
/// redeployed as it runs: no version).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedService {
    pub service: String,
    pub version: Option<String>,
    pub group: Option<String>,
}

/// Dependency-mapping's plan of a release.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePlan {
    pub waves: Vec<Vec<PlannedService>>,
    /// Services the release reaches (the impact set), most at risk first.
    pub impact: Vec<String>,
    /// Ranges a deployed consumer declared that the release would break.
    pub skew: Vec<String>,
}

/// Where a release stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseStatus {
    Created,
    Planned,
    /// A deployment into the environment is under way.
    Promoting {
        environment: String,
        deployment: Uuid,
    },
    /// The last promotion succeeded: the release runs in the environment.
    Deployed {
        environment: String,
    },
    /// The last deployment was rolled back (or failed and was rolled back).
    RolledBack {
        environment: String,
    },
}

/// A release: content, plan, and where it has been.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: Uuid,
    pub name: String,
    pub business_unit: String,
    pub emergency: bool,
    pub items: Vec<ReleaseItem>,
    pub plan: Option<ReleasePlan>,
    pub status: ReleaseStatus,
    /// Environments it was deployed to, in order (the last is where it runs now).
    pub deployed_to: Vec<String>,
    pub deployments: Vec<Uuid>,
    pub created_by: String,
    pub created_at: Timestamp,
    /// A release a trigger rule created: the environment it is promoted into by itself, along
    /// the path.
    pub promote_to: Option<String>,
}

/// A shared piece of infrastructure (a database cluster) that takes at most `capacity`
/// deployments at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedInfrastructure {
    pub name: String,
    pub capacity: u32,
}

/// What an environment requires of its data (lower environments: a masked copy of production).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRequirement {
    pub max_age_days: u32,
    pub min_volume_percent: u32,
}

/// The last refresh of an environment's data, as the job that ran it recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRefresh {
    pub masked: bool,
    pub copied_at: Timestamp,
    pub volume_percent: u32,
    pub recorded_by: String,
}

/// A team's booking of an environment's test window for a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestWindow {
    pub id: Uuid,
    pub release: String,
    pub team: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub signed_off: Option<SignOff>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    pub by: String,
    pub at: Timestamp,
    pub passed: bool,
    pub comment: String,
}

/// One environment of a unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub business_unit: String,
    pub name: String,
    /// Validations a release must have passed here before it is promoted in.
    pub checks: Vec<String>,
    pub data: Option<DataRequirement>,
    /// Teams that must sign off (in a booked window) before a release leaves it.
    pub test_teams: Vec<String>,
    /// Shared infrastructure its deployments go into.
    pub shared: Vec<String>,
    /// The configuration it should have (middleware versions, endpoints, policies).
    pub desired: BTreeMap<String, String>,
    /// What it last reported.
    pub actual: BTreeMap<String, String>,
    pub last_refresh: Option<DataRefresh>,
    pub windows: Vec<TestWindow>,
    /// Validations recorded, by (release, check): passed or not, and when.
    pub validations: BTreeMap<(String, String), (bool, Timestamp)>,
    /// Which version of each service runs here (from deployments that finished).
    pub running: BTreeMap<String, String>,
}

/// Which version part changed between two versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Bump {
    Patch,
    Minor,
    Major,
}

impl Bump {
    /// The change from `from` to `to` (None when `to` is not newer).
    pub fn between(from: &semver::Version, to: &semver::Version) -> Option<Bump> {
        if to <= from {
            None
        } else if to.major != from.major {
            Some(Bump::Major)
        } else if to.minor != from.minor {
            Some(Bump::Minor)
        } else {
            Some(Bump::Patch)
        }
    }
}

/// A rule on service-level versions: an artifact of a matching service whose version bump is
/// at most `up_to` creates a release into `environment`; a larger bump needs a planned release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRule {
    pub id: Uuid,
    pub business_unit: String,
    /// A service name, or a prefix ending in `*` (`payments-*`).
    pub services: String,
    pub up_to: Bump,
    pub environment: String,
}

impl TriggerRule {
    pub fn matches(&self, service: &str) -> bool {
        match self.services.strip_suffix('*') {
            Some(prefix) => service.starts_with(prefix),
            None => self.services == service,
        }
    }
}
