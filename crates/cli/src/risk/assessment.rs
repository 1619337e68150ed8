//! `flotilla risk assessment|reassess`: a planned release's risk assessments, per environment,
//! every factor explained.

use std::process::ExitCode;

use flotilla_proto::risk::v1 as pb;
use serde::Serialize;

use super::{Client, NO_RELEASE, refused};
use crate::format::{print_json, show_time};
use crate::output::{Output, table};

/// A risk assessment as `--output json` prints it (always in an array).
#[derive(Serialize)]
struct AssessmentView {
    assessment_id: String,
    release: String,
    version: String,
    environment: String,
    service: String,
    business_unit: String,
    criticality_tier: u32,
    /// 0..100: the factors' points, rounded.
    risk_score: u32,
    handles_personal_data: bool,
    emergency: bool,
    author: String,
    committers: Vec<String>,
    assessed_at: String,
    /// The weights' version (0: the defaults).
    weights_version: u32,
    /// The assessment it replaces, or "" for the first.
    supersedes: String,
    /// What caused it (planned, reassessed, ...).
    cause: String,
    /// Services the impact analysis says the release reaches.
    impact: Vec<String>,
    factors: Vec<FactorView>,
}

/// One factor of a score: its value, the share of its range it reaches, its weight, the points
/// it adds and why.
#[derive(Serialize)]
struct FactorView {
    name: String,
    value: f64,
    share: f64,
    weight: u32,
    points: f64,
    explanation: String,
}

impl From<&pb::RiskFactor> for FactorView {
    fn from(f: &pb::RiskFactor) -> Self {
        Self {
            name: f.name.clone(),
            value: f.value,
            share: f.share,
            weight: f.weight,
            points: f.points,
            explanation: f.explanation.clone(),
        }
    }
}

impl From<&pb::RiskAssessed> for AssessmentView {
    fn from(a: &pb::RiskAssessed) -> Self {
        Self {
            assessment_id: a.assessment_id.clone(),
            release: a.release.clone(),
            version: a.version.clone(),
            environment: a.environment.clone(),
            service: a.service.clone(),
            business_unit: a.business_unit.clone(),
            criticality_tier: a.criticality_tier,
            risk_score: a.risk_score,
            handles_personal_data: a.handles_personal_data,
            emergency: a.emergency,
            author: a.author.clone(),
            committers: a.committers.clone(),
            assessed_at: show_time(a.assessed_at.as_ref()),
            weights_version: a.weights_version,
            supersedes: a.supersedes.clone(),
            cause: a.cause.clone(),
            impact: a.impact.clone(),
            factors: a.factors.iter().map(FactorView::from).collect(),
        }
    }
}

impl AssessmentView {
    /// The line above an environment's factor table.
    fn header(&self) -> String {
        let mut line = format!(
            "{} in {}: risk {}/100, tier {} ({}), weights version {}, {}",
            self.release,
            self.environment,
            self.risk_score,
            self.criticality_tier,
            self.service,
            self.weights_version,
            if self.cause.is_empty() {
                "assessed"
            } else {
                &self.cause
            },
        );
        if !self.supersedes.is_empty() {
            line.push_str(&format!(", supersedes {}", self.supersedes));
        }
        line
    }
}

impl FactorView {
    const HEADERS: [&str; 5] = ["factor", "value", "weight", "points", "why"];

    fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            number(self.value),
            self.weight.to_string(),
            format!("{:.1}", self.points),
            self.explanation.clone(),
        ]
    }
}

/// A measured value: whole numbers as such, fractions (rates) to two places.
fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn print_assessments(
    output: Output,
    release: &str,
    assessments: &[pb::RiskAssessed],
) -> anyhow::Result<()> {
    let views: Vec<AssessmentView> = assessments.iter().map(AssessmentView::from).collect();
    match output {
        Output::Json => print_json(&views)?,
        Output::Table => {
            if views.is_empty() {
                eprintln!(
                    "{release} has no risk assessment yet; orchestration's plan assesses it: flotilla release plan {release}"
                );
            }
            for (i, v) in views.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                println!("{}", v.header());
                table(
                    &FactorView::HEADERS,
                    &v.factors.iter().map(FactorView::row).collect::<Vec<_>>(),
                );
            }
        }
    }
    Ok(())
}

/// `flotilla risk assessment RELEASE [--env ENV]`.
pub async fn show(
    c: &mut Client,
    output: Output,
    release: String,
    env: Option<String>,
) -> anyhow::Result<ExitCode> {
    let a = c
        .get_risk_assessments(pb::GetRiskAssessmentsRequest {
            release: release.clone(),
            environment: env.unwrap_or_default(),
        })
        .await
        .map_err(|s| refused("reading the risk assessments", s, NO_RELEASE))?
        .into_inner();
    print_assessments(output, &release, &a.assessments)?;
    Ok(ExitCode::SUCCESS)
}

/// `flotilla risk reassess RELEASE`.
pub async fn reassess(c: &mut Client, output: Output, release: String) -> anyhow::Result<ExitCode> {
    let a = c
        .reassess_risk(pb::ReassessRiskRequest {
            release: release.clone(),
        })
        .await
        .map_err(|s| refused("reassessing the risk", s, NO_RELEASE))?
        .into_inner();
    print_assessments(output, &release, &a.assessments)?;
    Ok(ExitCode::SUCCESS)
}
