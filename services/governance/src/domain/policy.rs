//! The governance policy: approval thresholds by tier x risk band with business-unit overrides,
//! the release naming rule, rollback criteria per tier and approval time limits.

use std::collections::BTreeSet;

use super::{PEER_REVIEW, Result, invalid, name_error, names};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct RoleRequirement {
    pub role: String,
    pub count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApprovalRule {
    pub tier: u8,
    pub min_risk: u8,
    pub max_risk: u8,
    pub requirements: Vec<RoleRequirement>,
    /// "" = the default rules; a unit's rules replace the defaults for that unit.
    pub business_unit: String,
    /// Empty = every environment.
    pub environments: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VersionScheme {
    Semver,
    Calver(String),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NamingRule {
    pub scheme: VersionScheme,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RollbackThreshold {
    pub metric: String,
    pub greater_than: bool,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RollbackCriteria {
    pub tier: u8,
    pub decision_minutes: u32,
    pub thresholds: Vec<RollbackThreshold>,
    pub notify: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PolicyDocument {
    pub approval_rules: Vec<ApprovalRule>,
    pub naming: NamingRule,
    pub rollback_criteria: Vec<RollbackCriteria>,
    pub decision_deadline_minutes: u32,
    pub expire_after_minutes: u32,
    pub escalate_to: Vec<String>,
    pub approval_validity_minutes: u32,
}

fn req(role: &str, count: u32) -> RoleRequirement {
    RoleRequirement {
        role: role.into(),
        count,
    }
}

impl Default for PolicyDocument {
    /// The policy in force until one is set: tier 1 and high risk need more eyes.
    fn default() -> Self {
        let rule = |tier, min_risk, max_risk, requirements| ApprovalRule {
            tier,
            min_risk,
            max_risk,
            requirements,
            business_unit: String::new(),
            environments: Vec::new(),
        };
        let mut rules = Vec::new();
        for tier in 1..=4u8 {
            let base = vec![req("service-owner", 1)];
            rules.push(rule(tier, 0, 39, base.clone()));
            let mut mid = base.clone();
            if tier <= 2 {
                mid.push(req("security", 1));
            }
            rules.push(rule(tier, 40, 69, mid));
            let mut high = base;
            high.push(req("security", 1));
            high.push(req("business", 1));
            if tier == 1 {
                high.push(req("cab", 1));
            }
            rules.push(rule(tier, 70, 100, high));
        }
        Self {
            approval_rules: rules,
            naming: NamingRule {
                scheme: VersionScheme::Semver,
            },
            rollback_criteria: (1..=4u8)
                .map(|tier| RollbackCriteria {
                    tier,
                    decision_minutes: [15, 30, 60, 240][usize::from(tier - 1)],
                    thresholds: vec![RollbackThreshold {
                        metric: "error_rate".into(),
                        greater_than: true,
                        value: 0.05,
                    }],
                    notify: vec!["release-manager".into(), "service-owner".into()],
                })
                .collect(),
            decision_deadline_minutes: 24 * 60,
            expire_after_minutes: 72 * 60,
            escalate_to: vec!["release-manager".into()],
            approval_validity_minutes: 0,
        }
    }
}

fn check_role(field: &str, role: &str) -> Result<()> {
    if role.is_empty()
        || role.len() > 64
        || !role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(invalid(
            field,
            format!("role {role:?} must be 1-64 lowercase letters, digits or '-'"),
        ));
    }
    Ok(())
}

/// Most approval rules a policy may hold.
pub const MAX_RULES: usize = 500;

impl PolicyDocument {
    /// Checks a document someone sets: the shape ([`PolicyDocument::validate`]), and that
    /// every role it names is one people can hold (`known_roles`, the roles the access policy
    /// names, and the peer review any approver gives), risk bands of one tier partition 0-100
    /// without overlapping, no rule repeats another or requires nothing.
    pub fn validate_with(&self, known_roles: &BTreeSet<String>) -> Result<()> {
        self.validate()?;
        let known = |field: &str, role: &str| -> Result<()> {
            if role == PEER_REVIEW || known_roles.contains(role) {
                return Ok(());
            }
            Err(invalid(
                field,
                format!(
                    "role {role} is not a role anyone holds; known roles: {}",
                    known_roles
                        .iter()
                        .map(String::as_str)
                        .chain(std::iter::once(PEER_REVIEW))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        };
        for (i, r) in self.approval_rules.iter().enumerate() {
            let f = format!("approval_rules[{i}]");
            if r.requirements.is_empty() {
                return Err(invalid(
                    &f,
                    "requires no approval; every rule names at least one role",
                ));
            }
            let roles: Vec<&str> = r.requirements.iter().map(|q| q.role.as_str()).collect();
            names::list(&format!("{f}.requirements"), &roles, 20).map_err(name_error)?;
            for q in &r.requirements {
                known(&format!("{f}.requirements"), &q.role)?;
            }
            names::optional_label(&format!("{f}.business_unit"), &r.business_unit)
                .map_err(name_error)?;
            names::list(&format!("{f}.environments"), &r.environments, 50).map_err(name_error)?;
            for e in &r.environments {
                names::label(&format!("{f}.environments"), e).map_err(name_error)?;
            }
            // Rules of one unit, environment set and tier are bands that must not overlap (an
            // identical rule overlaps itself).
            let envs: BTreeSet<&String> = r.environments.iter().collect();
            if let Some((j, _)) = self.approval_rules[..i].iter().enumerate().find(|(_, o)| {
                o.business_unit == r.business_unit
                    && o.tier == r.tier
                    && o.environments.iter().collect::<BTreeSet<_>>() == envs
                    && o.min_risk <= r.max_risk
                    && r.min_risk <= o.max_risk
            }) {
                return Err(invalid(
                    &f,
                    format!(
                        "risk band {}..{} of tier {} overlaps approval_rules[{j}]; the bands of a tier must partition 0..100",
                        r.min_risk, r.max_risk, r.tier
                    ),
                ));
            }
        }
        names::list("escalate_to", &self.escalate_to, 20).map_err(name_error)?;
        for r in &self.escalate_to {
            known("escalate_to", r)?;
        }
        if self.rollback_criteria.len() > 4 {
            return Err(invalid(
                "rollback_criteria",
                "at most one entry per tier (4)",
            ));
        }
        for (i, c) in self.rollback_criteria.iter().enumerate() {
            let f = format!("rollback_criteria[{i}]");
            if self.rollback_criteria[..i].iter().any(|o| o.tier == c.tier) {
                return Err(invalid(&f, format!("tier {} has criteria already", c.tier)));
            }
            names::list(&format!("{f}.notify"), &c.notify, 20).map_err(name_error)?;
            for n in &c.notify {
                names::role(&format!("{f}.notify"), n).map_err(name_error)?;
                known(&format!("{f}.notify"), n)?;
            }
            if c.thresholds.len() > 20 {
                return Err(invalid(&format!("{f}.thresholds"), "at most 20 thresholds"));
            }
            for t in &c.thresholds {
                names::id(&format!("{f}.thresholds.metric"), &t.metric).map_err(name_error)?;
            }
        }
        if let VersionScheme::Calver(p) = &self.naming.scheme
            && p.len() > 64
        {
            return Err(invalid("naming.calver_pattern", "is longer than 64 bytes"));
        }
        Ok(())
    }

    /// Checks the document's shape: tiers 1-4, bands within 0-100, roles well formed, limits set.
    pub fn validate(&self) -> Result<()> {
        if self.approval_rules.len() > MAX_RULES {
            return Err(invalid(
                "approval_rules",
                format!(
                    "{} rules, at most {MAX_RULES} allowed",
                    self.approval_rules.len()
                ),
            ));
        }
        for (i, r) in self.approval_rules.iter().enumerate() {
            let f = format!("approval_rules[{i}]");
            if !(1..=4).contains(&r.tier) {
                return Err(invalid(&f, format!("tier {} is not 1-4", r.tier)));
            }
            if r.min_risk > r.max_risk || r.max_risk > 100 {
                return Err(invalid(
                    &f,
                    format!(
                        "risk band {}..{} is not within 0..100",
                        r.min_risk, r.max_risk
                    ),
                ));
            }
            for q in &r.requirements {
                check_role(&format!("{f}.requirements"), &q.role)?;
                if q.count == 0 || q.count > 20 {
                    return Err(invalid(
                        &format!("{f}.requirements"),
                        format!("count {} for role {} is not 1-20", q.count, q.role),
                    ));
                }
            }
        }
        // Every tier x score must be covered, in every environment, by the default rules and by
        // each unit's rules (a unit's rules replace the defaults, so a partial set would leave
        // gaps).
        let mut units: Vec<&str> = self
            .approval_rules
            .iter()
            .map(|r| r.business_unit.as_str())
            .collect();
        units.push("");
        units.sort_unstable();
        units.dedup();
        for unit in units {
            for tier in 1..=4u8 {
                for score in 0..=100u8 {
                    if !self.approval_rules.iter().any(|r| {
                        r.business_unit == unit
                            && r.environments.is_empty()
                            && r.tier == tier
                            && (r.min_risk..=r.max_risk).contains(&score)
                    }) {
                        let whose = if unit.is_empty() {
                            "default".to_owned()
                        } else {
                            format!("unit {unit}'s")
                        };
                        return Err(invalid(
                            "approval_rules",
                            format!(
                                "no {whose} rule for every environment covers tier {tier} at risk score {score}"
                            ),
                        ));
                    }
                }
            }
        }
        if let VersionScheme::Calver(p) = &self.naming.scheme {
            calver_tokens(p)?;
        }
        for c in &self.rollback_criteria {
            if !(1..=4).contains(&c.tier) || c.decision_minutes == 0 {
                return Err(invalid(
                    "rollback_criteria",
                    format!(
                        "tier {} needs a tier 1-4 and a decision time above 0",
                        c.tier
                    ),
                ));
            }
        }
        if self.decision_deadline_minutes == 0
            || self.expire_after_minutes < self.decision_deadline_minutes
        {
            return Err(invalid(
                "expire_after_minutes",
                "the decision deadline must be above 0 and expiry no earlier than it",
            ));
        }
        for r in &self.escalate_to {
            check_role("escalate_to", r)?;
        }
        Ok(())
    }

    /// Approvals a release needs: the unit's own rules when it has any, else the defaults;
    /// every matching rule's requirements merged (highest count per role); personal-data
    /// systems always add a peer review. `None` when no rule matches (never "no approvals").
    pub fn requirements_for(
        &self,
        business_unit: &str,
        environment: &str,
        tier: u8,
        risk: u8,
        personal_data: bool,
    ) -> Option<Vec<RoleRequirement>> {
        let has_override = self
            .approval_rules
            .iter()
            .any(|r| r.business_unit == business_unit && !business_unit.is_empty());
        let wanted_bu = if has_override { business_unit } else { "" };
        let mut out: Vec<RoleRequirement> = Vec::new();
        let mut matched = false;
        for r in self.approval_rules.iter().filter(|r| {
            r.business_unit == wanted_bu
                && r.tier == tier
                && (r.min_risk..=r.max_risk).contains(&risk)
                && (r.environments.is_empty() || r.environments.iter().any(|e| e == environment))
        }) {
            matched = true;
            for q in &r.requirements {
                match out.iter_mut().find(|o| o.role == q.role) {
                    Some(o) => o.count = o.count.max(q.count),
                    None => out.push(q.clone()),
                }
            }
        }
        if !matched {
            return None;
        }
        if personal_data && !out.iter().any(|o| o.role == PEER_REVIEW) {
            out.push(req(PEER_REVIEW, 1));
        }
        out.sort();
        Some(out)
    }

    /// Minutes allowed for a rollback decision on `tier`, and who is told.
    pub fn rollback_for(&self, tier: u8) -> Option<&RollbackCriteria> {
        self.rollback_criteria.iter().find(|c| c.tier == tier)
    }

    /// Checks a release version against the naming rule.
    pub fn check_version(&self, version: &str) -> Result<()> {
        match &self.naming.scheme {
            VersionScheme::Semver => semver::Version::parse(version).map(|_| ()).map_err(|e| {
                invalid(
                    "version",
                    format!("{version:?} is not a semantic version: {e}"),
                )
            }),
            VersionScheme::Calver(pattern) => check_calver(pattern, version),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Year4,
    Year2,
    Month,
    Day,
    Micro,
}

/// Parses a CalVer pattern into tokens and separators.
fn calver_tokens(pattern: &str) -> Result<Vec<(Token, bool, Option<char>)>> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        let end = rest.find(['.', '-']).unwrap_or(rest.len());
        let (tok, tail) = rest.split_at(end);
        let (t, padded) = match tok {
            "YYYY" => (Token::Year4, false),
            "YY" => (Token::Year2, false),
            "0Y" => (Token::Year2, true),
            "MM" => (Token::Month, false),
            "0M" => (Token::Month, true),
            "DD" => (Token::Day, false),
            "0D" => (Token::Day, true),
            "MICRO" => (Token::Micro, false),
            other => {
                return Err(invalid(
                    "naming.calver_pattern",
                    format!(
                        "{other:?} in {pattern:?} is not one of YYYY, YY, 0Y, MM, 0M, DD, 0D, MICRO"
                    ),
                ));
            }
        };
        let sep = tail.chars().next();
        out.push((t, padded, sep));
        rest = if tail.is_empty() { tail } else { &tail[1..] };
        if sep.is_some() && rest.is_empty() {
            return Err(invalid(
                "naming.calver_pattern",
                format!("{pattern:?} ends with a separator"),
            ));
        }
    }
    if out.is_empty() {
        return Err(invalid("naming.calver_pattern", "pattern is empty"));
    }
    Ok(out)
}

fn check_calver(pattern: &str, version: &str) -> Result<()> {
    let tokens = calver_tokens(pattern)?;
    let bad = |why: String| {
        invalid(
            "version",
            format!("{version:?} does not follow CalVer {pattern}: {why}"),
        )
    };
    let mut rest = version;
    for (t, padded, sep) in tokens {
        let end = match sep {
            Some(c) => rest.find(c).ok_or_else(|| bad(format!("missing {c:?}")))?,
            None => rest.len(),
        };
        let (part, tail) = rest.split_at(end);
        if part.is_empty() || !part.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad(format!("{part:?} is not a number")));
        }
        let n: u32 = part
            .parse()
            .map_err(|_| bad(format!("{part:?} is too long")))?;
        let ok = match t {
            Token::Year4 => part.len() == 4,
            Token::Year2 => (part.len() == 2 || !padded) && n < 100 && (!padded || part.len() == 2),
            Token::Month => (1..=12).contains(&n) && (!padded || part.len() == 2),
            Token::Day => (1..=31).contains(&n) && (!padded || part.len() == 2),
            Token::Micro => true,
        };
        if !ok || (!padded && part.len() > 1 && part.starts_with('0') && t != Token::Year4) {
            return Err(bad(format!("{part:?} is not a valid {t:?}")));
        }
        rest = if sep.is_some() { &tail[1..] } else { tail };
    }
    if !rest.is_empty() {
        return Err(bad(format!("unexpected {rest:?} at the end")));
    }
    Ok(())
}
