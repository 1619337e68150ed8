//! The catalog's app: the kit's event-sourced app over the catalog's stream, and what is
//! dependency-mapping's own: the graph index built once per catalog state, and schema checks
//! whose verdict is computed on the very state the command is decided on.
//!
//! One instance per process serves the gRPC edge and the deployment consumer.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use flotilla_core::decider::Decision;
use flotilla_core::event::Metadata;
use flotilla_core::ids::StreamId;
use flotilla_runtime::kit::{self, App, Executed, Snapshotted, Task, UnitOf};
use flotilla_runtime::{Consumer, ServiceContext};
use tonic::service::RoutesBuilder;

use crate::codec::CatalogEvents;
use crate::domain::graph::Graph;
use crate::domain::*;

/// What the catalog's app answers when something fails.
pub type AppError = kit::AppError<DomainError>;

/// Inbox name of this service's consumers.
pub const CONSUMER: &str = "dependency-mapping";

impl UnitOf for Catalog {
    /// The unit the events are about, not the caller's.
    fn unit_of(&self, decision: &Decision<Event>) -> Option<String> {
        Some(self.unit_of_events(&decision.events))
    }
}

impl Snapshotted for Catalog {
    const SNAPSHOT_VERSION: u32 = 1;
}

/// The catalog stream's version in a state (0 before its first event).
fn catalog_version(versions: &std::collections::HashMap<StreamId, u64>) -> u64 {
    versions
        .get(&StreamId::singleton(CATALOG_STREAM))
        .copied()
        .unwrap_or(0)
}

/// What a command did to the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The catalog's stream version after it.
    pub catalog_version: u64,
    /// Whether it changed the catalog (a retry of one that did counts).
    pub changed: bool,
}

/// The catalog and its commands over the service's store.
pub struct CatalogApp {
    app: Arc<App<Catalog>>,
    /// The graph index of the catalog at a catalog version.
    graph: ArcSwapOption<(u64, Arc<Graph>)>,
}

impl std::fmt::Debug for CatalogApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogApp")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// Builds dependency-mapping for the node: the app (state rebuilt), its routes and the
/// consumer of orchestration's deployments.
pub async fn start(
    ctx: ServiceContext,
    routes: &mut RoutesBuilder,
) -> Result<kit::Started, kit::StartError> {
    let (app, follower) = CatalogApp::start(&ctx).await?;
    routes.add_service(crate::grpc::server(ctx, app.clone()));
    Ok(kit::Started::with_app(follower).consume(Consumer {
        source: "orchestration".into(),
        handler: Arc::new(crate::inbound::Deployments(app)),
    }))
}

impl CatalogApp {
    /// Rebuilds the catalog from its store; the task keeps it current.
    pub async fn start(ctx: &ServiceContext) -> Result<(Arc<Self>, Task), kit::StartError> {
        let (app, follower) = App::builder(ctx, Arc::new(CatalogEvents))
            .start()
            .await
            .map_err(|e| kit::StartError::new(crate::NAME, e))?;
        let this = Arc::new(Self {
            app,
            graph: ArcSwapOption::empty(),
        });
        Ok((this, follower))
    }

    /// Saves a snapshot of the catalog now (the app also saves one every `snapshot_every`
    /// events); answers its position.
    pub async fn snapshot_now(&self) -> Result<u64, AppError> {
        self.app.snapshot_now().await
    }

    /// Runs a query on the current catalog, without locks or store reads.
    pub fn query<T>(&self, f: impl FnOnce(&Catalog) -> T) -> T {
        self.app.query(f)
    }

    /// The current catalog indexed for graph queries, built once per catalog version (what
    /// else the store records, such as access refusals, does not rebuild it).
    pub fn graph(&self) -> Arc<Graph> {
        let current = self.app.current();
        let version = catalog_version(&current.versions);
        if let Some(cached) = &*self.graph.load()
            && cached.0 == version
        {
            return cached.1.clone();
        }
        let graph = Arc::new(Graph::build(&current.state));
        self.graph.store(Some(Arc::new((version, graph.clone()))));
        graph
    }

    /// Decides and records a command.
    pub async fn execute(&self, command: Command, md: Metadata) -> Result<Accepted, AppError> {
        let done = self.app.execute(command, md).await?;
        Ok(self.accepted(&done))
    }

    fn accepted(&self, done: &Executed<Event>) -> Accepted {
        // The command's own version; a retry answers with the catalog's version now.
        let catalog_version = done
            .stream_version
            .unwrap_or_else(|| catalog_version(&self.app.current().versions));
        Accepted {
            catalog_version,
            changed: !done.events.is_empty() || done.deduplicated,
        }
    }

    /// Checks a schema version against its baselines, records the verdict and, when `publish`
    /// and nothing breaks, publishes the version. The verdict is computed on the catalog the
    /// command is decided on (a schema use declared meanwhile is compared too). Returns the
    /// verdict and whether it was published.
    pub async fn check_schema(
        &self,
        doc: SchemaDoc,
        publish: bool,
        at: Timestamp,
        md: Metadata,
    ) -> Result<(CompatibilityVerdict, bool), AppError> {
        crate::compat::validate(doc.format, &doc.content).map_err(|e| {
            kit::AppError::Domain(DomainError::Invalid {
                field: "content",
                reason: e.to_string(),
            })
        })?;
        let done = self
            .app
            .execute_with(
                |catalog| {
                    Ok(Command::CheckSchema {
                        verdict: crate::compat::verdict(catalog, &doc, at)?,
                        doc: doc.clone(),
                        publish,
                    })
                },
                md,
            )
            .await?;
        // The verdict recorded, or (a retried command) the one recorded the first time.
        let recorded = done.events.iter().find_map(|e| match e {
            Event::CompatibilityChecked(v) => Some(v.clone()),
            _ => None,
        });
        let key = (doc.service.clone(), doc.name.clone(), doc.version.clone());
        let verdict = recorded
            .or_else(|| self.query(|c| c.verdicts.get(&key).cloned()))
            .ok_or_else(|| {
                kit::AppError::Domain(DomainError::NotFound(format!(
                    "the verdict of {} {} {}",
                    doc.service, doc.name, doc.version
                )))
            })?;
        let published = publish && verdict.breaking.is_empty();
        Ok((verdict, published))
    }

    /// Applies another service's event (once, by its id): a finished deployment updates the
    /// environment's footprint. Returns whether the footprint changed.
    pub async fn on_event(&self, event: &flotilla_bus::CloudEvent) -> Result<bool, AppError> {
        let Some((id, command, md)) =
            crate::inbound::command_of(event).map_err(kit::AppError::Domain)?
        else {
            return Ok(false);
        };
        let done = self.app.consume(CONSUMER, id, command, md).await?;
        Ok(!done.events.is_empty())
    }
}
