//! Post-mortems: a structured record per failed release — what happened (its timeline, filled
//! from the events of every service monitoring hears: risk assessments, approval requests and
//! approvals, deployments, breaches, rollback requests, tickets), the contributing factors and
//! the actions with owners. Any business unit may read them, and they are found by service and
//! by factor, so one unit's failure teaches the next.

use flotilla_core::decider::Decision;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FactorKind {
    Code,
    Configuration,
    Capacity,
    Dependency,
    Process,
    Testing,
    Monitoring,
    ThirdParty,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContributingFactor {
    pub kind: FactorKind,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub action: String,
    pub owner: String,
    pub due: Timestamp,
    pub done: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Postmortem {
    pub release: String,
    pub business_unit: String,
    pub summary: String,
    pub factors: Vec<ContributingFactor>,
    pub actions: Vec<FollowUp>,
    /// The services the release deployed (what it is found by).
    pub services: Vec<String>,
    pub by: String,
    pub at: Timestamp,
}

/// Records (or replaces) a failed release's post-mortem.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordPostmortem {
    pub release: String,
    pub summary: String,
    pub factors: Vec<ContributingFactor>,
    pub actions: Vec<FollowUp>,
    pub by: String,
    pub at: Timestamp,
}

/// Another service's event about a release, for its timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteTimeline {
    pub entry: TimelineEntry,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub release: String,
    pub at: Timestamp,
    /// The service whose event it was.
    pub source: String,
    pub what: String,
    /// What a later event names it by (an approval request's id), if anything.
    pub reference: String,
}

impl Monitoring {
    pub(super) fn note_timeline(&self, c: NoteTimeline) -> Result<Decision<Event>> {
        Ok(Decision::new(
            monitoring_stream(),
            vec![Event::TimelineNoted(Box::new(c.entry))],
        ))
    }

    pub(super) fn record_postmortem(&self, c: RecordPostmortem) -> Result<Decision<Event>> {
        names::id("release", &c.release).map_err(name_error)?;
        names::text("summary", &c.summary, 8192).map_err(name_error)?;
        names::list("factors", &c.factors, 50).map_err(name_error)?;
        names::list("actions", &c.actions, 50).map_err(name_error)?;
        for (i, f) in c.factors.iter().enumerate() {
            names::text(&format!("factors[{i}].description"), &f.description, 4096)
                .map_err(name_error)?;
        }
        for (i, a) in c.actions.iter().enumerate() {
            names::text(&format!("actions[{i}].action"), &a.action, 4096).map_err(name_error)?;
            // Sealed: the token of an owner the edge held to 256 bytes.
            names::text(&format!("actions[{i}].owner"), &a.owner, 512).map_err(name_error)?;
            if a.due.0 == 0 {
                return Err(invalid(&format!("actions[{i}].due"), "is missing"));
            }
        }
        let ours: Vec<&DeploymentNote> = self
            .deployments
            .iter()
            .filter(|d| d.release == c.release)
            .collect();
        let failed = ours.iter().any(|d| d.outcome != Outcome::Succeeded)
            || self.breaches.values().any(|b| b.release == c.release);
        if !failed {
            return Err(DomainError::FailedPrecondition(format!(
                "release {} has no failed or rolled-back deployment and no breach: a post-mortem is for a failed release",
                c.release
            )));
        }
        let mut services: Vec<String> = ours.iter().map(|d| d.service.clone()).collect();
        services.sort();
        services.dedup();
        let business_unit = ours
            .first()
            .map(|d| d.business_unit.clone())
            .unwrap_or_default();
        Ok(Decision::new(
            monitoring_stream(),
            vec![Event::PostmortemRecorded(Box::new(Postmortem {
                release: c.release,
                business_unit,
                summary: c.summary,
                factors: c.factors,
                actions: c.actions,
                services,
                by: c.by,
                at: c.at,
            }))],
        ))
    }

    /// What happened to a release, in time order, from every service's events monitoring has.
    pub fn timeline(&self, release: &str) -> Vec<TimelineEntry> {
        let entry = |at, source: &str, what: String| TimelineEntry {
            release: release.to_owned(),
            at,
            source: source.to_owned(),
            what,
            reference: String::new(),
        };
        let mut out: Vec<TimelineEntry> = self
            .timeline
            .iter()
            .filter(|e| e.release == release)
            .cloned()
            .collect();
        for d in self.deployments.iter().filter(|d| d.release == release) {
            // A rolled-back note's version is what runs after it (none: nothing ran before).
            let what = match (d.outcome, d.version.as_str()) {
                (Outcome::Succeeded, v) => {
                    format!("{} {v} deployed in {}", d.service, d.environment)
                }
                (Outcome::Failed, v) => {
                    format!("{} {v} failed to deploy in {}", d.service, d.environment)
                }
                (Outcome::RolledBack, "") => format!(
                    "{} rolled back in {} (nothing ran before)",
                    d.service, d.environment
                ),
                (Outcome::RolledBack, v) => {
                    format!("{} rolled back in {} to {v}", d.service, d.environment)
                }
            };
            out.push(entry(d.finished_at, "orchestration", what));
        }
        for b in self.breaches.values().filter(|b| b.release == release) {
            out.push(entry(
                b.observed_at,
                "monitoring",
                format!(
                    "{} of {} in {} was {} ({} the threshold {})",
                    b.metric,
                    b.service,
                    b.environment,
                    b.observed,
                    b.comparison.words(),
                    b.threshold
                ),
            ));
        }
        for r in self
            .rollback_requests
            .values()
            .filter(|r| r.release == release)
        {
            out.push(entry(
                r.at,
                "monitoring",
                format!("rollback requested in {}: {}", r.environment, r.reason),
            ));
        }
        for t in self.tickets.values().filter(|t| t.release == release) {
            out.push(entry(
                t.opened_at,
                "support",
                format!("ticket {} ({:?}): {}", t.id, t.severity, t.summary),
            ));
        }
        // At one instant, in causal order: assessed, approved, deployed, watched, reported.
        let rank = |source: &str| {
            [
                "risk-validation",
                "governance",
                "orchestration",
                "monitoring",
                "support",
            ]
            .iter()
            .position(|s| *s == source)
            .unwrap_or(5)
        };
        out.sort_by(|a, b| a.at.cmp(&b.at).then(rank(&a.source).cmp(&rank(&b.source))));
        out
    }

    /// Post-mortems that touched `service` (if given) and name a factor of `kind` (if given).
    pub fn find_postmortems(
        &self,
        service: Option<&str>,
        kind: Option<FactorKind>,
    ) -> impl Iterator<Item = &Postmortem> {
        self.postmortems.values().filter(move |p| {
            service.is_none_or(|s| p.services.iter().any(|x| x == s))
                && kind.is_none_or(|k| p.factors.iter().any(|f| f.kind == k))
        })
    }
}
