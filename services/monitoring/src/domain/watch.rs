//! Post-deploy watch windows: a succeeded deployment of a service opens one with its tier's
//! window and thresholds (and the service's health checks); samples inside it are judged in
//! order, and the first that crosses a threshold asks for the rollback, with the evidence. A
//! window that ends is healthy only when every threshold got samples: no data is not a pass.

use flotilla_core::decider::Decision;
use uuid::Uuid;

use super::*;

/// Most samples one batch carries.
pub const MAX_BATCH: usize = 10_000;
/// How far ahead of the service's clock a sample may be dated (clock skew; a sample dated
/// further would hold later ones back as out of order).
pub const MAX_AHEAD_MICROS: i64 = 60 * 1_000_000;

/// A deployment of a service finished: recorded (DORA); a succeeded one opens its watch window,
/// a rolled-back or failed one ends it.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteDeployment {
    pub note: DeploymentNote,
}

/// Orchestration registered a build (its registration time counts as the change's start).
#[derive(Clone, Debug, PartialEq)]
pub struct NoteArtifact {
    pub service: String,
    pub version: String,
    pub registered_at: Timestamp,
}

/// Samples of one metric of a service in an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordSamples {
    pub service: String,
    pub environment: String,
    pub metric: String,
    pub samples: Vec<Sample>,
    /// push or prometheus.
    pub source: String,
    /// Seeds the ids of a breach and its rollback request.
    pub seed: Uuid,
    pub now: Timestamp,
}

/// Ends the windows whose time is up.
#[derive(Clone, Debug, PartialEq)]
pub struct CloseDueWatches {
    pub now: Timestamp,
}

/// What a batch of samples did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Taken {
    pub samples: u64,
    pub outside: u64,
    pub breach: Option<Uuid>,
}

/// The id of the window a deployment of a service opens.
pub fn watch_id(deployment: &str, service: &str) -> Uuid {
    const NS: Uuid = Uuid::from_u128(0x3b7d_64a1_0c55_4e2f_9a61_77c2_5f0e_1d93);
    Uuid::new_v5(&NS, format!("{deployment}\n{service}").as_bytes())
}

impl Monitoring {
    pub(super) fn note_deployment(&self, c: NoteDeployment) -> Result<Decision<Event>> {
        let n = c.note;
        let stream = monitoring_stream();
        if self.noted.contains(&note_key(&n)) {
            return Ok(Decision::nothing(stream));
        }
        let mut events = match n.outcome {
            Outcome::Succeeded => self.opened(&n),
            Outcome::RolledBack | Outcome::Failed => self.ended(&n),
        };
        events.insert(0, Event::DeploymentNoted(Box::new(n)));
        Ok(Decision::new(stream, events))
    }

    pub(super) fn note_artifact(&self, c: NoteArtifact) -> Result<Decision<Event>> {
        let key = (c.service.clone(), c.version.clone());
        if self.artifacts.contains_key(&key) {
            return Ok(Decision::nothing(monitoring_stream()));
        }
        Ok(Decision::new(
            monitoring_stream(),
            vec![Event::ArtifactNoted {
                service: c.service,
                version: c.version,
                registered_at: c.registered_at,
            }],
        ))
    }

    /// The window a succeeded deployment opens (and the one it supersedes).
    fn opened(&self, c: &DeploymentNote) -> Vec<Event> {
        let id = watch_id(&c.deployment, &c.service);
        if self.watches.contains_key(&id) {
            return Vec::new();
        }
        let tier = self.catalog.get(&c.service).map_or(1, |(_, t)| *t);
        let Some(tw) = self.policy.for_tier(tier) else {
            return Vec::new();
        };
        let mut thresholds = tw.thresholds.clone();
        for h in self.checks_for(&c.service, &c.environment) {
            thresholds.push(Threshold {
                metric: h.name.clone(),
                comparison: h.comparison,
                threshold: h.threshold,
            });
        }
        let mut events = Vec::new();
        if let Some(previous) = self.open.get(&(c.service.clone(), c.environment.clone())) {
            events.push(Event::WatchClosed {
                watch: *previous,
                status: WatchStatus::Superseded,
                at: c.finished_at,
            });
        }
        events.push(Event::WatchOpened(Box::new(Watch {
            id,
            deployment: c.deployment.clone(),
            release: c.release.clone(),
            service: c.service.clone(),
            version: c.version.clone(),
            environment: c.environment.clone(),
            business_unit: c.business_unit.clone(),
            tier,
            opened_at: c.finished_at,
            closes_at: Timestamp(
                c.finished_at
                    .0
                    .saturating_add(i64::from(tw.window_minutes) * 60_000_000),
            ),
            thresholds,
            status: WatchStatus::Open,
            coverage: Default::default(),
            breach: None,
            rollback_request: None,
            closed_at: None,
        })));
        events
    }

    /// A rolled-back or failed deployment ends its window, if it is open.
    fn ended(&self, c: &DeploymentNote) -> Vec<Event> {
        let id = watch_id(&c.deployment, &c.service);
        let open = self
            .watches
            .get(&id)
            .is_some_and(|w| w.status == WatchStatus::Open);
        if open {
            vec![Event::WatchClosed {
                watch: id,
                status: WatchStatus::RolledBack,
                at: c.finished_at,
            }]
        } else {
            Vec::new()
        }
    }

    pub(super) fn close_due_watches(&self, c: CloseDueWatches) -> Result<Decision<Event>> {
        let events = self
            .open
            .values()
            .filter_map(|id| self.watches.get(id))
            .filter(|w| w.closes_at < c.now)
            .map(|w| Event::WatchClosed {
                watch: w.id,
                status: if self
                    .thresholds_of(w)
                    .iter()
                    .all(|t| w.coverage.get(&t.metric).is_some_and(|c| c.samples > 0))
                {
                    WatchStatus::Healthy
                } else {
                    WatchStatus::NoData
                },
                at: c.now,
            })
            .collect();
        Ok(Decision::new(monitoring_stream(), events))
    }

    /// A window's thresholds: its tier's and the health checks of the service there, those
    /// defined after it opened too.
    pub fn thresholds_of(&self, w: &Watch) -> Vec<Threshold> {
        let mut out = w.thresholds.clone();
        for h in self.checks_for(&w.service, &w.environment) {
            if !out.iter().any(|t| t.metric == h.name) {
                out.push(Threshold {
                    metric: h.name.clone(),
                    comparison: h.comparison,
                    threshold: h.threshold,
                });
            }
        }
        out
    }

    /// What a batch would do, and the events it records.
    pub fn take_samples(&self, c: &RecordSamples) -> Result<(Taken, Vec<Event>)> {
        names::id("service", &c.service).map_err(name_error)?;
        names::label("environment", &c.environment).map_err(name_error)?;
        names::id("metric", &c.metric).map_err(name_error)?;
        if c.samples.is_empty() {
            return Err(invalid(
                "samples",
                "is empty: a batch without samples says nothing (and nothing is never a pass)",
            ));
        }
        if c.samples.len() > MAX_BATCH {
            return Err(invalid(
                "samples",
                format!("at most {MAX_BATCH} samples per batch"),
            ));
        }
        let skip_nan = self
            .checks
            .get(&(c.service.clone(), c.metric.clone()))
            .is_some_and(|h| h.skip_nan);
        let mut samples = Vec::with_capacity(c.samples.len());
        for (i, s) in c.samples.iter().enumerate() {
            if s.at.0 == 0 {
                return Err(invalid(&format!("samples[{i}].at"), "is missing"));
            }
            if s.at.0 > c.now.0.saturating_add(MAX_AHEAD_MICROS) {
                return Err(invalid(
                    &format!("samples[{i}].at"),
                    format!(
                        "{} is more than a minute ahead of now ({}); check the sender's clock",
                        s.at.to_rfc3339(),
                        c.now.to_rfc3339()
                    ),
                ));
            }
            if let Some(prev) = samples.last().map(|p: &Sample| p.at)
                && s.at < prev
            {
                return Err(invalid(
                    &format!("samples[{i}].at"),
                    format!(
                        "{} is before the sample ahead of it ({}): send a batch in time order",
                        s.at.to_rfc3339(),
                        prev.to_rfc3339()
                    ),
                ));
            }
            if s.value.is_nan() {
                if skip_nan {
                    continue;
                }
                return Err(invalid(
                    &format!("samples[{i}].value"),
                    format!(
                        "is NaN; a NaN says nothing about {} (define its health check with skip_nan to skip them)",
                        c.metric
                    ),
                ));
            }
            // An infinity is a value (a quantile past the last bucket): it crosses an ABOVE
            // threshold (+Inf) or a BELOW one (-Inf), and is never refused or hidden.
            samples.push(*s);
        }
        let total = c.samples.len() as u64;
        let Some(w) = self
            .open
            .get(&(c.service.clone(), c.environment.clone()))
            .and_then(|id| self.watches.get(id))
        else {
            return Ok((
                Taken {
                    samples: 0,
                    outside: total,
                    breach: None,
                },
                Vec::new(),
            ));
        };
        let thresholds = self.thresholds_of(w);
        let Some(t) = thresholds.iter().find(|t| t.metric == c.metric) else {
            return Err(invalid(
                "metric",
                format!(
                    "{} is not watched for {} in {} (its thresholds: {}); define a health check for it first",
                    c.metric,
                    c.service,
                    c.environment,
                    thresholds
                        .iter()
                        .map(|t| t.metric.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        if let (Some(first), Some(seen)) = (samples.first(), w.coverage.get(&c.metric))
            && first.at < seen.last_at
        {
            return Err(invalid(
                "samples[0].at",
                format!(
                    "{} is before the last sample of {} taken in this window ({}): samples arrive in time order",
                    first.at.to_rfc3339(),
                    c.metric,
                    seen.last_at.to_rfc3339()
                ),
            ));
        }
        let inside: Vec<Sample> = samples.iter().copied().filter(|s| w.covers(s.at)).collect();
        let mut taken = Taken {
            samples: 0,
            outside: total - inside.len() as u64,
            breach: None,
        };
        if inside.is_empty() {
            return Ok((taken, Vec::new()));
        }
        let first_breach = inside
            .iter()
            .position(|s| t.comparison.breached(s.value, t.threshold));
        let upto = first_breach.map_or(inside.len(), |i| i + 1);
        let judged = &inside[..upto];
        taken.samples = judged.len() as u64;
        let worst = judged
            .iter()
            .map(|s| s.value)
            .fold(judged[0].value, |a, b| t.comparison.worse(a, b));
        let last_at = judged[judged.len() - 1].at;
        let mut events = vec![Event::SamplesObserved {
            watch: w.id,
            metric: c.metric.clone(),
            count: judged.len() as u64,
            worst,
            last_at,
            source: c.source.clone(),
        }];
        if let Some(i) = first_breach {
            let s = inside[i];
            let breach = Uuid::new_v5(&c.seed, b"breach");
            let request = Uuid::new_v5(&c.seed, b"rollback");
            let evidence = judged[judged.len().saturating_sub(MAX_EVIDENCE)..].to_vec();
            let reason = format!(
                "{} of {} in {} was {} ({} the threshold {} of tier {}) at {}, {} min after {} {} was deployed",
                c.metric,
                w.service,
                w.environment,
                s.value,
                t.comparison.words(),
                t.threshold,
                w.tier,
                s.at.to_rfc3339(),
                (s.at.0 - w.opened_at.0) / 60_000_000,
                w.service,
                w.version
            );
            events.push(Event::RollbackThresholdBreached(Box::new(Breach {
                id: breach,
                watch: w.id,
                deployment: w.deployment.clone(),
                release: w.release.clone(),
                environment: w.environment.clone(),
                service: w.service.clone(),
                business_unit: w.business_unit.clone(),
                tier: w.tier,
                metric: c.metric.clone(),
                comparison: t.comparison,
                observed: s.value,
                threshold: t.threshold,
                observed_at: s.at,
                evidence,
            })));
            events.push(Event::RollbackRequested(Box::new(RollbackRequest {
                id: request,
                release: w.release.clone(),
                environment: w.environment.clone(),
                reason,
                breach,
                watch: w.id,
                at: c.now,
            })));
            taken.breach = Some(breach);
        }
        Ok((taken, events))
    }

    pub(super) fn record_samples(&self, c: RecordSamples) -> Result<Decision<Event>> {
        let (_, events) = self.take_samples(&c)?;
        Ok(Decision::new(monitoring_stream(), events))
    }
}
