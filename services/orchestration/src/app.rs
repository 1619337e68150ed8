//! Orchestration's app: the kit's event-sourced app, and what is orchestration's own: asking
//! governance and dependency-mapping before it decides (their answers go into the commands),
//! trigger rules that create and promote releases by themselves, and the runner that moves
//! deployments through the executor (`runner`).
//!
//! One instance per process serves the gRPC edge, the consumers and the runner.

use std::sync::Arc;
use std::time::Duration;

use flotilla_core::decider::Decision;
use flotilla_core::event::Metadata;
use flotilla_runtime::kit::{self, App, Executed, Snapshotted, Task, UnitOf};
use flotilla_runtime::{Consumer, ServiceContext};
use serde::Deserialize;
use tonic::service::RoutesBuilder;
use uuid::Uuid;

use crate::codec::OrchestrationEvents;
use crate::domain::*;
use crate::executor::{CommandExecutor, DryRun, Executor, StepCommands};
use crate::peers::{GrpcPeers, Peers, Token};

/// What orchestration's app answers when something fails.
pub type AppError = kit::AppError<DomainError>;

/// Inbox name of orchestration's consumers.
pub const CONSUMER: &str = "orchestration";

impl UnitOf for Orchestration {
    /// Events carry the unit of what they are about: the release's, the environment's.
    fn unit_of(&self, decision: &Decision<Event>) -> Option<String> {
        Some(
            decision
                .events
                .first()
                .map_or_else(String::new, |e| self.unit_of_event(e)),
        )
    }
}

impl Snapshotted for Orchestration {
    /// 2: artifacts carry their commit's time (issue 11); older snapshots are replayed past.
    const SNAPSHOT_VERSION: u32 = 2;
}

/// `[orchestration.executor]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorSettings {
    /// `dry-run` (the default: runs nothing, records what it would run) or `command`.
    pub kind: String,
    pub commands: StepCommands,
    /// Longest a step's command may run (default 600 s).
    pub timeout_secs: u64,
    /// Where finished steps' outcomes are kept (default: `<data_dir>/orchestration-steps`).
    pub state_dir: String,
}

/// `[orchestration]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Governance's and dependency-mapping's gRPC addresses (default: this node).
    pub governance_url: String,
    pub dependency_mapping_url: String,
    /// The token background work (trigger rules) calls them with; without one, trigger rules
    /// create nothing (a warning says so).
    pub service_token: String,
    pub executor: ExecutorSettings,
    /// Events between snapshots (the kit's).
    pub snapshot_every: Option<u64>,
    /// How long a stopping service waits for the steps it runs (default 30 s).
    pub shutdown_grace_secs: Option<u64>,
    /// CloudEvents sources (prefixes, e.g. `https://jenkins.example.com/`) whose CDEvents may
    /// register builds; empty: any source that can publish on the CDEvents log.
    pub cdevents_sources: Vec<String>,
}

/// A rule an artifact matches: the rule, the newest older version of the service (outer None:
/// a newer version exists), and the service's last release item in the rule's unit.
type Triggered = (
    TriggerRule,
    Option<Option<semver::Version>>,
    Option<ReleaseItem>,
);

/// Orchestration's state and commands over its store.
pub struct OrchestrationApp {
    app: Arc<App<Orchestration>>,
    pub(crate) peers: Arc<dyn Peers>,
    pub(crate) executor: Arc<dyn Executor>,
    pub(crate) service_token: Token,
    /// When this process started: a step recorded as started before it and not finished was
    /// interrupted.
    pub(crate) started_at: Timestamp,
}

impl std::fmt::Debug for OrchestrationApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchestrationApp")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

fn node_url(ctx: &ServiceContext, configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    // The node's own edge: https when it serves TLS (its certificate must name the address).
    let scheme = if ctx.config.tls_cert.as_os_str().is_empty() {
        "http"
    } else {
        "https"
    };
    match ctx.node_addr {
        Some(a) => format!("{scheme}://{a}"),
        None => format!("{scheme}://127.0.0.1:50051"),
    }
}

/// The executor the settings name.
pub fn executor(ctx: &ServiceContext, s: &ExecutorSettings) -> Result<Arc<dyn Executor>, String> {
    match s.kind.as_str() {
        "" | "dry-run" => {
            tracing::warn!(
                "orchestration runs no commands (executor dry-run); set [orchestration.executor] kind = \"command\" and its commands to deploy"
            );
            Ok(Arc::new(DryRun))
        }
        "command" => Ok(Arc::new(CommandExecutor {
            commands: s.commands.clone(),
            timeout: Duration::from_secs(if s.timeout_secs == 0 {
                600
            } else {
                s.timeout_secs
            }),
            state_dir: if s.state_dir.is_empty() {
                ctx.data_dir.join("orchestration-steps")
            } else {
                s.state_dir.clone().into()
            },
        })),
        other => Err(format!(
            "[orchestration.executor] kind = {other:?}: use \"dry-run\" or \"command\""
        )),
    }
}

/// Builds orchestration for the node: the app, its routes, the runner and the consumers.
pub async fn start(
    ctx: ServiceContext,
    routes: &mut RoutesBuilder,
) -> Result<kit::Started, kit::StartError> {
    let settings: Settings = ctx
        .section()
        .map_err(|e| kit::StartError::new(crate::NAME, e))?;
    let peers = GrpcPeers::new(
        &ctx.config,
        &node_url(&ctx, &settings.governance_url),
        &node_url(&ctx, &settings.dependency_mapping_url),
    )
    .map_err(|e| kit::StartError::new(crate::NAME, e))?;
    let executor =
        executor(&ctx, &settings.executor).map_err(|e| kit::StartError::new(crate::NAME, e))?;
    let (app, follower) =
        OrchestrationApp::start(&ctx, Arc::new(peers), executor, &settings.service_token).await?;
    routes.add_service(crate::grpc::server(ctx, app.clone()));
    let started = kit::Started::with_app(follower)
        .relay_to(
            flotilla_bus::naming::CDEVENTS,
            Arc::new(crate::cdevents::CdEventsOut),
        )
        .consume(Consumer {
            source: flotilla_bus::naming::CDEVENTS.into(),
            handler: Arc::new(crate::cdevents::CdEventsIn {
                app: app.clone(),
                sources: settings.cdevents_sources.clone(),
            }),
        })
        .scheduled(crate::runner::run(
            app.clone(),
            Duration::from_secs(settings.shutdown_grace_secs.unwrap_or(30)),
        ))
        .gauges(crate::gauges::of(app.clone()));
    // Monitoring's rollback requests, governance's rollback decisions, risk-validation's canary
    // judgements: one handler.
    let inbound = Arc::new(crate::inbound::Inbound(app.clone()));
    Ok(crate::inbound::SOURCES
        .iter()
        .fold(started, |started, source| {
            started.consume(Consumer {
                source: (*source).into(),
                handler: inbound.clone(),
            })
        }))
}

impl OrchestrationApp {
    /// Rebuilds orchestration's state from its store; the task keeps it current.
    pub async fn start(
        ctx: &ServiceContext,
        peers: Arc<dyn Peers>,
        executor: Arc<dyn Executor>,
        service_token: &str,
    ) -> Result<(Arc<Self>, Task), kit::StartError> {
        let (app, follower) = App::builder(ctx, Arc::new(OrchestrationEvents))
            .start()
            .await
            .map_err(|e| kit::StartError::new(crate::NAME, e))?;
        let this = Arc::new(Self {
            app,
            peers,
            executor,
            service_token: Token((!service_token.is_empty()).then(|| service_token.to_owned())),
            started_at: Timestamp::now(),
        });
        Ok((this, follower))
    }

    /// Runs a query on the current state, without locks or store reads.
    pub fn query<T>(&self, f: impl FnOnce(&Orchestration) -> T) -> T {
        self.app.query(f)
    }

    /// Waits until the state includes `position`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        self.app.wait_for(position, timeout).await
    }

    /// The store position the state includes.
    pub fn position(&self) -> u64 {
        self.app.position()
    }

    /// Tells each new position the state includes.
    pub fn watch_position(&self) -> tokio::sync::watch::Receiver<u64> {
        self.app.watch_position()
    }

    /// Decides a command and records its events.
    pub async fn execute(
        &self,
        command: impl Into<Command>,
        md: Metadata,
    ) -> Result<Executed<Event>, AppError> {
        self.app.execute(command.into(), md).await
    }

    /// Registers a CI build, then applies the trigger rules it matches (a new build only).
    pub async fn register_artifact(
        &self,
        artifact: Artifact,
        md: Metadata,
    ) -> Result<Executed<Event>, AppError> {
        let done = self
            .execute(
                RegisterArtifact {
                    artifact: artifact.clone(),
                },
                md,
            )
            .await?;
        if !done.events.is_empty() {
            self.triggered(&artifact).await;
        }
        Ok(done)
    }

    /// Registers a build another tool announced (a CDEvent, applied once by its id), then
    /// applies the trigger rules it matches.
    pub async fn register_consumed(
        &self,
        event_id: Uuid,
        artifact: Artifact,
        md: Metadata,
    ) -> Result<Executed<Event>, AppError> {
        let done = self
            .consume(
                event_id,
                RegisterArtifact {
                    artifact: artifact.clone(),
                },
                md,
            )
            .await?;
        if !done.events.is_empty() {
            self.triggered(&artifact).await;
        }
        Ok(done)
    }

    /// Applies another service's event (once, by its id).
    pub async fn consume(
        &self,
        event_id: Uuid,
        command: impl Into<Command>,
        md: Metadata,
    ) -> Result<Executed<Event>, AppError> {
        self.app
            .consume(CONSUMER, event_id, command.into(), md)
            .await
    }

    /// Creates a release after asking governance whether its name follows the naming rule.
    pub async fn create_release(
        &self,
        mut c: CreateRelease,
        token: &Token,
        md: Metadata,
    ) -> Result<Uuid, tonic::Status> {
        c.name_refused = self.peers.name_refused(&c.name, token).await?;
        let id = release_id(&c.name);
        self.execute(c, md).await?;
        Ok(id)
    }

    /// Plans a release through dependency-mapping (its services' waves, groups, impact and
    /// the ranges it would break).
    pub async fn plan_release(
        &self,
        release: Uuid,
        token: &Token,
        md: Metadata,
    ) -> Result<(), tonic::Status> {
        let items = self.query(|o| {
            o.releases.get(&release).map(|r| {
                r.items
                    .iter()
                    .map(|i| (i.service.clone(), i.version.to_string()))
                    .collect::<Vec<_>>()
            })
        });
        let items = items
            .ok_or_else(|| DomainError::NotFound(format!("release {release}")))
            .map_err(kit::refuse)?;
        let plan = self.peers.plan(&items, token).await?;
        self.execute(
            PlanRelease {
                release,
                plan,
                at: Timestamp::now(),
            },
            md,
        )
        .await?;
        Ok(())
    }

    /// Promotes a release after asking governance's gate; answers the deployment it started.
    pub async fn promote_release(
        &self,
        release: Uuid,
        environment: &str,
        token: &Token,
        md: Metadata,
    ) -> Result<Uuid, tonic::Status> {
        let (name, emergency) = self
            .query(|o| {
                o.releases
                    .get(&release)
                    .map(|r| (r.name.clone(), r.emergency))
            })
            .ok_or_else(|| kit::refuse(DomainError::NotFound(format!("release {release}"))))?;
        let at = Timestamp::now();
        let gate = self
            .peers
            .gate(&name, environment, emergency, at, token)
            .await?;
        let by = md.actor.clone();
        self.execute(
            PromoteRelease {
                release,
                environment: environment.to_owned(),
                gate,
                by,
                at,
            },
            md,
        )
        .await?;
        Ok(self
            .query(|o| {
                o.releases
                    .get(&release)
                    .and_then(|r| r.deployments.last().copied())
            })
            .unwrap_or_default())
    }

    /// The trigger rules a newly registered artifact matches: a bump within the rule's limit
    /// creates a release of it (named `<service>-<version>`, with the descriptor its last
    /// release used) and promotes it along the path up to the rule's environment; a larger
    /// bump needs a planned release (logged).
    async fn triggered(&self, a: &Artifact) {
        // (rule, the newest older version — None when a newer one exists —, the last item).
        let rules: Vec<Triggered> = self.query(|o| {
            o.triggers
                .values()
                .filter(|r| r.matches(&a.service))
                .map(|r| {
                    let before = o
                        .artifacts
                        .values()
                        .filter(|x| x.service == a.service && x.version < a.version)
                        .map(|x| x.version.clone())
                        .max();
                    // A rebuild of an older version is never a trigger's to release.
                    let newer = o
                        .artifacts
                        .values()
                        .any(|x| x.service == a.service && x.version > a.version);
                    let before = if newer { None } else { Some(before) };
                    let last = o
                        .releases
                        .values()
                        .filter(|rel| rel.business_unit == r.business_unit)
                        .flat_map(|rel| rel.items.iter())
                        .filter(|i| i.service == a.service)
                        .max_by(|x, y| x.version.cmp(&y.version))
                        .cloned();
                    (r.clone(), before, last)
                })
                .collect()
        });
        for (rule, before, last) in rules {
            let Some(before) = before else {
                tracing::info!(service = %a.service, version = %a.version, rule = %rule.id, "a newer version of the service is registered: the trigger rule releases nothing");
                continue;
            };
            let bump = before
                .as_ref()
                .map_or(Some(Bump::Major), |b| Bump::between(b, &a.version));
            let Some(bump) = bump else { continue };
            if bump > rule.up_to {
                tracing::info!(service = %a.service, version = %a.version, rule = %rule.id, "a larger bump than the trigger rule allows: it needs a planned release");
                continue;
            }
            let Some(last) = last else {
                tracing::info!(service = %a.service, rule = %rule.id, "no earlier release of the service gives a descriptor; create the first release by hand");
                continue;
            };
            if self.service_token.0.is_none() {
                tracing::warn!(service = %a.service, rule = %rule.id, "[orchestration] service_token is not set: trigger rules release nothing; set it to a token with the scheduler role");
                continue;
            }
            let name = format!("{}-{}", a.service, a.version);
            let md = Metadata::by("orchestration-trigger", rule.business_unit.clone());
            let c = CreateRelease {
                name,
                business_unit: rule.business_unit.clone(),
                emergency: false,
                items: vec![RequestedItem {
                    service: a.service.clone(),
                    version: Some(a.version.clone()),
                    descriptor: Descriptor {
                        version: a.version.to_string(),
                        ..last.descriptor
                    },
                    strategy: last.strategy,
                    migrations: Vec::new(),
                }],
                include: Vec::new(),
                default_descriptor: None,
                name_refused: None,
                promote_to: Some(rule.environment.clone()),
                by: "orchestration-trigger".into(),
                at: Timestamp::now(),
            };
            let token = self.service_token.clone();
            let outcome = async {
                let id = self.create_release(c, &token, md.clone()).await?;
                self.plan_release(id, &token, md.clone()).await?;
                self.promote_next(id).await?;
                Ok::<_, tonic::Status>(())
            }
            .await;
            if let Err(e) = outcome {
                tracing::warn!(service = %a.service, rule = %rule.id, error = %e.message(), "the trigger rule's release did not go ahead");
            }
        }
    }

    /// Promotes a release a trigger rule created into the next environment of its path, while
    /// it has not reached the rule's environment (with the service token).
    pub async fn promote_next(&self, release: Uuid) -> Result<(), tonic::Status> {
        let Some(token) = self.service_token.0.clone().map(|t| Token(Some(t))) else {
            return Ok(());
        };
        let next = self.query(|o| {
            let r = o.releases.get(&release)?;
            let target = r.promote_to.as_ref()?;
            let path = o.paths.get(&r.business_unit)?;
            if !path.contains(target)
                || r.deployed_to.contains(target)
                || r.deployed_to.last() == Some(target)
                || matches!(
                    r.status,
                    ReleaseStatus::Promoting { .. } | ReleaseStatus::RolledBack { .. }
                )
            {
                return None;
            }
            let at = r
                .deployed_to
                .last()
                .and_then(|e| path.iter().position(|p| p == e))
                .map_or(0, |i| i + 1);
            path.get(at).cloned()
        });
        if let Some(env) = next {
            let md = Metadata::by("orchestration-trigger", "");
            self.promote_release(release, &env, &token, md).await?;
        }
        Ok(())
    }
}

impl Orchestration {
    /// The business unit an event is about.
    pub fn unit_of_event(&self, e: &Event) -> String {
        let of_deployment = |id: &Uuid| {
            self.deployments
                .get(id)
                .map(|d| d.business_unit.clone())
                .unwrap_or_default()
        };
        match e {
            Event::PolicySet { .. }
            | Event::ArtifactRegistered(_)
            | Event::SharedInfrastructureDefined(_)
            | Event::TriggerRuleRemoved { .. } => String::new(),
            Event::PromotionPathSet { business_unit, .. }
            | Event::ConfigurationReported { business_unit, .. }
            | Event::DriftDetected { business_unit, .. }
            | Event::DataRefreshed { business_unit, .. }
            | Event::TestWindowBooked { business_unit, .. }
            | Event::TestWindowSignedOff { business_unit, .. }
            | Event::ValidationRecorded { business_unit, .. } => business_unit.clone(),
            Event::EnvironmentDefined { spec, .. } => spec.business_unit.clone(),
            Event::EnvironmentRemoved { business_unit, .. } => business_unit.clone(),
            Event::TriggerRuleDefined(r) => r.business_unit.clone(),
            Event::ReleaseCreated(r) => r.business_unit.clone(),
            Event::ReleasePlanned { release, .. } => self
                .releases
                .get(release)
                .map(|r| r.business_unit.clone())
                .unwrap_or_default(),
            Event::DeploymentStarted(d) => d.business_unit.clone(),
            Event::StepStarted { deployment, .. }
            | Event::StepFinished { deployment, .. }
            | Event::DeploymentPaused { deployment, .. }
            | Event::DeploymentResumed { deployment, .. }
            | Event::RollbackDecisionAwaited { deployment, .. }
            | Event::AnalysisRecorded { deployment, .. }
            | Event::RollbackStarted { deployment, .. }
            | Event::ServiceFinished { deployment, .. }
            | Event::DeploymentCompleted { deployment, .. } => of_deployment(deployment),
        }
    }
}
