//! Risk-validation's commands, events and state, and the decider over them.

use std::collections::{BTreeMap, BTreeSet};

use flotilla_core::decider::{Decider, Decision, Recorded};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::assessment::*;
use super::canary::{JudgeCanary, Judged};
use super::fmea::{CloseFmeaAction, Fmea, RecordFmea};
use super::validation::{RecordValidation, Validation};
use super::{DomainError, Result, Timestamp};

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    JudgeCanary(JudgeCanary),
    NoteRelease(NoteRelease),
    NoteCatalogService(NoteCatalogService),
    NotePromotionPath(NotePromotionPath),
    NoteDeployment(NoteDeployment),
    AssessRelease(AssessRelease),
    Reassess(Reassess),
    SetRiskWeights(SetRiskWeights),
    RecordFmea(RecordFmea),
    CloseFmeaAction(CloseFmeaAction),
    RecordValidation(RecordValidation),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    CanaryJudged(Box<Judged>),
    ReleaseNoted(Box<NotedRelease>),
    CatalogServiceNoted(CatalogEntry),
    PromotionPathNoted {
        business_unit: String,
        environments: Vec<String>,
    },
    DeploymentNoted(DeploymentNote),
    RiskWeightsSet {
        version: u32,
        weights: RiskWeights,
        by: String,
        at: Timestamp,
    },
    /// A release's plan: the services its impact analysis reaches.
    PlanNoted {
        release: String,
        impact: Vec<String>,
    },
    RiskAssessed(Box<Assessment>),
    FmeaRecorded(Box<Fmea>),
    ValidationRecorded(Box<Validation>),
}

/// Risk-validation's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskValidation {
    pub judgements: BTreeMap<Uuid, Judged>,
    /// Releases by name, as orchestration created them.
    pub releases: BTreeMap<String, NotedRelease>,
    pub catalog: BTreeMap<String, CatalogEntry>,
    /// Each unit's promotion path.
    pub paths: BTreeMap<String, Vec<String>>,
    /// Finished deployments by service.
    pub deployments: BTreeMap<String, Vec<DeploymentNote>>,
    /// (release, environment) a deployment of the release succeeded into.
    pub reached: BTreeSet<(String, String)>,
    pub weights: RiskWeights,
    /// 0 while the defaults are in force.
    pub weights_version: u32,
    pub weights_by: String,
    /// Every assessment, the superseded ones too.
    pub assessments: BTreeMap<Uuid, Assessment>,
    /// The current assessment of each (release, environment).
    pub current: BTreeMap<(String, String), Uuid>,
    /// Each planned release's impact set, as its last plan said.
    pub plans: BTreeMap<String, Vec<String>>,
    /// FMEA by release.
    pub fmeas: BTreeMap<String, Fmea>,
    pub validations: BTreeMap<Uuid, Validation>,
}

impl Decider for RiskValidation {
    type Command = Command;
    type Event = Event;
    type Error = DomainError;

    fn decide(&self, command: Command) -> Result<Decision<Event>> {
        match command {
            Command::JudgeCanary(c) => self.judge_canary(c),
            Command::NoteRelease(c) => self.note_release(c),
            Command::NoteCatalogService(c) => self.note_catalog_service(c),
            Command::NotePromotionPath(c) => self.note_promotion_path(c),
            Command::NoteDeployment(c) => self.note_deployment(c),
            Command::AssessRelease(c) => self.assess_release(c),
            Command::Reassess(c) => self.reassess(c),
            Command::SetRiskWeights(c) => self.set_risk_weights(c),
            Command::RecordFmea(c) => self.record_fmea(c),
            Command::CloseFmeaAction(c) => self.close_fmea_action(c),
            Command::RecordValidation(c) => self.record_validation(c),
        }
    }

    fn evolve(&mut self, recorded: &Recorded<Event>) {
        match &recorded.event {
            Event::CanaryJudged(j) => {
                self.judgements.insert(j.id, (**j).clone());
            }
            Event::ReleaseNoted(r) => {
                self.releases.insert(r.name.clone(), (**r).clone());
            }
            Event::CatalogServiceNoted(e) => {
                self.catalog.insert(e.service.clone(), e.clone());
            }
            Event::PromotionPathNoted {
                business_unit,
                environments,
            } => {
                self.paths
                    .insert(business_unit.clone(), environments.clone());
            }
            Event::DeploymentNoted(d) => {
                let key = (d.release.clone(), d.environment.clone());
                match d.outcome {
                    Outcome::Succeeded if !d.release.is_empty() => {
                        self.reached.insert(key);
                    }
                    // Rolled back out of the environment: it has not reached it any more.
                    Outcome::RolledBack => {
                        self.reached.remove(&key);
                    }
                    _ => {}
                }
                self.deployments
                    .entry(d.service.clone())
                    .or_default()
                    .push(d.clone());
            }
            Event::RiskWeightsSet {
                version,
                weights,
                by,
                ..
            } => {
                self.weights = *weights;
                self.weights_version = *version;
                self.weights_by = by.clone();
            }
            Event::PlanNoted { release, impact } => {
                self.plans.insert(release.clone(), impact.clone());
            }
            Event::RiskAssessed(a) => {
                self.current
                    .insert((a.release.clone(), a.environment.clone()), a.id);
                self.assessments.insert(a.id, (**a).clone());
            }
            Event::FmeaRecorded(f) => {
                self.fmeas.insert(f.release.clone(), (**f).clone());
            }
            Event::ValidationRecorded(v) => {
                self.validations.insert(v.id, (**v).clone());
            }
        }
    }
}

impl RiskValidation {
    /// The current assessments of a release, by environment.
    pub fn assessments_of<'a>(&'a self, release: &'a str) -> impl Iterator<Item = &'a Assessment> {
        self.current
            .iter()
            .filter(move |((r, _), _)| r == release)
            .filter_map(|(_, id)| self.assessments.get(id))
    }
}

macro_rules! commands {
    ($($name:ident),* $(,)?) => {
        $(impl From<$name> for Command {
            fn from(c: $name) -> Self {
                Command::$name(c)
            }
        })*
    };
}

commands!(
    JudgeCanary,
    NoteRelease,
    NoteCatalogService,
    NotePromotionPath,
    NoteDeployment,
    AssessRelease,
    Reassess,
    SetRiskWeights,
    RecordFmea,
    CloseFmeaAction,
    RecordValidation,
);
