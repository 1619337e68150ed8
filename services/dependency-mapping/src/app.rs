//! Application layer: the catalog held in memory, rebuilt from its stream and kept current by
//! reading what was appended since (by this or any other instance) before each request;
//! commands append with the exact version they were decided on.

use std::sync::Arc;

use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, Direction, EventStore, StoreError};
use flotilla_core::{EventCodec, ExpectedVersion};
use flotilla_proto::dependency::v1 as pb;
use prost::Message;
use tokio::sync::RwLock;

use crate::convert;
use crate::domain::graph::Graph;
use crate::domain::{
    Catalog, Command, CompatibilityVerdict, DomainError, Event, SchemaDoc, ServiceName,
};

/// Inbox name of this service's consumers.
pub const CONSUMER: &str = "dependency-mapping";
/// Type of orchestration's deployment event this service consumes.
pub const DEPLOYMENT_FINISHED: &str = "flotilla.orchestration.v1.DeploymentFinished";

/// The catalog's one stream.
pub const CATALOG_STREAM: &str = "dependency-catalog";
const PAGE: usize = 5_000;

/// Errors of the application layer.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored event at position {position} cannot be decoded: {reason}")]
    Decode { position: u64, reason: String },
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Maps catalog events to their protobuf payloads (schema version 1).
#[derive(Debug, Default, Clone, Copy)]
pub struct CatalogCodec;

const PREFIX: &str = "flotilla.dependency.v1.";

impl EventCodec<Event> for CatalogCodec {
    fn encode(&self, event: &Event) -> (String, u32, Vec<u8>) {
        let (name, bytes) = match event {
            Event::ServiceRegistered(s) => (
                "ServiceRegistered",
                pb::ServiceRegistered {
                    service: Some(convert::service_entry(s)),
                }
                .encode_to_vec(),
            ),
            Event::ServiceUpdated(s) => (
                "ServiceUpdated",
                pb::ServiceUpdated {
                    service: Some(convert::service_entry(s)),
                }
                .encode_to_vec(),
            ),
            Event::DependencyDeclared(d) => (
                "DependencyDeclared",
                pb::DependencyDeclared {
                    dependency: Some(convert::dependency_pb(d)),
                }
                .encode_to_vec(),
            ),
            Event::DependencyRemoved { consumer, provider } => (
                "DependencyRemoved",
                pb::DependencyRemoved {
                    consumer: consumer.to_string(),
                    provider: provider.to_string(),
                }
                .encode_to_vec(),
            ),
            Event::CoDeploymentPinned(p) => (
                "CoDeploymentPinned",
                pb::CoDeploymentPinned {
                    pin: Some(convert::pin_pb(p)),
                }
                .encode_to_vec(),
            ),
            Event::CallsObserved { calls, at } => (
                "CallsObserved",
                pb::CallsObserved {
                    calls: convert::observed_calls_pb(calls),
                    observed_at: Some(convert::timestamp(*at)),
                }
                .encode_to_vec(),
            ),
            Event::DeploymentRecorded(d) => (
                "DeploymentRecorded",
                pb::DeploymentRecorded {
                    environment: d.environment.clone(),
                    service: d.service.to_string(),
                    version: d.version.to_string(),
                    finished_at: Some(convert::timestamp(d.at)),
                }
                .encode_to_vec(),
            ),
            Event::FootprintTagged(t) => (
                "FootprintTagged",
                pb::FootprintTagged {
                    environment: t.environment.clone(),
                    tag: t.tag.clone(),
                    at: Some(convert::timestamp(t.at)),
                    services: convert::running_pb(&t.services),
                }
                .encode_to_vec(),
            ),
            Event::VersionRequirementDeclared {
                consumer,
                provider,
                requirement,
            } => (
                "VersionRequirementDeclared",
                pb::VersionRequirementDeclared {
                    consumer: consumer.to_string(),
                    provider: provider.to_string(),
                    requirement: requirement.to_string(),
                }
                .encode_to_vec(),
            ),
            Event::CompatibilityChecked(v) => (
                "CompatibilityChecked",
                pb::CompatibilityChecked {
                    verdict: Some(convert::verdict_pb(v, false)),
                    checked_at: Some(convert::timestamp(v.at)),
                }
                .encode_to_vec(),
            ),
            Event::SchemaPublished(d) => (
                "SchemaPublished",
                pb::SchemaPublished {
                    service: d.service.to_string(),
                    name: d.name.clone(),
                    version: d.version.to_string(),
                    format: convert::schema_format_pb(d.format) as i32,
                    content: d.content.clone(),
                }
                .encode_to_vec(),
            ),
            Event::SchemaUseDeclared {
                consumer,
                provider,
                name,
                version,
            } => (
                "SchemaUseDeclared",
                pb::SchemaUseDeclared {
                    consumer: consumer.to_string(),
                    provider: provider.to_string(),
                    name: name.clone(),
                    version: version.to_string(),
                }
                .encode_to_vec(),
            ),
        };
        (format!("{PREFIX}{name}"), 1, bytes)
    }

    fn decode(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<Event, String> {
        if schema_version != 1 {
            return Err(format!(
                "{event_type} schema version {schema_version} is not known"
            ));
        }
        let name = event_type
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("{event_type} is not a catalog event"))?;
        let err = |e: prost::DecodeError| e.to_string();
        let dom = |e: DomainError| e.to_string();
        Ok(match name {
            "ServiceRegistered" => Event::ServiceRegistered(
                convert::service_spec(pb::ServiceRegistered::decode(payload).map_err(err)?.service)
                    .map_err(dom)?,
            ),
            "ServiceUpdated" => Event::ServiceUpdated(
                convert::service_spec(pb::ServiceUpdated::decode(payload).map_err(err)?.service)
                    .map_err(dom)?,
            ),
            "DependencyDeclared" => Event::DependencyDeclared(
                convert::dependency(
                    pb::DependencyDeclared::decode(payload)
                        .map_err(err)?
                        .dependency,
                )
                .map_err(dom)?,
            ),
            "DependencyRemoved" => {
                let e = pb::DependencyRemoved::decode(payload).map_err(err)?;
                Event::DependencyRemoved {
                    consumer: ServiceName::parse(&e.consumer).map_err(dom)?,
                    provider: ServiceName::parse(&e.provider).map_err(dom)?,
                }
            }
            "CoDeploymentPinned" => Event::CoDeploymentPinned(
                convert::pin(pb::CoDeploymentPinned::decode(payload).map_err(err)?.pin)
                    .map_err(dom)?,
            ),
            "CompatibilityChecked" => {
                let e = pb::CompatibilityChecked::decode(payload).map_err(err)?;
                let at = e
                    .checked_at
                    .as_ref()
                    .map(convert::stored_micros)
                    .unwrap_or_default();
                Event::CompatibilityChecked(
                    convert::verdict(e.verdict.ok_or("verdict missing")?, at).map_err(dom)?,
                )
            }
            "SchemaPublished" => {
                let e = pb::SchemaPublished::decode(payload).map_err(err)?;
                Event::SchemaPublished(crate::domain::SchemaDoc {
                    service: ServiceName::parse(&e.service).map_err(dom)?,
                    name: e.name,
                    version: convert::version("version", &e.version).map_err(dom)?,
                    format: convert::schema_format(e.format).map_err(dom)?,
                    content: e.content,
                })
            }
            "SchemaUseDeclared" => {
                let e = pb::SchemaUseDeclared::decode(payload).map_err(err)?;
                Event::SchemaUseDeclared {
                    consumer: ServiceName::parse(&e.consumer).map_err(dom)?,
                    provider: ServiceName::parse(&e.provider).map_err(dom)?,
                    name: e.name,
                    version: convert::version("version", &e.version).map_err(dom)?,
                }
            }
            "DeploymentRecorded" => {
                let e = pb::DeploymentRecorded::decode(payload).map_err(err)?;
                Event::DeploymentRecorded(crate::domain::Deployment {
                    environment: e.environment,
                    service: ServiceName::parse(&e.service).map_err(dom)?,
                    version: convert::version("version", &e.version).map_err(dom)?,
                    at: e
                        .finished_at
                        .as_ref()
                        .map(convert::stored_micros)
                        .unwrap_or_default(),
                })
            }
            "FootprintTagged" => {
                let e = pb::FootprintTagged::decode(payload).map_err(err)?;
                Event::FootprintTagged(crate::domain::FootprintTag {
                    environment: e.environment,
                    tag: e.tag,
                    at: e
                        .at
                        .as_ref()
                        .map(convert::stored_micros)
                        .unwrap_or_default(),
                    services: convert::running(e.services).map_err(dom)?,
                })
            }
            "VersionRequirementDeclared" => {
                let e = pb::VersionRequirementDeclared::decode(payload).map_err(err)?;
                Event::VersionRequirementDeclared {
                    consumer: ServiceName::parse(&e.consumer).map_err(dom)?,
                    provider: ServiceName::parse(&e.provider).map_err(dom)?,
                    requirement: convert::requirement(&e.requirement).map_err(dom)?,
                }
            }
            "CallsObserved" => {
                let e = pb::CallsObserved::decode(payload).map_err(err)?;
                let at = e
                    .observed_at
                    .as_ref()
                    .map(convert::stored_micros)
                    .unwrap_or_default();
                Event::CallsObserved {
                    calls: convert::observed_calls(e.calls).map_err(dom)?,
                    at,
                }
            }
            other => return Err(format!("unknown catalog event {other}")),
        })
    }
}

struct State {
    catalog: Catalog,
    version: Option<u64>,
    /// The catalog indexed for graph queries; dropped whenever the catalog changes.
    graph: Option<Arc<Graph>>,
}

/// The catalog application.
pub struct CatalogApp {
    store: Arc<dyn EventStore>,
    stream: StreamId,
    state: RwLock<State>,
}

impl std::fmt::Debug for CatalogApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogApp").finish()
    }
}

impl CatalogApp {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            stream: StreamId::parse(CATALOG_STREAM)
                .unwrap_or_else(|_| StreamId::new_for("dependency-catalog")),
            state: RwLock::new(State {
                catalog: Catalog::default(),
                version: None,
                graph: None,
            }),
        }
    }

    /// Applies whatever was appended to the catalog stream since the state was read.
    async fn catch_up(&self, state: &mut State) -> Result<()> {
        loop {
            let from = state.version.map_or(0, |v| v + 1);
            let page = self
                .store
                .read_stream(&self.stream, Some(from), Direction::Forwards, PAGE)
                .await?;
            let n = page.len();
            for e in page {
                let event = CatalogCodec
                    .decode(&e.event_type, e.schema_version, &e.payload)
                    .map_err(|reason| AppError::Decode {
                        position: e.global_position,
                        reason,
                    })?;
                state.catalog = std::mem::take(&mut state.catalog).evolve(&event);
                state.version = Some(e.stream_version);
                state.graph = None;
            }
            if n < PAGE {
                return Ok(());
            }
        }
    }

    /// Runs a query on the current catalog.
    pub async fn read<T>(&self, query: impl FnOnce(&Catalog) -> T) -> Result<T> {
        {
            let mut state = self.state.write().await;
            self.catch_up(&mut state).await?;
        }
        let state = self.state.read().await;
        Ok(query(&state.catalog))
    }

    /// The current catalog indexed for graph queries (built once per catalog version).
    pub async fn graph(&self) -> Result<Arc<Graph>> {
        let mut state = self.state.write().await;
        self.catch_up(&mut state).await?;
        if let Some(g) = &state.graph {
            return Ok(g.clone());
        }
        let g = Arc::new(Graph::build(&state.catalog));
        state.graph = Some(g.clone());
        Ok(g)
    }

    /// Checks a schema version against its baselines, records the verdict and, when `publish`
    /// and nothing breaks, publishes the version. Returns the verdict and whether it was published.
    pub async fn check_schema(
        &self,
        doc: SchemaDoc,
        publish: bool,
        at: i64,
        metadata: Metadata,
    ) -> Result<(CompatibilityVerdict, bool)> {
        crate::compat::validate(doc.format, &doc.content).map_err(|e| DomainError::Invalid {
            field: "content",
            reason: e.to_string(),
        })?;
        let verdict = self
            .read(|c| -> Result<CompatibilityVerdict> {
                let mut compared = Vec::new();
                let mut breaking = Vec::new();
                for (used_by, base) in c.schema_baselines(&doc.service, &doc.name, &doc.version) {
                    if base.format != doc.format {
                        breaking.push(format!(
                            "format changed from {:?} to {:?} (against {} of {used_by})",
                            base.format, doc.format, base.version
                        ));
                    } else {
                        let found = crate::compat::breaking_changes(
                            doc.format,
                            &base.content,
                            &doc.content,
                        )
                        .map_err(|e| AppError::Decode {
                            position: 0,
                            reason: e.to_string(),
                        })?;
                        breaking.extend(
                            found.into_iter().map(|b| {
                                format!("{b} (against {} used by {used_by})", base.version)
                            }),
                        );
                    }
                    compared.push((used_by, base.version.clone()));
                }
                Ok(CompatibilityVerdict {
                    service: doc.service.clone(),
                    name: doc.name.clone(),
                    version: doc.version.clone(),
                    compared,
                    breaking,
                    at,
                })
            })
            .await??;
        let clean = verdict.breaking.is_empty();
        self.execute(
            Command::CheckSchema {
                doc,
                verdict: verdict.clone(),
                publish,
            },
            metadata,
        )
        .await?;
        Ok((verdict, publish && clean))
    }

    /// Decides and appends a command; returns the catalog version after it and whether it
    /// changed anything.
    pub async fn execute(&self, command: Command, metadata: Metadata) -> Result<(u64, bool)> {
        self.execute_keyed(command, metadata, None).await
    }

    /// Applies orchestration's `DeploymentFinished` (a consumed event): a succeeded or rolled
    /// back deployment updates the environment's footprint, once per event id (the inbox key is
    /// written with the catalog's append). Returns whether the footprint changed.
    pub async fn on_deployment_finished(&self, event: &flotilla_bus::CloudEvent) -> Result<bool> {
        use flotilla_proto::orchestration::v1::{DeploymentFinished, DeploymentOutcome};
        if event.ty != DEPLOYMENT_FINISHED {
            return Ok(false);
        }
        let bad = |reason: String| {
            AppError::Domain(DomainError::Invalid {
                field: "DeploymentFinished",
                reason,
            })
        };
        let e = DeploymentFinished::decode(event.data.as_slice())
            .map_err(|err| bad(format!("event {} does not decode: {err}", event.id)))?;
        match DeploymentOutcome::try_from(e.outcome) {
            Ok(DeploymentOutcome::Succeeded | DeploymentOutcome::RolledBack) => {}
            _ => return Ok(false),
        }
        let id = event.event_id().map_err(|err| bad(err.to_string()))?;
        let d = convert::deployment(
            e.environment,
            &e.service,
            &e.version,
            e.finished_at.as_ref(),
        )?;
        let md = Metadata::by(
            if e.deployed_by.is_empty() {
                "orchestration".to_owned()
            } else {
                e.deployed_by
            },
            event.extension("businessunit").unwrap_or_default(),
        )
        .with_causation(id);
        let (_, changed) = self
            .execute_keyed(Command::RecordDeployment(d), md, Some(id))
            .await?;
        Ok(changed)
    }

    async fn execute_keyed(
        &self,
        command: Command,
        metadata: Metadata,
        consumed: Option<uuid::Uuid>,
    ) -> Result<(u64, bool)> {
        let mut state = self.state.write().await;
        // A retried command or a redelivered event that was applied already answers from the
        // store, before `decide` could refuse it against the state it produced.
        let key = match (consumed, metadata.command_id) {
            (Some(id), _) => Some(flotilla_core::store::inbox_key(CONSUMER, id)),
            (None, Some(cmd)) => Some(flotilla_core::store::command_key(cmd)),
            (None, None) => None,
        };
        if let Some(key) = key
            && self.store.is_processed(&key).await?
        {
            self.catch_up(&mut state).await?;
            return Ok((state.version.unwrap_or(0), consumed.is_none()));
        }
        for _ in 0..3 {
            self.catch_up(&mut state).await?;
            let events = state.catalog.decide(command.clone())?;
            if events.is_empty() {
                return Ok((state.version.unwrap_or(0), false));
            }
            // The unit the events are about, not the caller's.
            let mut metadata = metadata.clone();
            metadata.business_unit = state.catalog.unit_of(&command);
            let new_events = events
                .iter()
                .map(|ev| {
                    let (ty, version, payload) = CatalogCodec.encode(ev);
                    NewEvent::new(ty, version, payload, metadata.clone())
                })
                .collect();
            let expected = state
                .version
                .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            match self
                .store
                .append(match consumed {
                    Some(id) => AppendRequest::new(self.stream.clone(), expected, new_events)
                        .consuming(CONSUMER, id),
                    None => AppendRequest::new(self.stream.clone(), expected, new_events),
                })
                .await
            {
                Ok(o) if o.deduplicated => {
                    // A retried command or a redelivered event: already in the stream.
                    self.catch_up(&mut state).await?;
                    return Ok((o.stream_version, consumed.is_none()));
                }
                Ok(o) => {
                    for ev in &events {
                        state.catalog = std::mem::take(&mut state.catalog).evolve(ev);
                    }
                    state.graph = None;
                    state.version = Some(o.stream_version);
                    return Ok((o.stream_version, true));
                }
                // Another instance appended first: catch up and decide again.
                Err(StoreError::WrongExpectedVersion { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Store(StoreError::Backend(
            "the catalog kept changing under this command; try again".into(),
        )))
    }
}
