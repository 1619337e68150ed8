//! What governance keeps: releases and their approval requests, CAB decisions, windows,
//! deviations, rollback decisions and the catalog's word on services.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{RoleRequirement, Schedule, Timestamp};

/// The person or service account acting, as the verified token named them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub subject: String,
    pub roles: BTreeSet<String>,
    pub business_unit: String,
}

/// What governance knows of a release when deciding on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseFacts {
    pub release: String,
    pub version: String,
    pub environment: String,
    pub service: String,
    pub business_unit: String,
    pub tier: u8,
    pub risk_score: u8,
    pub personal_data: bool,
    pub author: String,
    pub committers: Vec<String>,
}

impl ReleaseFacts {
    /// The release and environment these facts are of.
    pub fn key(&self) -> ReleaseEnv {
        ReleaseEnv {
            release: self.release.clone(),
            environment: self.environment.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    pub role: String,
    pub comment: String,
    pub at: Timestamp,
    pub valid_until: Option<Timestamp>,
}

/// The approval request of one release in one environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: Uuid,
    pub release: ReleaseFacts,
    pub requirements: Vec<RoleRequirement>,
    pub approvals: Vec<Approval>,
    pub opened_at: Timestamp,
    pub opened_by: String,
    pub due_at: Timestamp,
    pub expires_at: Timestamp,
    pub escalate_to: Vec<String>,
    pub validity_minutes: u32,
    pub policy_version: u64,
    pub emergency: bool,
    /// Opened from risk-validation's assessment (its facts are authoritative).
    pub assessed: bool,
    pub escalated: bool,
    pub expired: bool,
    pub rejection: Option<(String, String)>,
    pub rejected_at: Option<Timestamp>,
    /// Stream version of the request's stream.
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReleaseEnv {
    pub release: String,
    pub environment: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CabDecision {
    pub change_request_id: String,
    pub approved: bool,
    pub covers: Vec<ReleaseEnv>,
    pub satisfies_roles: Vec<String>,
    pub members: Vec<String>,
    pub decided_at: Timestamp,
    pub recorded_by: String,
    pub comment: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowKind {
    Freeze,
    Embargo,
}

/// Empty lists mean "all".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowScope {
    pub business_units: Vec<String>,
    pub environments: Vec<String>,
    pub tiers: Vec<u8>,
}

impl WindowScope {
    /// Does the scope take in a release of this unit, environment and tier? Unknown facts
    /// (no approval request yet) match, so a window is never missed for lack of facts.
    pub fn covers(&self, bu: Option<&str>, env: &str, tier: Option<u8>) -> bool {
        (self.business_units.is_empty()
            || bu.is_none_or(|b| self.business_units.iter().any(|x| x == b)))
            && (self.environments.is_empty() || self.environments.iter().any(|e| e == env))
            && (self.tiers.is_empty() || tier.is_none_or(|t| self.tiers.contains(&t)))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FreezeWindow {
    pub id: Uuid,
    pub name: String,
    pub kind: WindowKind,
    pub scope: WindowScope,
    pub schedule: Schedule,
    pub reason: String,
    pub created_by: String,
    /// When it was created: the gate answers for earlier times without it.
    pub created_at: Timestamp,
    /// Unit that owns the window ("" = platform-wide).
    pub business_unit: String,
    pub cancelled: bool,
    pub cancelled_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GateRule {
    Approvals,
    FreezeWindow,
    Embargo,
}

impl GateRule {
    pub fn name(self) -> &'static str {
        match self {
            GateRule::Approvals => "approvals",
            GateRule::FreezeWindow => "freeze-window",
            GateRule::Embargo => "embargo",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviationStatus {
    Requested,
    Approved,
    Rejected,
    Expired,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deviation {
    pub id: Uuid,
    pub rule: GateRule,
    pub release: String,
    pub environment: String,
    pub business_unit: String,
    pub justification: String,
    pub compensating_controls: Vec<String>,
    pub expires_at: Timestamp,
    pub requested_by: String,
    pub requester_role: String,
    pub status: DeviationStatus,
    pub decided_by: String,
    pub decider_role: String,
    pub comment: String,
    /// When it was approved or rejected.
    pub decided_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RollbackStatus {
    Pending,
    RollBack,
    Continue,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackDecision {
    pub id: Uuid,
    pub release: String,
    pub environment: String,
    pub service: String,
    pub business_unit: String,
    pub tier: u8,
    pub metric: String,
    pub observed: f64,
    pub opened_at: Timestamp,
    pub decide_by: Timestamp,
    pub notify: Vec<String>,
    pub status: RollbackStatus,
    pub overdue: bool,
    pub decided_by: String,
    pub comment: String,
}

/// A service as the catalog (dependency-mapping) describes it: whose it is and how critical.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogService {
    pub name: String,
    pub business_unit: String,
    pub tier: u8,
    pub personal_data: bool,
    pub owner_team: String,
}

/// Governance's signature over an access policy replacement, so other services adopt it only
/// from their own deployment's governance (empty in replacements recorded before signing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySignature {
    pub namespace: String,
    /// Base64 Ed25519 signature.
    pub signature: String,
    /// Base64 public key.
    pub signing_key: String,
}
