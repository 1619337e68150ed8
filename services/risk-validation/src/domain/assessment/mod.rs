//! Risk assessments of planned releases. Orchestration's, the catalog's and deployments' facts
//! are noted as they arrive; when a release is planned it is scored for every environment of
//! its unit's promotion path it has not reached yet, and scored again when evidence changes
//! (a new plan, an FMEA, new weights, the catalog): a new assessment supersedes the last one
//! only when the facts governance takes from it change.

mod model;
mod score;

pub use model::*;
pub use score::{ScoreInputs, score};

use std::collections::BTreeMap;

use flotilla_core::decider::Decision;
use uuid::Uuid;

use super::{DomainError, Event, Result, RiskValidation, Timestamp, invalid, name_error, names};

/// The stream of everything assessments are made of (notes, weights, assessments, FMEA).
pub fn assessments_stream() -> flotilla_core::ids::StreamId {
    flotilla_core::ids::StreamId::singleton("risk-assessments")
}

/// Orchestration created a release.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteRelease {
    pub release: NotedRelease,
}

/// The catalog registered or changed a service.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteCatalogService {
    pub entry: CatalogEntry,
    /// Seeds the ids of the reassessments it causes.
    pub seed: Uuid,
    pub at: Timestamp,
}

/// A unit's promotion path was set.
#[derive(Clone, Debug, PartialEq)]
pub struct NotePromotionPath {
    pub business_unit: String,
    pub environments: Vec<String>,
    pub seed: Uuid,
    pub at: Timestamp,
}

/// A deployment of one service finished.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteDeployment {
    pub note: DeploymentNote,
}

/// Orchestration planned a release: assess it.
#[derive(Clone, Debug, PartialEq)]
pub struct AssessRelease {
    pub release_id: String,
    pub impact: Vec<String>,
    /// Seeds the assessments' ids (one per environment).
    pub seed: Uuid,
    pub at: Timestamp,
}

/// Assess a release again now, by hand.
#[derive(Clone, Debug, PartialEq)]
pub struct Reassess {
    pub release: String,
    pub by: String,
    pub seed: Uuid,
    pub at: Timestamp,
}

/// New factor weights; every release not yet everywhere is assessed with them.
#[derive(Clone, Debug, PartialEq)]
pub struct SetRiskWeights {
    pub weights: RiskWeights,
    pub by: String,
    pub seed: Uuid,
    pub at: Timestamp,
}

impl RiskValidation {
    pub(crate) fn note_release(&self, c: NoteRelease) -> Result<Decision<Event>> {
        let r = c.release;
        let stream = assessments_stream();
        if self.releases.get(&r.name) == Some(&r) {
            return Ok(Decision::nothing(stream));
        }
        Ok(Decision::new(
            stream,
            vec![Event::ReleaseNoted(Box::new(r))],
        ))
    }

    pub(crate) fn note_catalog_service(&self, c: NoteCatalogService) -> Result<Decision<Event>> {
        let stream = assessments_stream();
        if self.catalog.get(&c.entry.service) == Some(&c.entry) {
            return Ok(Decision::nothing(stream));
        }
        let mut after = self.clone();
        after
            .catalog
            .insert(c.entry.service.clone(), c.entry.clone());
        let mut events = Vec::new();
        for r in self
            .releases
            .values()
            .filter(|r| r.items.iter().any(|i| i.service == c.entry.service))
        {
            after.reassess_into(r, "the catalog changed", c.seed, c.at, &mut events);
        }
        events.insert(0, Event::CatalogServiceNoted(c.entry));
        Ok(Decision::new(stream, events))
    }

    pub(crate) fn note_promotion_path(&self, c: NotePromotionPath) -> Result<Decision<Event>> {
        let stream = assessments_stream();
        if self.paths.get(&c.business_unit) == Some(&c.environments) {
            return Ok(Decision::nothing(stream));
        }
        let mut after = self.clone();
        after
            .paths
            .insert(c.business_unit.clone(), c.environments.clone());
        let mut events = Vec::new();
        for r in self
            .releases
            .values()
            .filter(|r| r.business_unit == c.business_unit)
        {
            after.reassess_into(r, "the promotion path changed", c.seed, c.at, &mut events);
        }
        events.insert(
            0,
            Event::PromotionPathNoted {
                business_unit: c.business_unit,
                environments: c.environments,
            },
        );
        Ok(Decision::new(stream, events))
    }

    pub(crate) fn note_deployment(&self, c: NoteDeployment) -> Result<Decision<Event>> {
        let stream = assessments_stream();
        // A deployment of a service succeeds and may later be rolled back: each word counts.
        let known = self.deployments.get(&c.note.service).is_some_and(|ds| {
            ds.iter()
                .any(|d| d.deployment == c.note.deployment && d.outcome == c.note.outcome)
        });
        if known {
            return Ok(Decision::nothing(stream));
        }
        Ok(Decision::new(stream, vec![Event::DeploymentNoted(c.note)]))
    }

    pub(crate) fn assess_release(&self, c: AssessRelease) -> Result<Decision<Event>> {
        let r = self
            .releases
            .values()
            .find(|r| r.id == c.release_id)
            .ok_or_else(|| DomainError::NotFound(format!("release {}", c.release_id)))?;
        let replanned = self.plans.contains_key(&r.name);
        // The plan is kept even when no environment can be assessed yet (the unit's path may
        // arrive later, on another partition of the bus).
        let mut events = Vec::new();
        if self.plans.get(&r.name) != Some(&c.impact) {
            events.push(Event::PlanNoted {
                release: r.name.clone(),
                impact: c.impact.clone(),
            });
        }
        self.assess_into(
            r,
            &c.impact,
            if replanned { "replanned" } else { "planned" },
            &self.weights,
            self.weights_version,
            c.seed,
            c.at,
            &mut events,
        );
        Ok(Decision::new(assessments_stream(), events))
    }

    pub(crate) fn reassess(&self, c: Reassess) -> Result<Decision<Event>> {
        names::id("release", &c.release).map_err(name_error)?;
        let r = self
            .releases
            .get(&c.release)
            .ok_or_else(|| DomainError::NotFound(format!("release {}", c.release)))?;
        if !self.plans.contains_key(&r.name) {
            return Err(DomainError::FailedPrecondition(format!(
                "release {} is not planned yet; orchestration's plan assesses it",
                r.name
            )));
        }
        let mut events = Vec::new();
        self.reassess_into(
            r,
            &format!("reassessed by {}", c.by),
            c.seed,
            c.at,
            &mut events,
        );
        Ok(Decision::new(assessments_stream(), events))
    }

    pub(crate) fn set_risk_weights(&self, c: SetRiskWeights) -> Result<Decision<Event>> {
        check_weights(&c.weights)?;
        let version = self.weights_version + 1;
        let mut events = vec![Event::RiskWeightsSet {
            version,
            weights: c.weights,
            by: c.by,
            at: c.at,
        }];
        let cause = format!("risk weights version {version}");
        for r in self.releases.values() {
            if let Some(impact) = self.plans.get(&r.name) {
                self.assess_into(
                    r,
                    impact,
                    &cause,
                    &c.weights,
                    version,
                    c.seed,
                    c.at,
                    &mut events,
                );
            }
        }
        Ok(Decision::new(assessments_stream(), events))
    }

    /// Assesses a planned release again with what is known now.
    pub(crate) fn reassess_into(
        &self,
        r: &NotedRelease,
        cause: &str,
        seed: Uuid,
        at: Timestamp,
        events: &mut Vec<Event>,
    ) {
        if let Some(impact) = self.plans.get(&r.name) {
            self.assess_into(
                r,
                impact,
                cause,
                &self.weights,
                self.weights_version,
                seed,
                at,
                events,
            );
        }
    }

    /// An assessment for every environment of the unit's path the release has not reached,
    /// where the facts differ from the last one (or there was none).
    #[allow(clippy::too_many_arguments)]
    fn assess_into(
        &self,
        r: &NotedRelease,
        impact: &[String],
        cause: &str,
        weights: &RiskWeights,
        weights_version: u32,
        seed: Uuid,
        at: Timestamp,
        events: &mut Vec<Event>,
    ) {
        let Some(path) = self.paths.get(&r.business_unit) else {
            return;
        };
        let (service, version, tier, personal_data) = self.most_critical(r);
        let inputs = ScoreInputs {
            release: r,
            service: &service,
            tier,
            impact,
            history: self.history(r, weights.history_days, at),
            fmea: self
                .fmeas
                .get(&r.name)
                .map(|f| (f.highest_rpn(), f.open_actions())),
        };
        let (score, factors) = score(&inputs, weights);
        for env in path {
            if self.reached(&r.name, env) {
                continue;
            }
            let previous = self
                .current
                .get(&(r.name.clone(), env.clone()))
                .and_then(|id| self.assessments.get(id));
            let mut a = Assessment {
                id: Uuid::new_v5(&seed, format!("{}/{env}", r.name).as_bytes()),
                release_id: r.id.clone(),
                release: r.name.clone(),
                version: version.clone(),
                environment: env.clone(),
                service: service.clone(),
                business_unit: r.business_unit.clone(),
                tier: tier.unwrap_or(1),
                score,
                personal_data,
                author: r.created_by.clone(),
                committers: Vec::new(),
                emergency: r.emergency,
                factors: factors.clone(),
                weights_version,
                supersedes: None,
                impact: impact.to_vec(),
                cause: cause.to_owned(),
                at,
            };
            match previous {
                Some(p) if p.same_facts(&a) => continue,
                Some(p) => a.supersedes = Some(p.id),
                None => {}
            }
            events.push(Event::RiskAssessed(Box::new(a)));
        }
    }

    /// The release's most critical service (by the catalog's tier; the first of the release
    /// when none is in the catalog), its version and tier, and whether any service of the
    /// release handles personal data.
    fn most_critical(&self, r: &NotedRelease) -> (String, String, Option<u8>, bool) {
        let known = r
            .items
            .iter()
            .filter_map(|i| self.catalog.get(&i.service).map(|e| (i, e)))
            .min_by_key(|(_, e)| e.tier);
        let personal = r.items.iter().any(|i| {
            self.catalog
                .get(&i.service)
                .is_some_and(|e| e.personal_data)
        });
        match (known, r.items.first()) {
            (Some((i, e)), _) => (i.service.clone(), i.version.clone(), Some(e.tier), personal),
            (None, Some(i)) => (i.service.clone(), i.version.clone(), None, personal),
            (None, None) => (String::new(), String::new(), None, personal),
        }
    }

    /// Deployments of the release's services finished in the `days` before `at`: (failed or
    /// rolled back, all).
    fn history(&self, r: &NotedRelease, days: u32, at: Timestamp) -> (u32, u32) {
        let since = at.0.saturating_sub(i64::from(days) * 86_400_000_000);
        // Each deployment of a service once, by its last word (a success later rolled back
        // is a failed change).
        let mut last: BTreeMap<(&str, &str), Outcome> = BTreeMap::new();
        for item in &r.items {
            for d in self.deployments.get(&item.service).into_iter().flatten() {
                if d.finished_at.0 < since || d.finished_at.0 > at.0 {
                    continue;
                }
                last.insert((d.service.as_str(), d.deployment.as_str()), d.outcome);
            }
        }
        let failed = last.values().filter(|o| **o != Outcome::Succeeded).count();
        (failed as u32, last.len() as u32)
    }

    /// Whether a deployment of the release into `env` succeeded (it is past that gate).
    fn reached(&self, release: &str, env: &str) -> bool {
        self.reached.contains(&(release.to_owned(), env.to_owned()))
    }
}

fn check_weights(w: &RiskWeights) -> Result<()> {
    for f in Factor::ALL {
        if w.weight(f) > 100 {
            return Err(invalid(
                &format!("weights.{}", f.name()),
                format!("{} is above 100", w.weight(f)),
            ));
        }
    }
    if w.total() == 0 {
        return Err(invalid(
            "weights",
            "every weight is 0; give at least one factor a weight",
        ));
    }
    if !(1..=3650).contains(&w.history_days) {
        return Err(invalid("weights.history_days", "is not 1-3650 days"));
    }
    if !(1..=1000).contains(&w.rpn_action_threshold) {
        return Err(invalid("weights.rpn_action_threshold", "is not 1-1000"));
    }
    Ok(())
}
