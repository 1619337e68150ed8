//! Retention and erasure: how long each class of records must be kept (SOX, HIPAA) and how
//! long personal data in it may be kept (GDPR minimisation), legal holds that keep anything
//! they cover, and subjects erased by destroying their key.
//!
//! The hash-chained records themselves are never deleted (that would break every chain and
//! proof): what retention governs is the personal data inside them, which is sealed per
//! subject, and the archive export of records whose period has run. An erasure is refused
//! while a legal hold or a running retention obligation covers a record the subject appears
//! in (GDPR art. 17(3)(b) and (e)); the minimisation sweep erases subjects whose personal data
//! has outlived every GDPR limit covering it, unless the same holds or obligations keep it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{DomainError, Result, Timestamp, invalid};

const DAY_MICROS: i64 = 86_400_000_000;

/// The regulation a retention policy answers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Regulation {
    /// Sarbanes-Oxley: change and approval records kept seven years.
    Sox,
    /// HIPAA: documentation kept six years.
    Hipaa,
    /// GDPR: personal data kept no longer than needed (minimisation).
    Gdpr,
    /// The enterprise's own rule.
    Internal,
}

impl Regulation {
    pub fn as_str(self) -> &'static str {
        match self {
            Regulation::Sox => "SOX",
            Regulation::Hipaa => "HIPAA",
            Regulation::Gdpr => "GDPR",
            Regulation::Internal => "internal",
        }
    }

    /// The period a regulation sets when the policy gives none, in days.
    pub fn default_keep_days(self) -> u32 {
        match self {
            Regulation::Sox => 7 * 365 + 2,
            Regulation::Hipaa => 6 * 365 + 2,
            Regulation::Gdpr | Regulation::Internal => 0,
        }
    }
}

/// Which records a policy or a hold covers: every list empty covers everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataClass {
    pub services: Vec<String>,
    /// Full event type names (`flotilla.governance.v1.ApprovalGranted`) or prefixes ending in
    /// `.` (`flotilla.governance.v1.`).
    pub event_types: Vec<String>,
    /// Empty: every unit.
    pub business_unit: String,
}

impl DataClass {
    pub fn covers(&self, a: &Appearance) -> bool {
        (self.services.is_empty() || self.services.contains(&a.service))
            && (self.event_types.is_empty()
                || self.event_types.iter().any(|t| {
                    t == &a.event_type || (t.ends_with('.') && a.event_type.starts_with(t))
                }))
            && (self.business_unit.is_empty() || self.business_unit == a.business_unit)
    }
}

/// A retention rule for a class of records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    pub name: String,
    pub regulation: Regulation,
    pub data_class: DataClass,
    /// Records of the class are kept this many days after they were recorded, personal data in
    /// them included (0: no obligation).
    pub keep_days: u32,
    /// GDPR minimisation: personal data in the class is erased this many days after its
    /// subject last appeared in it (0: no limit).
    pub personal_data_days: u32,
    pub set_by: String,
    pub set_at: Timestamp,
}

/// A legal hold: nothing it covers is erased until it is released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    pub id: String,
    /// The matter (litigation, investigation) it is for.
    pub matter: String,
    pub data_class: DataClass,
    /// Only these subjects' data (their key ids); empty: everyone's in the class.
    pub subjects: Vec<Uuid>,
    pub placed_by: String,
    pub placed_at: Timestamp,
    pub released_by: String,
    pub released_at: Option<Timestamp>,
}

impl LegalHold {
    fn holds(&self, subject: Uuid, a: &Appearance) -> bool {
        self.released_at.is_none()
            && (self.subjects.is_empty() || self.subjects.contains(&subject))
            && self.data_class.covers(a)
    }
}

/// A subject's key destroyed: their personal data is unreadable everywhere from then on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    pub subject: Uuid,
    pub reason: String,
    /// The data-subject request or ticket it answers (empty for the minimisation sweep).
    pub request_ref: String,
    pub erased_by: String,
    pub erased_at: Timestamp,
    /// Made by the minimisation sweep rather than asked for.
    pub automatic: bool,
}

/// Where a subject's sealed data appears: one kind of record, and the last time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appearance {
    pub service: String,
    pub event_type: String,
    pub business_unit: String,
    pub last: Timestamp,
}

/// What compliance knows of retention, holds, erasures and where each subject appears.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Retention {
    pub policies: BTreeMap<String, RetentionPolicy>,
    pub holds: BTreeMap<String, LegalHold>,
    pub erasures: BTreeMap<Uuid, Erasure>,
    /// Subject key id -> where their data appears (from the ledgered events' tokens).
    pub subjects: HashMap<Uuid, Vec<Appearance>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetRetentionPolicy {
    pub policy: RetentionPolicy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceLegalHold {
    pub hold: LegalHold,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseLegalHold {
    pub id: String,
    pub by: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EraseSubject {
    pub erasure: Erasure,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepRetention {
    pub by: String,
    pub at: Timestamp,
}

fn date(t: Timestamp) -> String {
    t.to_rfc3339().get(..10).unwrap_or_default().to_owned()
}

impl Retention {
    /// Notes that a ledgered event holds sealed data of these subjects.
    pub fn seen(
        &mut self,
        subjects: &[Uuid],
        service: &str,
        event_type: &str,
        unit: &str,
        at: Timestamp,
    ) {
        for s in subjects {
            let list = self.subjects.entry(*s).or_default();
            match list.iter_mut().find(|a| {
                a.service == service && a.event_type == event_type && a.business_unit == unit
            }) {
                Some(a) => a.last = a.last.max(at),
                None => list.push(Appearance {
                    service: service.to_owned(),
                    event_type: event_type.to_owned(),
                    business_unit: unit.to_owned(),
                    last: at,
                }),
            }
        }
    }

    /// Why a subject may not be erased at `at` (a hold, or an obligation still running).
    pub fn kept(&self, subject: Uuid, at: Timestamp) -> Option<String> {
        let seen = self
            .subjects
            .get(&subject)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for a in seen {
            if let Some(h) = self.holds.values().find(|h| h.holds(subject, a)) {
                return Some(format!(
                    "legal hold {} ({}) keeps {} records of {} in {}; release the hold first",
                    h.id,
                    h.matter,
                    a.event_type,
                    a.service,
                    if a.business_unit.is_empty() {
                        "the platform"
                    } else {
                        &a.business_unit
                    }
                ));
            }
        }
        let mut until: Option<(Timestamp, &RetentionPolicy, &Appearance)> = None;
        for a in seen {
            for p in self.policies.values() {
                if p.keep_days == 0 || !p.data_class.covers(a) {
                    continue;
                }
                let end = Timestamp(a.last.0.saturating_add(i64::from(p.keep_days) * DAY_MICROS));
                if end > at && until.is_none_or(|(u, _, _)| end > u) {
                    until = Some((end, p, a));
                }
            }
        }
        until.map(|(end, p, a)| {
            format!(
                "{} retention ({}) keeps {} records of {} with this subject until {}; erasure is refused until then (GDPR art. 17(3)(b))",
                p.regulation.as_str(),
                p.name,
                a.event_type,
                a.service,
                date(end)
            )
        })
    }

    pub fn set_policy(&self, c: SetRetentionPolicy) -> Result<RetentionPolicy> {
        let mut p = c.policy;
        if p.name.is_empty() {
            return Err(invalid("policy.name", "is empty"));
        }
        let least = p.regulation.default_keep_days();
        if p.keep_days == 0 {
            p.keep_days = least;
        }
        if p.keep_days < least {
            return Err(invalid(
                "policy.keep_days",
                format!(
                    "{} keeps records at least {least} days; {} is shorter",
                    p.regulation.as_str(),
                    p.keep_days
                ),
            ));
        }
        if let Some(old) = self.policies.get(&p.name)
            && old.keep_days > p.keep_days
        {
            return Err(DomainError::FailedPrecondition(format!(
                "retention policy {} keeps records {} days; a retention period is only lengthened",
                p.name, old.keep_days
            )));
        }
        if p.regulation == Regulation::Gdpr && p.personal_data_days == 0 {
            return Err(invalid(
                "policy.personal_data_days",
                "a GDPR policy says how long personal data may be kept; give days",
            ));
        }
        if p.keep_days == 0 && p.personal_data_days == 0 {
            return Err(invalid(
                "policy",
                "keeps nothing and limits nothing; give keep_days or personal_data_days",
            ));
        }
        if self.policies.get(&p.name).is_some_and(|old| {
            old.regulation == p.regulation
                && old.data_class == p.data_class
                && old.keep_days == p.keep_days
                && old.personal_data_days == p.personal_data_days
        }) {
            return Err(DomainError::FailedPrecondition(format!(
                "retention policy {} is already set so",
                p.name
            )));
        }
        Ok(p)
    }

    pub fn place_hold(&self, c: PlaceLegalHold) -> Result<LegalHold> {
        let h = c.hold;
        if h.id.is_empty() {
            return Err(invalid("hold.id", "is empty"));
        }
        if h.matter.is_empty() {
            return Err(invalid(
                "hold.matter",
                "is empty; name the matter the hold is for",
            ));
        }
        if self.holds.contains_key(&h.id) {
            return Err(DomainError::FailedPrecondition(format!(
                "legal hold {} exists; holds are not replaced, release it and place another",
                h.id
            )));
        }
        Ok(h)
    }

    pub fn release_hold(&self, c: &ReleaseLegalHold) -> Result<()> {
        let h = self
            .holds
            .get(&c.id)
            .ok_or_else(|| DomainError::NotFound(format!("legal hold {}", c.id)))?;
        if let Some(at) = h.released_at {
            return Err(DomainError::FailedPrecondition(format!(
                "legal hold {} was released at {}",
                c.id,
                at.to_rfc3339()
            )));
        }
        Ok(())
    }

    /// The erasure to record, or none when the subject was erased before (the edge destroys
    /// the key either way, which finishes an erasure a crash interrupted).
    pub fn erase(&self, c: EraseSubject) -> Result<Option<Erasure>> {
        let e = c.erasure;
        if self.erasures.contains_key(&e.subject) {
            return Ok(None);
        }
        if e.reason.is_empty() {
            return Err(invalid(
                "reason",
                "is empty; say why (e.g. \"GDPR art. 17 request\")",
            ));
        }
        if let Some(why) = self.kept(e.subject, e.erased_at) {
            return Err(DomainError::FailedPrecondition(why));
        }
        Ok(Some(e))
    }

    /// Subjects whose personal data outlived the GDPR limits covering it, and that nothing
    /// keeps: each subject's last appearance in a class a minimisation policy covers, plus the
    /// longest such policy's days, has passed. In key-id order.
    pub fn due(&self, c: &SweepRetention) -> Vec<Erasure> {
        let mut subjects: Vec<&Uuid> = self.subjects.keys().collect();
        subjects.sort();
        let mut out = Vec::new();
        for s in subjects {
            if self.erasures.contains_key(s) {
                continue;
            }
            let mut limit: Option<(i64, &RetentionPolicy)> = None;
            let mut last = Timestamp(i64::MIN);
            for a in &self.subjects[s] {
                last = last.max(a.last);
                for p in self.policies.values() {
                    if p.personal_data_days > 0
                        && p.data_class.covers(a)
                        && limit.is_none_or(|(d, _)| i64::from(p.personal_data_days) > d)
                    {
                        limit = Some((i64::from(p.personal_data_days), p));
                    }
                }
            }
            let Some((days, p)) = limit else { continue };
            if last.0.saturating_add(days * DAY_MICROS) > c.at.0 || self.kept(*s, c.at).is_some() {
                continue;
            }
            out.push(Erasure {
                subject: *s,
                reason: format!(
                    "{} minimisation ({}): no appearance in {days} days",
                    p.regulation.as_str(),
                    p.name
                ),
                request_ref: String::new(),
                erased_by: c.by.clone(),
                erased_at: c.at,
                automatic: true,
            });
        }
        out
    }
}
