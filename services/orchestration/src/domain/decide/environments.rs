//! Environments on each unit's promotion path: their checks and data, test windows, shared
//! infrastructure, reported configuration (drift), and the trigger rules that create releases.

use flotilla_core::decider::Decision;

use super::*;

fn env_key(unit: &str, name: &str) -> StreamKey {
    StreamKey::Environment {
        business_unit: unit.to_owned(),
        name: name.to_owned(),
    }
}

fn config(field: &str, c: &std::collections::BTreeMap<String, String>) -> Result<()> {
    if c.len() > 1_000 {
        return Err(invalid(field, format!("{} keys, at most 1000", c.len())));
    }
    for (k, v) in c {
        names::reference(field, k, 256).map_err(name_error)?;
        names::optional_text(field, v, 4096).map_err(name_error)?;
    }
    Ok(())
}

impl Orchestration {
    pub(super) fn set_promotion_path(&self, c: SetPromotionPath) -> Result<Decision<Event>> {
        let SetPromotionPath {
            business_unit,
            environments,
            at,
        } = c;
        label("business_unit", &business_unit)?;
        if environments.is_empty() {
            return Err(invalid(
                "environments",
                "name at least one environment, in order",
            ));
        }
        list("environments", &environments, 20)?;
        for e in &environments {
            self.env_or_refuse(&business_unit, e)?;
        }
        let key = StreamKey::Path(business_unit.clone());
        if self.paths.get(&business_unit) == Some(&environments) {
            return decided(key, vec![]);
        }
        let read: Vec<_> = environments
            .iter()
            .map(|e| env_key(&business_unit, e).stream())
            .collect();
        Ok(Decision::new(
            key.stream(),
            vec![Event::PromotionPathSet {
                business_unit,
                environments,
                at,
            }],
        )
        .reading(read))
    }

    pub(super) fn define_environment(&self, c: DefineEnvironment) -> Result<Decision<Event>> {
        let DefineEnvironment { spec, at } = c;
        label("business_unit", &spec.business_unit)?;
        label("name", &spec.name)?;
        list("checks", &spec.checks, 50)?;
        for x in &spec.checks {
            id("checks", x)?;
        }
        list("test_teams", &spec.test_teams, 20)?;
        for t in &spec.test_teams {
            label("test_teams", t)?;
        }
        list("shared", &spec.shared, 50)?;
        for s in &spec.shared {
            if !self.infrastructure.contains_key(s) {
                return Err(precondition(format!(
                    "shared infrastructure {} is not defined; define it (with its capacity) first",
                    shown(s)
                )));
            }
        }
        if let Some(d) = &spec.data
            && (d.max_age_days == 0 || d.min_volume_percent > 100)
        {
            return Err(invalid(
                "data",
                "max_age_days is at least 1 and min_volume_percent at most 100",
            ));
        }
        config("desired", &spec.desired)?;
        let key = env_key(&spec.business_unit, &spec.name);
        let created = self.environment(&spec.business_unit, &spec.name).is_none();
        decided(key, vec![Event::EnvironmentDefined { spec, created, at }])
    }

    /// Removes an environment on no promotion path with no deployment under way.
    pub(super) fn remove_environment(&self, c: RemoveEnvironment) -> Result<Decision<Event>> {
        self.env_or_refuse(&c.business_unit, &c.name)?;
        if self
            .paths
            .get(&c.business_unit)
            .is_some_and(|p| p.contains(&c.name))
        {
            return Err(precondition(format!(
                "{} is on unit {}'s promotion path; set the path without it first",
                c.name, c.business_unit
            )));
        }
        if let Some(d) = self
            .active_deployments()
            .find(|d| d.business_unit == c.business_unit && d.environment == c.name)
        {
            return Err(precondition(format!(
                "release {} is being deployed into {} (deployment {}); wait for it or roll it back",
                d.release, c.name, d.id
            )));
        }
        decided(
            env_key(&c.business_unit, &c.name),
            vec![Event::EnvironmentRemoved {
                business_unit: c.business_unit,
                name: c.name,
                at: c.at,
            }],
        )
    }

    pub(super) fn define_shared_infrastructure(
        &self,
        c: DefineSharedInfrastructure,
    ) -> Result<Decision<Event>> {
        let i = c.infrastructure;
        id("name", &i.name)?;
        if i.capacity == 0 {
            return Err(invalid(
                "capacity",
                "takes at least one deployment at a time",
            ));
        }
        let key = StreamKey::Infrastructure(i.name.clone());
        if self.infrastructure.get(&i.name) == Some(&i) {
            return decided(key, vec![]);
        }
        decided(key, vec![Event::SharedInfrastructureDefined(i)])
    }

    pub(super) fn define_trigger_rule(&self, c: DefineTriggerRule) -> Result<Decision<Event>> {
        let r = c.rule;
        label("business_unit", &r.business_unit)?;
        let pattern = r.services.strip_suffix('*').unwrap_or(&r.services);
        if pattern.is_empty() {
            return Err(invalid(
                "services",
                "name a service or a prefix such as payments-*",
            ));
        }
        label("services", pattern)?;
        self.env_or_refuse(&r.business_unit, &r.environment)?;
        let path = self
            .paths
            .get(&r.business_unit)
            .cloned()
            .unwrap_or_default();
        if !path.contains(&r.environment) {
            return Err(precondition(format!(
                "{} is not on unit {}'s promotion path ({}); a rule promotes along the path up to its environment",
                r.environment,
                r.business_unit,
                path.join(" -> ")
            )));
        }
        if self.triggers.contains_key(&r.id) {
            return Err(DomainError::AlreadyExists(format!("trigger rule {}", r.id)));
        }
        decided(StreamKey::Trigger(r.id), vec![Event::TriggerRuleDefined(r)])
    }

    pub(super) fn remove_trigger_rule(&self, c: RemoveTriggerRule) -> Result<Decision<Event>> {
        if !self.triggers.contains_key(&c.id) {
            return Err(DomainError::NotFound(format!("trigger rule {}", c.id)));
        }
        decided(
            StreamKey::Trigger(c.id),
            vec![Event::TriggerRuleRemoved { id: c.id }],
        )
    }

    /// What an environment reports; every key that differs from the desired configuration in a
    /// way it did not at the last report is a drift event.
    pub(super) fn report_configuration(&self, c: ReportConfiguration) -> Result<Decision<Event>> {
        let ReportConfiguration {
            business_unit,
            environment,
            actual,
            at,
        } = c;
        let env = self.env_or_refuse(&business_unit, &environment)?;
        config("actual", &actual)?;
        let before = diff(&env.desired, &env.actual);
        let now = diff(&env.desired, &actual);
        let mut events = vec![Event::ConfigurationReported {
            business_unit: business_unit.clone(),
            environment: environment.clone(),
            actual,
            at,
        }];
        for (key, desired, actual) in now {
            if before
                .iter()
                .any(|(k, d, a)| *k == key && *d == desired && *a == actual)
            {
                continue;
            }
            events.push(Event::DriftDetected {
                business_unit: business_unit.clone(),
                environment: environment.clone(),
                key,
                desired,
                actual,
                at,
            });
        }
        decided(env_key(&business_unit, &environment), events)
    }

    pub(super) fn record_data_refresh(&self, c: RecordDataRefresh) -> Result<Decision<Event>> {
        let RecordDataRefresh {
            business_unit,
            environment,
            refresh,
        } = c;
        self.env_or_refuse(&business_unit, &environment)?;
        if refresh.volume_percent > 1_000 {
            return Err(invalid(
                "volume_percent",
                "is a percentage of production's volume",
            ));
        }
        decided(
            env_key(&business_unit, &environment),
            vec![Event::DataRefreshed {
                business_unit,
                environment,
                refresh,
            }],
        )
    }

    /// A team books a test window for a release; windows in one environment do not overlap.
    pub(super) fn book_test_window(&self, c: BookTestWindow) -> Result<Decision<Event>> {
        let BookTestWindow {
            business_unit,
            environment,
            window,
            at,
        } = c;
        let env = self.env_or_refuse(&business_unit, &environment)?;
        label("team", &window.team)?;
        id("release", &window.release)?;
        if window.end <= window.start {
            return Err(invalid("end", "is not after start"));
        }
        if window.end <= at {
            return Err(precondition(
                "the window is over; book one that is still to come",
            ));
        }
        if !env.test_teams.is_empty() && !env.test_teams.contains(&window.team) {
            return Err(precondition(format!(
                "{} does not test in {environment}; its teams are {}",
                window.team,
                env.test_teams.join(", ")
            )));
        }
        if let Some(other) = env
            .windows
            .iter()
            .find(|w| w.start < window.end && window.start < w.end)
        {
            return Err(DomainError::AlreadyExists(format!(
                "{environment} is booked from {} to {} by {} for release {}; windows do not overlap",
                other.start.to_rfc3339(),
                other.end.to_rfc3339(),
                other.team,
                other.release
            )));
        }
        decided(
            env_key(&business_unit, &environment),
            vec![Event::TestWindowBooked {
                business_unit,
                environment,
                window,
            }],
        )
    }

    /// A team signs off its window: inside the window, once.
    pub(super) fn sign_off_test_window(&self, c: SignOffTestWindow) -> Result<Decision<Event>> {
        let SignOffTestWindow {
            business_unit,
            environment,
            window,
            sign_off,
        } = c;
        let env = self.env_or_refuse(&business_unit, &environment)?;
        let w = env
            .windows
            .iter()
            .find(|w| w.id == window)
            .ok_or_else(|| DomainError::NotFound(format!("test window {window}")))?;
        if w.signed_off.is_some() {
            return Err(precondition(format!(
                "test window {window} is already signed off"
            )));
        }
        if sign_off.at < w.start || sign_off.at > w.end {
            return Err(precondition(format!(
                "test window {window} runs from {} to {}; sign off inside it",
                w.start.to_rfc3339(),
                w.end.to_rfc3339()
            )));
        }
        names::optional_text("comment", &sign_off.comment, 4096).map_err(name_error)?;
        decided(
            env_key(&business_unit, &environment),
            vec![Event::TestWindowSignedOff {
                business_unit,
                environment,
                window,
                sign_off,
            }],
        )
    }

    pub(super) fn record_validation(&self, c: RecordValidation) -> Result<Decision<Event>> {
        let RecordValidation {
            business_unit,
            environment,
            release,
            check,
            passed,
            at,
        } = c;
        let env = self.env_or_refuse(&business_unit, &environment)?;
        if !env.checks.contains(&check) {
            return Err(precondition(format!(
                "{environment} has no check {}; its checks are {}",
                shown(&check),
                if env.checks.is_empty() {
                    "none".to_owned()
                } else {
                    env.checks.join(", ")
                }
            )));
        }
        self.release_named(&release)
            .ok_or_else(|| DomainError::NotFound(format!("release {}", shown(&release))))?;
        decided(
            env_key(&business_unit, &environment),
            vec![Event::ValidationRecorded {
                business_unit,
                environment,
                release,
                check,
                passed,
                at,
            }],
        )
    }
}
