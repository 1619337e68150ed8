//! Promoting a release into the next environment of its unit's path: governance's gate, the
//! validations and test-window sign-offs of the environment it leaves, the data the one it enters
//! requires, the artifacts' and descriptors' standing, and shared capacity. A blocked promotion
//! carries every reason from every source and records nothing; an allowed one starts the
//! deployment.

use flotilla_core::decider::Decision;

use super::artifacts::descriptor_findings;
use super::*;

const DAY: i64 = 24 * 3600 * 1_000_000;

impl Orchestration {
    pub(super) fn promote_release(&self, c: PromoteRelease) -> Result<Decision<Event>> {
        let r = self.release_or_refuse(c.release)?;
        label("environment", &c.environment)?;
        if let ReleaseStatus::Promoting {
            deployment,
            environment,
        } = &r.status
        {
            return Err(precondition(format!(
                "release {} is being deployed to {environment} (deployment {deployment}); wait for it or roll it back",
                r.name
            )));
        }
        let Some(plan) = &r.plan else {
            return Err(precondition(format!(
                "release {} is not planned; plan it (PlanRelease) before promoting it",
                r.name
            )));
        };
        let path = self
            .paths
            .get(&r.business_unit)
            .cloned()
            .unwrap_or_default();
        let Some(at) = path.iter().position(|e| *e == c.environment) else {
            return Err(precondition(format!(
                "{} is not on unit {}'s promotion path ({})",
                c.environment,
                r.business_unit,
                path.join(" -> ")
            )));
        };
        let current = r.deployed_to.last();
        let reached = current.and_then(|e| path.iter().position(|p| p == e));
        // Into the next environment, or again into the one it runs in (or was rolled back from).
        let again = match &r.status {
            ReleaseStatus::RolledBack { environment } => *environment == c.environment,
            _ => current == Some(&c.environment),
        };
        let next = reached.map_or(0, |i| i + 1);
        if at != next && !again {
            let expected = path
                .get(next)
                .map_or("nothing: it reached the end of the path".into(), |e| {
                    format!("{e} first")
                });
            return Err(precondition(format!(
                "release {} may not skip environments: promote it into {expected}",
                r.name
            )));
        }
        let target = self.env_or_refuse(&r.business_unit, &c.environment)?;
        let mut reasons = Vec::new();
        if !c.gate.allowed {
            if c.gate.reasons.is_empty() {
                reasons.push("governance: the gate denies it".to_owned());
            }
            reasons.extend(c.gate.reasons.iter().map(|g| format!("governance: {g}")));
        }
        for item in &r.items {
            if let Some(a) = self.artifacts.get(&item.purl) {
                reasons.extend(self.blocked(a));
            }
            reasons.extend(descriptor_findings(
                &item.service,
                &item.descriptor,
                &self.policy.descriptor_standard,
            ));
        }
        // Leaving an environment: its validations passed and every team signed off in its
        // booked window.
        if let Some(from) = current.filter(|e| **e != c.environment)
            && let Some(source) = self.environment(&r.business_unit, from)
        {
            reasons.extend(leaving(source, &r.name));
        }
        if let Some(req) = &target.data {
            reasons.extend(data_reasons(target, req, c.at));
        }
        let holds = self.holds(target, r);
        reasons.extend(self.capacity_reasons(&holds, r));
        if !reasons.is_empty() {
            return Err(DomainError::Blocked {
                release: r.name.clone(),
                environment: c.environment,
                reasons,
            });
        }
        let id = deployment_id(r.id, r.deployments.len());
        let services: std::collections::BTreeSet<&str> = plan
            .waves
            .iter()
            .flatten()
            .map(|p| p.service.as_str())
            .collect();
        let previous: std::collections::BTreeMap<String, String> = target
            .running
            .iter()
            .filter(|(s, _)| services.contains(s.as_str()))
            .map(|(s, v)| (s.clone(), v.clone()))
            .collect();
        let previous_artifacts = previous
            .iter()
            .filter_map(|(s, v)| {
                let v = semver::Version::parse(v).ok()?;
                Some((s.clone(), self.artifact_of(s, Some(&v))?.purl.clone()))
            })
            .collect();
        let artifacts = r
            .items
            .iter()
            .map(|i| (i.service.clone(), i.purl.clone()))
            .collect();
        let deployment = Deployment {
            id,
            release: r.name.clone(),
            release_id: r.id,
            environment: c.environment.clone(),
            business_unit: r.business_unit.clone(),
            emergency: r.emergency,
            steps: deployment::forward_steps(id, r, plan),
            status: DeploymentStatus::Running,
            previous,
            artifacts,
            previous_artifacts,
            holds: holds.clone(),
            started_by: c.by,
            started_at: c.at,
            finished_at: None,
        };
        // What the decision read: the release, both environments, the infrastructure and the
        // deployments holding it.
        let mut read = vec![
            StreamKey::Release(r.id).stream(),
            StreamKey::Environment {
                business_unit: r.business_unit.clone(),
                name: c.environment.clone(),
            }
            .stream(),
        ];
        if let Some(from) = current {
            read.push(
                StreamKey::Environment {
                    business_unit: r.business_unit.clone(),
                    name: from.clone(),
                }
                .stream(),
            );
        }
        for h in &holds {
            read.push(StreamKey::Infrastructure(h.clone()).stream());
        }
        for d in self
            .active_deployments()
            .filter(|d| d.holds.iter().any(|h| holds.contains(h)))
        {
            read.push(StreamKey::Deployment(d.id).stream());
        }
        Ok(Decision::new(
            StreamKey::Deployment(id).stream(),
            vec![Event::DeploymentStarted(Box::new(deployment))],
        )
        .reading(read))
    }

    /// The shared infrastructure a release's deployment into an environment goes into.
    fn holds(&self, target: &Environment, r: &Release) -> Vec<String> {
        let mut out: Vec<String> = target.shared.clone();
        for item in &r.items {
            for u in &item.descriptor.uses {
                if self.infrastructure.contains_key(u) && !out.contains(u) {
                    out.push(u.clone());
                }
            }
        }
        out
    }

    /// Infrastructure that already takes as many deployments as it can, naming who holds it.
    fn capacity_reasons(&self, holds: &[String], r: &Release) -> Vec<String> {
        let mut out = Vec::new();
        for h in holds {
            let Some(infra) = self.infrastructure.get(h) else {
                continue;
            };
            let holders: Vec<&Deployment> = self
                .active_deployments()
                .filter(|d| d.release_id != r.id && d.holds.contains(h))
                .collect();
            if holders.len() as u32 >= infra.capacity {
                out.push(format!(
                    "CapacityConflict: {h} takes {} deployment(s) at once and {} hold(s) it ({}), so release {} ({}) waits for one to finish",
                    infra.capacity,
                    holders.len(),
                    holders
                        .iter()
                        .map(|d| format!("release {} of {} in {}", d.release, d.business_unit, d.environment))
                        .collect::<Vec<_>>()
                        .join(", "),
                    r.name,
                    r.business_unit
                ));
            }
        }
        out
    }
}

/// What keeps a release in an environment: validations not passed there, teams that did not
/// sign off inside their booked window.
fn leaving(source: &Environment, release: &str) -> Vec<String> {
    let mut out = Vec::new();
    for check in &source.checks {
        match source.validations.get(&(release.to_owned(), check.clone())) {
            Some((true, _)) => {}
            Some((false, _)) => out.push(format!("{}: check {check} failed", source.name)),
            None => out.push(format!(
                "{}: check {check} has not been recorded for release {release}",
                source.name
            )),
        }
    }
    for team in &source.test_teams {
        let window = source
            .windows
            .iter()
            .filter(|w| w.release == release && w.team == *team)
            .find(|w| w.signed_off.is_some())
            .or_else(|| {
                source
                    .windows
                    .iter()
                    .find(|w| w.release == release && w.team == *team)
            });
        match window.map(|w| (w, &w.signed_off)) {
            None => out.push(format!(
                "{}: {team} has no test window booked for release {release}",
                source.name
            )),
            Some((w, None)) => out.push(format!(
                "{}: {team} has not signed off release {release} (window {} to {})",
                source.name,
                w.start.to_rfc3339(),
                w.end.to_rfc3339()
            )),
            Some((_, Some(s))) if !s.passed => out.push(format!(
                "{}: {team} did not pass release {release}: {}",
                source.name, s.comment
            )),
            Some(_) => {}
        }
    }
    out
}

/// Whether an environment's data is the masked, fresh and large enough copy it requires.
fn data_reasons(env: &Environment, req: &DataRequirement, at: Timestamp) -> Vec<String> {
    let Some(r) = &env.last_refresh else {
        return vec![format!(
            "{}: no data refresh recorded; it requires a masked copy of production no older than {} days",
            env.name, req.max_age_days
        )];
    };
    let mut out = Vec::new();
    if !r.masked {
        out.push(format!("{}: its data copy is not masked", env.name));
    }
    let age_days = (at.0 - r.copied_at.0) / DAY;
    if at.0 - r.copied_at.0 > i64::from(req.max_age_days) * DAY {
        out.push(format!(
            "{}: its data copy is {age_days} days old, at most {} allowed",
            env.name, req.max_age_days
        ));
    }
    if r.volume_percent < req.min_volume_percent {
        out.push(format!(
            "{}: its data copy has {}% of production's volume, at least {}% required",
            env.name, r.volume_percent, req.min_volume_percent
        ));
    }
    out
}
