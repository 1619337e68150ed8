//! Feedback and adoption per release: support tickets linked to the release that most likely
//! caused them (by service, time and labels), and feature-adoption measurements against the
//! targets the release declared, so "did this release achieve its business objective" has an
//! answer.

use std::collections::BTreeMap;

use flotilla_core::decider::Decision;
use serde::{Deserialize, Serialize};

use super::*;

/// How long after a deployment a ticket about its service is linked to it.
pub const LINK_WINDOW_DAYS: i64 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Sev1,
    Sev2,
    Sev3,
    Sev4,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub service: String,
    pub environment: String,
    pub business_unit: String,
    pub severity: Severity,
    pub summary: String,
    pub labels: Vec<String>,
    pub opened_at: Timestamp,
    /// The release it is linked to, and why (empty when none matched).
    pub release: String,
    pub link: String,
    /// Who reported it, sealed (a token: personal data).
    pub reporter: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdoptionTarget {
    pub release: String,
    pub feature: String,
    /// e.g. share of checkouts using the new wallet.
    pub metric: String,
    pub target: f64,
    /// The target must be reached by then.
    pub due: Timestamp,
    pub business_unit: String,
    pub by: String,
}

/// A support ticket from the help desk.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordTicket {
    pub ticket: Ticket,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeclareAdoptionTarget {
    pub target: AdoptionTarget,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecordAdoption {
    pub release: String,
    pub feature: String,
    pub value: f64,
    pub at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdoptionVerdict {
    Achieved,
    /// Not reached yet, still before the due date.
    Pending,
    Missed,
    /// Nothing measured and the due date passed.
    NoData,
}

/// A feature's target, its last measurement and the verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureOutcome {
    pub target: AdoptionTarget,
    pub last: Option<(f64, Timestamp)>,
    pub verdict: AdoptionVerdict,
}

/// A release's outcome: its tickets, and each feature's last measurement against its target.
#[derive(Clone, Debug, PartialEq)]
pub struct ReleaseOutcome {
    pub tickets: Vec<Ticket>,
    pub features: Vec<FeatureOutcome>,
    /// Every feature achieved and no sev-1 or sev-2 ticket: the objective was met.
    pub objective_met: Option<bool>,
}

impl Monitoring {
    pub(super) fn record_ticket(&self, c: RecordTicket) -> Result<Decision<Event>> {
        let mut t = c.ticket;
        names::id("ticket.id", &t.id).map_err(name_error)?;
        names::id("ticket.service", &t.service).map_err(name_error)?;
        names::optional_label("ticket.environment", &t.environment).map_err(name_error)?;
        names::text("ticket.summary", &t.summary, 1024).map_err(name_error)?;
        names::list("ticket.labels", &t.labels, 50).map_err(name_error)?;
        for l in &t.labels {
            names::text("ticket.labels", l, 128).map_err(name_error)?;
        }
        if t.opened_at.0 == 0 {
            return Err(invalid("ticket.opened_at", "is missing"));
        }
        // The ticket's unit is the catalog's unit of its service.
        let Some((unit, _)) = self.catalog.get(&t.service) else {
            return Err(DomainError::FailedPrecondition(format!(
                "{} is not in the service catalog; a ticket names a registered service",
                t.service
            )));
        };
        t.business_unit = unit.clone();
        if let Some(known) = self.tickets.get(&t.id) {
            if known.business_unit == t.business_unit {
                return Ok(Decision::nothing(monitoring_stream()));
            }
            return Err(DomainError::AlreadyExists(format!(
                "ticket {} is recorded already",
                t.id
            )));
        }
        let (release, link) = self.link(&t);
        t.release = release;
        t.link = link;
        Ok(Decision::new(
            monitoring_stream(),
            vec![Event::TicketRecorded(Box::new(t))],
        ))
    }

    /// The release a ticket is about: one of its unit its `release:<name>` label names, else
    /// the last release deployed to its service (in its environment, if it names one) in the
    /// week before it was opened.
    fn link(&self, t: &Ticket) -> (String, String) {
        let of_unit = |release: &str| {
            self.deployments
                .iter()
                .any(|d| d.release == release && d.business_unit == t.business_unit)
        };
        if let Some(r) = t
            .labels
            .iter()
            .find_map(|l| l.strip_prefix("release:"))
            .filter(|r| of_unit(r))
        {
            return (r.to_owned(), format!("its label names release {r}"));
        }
        let since = t
            .opened_at
            .0
            .saturating_sub(LINK_WINDOW_DAYS * 86_400_000_000);
        let last = self
            .deployments
            .iter()
            .filter(|d| d.service == t.service && d.outcome == Outcome::Succeeded)
            .filter(|d| t.environment.is_empty() || d.environment == t.environment)
            .filter(|d| d.finished_at.0 >= since && d.finished_at <= t.opened_at)
            .max_by_key(|d| d.finished_at);
        match last {
            Some(d) => (
                d.release.clone(),
                format!(
                    "{} {} of release {} was deployed to {} {} h before the ticket",
                    d.service,
                    d.version,
                    d.release,
                    d.environment,
                    t.opened_at.0.saturating_sub(d.finished_at.0) / 3_600_000_000
                ),
            ),
            None => (String::new(), String::new()),
        }
    }

    pub(super) fn declare_adoption_target(
        &self,
        c: DeclareAdoptionTarget,
    ) -> Result<Decision<Event>> {
        let mut t = c.target;
        names::id("release", &t.release).map_err(name_error)?;
        // The target's unit is the release's (from its deployments, or its earlier targets).
        let unit = self.release_unit(&t.release).ok_or_else(|| {
            DomainError::FailedPrecondition(format!(
                "release {} has no deployment monitoring knows; declare its targets once it is deployed",
                t.release
            ))
        })?;
        if !t.business_unit.is_empty() && t.business_unit != unit {
            return Err(DomainError::FailedPrecondition(format!(
                "release {} belongs to unit {unit}, not {}",
                t.release, t.business_unit
            )));
        }
        t.business_unit = unit;
        names::id("feature", &t.feature).map_err(name_error)?;
        names::id("metric", &t.metric).map_err(name_error)?;
        if !t.target.is_finite() {
            return Err(invalid("target", "is not a finite number"));
        }
        if t.due.0 == 0 {
            return Err(invalid("due", "is missing"));
        }
        Ok(Decision::new(
            monitoring_stream(),
            vec![Event::AdoptionTargetDeclared(Box::new(t))],
        ))
    }

    pub(super) fn record_adoption(&self, c: RecordAdoption) -> Result<Decision<Event>> {
        if !self
            .adoption_targets
            .contains_key(&(c.release.clone(), c.feature.clone()))
        {
            return Err(DomainError::NotFound(format!(
                "adoption target of feature {} in release {}; declare it first",
                names::shown(&c.feature),
                names::shown(&c.release)
            )));
        }
        if !c.value.is_finite() {
            return Err(invalid("value", "is not a finite number"));
        }
        if c.at.0 == 0 {
            return Err(invalid("at", "is missing"));
        }
        Ok(Decision::new(
            monitoring_stream(),
            vec![Event::AdoptionMeasured {
                release: c.release,
                feature: c.feature,
                value: c.value,
                at: c.at,
            }],
        ))
    }

    /// The unit a release belongs to, as its deployments (or declared targets) say.
    pub fn release_unit(&self, release: &str) -> Option<String> {
        self.deployments
            .iter()
            .find(|d| d.release == release)
            .map(|d| d.business_unit.clone())
            .or_else(|| {
                self.adoption_targets
                    .iter()
                    .find(|((r, _), _)| r == release)
                    .map(|(_, t)| t.business_unit.clone())
            })
    }

    /// A release's tickets and adoption, as of `now`.
    pub fn release_outcome(&self, release: &str, now: Timestamp) -> ReleaseOutcome {
        let tickets: Vec<Ticket> = self
            .tickets
            .values()
            .filter(|t| t.release == release)
            .cloned()
            .collect();
        let features: Vec<_> = self
            .adoption_targets
            .iter()
            .filter(|((r, _), _)| r == release)
            .map(|(key, target)| {
                let last = self.adoption.get(key).copied();
                let verdict = match last {
                    Some((v, _)) if v >= target.target => AdoptionVerdict::Achieved,
                    _ if now <= target.due => AdoptionVerdict::Pending,
                    Some(_) => AdoptionVerdict::Missed,
                    None => AdoptionVerdict::NoData,
                };
                FeatureOutcome {
                    target: target.clone(),
                    last,
                    verdict,
                }
            })
            .collect();
        let serious = tickets.iter().any(|t| t.severity <= Severity::Sev2);
        let objective_met = if features.is_empty() {
            None
        } else if serious
            || features
                .iter()
                .any(|f| matches!(f.verdict, AdoptionVerdict::Missed | AdoptionVerdict::NoData))
        {
            Some(false)
        } else if features
            .iter()
            .all(|f| f.verdict == AdoptionVerdict::Achieved)
        {
            Some(true)
        } else {
            None
        };
        ReleaseOutcome {
            tickets,
            features,
            objective_met,
        }
    }
}

/// The last measurement of each (release, feature).
pub type Adoption = BTreeMap<(String, String), (f64, Timestamp)>;
