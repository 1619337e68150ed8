//! Orchestration in CDEvents (spec v0.5.1), the vocabulary CI/CD tools share, on the deployment's
//! CDEvents log (`<namespace>.cdevents` on NATS and Kafka):
//!
//! - **out**: a service finished in an environment is `dev.cdevents.service.deployed.0.3.0`
//!   (new there), `service.upgraded` (it replaced a version), `service.rolledback` (put back)
//!   or `service.removed` (rolled back where it did not run before); an environment defined is
//!   `environment.created.0.3.0`, redefined `environment.modified.0.3.0`. `content.environment.id`
//!   is `<unit>/<environment>`, `content.artifactId` the build's package URL. They are mapped
//!   from the stored events by a relay of their own (no dual writes), built with the CDEvents
//!   SDK, so they take the spec's types; the CDEvent id is the stored event's id.
//! - **in**: `dev.cdevents.artifact.packaged` and `artifact.published` from any pipeline
//!   (Jenkins, Tekton, GitLab) register the build they name, as `RegisterArtifact` would. The
//!   subject id is the build's package URL (`pkg:oci/<service>@sha256%3A<hex>`); its version is
//!   the `tag` qualifier or `customData.version`, its commit and repository the change's id
//!   and source (or `customData.commit` / `repository`).

use std::sync::Arc;

use cdevents_sdk::spec_0_5_1::{
    environment_created, environment_deleted, environment_modified, service_deployed,
    service_removed, service_rolledback, service_upgraded,
};
use cdevents_sdk::{CDEvent, Subject};
use flotilla_bus::relay::Outbound;
use flotilla_bus::{CloudEvent, Namespace};
use flotilla_core::decider::StoredEvents;
use flotilla_core::event::{Metadata, RecordedEvent};
use flotilla_runtime::{EventHandler, HandlerError};

use crate::app::OrchestrationApp;
use crate::codec::OrchestrationEvents;
use crate::domain::*;

/// The CDEvents specification version the events follow.
pub const SPEC_VERSION: &str = "0.5.1";

/// The CDEvents stored events map to, for the CDEvents relay.
#[derive(Debug, Default, Clone, Copy)]
pub struct CdEventsOut;

/// An environment's CDEvents id.
pub fn environment_id(business_unit: &str, environment: &str) -> String {
    format!("{business_unit}/{environment}")
}

fn id(s: &str) -> Result<cdevents_sdk::Id, String> {
    s.try_into()
        .map_err(|e| format!("{s:?} is not a CDEvents id: {e}"))
}

fn uri(s: &str) -> Result<cdevents_sdk::UriReference, String> {
    s.try_into()
        .map_err(|e| format!("{s:?} is not a URI reference: {e}"))
}

/// The CDEvent of one stored orchestration event (None: it has none).
pub fn cdevent_of(namespace: &Namespace, e: &RecordedEvent) -> Result<Option<CDEvent>, String> {
    let Some(event) = OrchestrationEvents.decode(&e.event_type, e.schema_version, &e.payload)?
    else {
        return Ok(None);
    };
    let source = uri(&namespace.source(crate::NAME))?;
    let subject = match event {
        Event::ServiceFinished {
            service,
            version,
            artifact,
            previous_version,
            outcome,
            environment,
            deployment,
            ..
        } => {
            let unit = &e.metadata.business_unit;
            let env = service_deployed::ContentEnvironment {
                id: id(&environment_id(unit, &environment))?,
                source: None,
            };
            let subject = match outcome {
                ServiceOutcome::Failed => return Ok(None),
                ServiceOutcome::Succeeded if artifact.is_empty() => return Ok(None),
                ServiceOutcome::Succeeded if previous_version.is_empty() => {
                    Subject::from(service_deployed::Content {
                        artifact_id: id(&artifact)?,
                        environment: env,
                    })
                }
                ServiceOutcome::Succeeded => Subject::from(service_upgraded::Content {
                    artifact_id: id(&artifact)?,
                    environment: service_upgraded::ContentEnvironment {
                        id: env.id,
                        source: None,
                    },
                }),
                ServiceOutcome::RolledBack if version.is_empty() => {
                    Subject::from(service_removed::Content {
                        environment: Some(service_removed::ContentEnvironment {
                            id: env.id,
                            source: None,
                        }),
                    })
                }
                ServiceOutcome::RolledBack if artifact.is_empty() => return Ok(None),
                ServiceOutcome::RolledBack => Subject::from(service_rolledback::Content {
                    artifact_id: id(&artifact)?,
                    environment: service_rolledback::ContentEnvironment {
                        id: env.id,
                        source: None,
                    },
                }),
            };
            // The subject is the service in the environment; its source, the deployment.
            subject
                .with_id(id(&format!(
                    "{}/{service}",
                    environment_id(unit, &environment)
                ))?)
                .with_source(uri(&format!(
                    "{}/deployments/{deployment}",
                    namespace.source(crate::NAME)
                ))?)
        }
        Event::EnvironmentRemoved {
            business_unit,
            name,
            ..
        } => Subject::from(environment_deleted::Content {
            name: Some(name.clone()),
        })
        .with_id(id(&environment_id(&business_unit, &name))?),
        Event::EnvironmentDefined { spec, created, .. } => {
            let name = Some(spec.name.clone());
            let subject = if created {
                Subject::from(environment_created::Content { name, uri: None })
            } else {
                Subject::from(environment_modified::Content { name, uri: None })
            };
            subject.with_id(id(&environment_id(&spec.business_unit, &spec.name))?)
        }
        _ => return Ok(None),
    };
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.recorded_at.0) * 1_000)
        .map_err(|err| format!("recorded time {}: {err}", e.recorded_at.0))?;
    Ok(Some(
        CDEvent::from(subject)
            .with_id(id(&e.event_id.to_string())?)
            .with_source(source)
            .with_timestamp(at),
    ))
}

impl Outbound for CdEventsOut {
    fn outgoing(
        &self,
        namespace: &Namespace,
        service: &str,
        e: &RecordedEvent,
    ) -> Option<CloudEvent> {
        let cdevent = match cdevent_of(namespace, e) {
            Ok(Some(c)) => c,
            Ok(None) => return None,
            Err(reason) => {
                tracing::warn!(position = e.global_position, %reason, "no CDEvent for a stored event");
                return None;
            }
        };
        let data = match serde_json::to_value(&cdevent).and_then(|mut json| {
            // The SDK writes the 0.5 line's first version; these follow spec v0.5.1.
            json["context"]["specversion"] = SPEC_VERSION.into();
            serde_json::to_vec(&json)
        }) {
            Ok(d) => d,
            Err(err) => {
                tracing::warn!(position = e.global_position, error = %err, "a CDEvent did not serialise");
                return None;
            }
        };
        // The CloudEvents attributes of the stored event (time, trace, unit), as a CDEvent.
        let mut ce = CloudEvent::from_recorded(namespace, service, "cdevent", e);
        ce.ty = cdevent.ty().to_owned();
        ce.subject = Some(cdevent.subject().id().to_string());
        ce.datacontenttype = Some("application/json".into());
        ce.data = data;
        Some(ce)
    }
}

/// Types of CDEvents taken in.
pub const ARTIFACT_PACKAGED: &str = "dev.cdevents.artifact.packaged.";
pub const ARTIFACT_PUBLISHED: &str = "dev.cdevents.artifact.published.";

/// A build named by a CDEvent: the request CI would have sent, from what the event says.
pub fn registration_of(
    ce: &CloudEvent,
) -> Result<Option<flotilla_proto::orchestration::v1::RegisterArtifactRequest>, String> {
    if !(ce.ty.starts_with(ARTIFACT_PACKAGED) || ce.ty.starts_with(ARTIFACT_PUBLISHED)) {
        return Ok(None);
    }
    let json: serde_json::Value =
        serde_json::from_slice(&ce.data).map_err(|e| format!("{} is not JSON: {e}", ce.ty))?;
    let cdevent: CDEvent = serde_json::from_value(json.clone())
        .map_err(|e| format!("{} is not a CDEvent this build reads: {e}", ce.ty))?;
    let purl = cdevent.subject().id().to_string();
    let rest = purl
        .strip_prefix("pkg:")
        .and_then(|r| r.split_once('/'))
        .map(|(_, r)| r)
        .ok_or_else(|| {
            format!("subject id {purl:?} is not a package URL (pkg:oci/<name>@sha256%3A<hex>)")
        })?;
    let (name_version, qualifiers) = rest.split_once('?').unwrap_or((rest, ""));
    let (name, digest) = name_version
        .split_once('@')
        .ok_or_else(|| format!("package URL {purl:?} has no version (the image digest)"))?;
    let digest = digest.replace("%3A", ":").replace("%3a", ":");
    let qualifier = |key: &str| {
        qualifiers
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.replace("%3A", ":").replace("%2F", "/"))
    };
    let custom = |key: &str| json["customData"][key].as_str().map(str::to_owned);
    let change = &json["subject"]["content"]["change"];
    let version = qualifier("tag")
        .or_else(|| custom("version"))
        .ok_or_else(|| {
            format!("{purl}: no version: give the tag qualifier (?tag=2.4.1) or customData.version")
        })?;
    Ok(Some(
        flotilla_proto::orchestration::v1::RegisterArtifactRequest {
            service: name.to_owned(),
            version,
            commit: change["id"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| custom("commit"))
                .unwrap_or_default(),
            repository: change["source"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| qualifier("repository_url"))
                .or_else(|| custom("repository"))
                .unwrap_or_default(),
            build_url: custom("buildUrl").unwrap_or_default(),
            tests: None,
            analysis: None,
            licences: json["customData"]["licences"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            image_digest: digest,
            // CDEvents' artifact events carry no commit time.
            committed_at: None,
        },
    ))
}

/// Registers the builds CI pipelines announce on the CDEvents log (each event once, by id;
/// an event that does not name a build, or comes from a source not allowed, is logged and
/// skipped).
pub struct CdEventsIn {
    pub app: Arc<OrchestrationApp>,
    /// Source prefixes allowed to register builds (empty: any).
    pub sources: Vec<String>,
}

#[async_trait::async_trait]
impl EventHandler for CdEventsIn {
    async fn handle(&self, ce: &CloudEvent) -> Result<(), HandlerError> {
        let request = match registration_of(ce) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(reason) => return Err(HandlerError::Reject(reason)),
        };
        if !self.sources.is_empty()
            && !self
                .sources
                .iter()
                .any(|p| ce.source.starts_with(p.as_str()))
        {
            return Err(HandlerError::Reject(format!(
                "{} from {} is not from an allowed source ([orchestration] cdevents_sources)",
                ce.ty,
                flotilla_core::names::shown(&ce.source)
            )));
        }
        let artifact =
            crate::grpc::convert::artifact(request, Timestamp::now(), ArtifactSource::CdEvents)
                .map_err(|e| HandlerError::Reject(format!("{}: {e}", ce.ty)))?;
        let event_id = match uuid::Uuid::parse_str(&ce.id) {
            Ok(u) => u,
            // Other tools' ids need not be UUIDs: one per (source, id).
            Err(_) => uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_URL,
                format!("{}#{}", ce.source, ce.id).as_bytes(),
            ),
        };
        let md = Metadata::by(format!("cdevents:{}", ce.source), "");
        match self.app.register_consumed(event_id, artifact, md).await {
            Ok(_) => Ok(()),
            Err(e @ flotilla_runtime::kit::AppError::Domain(_)) => {
                Err(HandlerError::Reject(e.to_string()))
            }
            Err(e) => Err(HandlerError::Retry(e.to_string())),
        }
    }
}
