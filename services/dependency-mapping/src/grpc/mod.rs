//! gRPC edge of the dependency-mapping service
//! (`flotilla.dependency.v1.DependencyMappingService`). Each handler converts the request
//! (`convert`), checks the caller's unit for the services it names, runs the app or a query on
//! the current catalog and answers a message (`crate::messages`, `matrix`). Errors become
//! statuses through the one table below. Reads answer from memory, without locks or store
//! reads.

use std::sync::Arc;

use flotilla_auth::AccessContext;
use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::dependency::v1 as pb;
use flotilla_proto::dependency::v1::dependency_mapping_service_server::{
    DependencyMappingService, DependencyMappingServiceServer,
};
use flotilla_runtime::ServiceContext;
use flotilla_runtime::kit::{Caller, ServiceError};
use tonic::{Code, Request, Response, Status};

use crate::app::{Accepted, CatalogApp};
use crate::domain::graph;
use crate::domain::{Command, DomainError, SchemaDoc, Timestamp};
use crate::messages;

pub mod convert;
mod import;
pub mod matrix;

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.dependency.v1.DependencyMappingService";

/// Most calls one RecordObservedCalls may report.
pub const MAX_OBSERVED_CALLS: usize = 10_000;
/// Most items one release plan may hold.
pub const MAX_PLAN_ITEMS: usize = 2_000;

/// The one table of the catalog's refusals and their codes.
impl ServiceError for DomainError {
    fn code(&self) -> Code {
        match self {
            DomainError::Invalid { .. } | DomainError::SelfDependency(_) => Code::InvalidArgument,
            DomainError::UnknownService(_)
            | DomainError::UnknownDependency { .. }
            | DomainError::NotFound(_) => Code::NotFound,
            DomainError::AlreadyRegistered(_) | DomainError::Conflict(_) => Code::AlreadyExists,
        }
    }
}

impl From<DomainError> for Status {
    fn from(e: DomainError) -> Self {
        flotilla_runtime::kit::refuse(e)
    }
}

/// Refuses a request list longer than `max` (or with a repeated item) before any item is read.
fn sized<T: PartialEq>(field: &'static str, items: &[T], max: usize) -> Result<(), Status> {
    Ok(crate::domain::named(
        field,
        flotilla_core::names::list(field, items, max),
    )?)
}

fn accepted(a: Accepted) -> Response<pb::CommandAccepted> {
    Response::new(pb::CommandAccepted {
        catalog_version: a.catalog_version,
        changed: a.changed,
    })
}

fn time_or_now(
    field: &'static str,
    t: Option<&prost_types::Timestamp>,
) -> Result<Timestamp, Status> {
    Ok(match t {
        Some(t) => convert::time(field, t)?,
        None => Timestamp::now(),
    })
}

/// The tonic service, over the service's one app.
#[derive(Clone)]
pub struct DependencyMappingApi {
    ctx: ServiceContext,
    app: Arc<CatalogApp>,
}

impl std::fmt::Debug for DependencyMappingApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DependencyMappingApi")
            .finish_non_exhaustive()
    }
}

/// The tonic server over `app`.
pub fn server(
    ctx: ServiceContext,
    app: Arc<CatalogApp>,
) -> DependencyMappingServiceServer<DependencyMappingApi> {
    let max = ctx.max_message_bytes();
    DependencyMappingServiceServer::new(DependencyMappingApi { ctx, app })
        .max_decoding_message_size(max)
}

impl DependencyMappingApi {
    /// Business-unit isolation for writes: the caller must be allowed in the unit of every named
    /// service that is in the catalog (unknown names are refused later by the domain), read
    /// from the current catalog in one look.
    fn guard<S: AsRef<str>>(
        &self,
        call: &Caller,
        names: impl IntoIterator<Item = S>,
    ) -> Result<(), Status> {
        let names: Vec<crate::domain::ServiceName> = names
            .into_iter()
            .filter_map(|n| convert::name("service", n.as_ref()).ok())
            .collect();
        let units: std::collections::BTreeSet<String> = self.app.query(|c| {
            names
                .iter()
                .filter_map(|n| c.services.get(n).map(|e| e.business_unit.clone()))
                .collect()
        });
        for unit in units {
            call.allow_in(&unit, &AccessContext::default())?;
        }
        Ok(())
    }

    async fn command(
        &self,
        call: &Caller,
        command: Command,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        Ok(accepted(self.app.execute(command, call.metadata()).await?))
    }
}

#[tonic::async_trait]
impl DependencyMappingService for DependencyMappingApi {
    #[tracing::instrument(skip_all, fields(service = super::NAME))]
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<ServiceStatus>, Status> {
        self.ctx.status().await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "RegisterService"))]
    async fn register_service(
        &self,
        request: Request<pb::RegisterServiceRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let call = Caller::of(&request)?;
        let spec = convert::service_spec(request.into_inner().service)?;
        call.allow_in(&spec.business_unit, &AccessContext::default())?;
        self.command(&call, Command::RegisterService(spec)).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "UpdateService"))]
    async fn update_service(
        &self,
        request: Request<pb::UpdateServiceRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let call = Caller::of(&request)?;
        let spec = convert::service_spec(request.into_inner().service)?;
        // The unit it moves to and the unit it is in now.
        call.allow_in(&spec.business_unit, &AccessContext::default())?;
        self.guard(&call, [spec.name.as_str()])?;
        self.command(&call, Command::UpdateService(spec)).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetService"))]
    async fn get_service(
        &self,
        request: Request<pb::GetServiceRequest>,
    ) -> Result<Response<pb::ServiceEntry>, Status> {
        let name = convert::name("name", &request.into_inner().name)?;
        let found = self
            .app
            .query(|c| c.services.get(&name).map(messages::service_entry));
        Ok(Response::new(
            found.ok_or(DomainError::UnknownService(name))?,
        ))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListServices"))]
    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        let unit = request.into_inner().business_unit;
        let services = self.app.query(|c| {
            c.services
                .values()
                .filter(|s| unit.is_empty() || s.business_unit == unit)
                .map(messages::service_entry)
                .collect()
        });
        Ok(Response::new(pb::ListServicesResponse { services }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "DeclareDependency"))]
    async fn declare_dependency(
        &self,
        request: Request<pb::DeclareDependencyRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let call = Caller::of(&request)?;
        if let Some(d) = &request.get_ref().dependency {
            sized(
                "dependency.data_flows",
                &d.data_flows,
                crate::domain::model::MAX_DATA_FLOWS,
            )?;
        }
        let dep = convert::dependency(request.into_inner().dependency)?;
        self.guard(&call, [dep.consumer.as_str()])?;
        self.command(&call, Command::DeclareDependency(dep)).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "RemoveDependency"))]
    async fn remove_dependency(
        &self,
        request: Request<pb::RemoveDependencyRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let consumer = convert::name("consumer", &r.consumer)?;
        let provider = convert::name("provider", &r.provider)?;
        self.guard(&call, [consumer.as_str()])?;
        self.command(&call, Command::RemoveDependency { consumer, provider })
            .await
    }

    #[tracing::instrument(skip_all, fields(rpc = "PinCoDeployment"))]
    async fn pin_co_deployment(
        &self,
        request: Request<pb::PinCoDeploymentRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let call = Caller::of(&request)?;
        if let Some(p) = &request.get_ref().pin {
            sized(
                "pin.services",
                &p.services,
                crate::domain::model::MAX_PIN_SERVICES,
            )?;
        }
        let pin = convert::pin(request.into_inner().pin)?;
        // A pin replaces its whole group: the units of the services pinned now count too.
        let mut names: Vec<String> = self.app.query(|c| {
            c.pins
                .get(&pin.group)
                .map(|p| p.services.iter().map(|n| n.to_string()).collect())
                .unwrap_or_default()
        });
        names.extend(pin.services.iter().map(|n| n.to_string()));
        self.guard(&call, &names)?;
        self.command(&call, Command::PinCoDeployment(pin)).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "AnalyzeImpact"))]
    async fn analyze_impact(
        &self,
        request: Request<pb::AnalyzeImpactRequest>,
    ) -> Result<Response<pb::AnalyzeImpactResponse>, Status> {
        let name = convert::name("service", &request.into_inner().service)?;
        let entries = self.app.graph().impact(&name)?;
        Ok(Response::new(pb::AnalyzeImpactResponse {
            entries: entries.iter().map(messages::impact_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetCoDeploymentGroups"))]
    async fn get_co_deployment_groups(
        &self,
        _request: Request<pb::GetCoDeploymentGroupsRequest>,
    ) -> Result<Response<pb::GetCoDeploymentGroupsResponse>, Status> {
        let groups = self.app.graph().co_deployment_groups();
        Ok(Response::new(pb::GetCoDeploymentGroupsResponse {
            groups: groups.into_iter().map(messages::group_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "PlanRelease"))]
    async fn plan_release(
        &self,
        request: Request<pb::PlanReleaseRequest>,
    ) -> Result<Response<pb::ReleasePlan>, Status> {
        let items = convert::plan_items(request.into_inner().items, MAX_PLAN_ITEMS)?;
        let plan = self.app.graph().plan_release(&items)?;
        // Skew only for items with semantic versions (calver releases are not ranged).
        let semver_items: Vec<_> = items
            .iter()
            .filter_map(|(s, v)| semver::Version::parse(v).ok().map(|v| (s.clone(), v)))
            .collect();
        let skew = self
            .app
            .query(|c| graph::skew_after_release(c, &semver_items));
        Ok(Response::new(messages::plan_pb(&plan, &skew)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "RecordObservedCalls"))]
    async fn record_observed_calls(
        &self,
        request: Request<pb::RecordObservedCallsRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        if r.calls.len() > MAX_OBSERVED_CALLS {
            return Err(DomainError::Invalid {
                field: "calls",
                reason: format!(
                    "{} calls in one report, at most {MAX_OBSERVED_CALLS}; send them in parts",
                    r.calls.len()
                ),
            }
            .into());
        }
        let at = time_or_now("observed_at", r.observed_at.as_ref())?;
        let calls = convert::observed_calls(r.calls)?;
        self.guard(&call, calls.iter().map(|c| c.client.as_str()))?;
        self.command(&call, Command::RecordObservedCalls { calls, at })
            .await
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetDependencyDrift"))]
    async fn get_dependency_drift(
        &self,
        _request: Request<pb::GetDependencyDriftRequest>,
    ) -> Result<Response<pb::DependencyDrift>, Status> {
        Ok(Response::new(
            self.app.query(|c| messages::drift_pb(c, &graph::drift(c))),
        ))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetDependencyMatrix"))]
    async fn get_dependency_matrix(
        &self,
        request: Request<pb::GetDependencyMatrixRequest>,
    ) -> Result<Response<pb::DependencyMatrix>, Status> {
        let r = request.into_inner();
        let csv = match pb::MatrixFormat::try_from(r.format) {
            Ok(pb::MatrixFormat::Csv) => true,
            Ok(pb::MatrixFormat::Json) => false,
            _ => {
                return Err(DomainError::Invalid {
                    field: "format",
                    reason: "choose MATRIX_FORMAT_JSON or MATRIX_FORMAT_CSV".into(),
                }
                .into());
            }
        };
        let services = r
            .services
            .iter()
            .map(|s| convert::name("services", s))
            .collect::<Result<Vec<_>, _>>()?;
        let body = self.app.query(|c| {
            graph::matrix(c, &services, &r.business_unit).map(|(names, cells)| {
                if csv {
                    matrix::csv(&names, &cells)
                } else {
                    matrix::json(&names, &cells)
                }
            })
        })?;
        Ok(Response::new(pb::DependencyMatrix {
            content_type: if csv { "text/csv" } else { "application/json" }.into(),
            body,
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "RecordDeployment"))]
    async fn record_deployment(
        &self,
        request: Request<pb::RecordDeploymentRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let now = messages::timestamp(Timestamp::now());
        let finished_at = r.finished_at.as_ref().unwrap_or(&now);
        let d = convert::deployment(r.environment, &r.service, &r.version, Some(finished_at))?;
        self.guard(&call, [d.service.as_str()])?;
        self.command(&call, Command::RecordDeployment(d)).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "TagFootprint"))]
    async fn tag_footprint(
        &self,
        request: Request<pb::TagFootprintRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let command = Command::TagFootprint {
            at: time_or_now("at", r.at.as_ref())?,
            environment: r.environment,
            tag: r.tag,
        };
        self.command(&call, command).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetFootprint"))]
    async fn get_footprint(
        &self,
        request: Request<pb::GetFootprintRequest>,
    ) -> Result<Response<pb::Footprint>, Status> {
        let r = request.into_inner();
        let as_of = r
            .as_of
            .as_ref()
            .map(|t| convert::time("as_of", t))
            .transpose()?;
        let services = self.app.query(|c| {
            if r.tag.is_empty() {
                return Ok(c.footprint(&r.environment, as_of));
            }
            c.tags
                .get(&(r.environment.clone(), r.tag.clone()))
                .map(|t| t.services.clone())
                .ok_or_else(|| {
                    DomainError::NotFound(format!(
                        "{} names no footprint of {}",
                        r.tag, r.environment
                    ))
                })
        })?;
        Ok(Response::new(pb::Footprint {
            environment: r.environment,
            services: messages::running_pb(&services),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "DeclareVersionRequirement"))]
    async fn declare_version_requirement(
        &self,
        request: Request<pb::DeclareVersionRequirementRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let command = Command::DeclareVersionRequirement {
            consumer: convert::name("consumer", &r.consumer)?,
            provider: convert::name("provider", &r.provider)?,
            requirement: convert::requirement(&r.requirement)?,
        };
        self.guard(&call, [r.consumer.as_str()])?;
        self.command(&call, command).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetVersionSkew"))]
    async fn get_version_skew(
        &self,
        request: Request<pb::GetVersionSkewRequest>,
    ) -> Result<Response<pb::VersionSkew>, Status> {
        let env = request.into_inner().environment;
        let violations = self
            .app
            .query(|c| graph::version_skew(c, (!env.is_empty()).then_some(env.as_str())));
        Ok(Response::new(pb::VersionSkew {
            violations: violations.iter().map(messages::skew_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "PublishSchema"))]
    async fn publish_schema(
        &self,
        request: Request<pb::PublishSchemaRequest>,
    ) -> Result<Response<pb::CompatibilityVerdict>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let doc = SchemaDoc {
            service: convert::name("service", &r.service)?,
            name: r.name,
            version: convert::version("version", &r.version)?,
            format: convert::schema_format(r.format)?,
            content: r.content,
        };
        self.guard(&call, [doc.service.as_str()])?;
        let (verdict, published) = self
            .app
            .check_schema(doc, !r.check_only, Timestamp::now(), call.metadata())
            .await?;
        Ok(Response::new(messages::verdict_pb(&verdict, published)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "DeclareSchemaUse"))]
    async fn declare_schema_use(
        &self,
        request: Request<pb::DeclareSchemaUseRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let command = Command::DeclareSchemaUse {
            consumer: convert::name("consumer", &r.consumer)?,
            provider: convert::name("provider", &r.provider)?,
            name: r.name,
            version: convert::version("version", &r.version)?,
        };
        self.guard(&call, [r.consumer.as_str()])?;
        self.command(&call, command).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "ImportBackstageCatalog"))]
    async fn import_backstage_catalog(
        &self,
        request: Request<pb::ImportBackstageCatalogRequest>,
    ) -> Result<Response<pb::ImportBackstageCatalogResponse>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        self.import(&call, &r.catalog_yaml).await.map(Response::new)
    }
}
