//! What monitoring watches with: health checks of business transactions, the thresholds and
//! window lengths by tier, and the watch windows deployments open.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;

/// How a deployment of a service ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed,
    RolledBack,
}

/// Which side of a threshold is a breach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    Above,
    Below,
}

impl Comparison {
    /// Whether `value` crosses `threshold`.
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::Below => value < threshold,
        }
    }

    /// The worse of two values.
    pub fn worse(self, a: f64, b: f64) -> f64 {
        match self {
            Comparison::Above => a.max(b),
            Comparison::Below => a.min(b),
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Comparison::Above => "above",
            Comparison::Below => "below",
        }
    }
}

/// A check of a business transaction, e.g. checkout success ratio at least 0.995.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// The metric its samples are named by.
    pub name: String,
    pub service: String,
    /// Empty: every environment.
    pub environment: String,
    pub business_unit: String,
    /// Empty: samples are pushed.
    pub promql: String,
    pub comparison: Comparison,
    pub threshold: f64,
    /// A NaN sample is skipped (true) or refused (false); never a pass either way.
    pub skip_nan: bool,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub metric: String,
    pub comparison: Comparison,
    pub threshold: f64,
}

/// A tier's window length and thresholds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierWatch {
    pub tier: u8,
    pub window_minutes: u32,
    pub thresholds: Vec<Threshold>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchPolicy {
    pub tiers: Vec<TierWatch>,
}

impl Default for WatchPolicy {
    /// Until a policy is set: the more critical, the longer watched and the less tolerated.
    fn default() -> Self {
        let tier = |tier, window_minutes, error_rate, p99_ms| TierWatch {
            tier,
            window_minutes,
            thresholds: vec![
                Threshold {
                    metric: "error_rate".into(),
                    comparison: Comparison::Above,
                    threshold: error_rate,
                },
                Threshold {
                    metric: "latency_p99_ms".into(),
                    comparison: Comparison::Above,
                    threshold: p99_ms,
                },
            ],
        };
        Self {
            tiers: vec![
                tier(1, 60, 0.01, 500.0),
                tier(2, 30, 0.02, 800.0),
                tier(3, 15, 0.05, 1000.0),
                tier(4, 10, 0.10, 2000.0),
            ],
        }
    }
}

impl WatchPolicy {
    /// The tier's entry, or the most critical tier's for a tier it does not name.
    pub fn for_tier(&self, tier: u8) -> Option<&TierWatch> {
        self.tiers
            .iter()
            .find(|t| t.tier == tier)
            .or_else(|| self.tiers.iter().min_by_key(|t| t.tier))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchStatus {
    Open,
    Breached,
    Healthy,
    NoData,
    Superseded,
    RolledBack,
}

/// What a window saw of one metric.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub samples: u64,
    pub worst: f64,
    pub last_at: Timestamp,
}

/// A deployment's post-deploy watch window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    pub id: Uuid,
    pub deployment: String,
    pub release: String,
    pub service: String,
    pub version: String,
    pub environment: String,
    pub business_unit: String,
    pub tier: u8,
    pub opened_at: Timestamp,
    pub closes_at: Timestamp,
    pub thresholds: Vec<Threshold>,
    pub status: WatchStatus,
    pub coverage: BTreeMap<String, Coverage>,
    pub breach: Option<Uuid>,
    pub rollback_request: Option<Uuid>,
    pub closed_at: Option<Timestamp>,
}

impl Watch {
    pub fn threshold(&self, metric: &str) -> Option<&Threshold> {
        self.thresholds.iter().find(|t| t.metric == metric)
    }

    /// Whether a sample taken at `at` falls inside the window.
    pub fn covers(&self, at: Timestamp) -> bool {
        self.opened_at <= at && at <= self.closes_at
    }
}

/// One sample of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at: Timestamp,
    pub value: f64,
}

/// A rollback threshold crossed inside a window, with the evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    pub id: Uuid,
    pub watch: Uuid,
    pub deployment: String,
    pub release: String,
    pub environment: String,
    pub service: String,
    pub business_unit: String,
    pub tier: u8,
    pub metric: String,
    pub comparison: Comparison,
    pub observed: f64,
    pub threshold: f64,
    pub observed_at: Timestamp,
    /// The metric's samples in the window up to the breach (at most [`MAX_EVIDENCE`]).
    pub evidence: Vec<Sample>,
}

/// Most samples a breach keeps as its evidence.
pub const MAX_EVIDENCE: usize = 100;

/// Monitoring asks orchestration to roll a release back in an environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackRequest {
    pub id: Uuid,
    pub release: String,
    pub environment: String,
    pub reason: String,
    pub breach: Uuid,
    pub watch: Uuid,
    pub at: Timestamp,
}
