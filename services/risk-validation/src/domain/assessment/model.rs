//! What an assessment is made of: the facts risk-validation took from other services' events
//! (releases, the catalog, promotion paths, deployments), the factor weights in force, and the
//! assessment itself with every factor explained.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Timestamp;

/// One service of a release, as orchestration created it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotedItem {
    pub service: String,
    pub version: String,
    pub migrations: u32,
    /// Migrations whose forward script changes a schema.
    pub schema_changes: u32,
}

/// A release orchestration created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotedRelease {
    /// Orchestration's release id.
    pub id: String,
    pub name: String,
    pub business_unit: String,
    pub emergency: bool,
    pub created_by: String,
    pub items: Vec<NotedItem>,
    pub created_at: Timestamp,
}

/// A service as the catalog describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub service: String,
    pub business_unit: String,
    /// 1 (most critical) .. 4.
    pub tier: u8,
    pub personal_data: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed,
    RolledBack,
}

/// A deployment of one service that finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentNote {
    pub deployment: String,
    /// The release's name (empty when the event named none).
    pub release: String,
    pub service: String,
    pub environment: String,
    pub outcome: Outcome,
    pub finished_at: Timestamp,
}

/// The weight of each factor (0 leaves it out), and the two numbers the factors use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskWeights {
    pub criticality_tier: u32,
    pub blast_radius: u32,
    pub change_size: u32,
    pub schema_changes: u32,
    pub migrations: u32,
    pub change_failure_rate: u32,
    pub fmea_rpn: u32,
    pub emergency: u32,
    /// Days of deployment history the change-failure rate is taken over.
    pub history_days: u32,
    /// An RPN at or above this requires an action before the release goes on.
    pub rpn_action_threshold: u32,
}

impl Default for RiskWeights {
    /// The weights in force until a version is set: what the service is and how much changes
    /// count most; they add up to 100, so a factor's weight is the most points it gives.
    fn default() -> Self {
        Self {
            criticality_tier: 25,
            blast_radius: 15,
            change_size: 10,
            schema_changes: 10,
            migrations: 10,
            change_failure_rate: 10,
            fmea_rpn: 10,
            emergency: 10,
            history_days: 90,
            rpn_action_threshold: 100,
        }
    }
}

/// What a score weighs, in the order assessments list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    CriticalityTier,
    BlastRadius,
    ChangeSize,
    SchemaChanges,
    Migrations,
    ChangeFailureRate,
    FmeaRpn,
    Emergency,
}

impl Factor {
    pub const ALL: [Factor; 8] = [
        Factor::CriticalityTier,
        Factor::BlastRadius,
        Factor::ChangeSize,
        Factor::SchemaChanges,
        Factor::Migrations,
        Factor::ChangeFailureRate,
        Factor::FmeaRpn,
        Factor::Emergency,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Factor::CriticalityTier => "criticality_tier",
            Factor::BlastRadius => "blast_radius",
            Factor::ChangeSize => "change_size",
            Factor::SchemaChanges => "schema_changes",
            Factor::Migrations => "migrations",
            Factor::ChangeFailureRate => "change_failure_rate",
            Factor::FmeaRpn => "fmea_rpn",
            Factor::Emergency => "emergency",
        }
    }
}

impl RiskWeights {
    pub fn weight(&self, f: Factor) -> u32 {
        match f {
            Factor::CriticalityTier => self.criticality_tier,
            Factor::BlastRadius => self.blast_radius,
            Factor::ChangeSize => self.change_size,
            Factor::SchemaChanges => self.schema_changes,
            Factor::Migrations => self.migrations,
            Factor::ChangeFailureRate => self.change_failure_rate,
            Factor::FmeaRpn => self.fmea_rpn,
            Factor::Emergency => self.emergency,
        }
    }

    pub fn total(&self) -> u32 {
        Factor::ALL.iter().map(|f| self.weight(*f)).sum()
    }
}

/// One factor of a score: the value measured, the share of its range it reaches (0..1), its
/// weight, the points it adds and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RiskFactor {
    pub name: String,
    pub value: f64,
    pub share: f64,
    pub weight: u32,
    pub points: f64,
    pub explanation: String,
}

/// A release's risk in one environment, as governance takes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub id: Uuid,
    pub release_id: String,
    pub release: String,
    /// The version of the service it is assessed for.
    pub version: String,
    pub environment: String,
    /// The release's most critical service: the one governance's request names.
    pub service: String,
    pub business_unit: String,
    pub tier: u8,
    pub score: u8,
    pub personal_data: bool,
    pub author: String,
    pub committers: Vec<String>,
    pub emergency: bool,
    pub factors: Vec<RiskFactor>,
    pub weights_version: u32,
    pub supersedes: Option<Uuid>,
    /// Services the impact analysis says the release reaches.
    pub impact: Vec<String>,
    /// What caused it: planned, replanned, FMEA recorded, weights set, by hand.
    pub cause: String,
    pub at: Timestamp,
}

impl Assessment {
    /// Whether governance would take `other` as the same facts (its approvals stand).
    pub fn same_facts(&self, other: &Assessment) -> bool {
        self.release == other.release
            && self.version == other.version
            && self.environment == other.environment
            && self.service == other.service
            && self.business_unit == other.business_unit
            && self.tier == other.tier
            && self.score == other.score
            && self.personal_data == other.personal_data
            && self.author == other.author
            && self.committers == other.committers
            && self.emergency == other.emergency
    }
}
