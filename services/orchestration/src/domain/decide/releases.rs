//! Releases: created from registered artifacts (by hand, or with the content filled in from what
//! the first environment does not run yet), then planned from dependency-mapping's waves.

use flotilla_core::decider::Decision;

use super::artifacts::descriptor_findings;
use super::*;

/// Longest a blue-green delay or drain may be.
const MAX_WAIT_SECS: u32 = 24 * 3600;

fn check_strategy(service: &str, s: &Strategy) -> Result<()> {
    match s {
        Strategy::Rolling => Ok(()),
        Strategy::BlueGreen {
            pre_promotion_analysis,
            post_promotion_analysis,
            scale_down_delay_secs,
            session_drain_secs,
        } => {
            for a in [pre_promotion_analysis, post_promotion_analysis]
                .into_iter()
                .flatten()
            {
                id("strategy.analysis", a)?;
            }
            if *scale_down_delay_secs > MAX_WAIT_SECS || *session_drain_secs > MAX_WAIT_SECS {
                return Err(invalid(
                    "strategy",
                    format!("{service}: delays are at most {MAX_WAIT_SECS} seconds"),
                ));
            }
            Ok(())
        }
        Strategy::Canary { steps } => {
            if steps.is_empty() || steps.len() > 50 {
                return Err(invalid(
                    "strategy.canary",
                    format!("{service}: a canary has 1 to 50 steps"),
                ));
            }
            let mut weight = 0;
            for step in steps {
                match step {
                    CanaryStep::SetWeight(w) => {
                        if *w > 100 || *w < weight {
                            return Err(invalid(
                                "strategy.canary",
                                format!(
                                    "{service}: weights rise from 0 to 100 ({w} after {weight})"
                                ),
                            ));
                        }
                        weight = *w;
                    }
                    CanaryStep::Pause(Some(secs)) if *secs > MAX_WAIT_SECS => {
                        return Err(invalid(
                            "strategy.canary",
                            format!("{service}: a pause is at most {MAX_WAIT_SECS} seconds"),
                        ));
                    }
                    CanaryStep::Pause(_) => {}
                    CanaryStep::Analysis(name) => id("strategy.canary.analysis", name)?,
                }
            }
            Ok(())
        }
    }
}

fn check_migrations(ms: &[Migration]) -> Result<()> {
    list("migrations", ms, 100)?;
    for m in ms {
        id("migrations.name", &m.name)?;
        text("migrations.forward", &m.forward, 4096)?;
        text("migrations.rollback", &m.rollback, 4096)?;
    }
    Ok(())
}

impl Orchestration {
    pub(super) fn create_release(&self, c: CreateRelease) -> Result<Decision<Event>> {
        id("name", &c.name)?;
        label("business_unit", &c.business_unit)?;
        if let Some(reason) = &c.name_refused {
            return Err(invalid(
                "name",
                format!(
                    "{} breaks governance's release naming rule: {reason}",
                    c.name
                ),
            ));
        }
        let rid = release_id(&c.name);
        if self.releases.contains_key(&rid) {
            return Err(DomainError::AlreadyExists(format!(
                "release {} already exists",
                c.name
            )));
        }
        let path = self.paths.get(&c.business_unit).ok_or_else(|| {
            precondition(format!(
                "unit {} has no promotion path; set it (its environments in order) first",
                c.business_unit
            ))
        })?;
        list("items", &c.items, 2_000)?;
        list("include", &c.include, 50)?;
        let requested = if c.items.is_empty() {
            self.populate(&c, path)?
        } else {
            c.items.clone()
        };
        if requested.is_empty() {
            return Err(precondition(
                "nothing to release: every matching service's newest artifact already runs in the first environment",
            ));
        }
        let mut items = Vec::with_capacity(requested.len());
        let mut refused = Vec::new();
        for r in requested {
            label("items.service", &r.service)?;
            check_strategy(&r.service, &r.strategy)?;
            check_migrations(&r.migrations)?;
            let Some(a) = self.artifact_of(&r.service, r.version.as_ref()) else {
                refused.push(format!(
                    "no artifact of {} {} is registered; register it from CI first",
                    r.service,
                    r.version
                        .as_ref()
                        .map_or("(any version)".into(), |v| v.to_string())
                ));
                continue;
            };
            refused.extend(self.blocked(a));
            refused.extend(descriptor_findings(
                &r.service,
                &r.descriptor,
                &self.policy.descriptor_standard,
            ));
            items.push(ReleaseItem {
                service: r.service,
                version: a.version.clone(),
                purl: a.purl.clone(),
                descriptor: r.descriptor,
                strategy: r.strategy,
                migrations: r.migrations,
            });
        }
        if !refused.is_empty() {
            return Err(precondition(format!(
                "release {} cannot carry what was asked: {}",
                c.name,
                refused.join("; ")
            )));
        }
        let release = Release {
            id: rid,
            name: c.name,
            business_unit: c.business_unit,
            emergency: c.emergency,
            items,
            plan: None,
            status: ReleaseStatus::Created,
            deployed_to: Vec::new(),
            deployments: Vec::new(),
            created_by: c.by,
            created_at: c.at,
            promote_to: c.promote_to,
        };
        decided(
            StreamKey::Release(rid),
            vec![Event::ReleaseCreated(Box::new(release))],
        )
    }

    /// The newest artifact of every matching service that does not run in the path's first
    /// environment yet, with the default descriptor and a rolling update.
    fn populate(&self, c: &CreateRelease, path: &[String]) -> Result<Vec<RequestedItem>> {
        if c.include.is_empty() {
            return Err(invalid(
                "items",
                "name the services, or the prefixes to fill the release from (include)",
            ));
        }
        let descriptor = c.default_descriptor.clone().ok_or_else(|| {
            invalid(
                "default_descriptor",
                "is required to fill a release from artifacts",
            )
        })?;
        let first = path
            .first()
            .and_then(|e| self.environment(&c.business_unit, e));
        let matches = |service: &str| {
            c.include.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => service.starts_with(prefix),
                None => p == service,
            })
        };
        let services: std::collections::BTreeSet<&str> = self
            .artifacts
            .values()
            .map(|a| a.service.as_str())
            .filter(|s| matches(s))
            .collect();
        let mut out = Vec::new();
        for service in services {
            let Some(newest) = self.artifact_of(service, None) else {
                continue;
            };
            let runs = first
                .and_then(|e| e.running.get(service))
                .is_some_and(|v| *v == newest.version.to_string());
            if runs || !self.blocked(newest).is_empty() {
                continue;
            }
            out.push(RequestedItem {
                service: service.to_owned(),
                version: Some(newest.version.clone()),
                descriptor: Descriptor {
                    version: newest.version.to_string(),
                    ..descriptor.clone()
                },
                strategy: Strategy::Rolling,
                migrations: Vec::new(),
            });
        }
        Ok(out)
    }

    /// Records dependency-mapping's plan; one that would break a deployed consumer's range is
    /// refused with the range.
    pub(super) fn plan_release(&self, c: PlanRelease) -> Result<Decision<Event>> {
        let r = self.release_or_refuse(c.release)?;
        if matches!(r.status, ReleaseStatus::Promoting { .. }) {
            return Err(precondition(format!(
                "release {} is being deployed; plan it again once the deployment is over",
                r.name
            )));
        }
        if !c.plan.skew.is_empty() {
            return Err(precondition(format!(
                "release {} would break what deployed consumers require: {}",
                r.name,
                c.plan.skew.join("; ")
            )));
        }
        let planned: std::collections::BTreeSet<&str> = c
            .plan
            .waves
            .iter()
            .flatten()
            .map(|p| p.service.as_str())
            .collect();
        if let Some(missing) = r
            .items
            .iter()
            .find(|i| !planned.contains(i.service.as_str()))
        {
            return Err(invalid(
                "plan",
                format!("does not place {} in a wave", missing.service),
            ));
        }
        decided(
            StreamKey::Release(r.id),
            vec![Event::ReleasePlanned {
                release: r.id,
                plan: c.plan,
                at: c.at,
            }],
        )
    }
}
