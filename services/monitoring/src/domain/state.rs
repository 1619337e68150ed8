//! Monitoring's commands, events and state, and the decider over them.

use std::collections::BTreeMap;

use flotilla_core::decider::{Decider, Decision, Recorded};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::checks::*;
use super::dora::DeploymentNote;
use super::feedback::*;
use super::model::*;
use super::postmortem::*;
use super::watch::*;
use super::{DomainError, Result, Timestamp};

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    DefineHealthCheck(DefineHealthCheck),
    RemoveHealthCheck(RemoveHealthCheck),
    SetWatchPolicy(SetWatchPolicy),
    NoteCatalogService(NoteCatalogService),
    NoteDeployment(NoteDeployment),
    NoteArtifact(NoteArtifact),
    NoteDependency(NoteDependency),
    RecordTicket(RecordTicket),
    DeclareAdoptionTarget(DeclareAdoptionTarget),
    RecordAdoption(RecordAdoption),
    NoteTimeline(NoteTimeline),
    RecordPostmortem(RecordPostmortem),
    RecordSamples(RecordSamples),
    CloseDueWatches(CloseDueWatches),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    HealthCheckDefined(Box<HealthCheck>),
    HealthCheckRemoved {
        service: String,
        name: String,
    },
    WatchPolicySet {
        version: u32,
        policy: WatchPolicy,
        by: String,
        at: Timestamp,
    },
    CatalogServiceNoted {
        service: String,
        business_unit: String,
        tier: u8,
    },
    DeploymentNoted(Box<DeploymentNote>),
    ArtifactNoted {
        service: String,
        version: String,
        registered_at: Timestamp,
    },
    TicketRecorded(Box<Ticket>),
    TimelineNoted(Box<TimelineEntry>),
    PostmortemRecorded(Box<Postmortem>),
    AdoptionTargetDeclared(Box<AdoptionTarget>),
    AdoptionMeasured {
        release: String,
        feature: String,
        value: f64,
        at: Timestamp,
    },
    DependencyNoted {
        consumer: String,
        provider: String,
        removed: bool,
    },
    WatchOpened(Box<Watch>),
    SamplesObserved {
        watch: Uuid,
        metric: String,
        count: u64,
        worst: f64,
        last_at: Timestamp,
        source: String,
    },
    RollbackThresholdBreached(Box<Breach>),
    RollbackRequested(Box<RollbackRequest>),
    WatchClosed {
        watch: Uuid,
        status: WatchStatus,
        at: Timestamp,
    },
}

/// Monitoring's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Monitoring {
    /// Health checks by (service, name).
    pub checks: BTreeMap<(String, String), HealthCheck>,
    pub policy: WatchPolicy,
    pub policy_version: u32,
    /// Catalog tiers and units by service.
    pub catalog: BTreeMap<String, (String, u8)>,
    pub watches: BTreeMap<Uuid, Watch>,
    /// The open watch of each (service, environment).
    pub open: BTreeMap<(String, String), Uuid>,
    pub breaches: BTreeMap<Uuid, Breach>,
    pub rollback_requests: BTreeMap<Uuid, RollbackRequest>,
    /// Every finished deployment of a service, in order (DORA).
    pub deployments: Vec<DeploymentNote>,
    /// (deployment, service, outcome) of every note, so a redelivered word records nothing.
    pub noted: std::collections::BTreeSet<(String, String, String)>,
    /// What each service depends on (the catalog's graph), consumer -> providers.
    pub depends_on: BTreeMap<String, std::collections::BTreeSet<String>>,
    pub tickets: BTreeMap<String, Ticket>,
    /// Other services' events about releases, for their timelines.
    pub timeline: Vec<TimelineEntry>,
    /// The release each governance approval request names (from its timeline entry).
    pub approval_requests: BTreeMap<String, String>,
    pub postmortems: BTreeMap<String, Postmortem>,
    pub adoption_targets: BTreeMap<(String, String), AdoptionTarget>,
    pub adoption: Adoption,
    /// When each (service, version) build was registered.
    pub artifacts: BTreeMap<(String, String), Timestamp>,
}

impl Decider for Monitoring {
    type Command = Command;
    type Event = Event;
    type Error = DomainError;

    fn decide(&self, command: Command) -> Result<Decision<Event>> {
        match command {
            Command::DefineHealthCheck(c) => self.define_health_check(c),
            Command::RemoveHealthCheck(c) => self.remove_health_check(c),
            Command::SetWatchPolicy(c) => self.set_watch_policy(c),
            Command::NoteCatalogService(c) => self.note_catalog_service(c),
            Command::NoteDeployment(c) => self.note_deployment(c),
            Command::NoteArtifact(c) => self.note_artifact(c),
            Command::NoteDependency(c) => self.note_dependency(c),
            Command::RecordTicket(c) => self.record_ticket(c),
            Command::DeclareAdoptionTarget(c) => self.declare_adoption_target(c),
            Command::RecordAdoption(c) => self.record_adoption(c),
            Command::NoteTimeline(c) => self.note_timeline(c),
            Command::RecordPostmortem(c) => self.record_postmortem(c),
            Command::RecordSamples(c) => self.record_samples(c),
            Command::CloseDueWatches(c) => self.close_due_watches(c),
        }
    }

    fn evolve(&mut self, recorded: &Recorded<Event>) {
        match &recorded.event {
            Event::HealthCheckDefined(c) => {
                self.checks
                    .insert((c.service.clone(), c.name.clone()), (**c).clone());
            }
            Event::HealthCheckRemoved { service, name } => {
                self.checks.remove(&(service.clone(), name.clone()));
            }
            Event::WatchPolicySet {
                version, policy, ..
            } => {
                self.policy = policy.clone();
                self.policy_version = *version;
            }
            Event::CatalogServiceNoted {
                service,
                business_unit,
                tier,
            } => {
                self.catalog
                    .insert(service.clone(), (business_unit.clone(), *tier));
            }
            Event::DeploymentNoted(d) => {
                self.noted.insert(note_key(d));
                self.deployments.push((**d).clone());
            }
            Event::ArtifactNoted {
                service,
                version,
                registered_at,
            } => {
                self.artifacts
                    .insert((service.clone(), version.clone()), *registered_at);
            }
            Event::TimelineNoted(e) => {
                if e.source == "governance" && !e.reference.is_empty() {
                    self.approval_requests
                        .entry(e.reference.clone())
                        .or_insert_with(|| e.release.clone());
                }
                self.timeline.push((**e).clone());
            }
            Event::PostmortemRecorded(p) => {
                self.postmortems.insert(p.release.clone(), (**p).clone());
            }
            Event::TicketRecorded(t) => {
                self.tickets.insert(t.id.clone(), (**t).clone());
            }
            Event::AdoptionTargetDeclared(t) => {
                self.adoption_targets
                    .insert((t.release.clone(), t.feature.clone()), (**t).clone());
            }
            Event::AdoptionMeasured {
                release,
                feature,
                value,
                at,
            } => {
                let key = (release.clone(), feature.clone());
                if self.adoption.get(&key).is_none_or(|(_, last)| last <= at) {
                    self.adoption.insert(key, (*value, *at));
                }
            }
            Event::DependencyNoted {
                consumer,
                provider,
                removed,
            } => {
                let providers = self.depends_on.entry(consumer.clone()).or_default();
                if *removed {
                    providers.remove(provider);
                } else {
                    providers.insert(provider.clone());
                }
            }
            Event::WatchOpened(w) => {
                self.open
                    .insert((w.service.clone(), w.environment.clone()), w.id);
                self.watches.insert(w.id, (**w).clone());
            }
            Event::SamplesObserved {
                watch,
                metric,
                count,
                worst,
                last_at,
                ..
            } => {
                if let Some(w) = self.watches.get_mut(watch) {
                    let comparison = w
                        .threshold(metric)
                        .map(|t| t.comparison)
                        .or_else(|| {
                            self.checks
                                .get(&(w.service.clone(), metric.clone()))
                                .map(|c| c.comparison)
                        })
                        .unwrap_or(Comparison::Above);
                    let c = w.coverage.entry(metric.clone()).or_insert(Coverage {
                        samples: 0,
                        worst: *worst,
                        last_at: *last_at,
                    });
                    c.samples += count;
                    c.worst = comparison.worse(c.worst, *worst);
                    c.last_at = *last_at;
                }
            }
            Event::RollbackThresholdBreached(b) => {
                if let Some(w) = self.watches.get_mut(&b.watch) {
                    w.status = WatchStatus::Breached;
                    w.breach = Some(b.id);
                    w.closed_at = Some(b.observed_at);
                    self.open
                        .remove(&(w.service.clone(), w.environment.clone()));
                }
                self.breaches.insert(b.id, (**b).clone());
            }
            Event::RollbackRequested(r) => {
                if let Some(w) = self.watches.get_mut(&r.watch) {
                    w.rollback_request = Some(r.id);
                }
                self.rollback_requests.insert(r.id, (**r).clone());
            }
            Event::WatchClosed { watch, status, at } => {
                if let Some(w) = self.watches.get_mut(watch) {
                    w.status = *status;
                    w.closed_at = Some(*at);
                    let key = (w.service.clone(), w.environment.clone());
                    if self.open.get(&key) == Some(watch) {
                        self.open.remove(&key);
                    }
                }
            }
        }
    }
}

/// What makes a deployment note the same word again.
pub fn note_key(n: &DeploymentNote) -> (String, String, String) {
    (
        n.deployment.clone(),
        n.service.clone(),
        format!("{:?}", n.outcome),
    )
}

macro_rules! commands {
    ($($name:ident),* $(,)?) => {
        $(impl From<$name> for Command {
            fn from(c: $name) -> Self {
                Command::$name(c)
            }
        })*
    };
}

commands!(
    DefineHealthCheck,
    RemoveHealthCheck,
    SetWatchPolicy,
    NoteCatalogService,
    NoteDeployment,
    NoteArtifact,
    NoteDependency,
    RecordTicket,
    DeclareAdoptionTarget,
    RecordAdoption,
    NoteTimeline,
    RecordPostmortem,
    RecordSamples,
    CloseDueWatches,
);
