//! FMEA of a release: its failure modes, each with severity, occurrence and detection (1-10)
//! and their product, the RPN. A mode whose RPN reaches the threshold needs an action with an
//! owner, and the release's gate stays shut (governance) while such an action is open.

use flotilla_core::decider::Decision;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::assessment::assessments_stream;
use super::{DomainError, Event, Result, RiskValidation, Timestamp, invalid, name_error, names};

/// Most failure modes one FMEA lists.
pub const MAX_MODES: usize = 100;

/// Who closed a required action, with what evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionClosed {
    pub by: String,
    pub evidence: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureMode {
    pub name: String,
    pub effect: String,
    pub severity: u8,
    pub occurrence: u8,
    pub detection: u8,
    pub action: String,
    pub action_owner: String,
    pub closed: Option<ActionClosed>,
}

impl FailureMode {
    /// Risk priority number: severity x occurrence x detection (1-1000).
    pub fn rpn(&self) -> u32 {
        u32::from(self.severity) * u32::from(self.occurrence) * u32::from(self.detection)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fmea {
    pub release: String,
    pub business_unit: String,
    pub modes: Vec<FailureMode>,
    /// An RPN at or above it requires an action (the weights' threshold when recorded).
    pub threshold: u32,
    pub by: String,
    pub at: Timestamp,
}

impl Fmea {
    pub fn highest_rpn(&self) -> u32 {
        self.modes.iter().map(FailureMode::rpn).max().unwrap_or(0)
    }

    pub fn requires_action(&self, m: &FailureMode) -> bool {
        m.rpn() >= self.threshold
    }

    /// The failure modes whose required action is still open.
    pub fn open_actions(&self) -> Vec<String> {
        self.modes
            .iter()
            .filter(|m| self.requires_action(m) && m.closed.is_none())
            .map(|m| m.name.clone())
            .collect()
    }
}

/// Record (or replace) a release's FMEA.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordFmea {
    pub release: String,
    /// Their `closed` is ignored: actions are closed by [`CloseFmeaAction`]; a mode kept with
    /// the same action keeps its closing.
    pub modes: Vec<FailureMode>,
    pub by: String,
    pub seed: Uuid,
    pub at: Timestamp,
}

/// Close the required action of one failure mode, with its evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct CloseFmeaAction {
    pub release: String,
    pub mode: String,
    pub evidence: String,
    pub by: String,
    pub seed: Uuid,
    pub at: Timestamp,
}

impl RiskValidation {
    pub(crate) fn record_fmea(&self, c: RecordFmea) -> Result<Decision<Event>> {
        names::id("release", &c.release).map_err(name_error)?;
        let r = self
            .releases
            .get(&c.release)
            .ok_or_else(|| DomainError::NotFound(format!("release {}", c.release)))?;
        // Segregation of duties: the release's author does not judge its failure modes.
        if r.created_by == c.by {
            return Err(DomainError::Forbidden(format!(
                "{} created release {}; someone else records its FMEA",
                c.by, c.release
            )));
        }
        if c.modes.is_empty() {
            return Err(invalid("modes", "names no failure mode"));
        }
        if c.modes.len() > MAX_MODES {
            return Err(invalid(
                "modes",
                format!("at most {MAX_MODES} failure modes"),
            ));
        }
        let threshold = self.weights.rpn_action_threshold;
        let previous = self.fmeas.get(&c.release);
        let mut modes = Vec::with_capacity(c.modes.len());
        for (i, m) in c.modes.into_iter().enumerate() {
            let f = format!("modes[{i}]");
            names::text(&format!("{f}.name"), &m.name, 256).map_err(name_error)?;
            if modes.iter().any(|o: &FailureMode| o.name == m.name) {
                return Err(invalid(
                    &f,
                    format!("failure mode {} is named twice", m.name),
                ));
            }
            names::optional_text(&format!("{f}.effect"), &m.effect, 4096).map_err(name_error)?;
            for (name, v) in [
                ("severity", m.severity),
                ("occurrence", m.occurrence),
                ("detection", m.detection),
            ] {
                if !(1..=10).contains(&v) {
                    return Err(invalid(&format!("{f}.{name}"), format!("{v} is not 1-10")));
                }
            }
            names::optional_text(&format!("{f}.action"), &m.action, 4096).map_err(name_error)?;
            // Sealed: the token of an owner the edge held to 256 bytes.
            names::optional_text(&format!("{f}.action_owner"), &m.action_owner, 512)
                .map_err(name_error)?;
            if m.rpn() >= threshold && (m.action.trim().is_empty() || m.action_owner.is_empty()) {
                return Err(invalid(
                    &f,
                    format!(
                        "{}: RPN {} reaches the threshold {threshold}, so it needs an action and its owner",
                        m.name,
                        m.rpn()
                    ),
                ));
            }
            // The same mode with the same action, and no higher RPN, keeps its closing.
            let closed = previous
                .and_then(|p| p.modes.iter().find(|o| o.name == m.name))
                .filter(|o| o.action == m.action && m.rpn() <= o.rpn())
                .and_then(|o| o.closed.clone());
            modes.push(FailureMode { closed, ..m });
        }
        let fmea = Fmea {
            release: r.name.clone(),
            business_unit: r.business_unit.clone(),
            modes,
            threshold,
            by: c.by,
            at: c.at,
        };
        Ok(self.fmea_recorded(fmea, "FMEA recorded", c.seed, c.at))
    }

    pub(crate) fn close_fmea_action(&self, c: CloseFmeaAction) -> Result<Decision<Event>> {
        let mut fmea = self.fmeas.get(&c.release).cloned().ok_or_else(|| {
            DomainError::NotFound(format!("FMEA of release {}", names::shown(&c.release)))
        })?;
        names::text("evidence", &c.evidence, 4096).map_err(name_error)?;
        // Segregation of duties: the release's author does not close its required actions.
        if self
            .releases
            .get(&c.release)
            .is_some_and(|r| r.created_by == c.by)
        {
            return Err(DomainError::Forbidden(format!(
                "{} created release {}; someone else closes its FMEA actions",
                c.by, c.release
            )));
        }
        let threshold = fmea.threshold;
        let m = fmea
            .modes
            .iter_mut()
            .find(|m| m.name == c.mode)
            .ok_or_else(|| {
                DomainError::NotFound(format!(
                    "failure mode {} in the FMEA of release {}",
                    names::shown(&c.mode),
                    c.release
                ))
            })?;
        if m.rpn() < threshold {
            return Err(DomainError::FailedPrecondition(format!(
                "{}: RPN {} is below the threshold {threshold}; no action is required",
                m.name,
                m.rpn()
            )));
        }
        if let Some(closed) = &m.closed {
            return Err(DomainError::FailedPrecondition(format!(
                "the action of {} was closed by {} at {}",
                m.name,
                closed.by,
                closed.at.to_rfc3339()
            )));
        }
        m.closed = Some(ActionClosed {
            by: c.by,
            evidence: c.evidence,
            at: c.at,
        });
        let cause = format!("FMEA action of {} closed", c.mode);
        Ok(self.fmea_recorded(fmea, &cause, c.seed, c.at))
    }

    /// The FMEA recorded, and the release assessed again with its RPN.
    fn fmea_recorded(&self, fmea: Fmea, cause: &str, seed: Uuid, at: Timestamp) -> Decision<Event> {
        let mut after = self.clone();
        after.fmeas.insert(fmea.release.clone(), fmea.clone());
        let mut events = vec![Event::FmeaRecorded(Box::new(fmea.clone()))];
        if let Some(r) = self.releases.get(&fmea.release) {
            after.reassess_into(r, cause, seed, at, &mut events);
        }
        Decision::new(assessments_stream(), events)
    }
}
