//! Orchestration's messages as people and machines read them: the JSON views, and the table
//! rows and progress lines made from them.

use flotilla_proto::orchestration::v1 as pb;
use serde::Serialize;

use crate::format::show_time;

#[derive(Serialize)]
pub struct ArtifactView {
    pub purl: String,
    pub service: String,
    pub version: String,
    pub commit: String,
    pub repository: String,
    pub build_url: String,
    pub tests_passed: u32,
    pub tests_failed: u32,
    pub analysis_passed: bool,
    pub licences: Vec<String>,
    pub image_digest: String,
    pub registered_at: String,
    /// Why it may not go into a release (empty: it may).
    pub blocked: Vec<String>,
}

impl From<&pb::Artifact> for ArtifactView {
    fn from(a: &pb::Artifact) -> Self {
        let tests = a.tests.unwrap_or_default();
        Self {
            purl: a.purl.clone(),
            service: a.service.clone(),
            version: a.version.clone(),
            commit: a.commit.clone(),
            repository: a.repository.clone(),
            build_url: a.build_url.clone(),
            tests_passed: tests.passed,
            tests_failed: tests.failed,
            analysis_passed: a.analysis.as_ref().is_none_or(|x| x.passed),
            licences: a.licences.clone(),
            image_digest: a.image_digest.clone(),
            registered_at: show_time(a.registered_at.as_ref()),
            blocked: a.blocked.clone(),
        }
    }
}

pub const ARTIFACT_HEADERS: [&str; 5] = ["service", "version", "commit", "licences", "standing"];

pub fn artifact_row(a: &ArtifactView) -> Vec<String> {
    vec![
        a.service.clone(),
        a.version.clone(),
        a.commit.clone(),
        a.licences.join(","),
        if a.blocked.is_empty() {
            "ok".into()
        } else {
            format!("blocked: {}", a.blocked.join("; "))
        },
    ]
}

#[derive(Serialize)]
pub struct ItemView {
    pub service: String,
    pub version: String,
    pub purl: String,
    pub descriptor: String,
    pub strategy: &'static str,
    pub migrations: Vec<String>,
}

#[derive(Serialize)]
pub struct ReleaseView {
    pub release_id: String,
    pub name: String,
    pub business_unit: String,
    pub emergency: bool,
    pub status: &'static str,
    pub environment: String,
    pub deployed_to: Vec<String>,
    pub items: Vec<ItemView>,
    /// Services per wave, in order (empty until planned).
    pub waves: Vec<Vec<String>>,
    pub impact: Vec<String>,
    pub deployment_ids: Vec<String>,
    pub created_by: String,
    pub created_at: String,
}

pub fn release_status(s: i32) -> &'static str {
    match pb::ReleaseStatus::try_from(s) {
        Ok(pb::ReleaseStatus::Created) => "created",
        Ok(pb::ReleaseStatus::Planned) => "planned",
        Ok(pb::ReleaseStatus::Promoting) => "promoting",
        Ok(pb::ReleaseStatus::Deployed) => "deployed",
        Ok(pb::ReleaseStatus::RolledBack) => "rolled-back",
        _ => "unknown",
    }
}

fn strategy_name(s: Option<&pb::Strategy>) -> &'static str {
    match s.and_then(|s| s.kind.as_ref()) {
        Some(pb::strategy::Kind::BlueGreen(_)) => "blue-green",
        Some(pb::strategy::Kind::Canary(_)) => "canary",
        _ => "rolling",
    }
}

impl From<&pb::Release> for ReleaseView {
    fn from(r: &pb::Release) -> Self {
        Self {
            release_id: r.release_id.clone(),
            name: r.name.clone(),
            business_unit: r.business_unit.clone(),
            emergency: r.emergency,
            status: release_status(r.status),
            environment: r.environment.clone(),
            deployed_to: r.deployed_to.clone(),
            items: r
                .items
                .iter()
                .map(|i| ItemView {
                    service: i.service.clone(),
                    version: i.version.clone(),
                    purl: i.purl.clone(),
                    descriptor: i
                        .descriptor
                        .as_ref()
                        .map(|d| format!("{}@{}", d.reference, d.version))
                        .unwrap_or_default(),
                    strategy: strategy_name(i.strategy.as_ref()),
                    migrations: i.migrations.iter().map(|m| m.name.clone()).collect(),
                })
                .collect(),
            waves: r
                .plan
                .as_ref()
                .map(|p| {
                    p.waves
                        .iter()
                        .map(|w| w.services.iter().map(|s| s.service.clone()).collect())
                        .collect()
                })
                .unwrap_or_default(),
            impact: r
                .plan
                .as_ref()
                .map(|p| p.impact.clone())
                .unwrap_or_default(),
            deployment_ids: r.deployment_ids.clone(),
            created_by: r.created_by.clone(),
            created_at: show_time(r.created_at.as_ref()),
        }
    }
}

pub const RELEASE_HEADERS: [&str; 6] = [
    "name",
    "unit",
    "status",
    "environment",
    "services",
    "path so far",
];

pub fn release_row(r: &ReleaseView) -> Vec<String> {
    vec![
        r.name.clone(),
        r.business_unit.clone(),
        r.status.to_owned(),
        r.environment.clone(),
        r.items.len().to_string(),
        r.deployed_to.join(" -> "),
    ]
}

#[derive(Serialize, Clone, PartialEq)]
pub struct StepView {
    pub index: u32,
    pub wave: u32,
    pub service: String,
    pub version: String,
    pub kind: String,
    pub detail: String,
    pub state: &'static str,
    pub rollback: bool,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub output_tail: String,
}

#[derive(Serialize)]
pub struct DeploymentView {
    pub deployment_id: String,
    pub release: String,
    pub environment: String,
    pub business_unit: String,
    pub status: &'static str,
    pub reason: String,
    /// While it awaits governance's rollback decision: the decision, its deadline, who is told.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rollback_decision_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub decide_by: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    pub steps: Vec<StepView>,
}

pub fn deployment_status(s: i32) -> &'static str {
    match pb::DeploymentStatus::try_from(s) {
        Ok(pb::DeploymentStatus::Running) => "running",
        Ok(pb::DeploymentStatus::Paused) => "paused",
        Ok(pb::DeploymentStatus::AwaitingRollbackDecision) => "awaiting-rollback-decision",
        Ok(pb::DeploymentStatus::RollingBack) => "rolling-back",
        Ok(pb::DeploymentStatus::Succeeded) => "succeeded",
        Ok(pb::DeploymentStatus::RolledBack) => "rolled-back",
        Ok(pb::DeploymentStatus::Failed) => "failed",
        _ => "unknown",
    }
}

fn step_state(s: i32) -> &'static str {
    match pb::StepState::try_from(s) {
        Ok(pb::StepState::Pending) => "pending",
        Ok(pb::StepState::Started) => "started",
        Ok(pb::StepState::Succeeded) => "succeeded",
        Ok(pb::StepState::Failed) => "failed",
        _ => "unknown",
    }
}

impl From<&pb::Step> for StepView {
    fn from(s: &pb::Step) -> Self {
        let o = s.outcome.clone().unwrap_or_default();
        Self {
            index: s.index,
            wave: s.wave,
            service: s.service.clone(),
            version: s.version.clone(),
            kind: if s.migration.is_empty() {
                s.kind.clone()
            } else {
                format!("{} {}", s.kind, s.migration)
            },
            detail: s.detail.clone(),
            state: step_state(s.state),
            rollback: s.rollback,
            exit_code: o.exit_code,
            duration_ms: o.duration_ms,
            output_tail: o.output_tail,
        }
    }
}

impl From<&pb::Deployment> for DeploymentView {
    fn from(d: &pb::Deployment) -> Self {
        Self {
            deployment_id: d.deployment_id.clone(),
            release: d.release.clone(),
            environment: d.environment.clone(),
            business_unit: d.business_unit.clone(),
            status: deployment_status(d.status),
            reason: d.reason.clone(),
            rollback_decision_id: d.rollback_decision_id.clone(),
            decide_by: d
                .decide_by
                .as_ref()
                .map(|t| show_time(Some(t)))
                .unwrap_or_default(),
            notify: d.notify.clone(),
            steps: d.steps.iter().map(StepView::from).collect(),
        }
    }
}

pub const STEP_HEADERS: [&str; 7] = [
    "#", "wave", "service", "version", "step", "state", "outcome",
];

pub fn step_row(s: &StepView) -> Vec<String> {
    vec![
        s.index.to_string(),
        (s.wave + 1).to_string(),
        s.service.clone(),
        s.version.clone(),
        if s.rollback {
            format!("{} (rollback)", s.kind)
        } else {
            s.kind.clone()
        },
        s.state.to_owned(),
        outcome(s),
    ]
}

/// A step's outcome in a few words: exit code, time, the last line of its output.
pub fn outcome(s: &StepView) -> String {
    if s.state == "pending" || s.state == "started" {
        return String::new();
    }
    let last = s.output_tail.lines().last().unwrap_or("");
    let code = s
        .exit_code
        .map(|c| format!("exit {c}, "))
        .unwrap_or_default();
    format!("{code}{:.1} s {last}", s.duration_ms as f64 / 1000.0)
        .trim_end()
        .to_owned()
}

/// The progress line of a step that changed.
pub fn progress_line(d: &DeploymentView, s: &StepView) -> String {
    let total = d
        .steps
        .iter()
        .filter(|x| !x.rollback)
        .map(|x| x.wave + 1)
        .max()
        .unwrap_or(0);
    let what = if s.rollback {
        format!("rollback {}", s.kind)
    } else {
        s.kind.clone()
    };
    let detail = if s.detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", s.detail)
    };
    format!(
        "[wave {}/{total}] {} {} {what}{detail}: {} {}",
        s.wave + 1,
        s.service,
        if s.version.is_empty() {
            "(none before)"
        } else {
            &s.version
        },
        s.state,
        outcome(s)
    )
    .trim_end()
    .to_owned()
}
