//! Health checks, the watch policy, and the catalog's tiers.

use flotilla_core::decider::Decision;

use super::*;

#[derive(Clone, Debug, PartialEq)]
pub struct DefineHealthCheck {
    pub check: HealthCheck,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RemoveHealthCheck {
    pub service: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SetWatchPolicy {
    pub policy: WatchPolicy,
    pub by: String,
    pub at: Timestamp,
}

/// The catalog registered or changed a service.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteCatalogService {
    pub service: String,
    pub business_unit: String,
    pub tier: u8,
}

/// The catalog declared (or removed) that a consumer depends on a provider.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteDependency {
    pub consumer: String,
    pub provider: String,
    pub removed: bool,
}

/// Metrics every watch knows without a health check.
pub const BUILT_IN: [&str; 2] = ["error_rate", "latency_p99_ms"];

fn check_threshold(field: &str, metric: &str, threshold: f64) -> Result<()> {
    names::id(&format!("{field}.metric"), metric).map_err(name_error)?;
    if !threshold.is_finite() {
        return Err(invalid(
            &format!("{field}.threshold"),
            format!("{threshold} is not a finite number"),
        ));
    }
    Ok(())
}

impl Monitoring {
    pub(super) fn define_health_check(&self, c: DefineHealthCheck) -> Result<Decision<Event>> {
        let h = c.check;
        names::id("check.name", &h.name).map_err(name_error)?;
        names::id("check.service", &h.service).map_err(name_error)?;
        names::optional_label("check.environment", &h.environment).map_err(name_error)?;
        names::label("check.business_unit", &h.business_unit).map_err(name_error)?;
        names::optional_text("check.promql", &h.promql, 4096).map_err(name_error)?;
        names::optional_text("check.description", &h.description, 1024).map_err(name_error)?;
        if BUILT_IN.contains(&h.name.as_str()) {
            return Err(invalid(
                "check.name",
                format!(
                    "{} is a watch's built-in metric (its threshold comes from the tier's watch policy); name the check after its business transaction",
                    h.name
                ),
            ));
        }
        check_threshold("check", &h.name, h.threshold)?;
        // The check's unit is the catalog's: a unit cannot watch (or trip) another's service.
        match self.catalog.get(&h.service) {
            None => {
                return Err(DomainError::FailedPrecondition(format!(
                    "{} is not in the service catalog; register it in dependency-mapping first",
                    h.service
                )));
            }
            Some((unit, _)) if *unit != h.business_unit => {
                return Err(DomainError::FailedPrecondition(format!(
                    "{} belongs to unit {unit} in the catalog, not {}",
                    h.service, h.business_unit
                )));
            }
            Some(_) => {}
        }
        if self.checks.get(&(h.service.clone(), h.name.clone())) == Some(&h) {
            return Ok(Decision::nothing(monitoring_stream()));
        }
        Ok(Decision::new(
            monitoring_stream(),
            vec![Event::HealthCheckDefined(Box::new(h))],
        ))
    }

    pub(super) fn remove_health_check(&self, c: RemoveHealthCheck) -> Result<Decision<Event>> {
        if !self
            .checks
            .contains_key(&(c.service.clone(), c.name.clone()))
        {
            return Err(DomainError::NotFound(format!(
                "health check {} of {}",
                names::shown(&c.name),
                names::shown(&c.service)
            )));
        }
        Ok(Decision::new(
            monitoring_stream(),
            vec![Event::HealthCheckRemoved {
                service: c.service,
                name: c.name,
            }],
        ))
    }

    pub(super) fn set_watch_policy(&self, c: SetWatchPolicy) -> Result<Decision<Event>> {
        if c.policy.tiers.is_empty() {
            return Err(invalid("policy.tiers", "names no tier"));
        }
        for (i, t) in c.policy.tiers.iter().enumerate() {
            let f = format!("policy.tiers[{i}]");
            if !(1..=4).contains(&t.tier) {
                return Err(invalid(
                    &format!("{f}.tier"),
                    format!("{} is not 1-4", t.tier),
                ));
            }
            if c.policy.tiers[..i].iter().any(|o| o.tier == t.tier) {
                return Err(invalid(&f, format!("tier {} is named twice", t.tier)));
            }
            if !(1..=10_080).contains(&t.window_minutes) {
                return Err(invalid(
                    &format!("{f}.window_minutes"),
                    "is not 1 minute to 7 days",
                ));
            }
            if t.thresholds.is_empty() {
                return Err(invalid(
                    &format!("{f}.thresholds"),
                    "names no threshold: a window that watches nothing would end healthy on nothing",
                ));
            }
            for (j, th) in t.thresholds.iter().enumerate() {
                check_threshold(&format!("{f}.thresholds[{j}]"), &th.metric, th.threshold)?;
            }
        }
        Ok(Decision::new(
            monitoring_stream(),
            vec![Event::WatchPolicySet {
                version: self.policy_version + 1,
                policy: c.policy,
                by: c.by,
                at: c.at,
            }],
        ))
    }

    pub(super) fn note_catalog_service(&self, c: NoteCatalogService) -> Result<Decision<Event>> {
        if self.catalog.get(&c.service) == Some(&(c.business_unit.clone(), c.tier)) {
            return Ok(Decision::nothing(monitoring_stream()));
        }
        Ok(Decision::new(
            monitoring_stream(),
            vec![Event::CatalogServiceNoted {
                service: c.service,
                business_unit: c.business_unit,
                tier: c.tier,
            }],
        ))
    }

    pub(super) fn note_dependency(&self, c: NoteDependency) -> Result<Decision<Event>> {
        let known = self
            .depends_on
            .get(&c.consumer)
            .is_some_and(|p| p.contains(&c.provider));
        if known != c.removed {
            return Ok(Decision::nothing(monitoring_stream()));
        }
        Ok(Decision::new(
            monitoring_stream(),
            vec![Event::DependencyNoted {
                consumer: c.consumer,
                provider: c.provider,
                removed: c.removed,
            }],
        ))
    }

    /// The health checks that apply to a service in an environment.
    pub fn checks_for<'a>(
        &'a self,
        service: &'a str,
        environment: &'a str,
    ) -> impl Iterator<Item = &'a HealthCheck> {
        self.checks
            .values()
            .filter(move |c| c.service == service)
            .filter(move |c| c.environment.is_empty() || c.environment == environment)
    }
}
