//! gRPC edge of the dependency-mapping service (`flotilla.dependency.v1.DependencyMappingService`):
//! converts requests to domain commands and queries, and maps errors to status codes in one place.

use std::sync::Arc;

use flotilla_core::event::Metadata;
use flotilla_core::store::StoreError;
use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::dependency::v1 as pb;
use flotilla_proto::dependency::v1::dependency_mapping_service_server::{
    DependencyMappingService, DependencyMappingServiceServer,
};
use flotilla_runtime::ServiceContext;
use tonic::{Request, Response, Status};

use crate::app::{AppError, CatalogApp};
use crate::convert;
use crate::domain::graph::{self, ImpactEntry};
use crate::domain::{Command, DomainError};

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.dependency.v1.DependencyMappingService";

/// The one place errors become gRPC statuses.
fn status(e: AppError) -> Status {
    let s = match &e {
        AppError::Domain(DomainError::Invalid { .. } | DomainError::SelfDependency(_)) => {
            Status::invalid_argument(e.to_string())
        }
        AppError::Domain(
            DomainError::UnknownService(_) | DomainError::UnknownDependency { .. },
        ) => Status::not_found(e.to_string()),
        AppError::Domain(DomainError::AlreadyRegistered(_) | DomainError::Conflict(_)) => {
            Status::already_exists(e.to_string())
        }
        AppError::Domain(DomainError::NotFound(_)) => Status::not_found(e.to_string()),
        AppError::Store(StoreError::WrongExpectedVersion { .. }) => Status::aborted(e.to_string()),
        AppError::Store(StoreError::InvalidAppend(_) | StoreError::EmptyAppend { .. }) => {
            Status::invalid_argument(e.to_string())
        }
        AppError::Store(_) => Status::unavailable(e.to_string()),
        AppError::Decode { .. } => Status::data_loss(e.to_string()),
    };
    let message = flotilla_core::names::capped(s.message()).into_owned();
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::DataLoss => {
            tracing::error!(error = %message, "request failed")
        }
        _ => tracing::info!(error = %message, code = ?s.code(), "request refused"),
    }
    Status::new(s.code(), message)
}

fn domain(e: DomainError) -> Status {
    status(AppError::Domain(e))
}

/// Refuses a request list longer than `max` (or with a repeated item) before any item is read.
fn sized<T: PartialEq>(field: &'static str, items: &[T], max: usize) -> Result<(), Status> {
    crate::domain::named(field, flotilla_core::names::list(field, items, max)).map_err(domain)
}

/// Most calls one RecordObservedCalls may report.
pub const MAX_OBSERVED_CALLS: usize = 10_000;
/// Most items one release plan may hold.
pub const MAX_PLAN_ITEMS: usize = 2_000;

/// Who is calling (the identity the access interceptor verified) and the request's trace,
/// correlation and command ids.
fn metadata<T>(req: &Request<T>) -> Result<Metadata, Status> {
    flotilla_runtime::access::caller_metadata(req).map(|(_, _, md)| md)
}

/// Checks that the caller may act on services of `business_unit` (business-unit isolation).
fn authorize_in<T>(req: &Request<T>, business_unit: &str) -> Result<(), Status> {
    let (caller, access) = flotilla_auth::layer::caller_of(req)?;
    access.authorize_in(
        &caller,
        business_unit,
        &flotilla_auth::AccessContext::default(),
    )
}

fn impact_pb(e: &ImpactEntry) -> pb::ImpactEntry {
    pb::ImpactEntry {
        service: e.service.to_string(),
        distance: e.distance,
        criticality_tier: u32::from(e.tier.get()),
        business_unit: e.business_unit.clone(),
        handles_personal_data: e.handles_personal_data,
        edge_kinds: e
            .edge_kinds
            .iter()
            .map(|k| convert::edge_kind_pb(*k) as i32)
            .collect(),
        risk: e.risk,
    }
}

/// The tonic service.
#[derive(Debug, Clone)]
pub struct DependencyMappingApi {
    ctx: ServiceContext,
    app: Arc<CatalogApp>,
}

/// Builds the tonic server for the runtime.
pub fn server(ctx: ServiceContext) -> DependencyMappingServiceServer<DependencyMappingApi> {
    let app = Arc::new(CatalogApp::new(ctx.store.clone()));
    let max = ctx.max_message_bytes();
    DependencyMappingServiceServer::new(DependencyMappingApi { ctx, app })
        .max_decoding_message_size(max)
}

impl DependencyMappingApi {
    /// Business-unit isolation for writes: the caller must be allowed in the unit of every named
    /// service that is in the catalog (unknown names are refused later by the domain).
    async fn guard<T, S: AsRef<str>>(
        &self,
        req: &Request<T>,
        names: impl IntoIterator<Item = S>,
    ) -> Result<(), Status> {
        let mut units = std::collections::BTreeSet::new();
        for n in names {
            let Ok(name) = convert::name("service", n.as_ref()) else {
                continue;
            };
            if let Some(bu) = self
                .app
                .read(|c| c.services.get(&name).map(|e| e.business_unit.clone()))
                .await
                .map_err(status)?
            {
                units.insert(bu);
            }
        }
        for bu in units {
            authorize_in(req, &bu)?;
        }
        Ok(())
    }

    async fn command(
        &self,
        command: Command,
        md: Metadata,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let (catalog_version, changed) = self.app.execute(command, md).await.map_err(status)?;
        Ok(Response::new(pb::CommandAccepted {
            catalog_version,
            changed,
        }))
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
        let md = metadata(&request)?;
        if let Some(s) = &request.get_ref().service {
            authorize_in(&request, &s.business_unit)?;
        }
        let spec = convert::service_spec(request.into_inner().service).map_err(domain)?;
        self.command(Command::RegisterService(spec), md).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "UpdateService"))]
    async fn update_service(
        &self,
        request: Request<pb::UpdateServiceRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let md = metadata(&request)?;
        if let Some(s) = &request.get_ref().service {
            authorize_in(&request, &s.business_unit)?;
            let name = convert::name("name", &s.name).map_err(domain)?;
            let current = self
                .app
                .read(|c| c.services.get(&name).map(|e| e.business_unit.clone()))
                .await
                .map_err(status)?;
            if let Some(bu) = current {
                authorize_in(&request, &bu)?;
            }
        }
        let spec = convert::service_spec(request.into_inner().service).map_err(domain)?;
        self.command(Command::UpdateService(spec), md).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetService"))]
    async fn get_service(
        &self,
        request: Request<pb::GetServiceRequest>,
    ) -> Result<Response<pb::ServiceEntry>, Status> {
        let name = convert::name("name", &request.into_inner().name).map_err(domain)?;
        let found = self
            .app
            .read(|c| c.services.get(&name).map(convert::service_entry))
            .await
            .map_err(status)?;
        found
            .map(Response::new)
            .ok_or_else(|| domain(DomainError::UnknownService(name)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListServices"))]
    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        let bu = request.into_inner().business_unit;
        let services = self
            .app
            .read(|c| {
                c.services
                    .values()
                    .filter(|s| bu.is_empty() || s.business_unit == bu)
                    .map(convert::service_entry)
                    .collect()
            })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListServicesResponse { services }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "DeclareDependency"))]
    async fn declare_dependency(
        &self,
        request: Request<pb::DeclareDependencyRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let md = metadata(&request)?;
        if let Some(d) = &request.get_ref().dependency {
            sized(
                "dependency.data_flows",
                &d.data_flows,
                crate::domain::model::MAX_DATA_FLOWS,
            )?;
        }
        self.guard(
            &request,
            request.get_ref().dependency.as_ref().map(|d| &d.consumer),
        )
        .await?;
        let dep = convert::dependency(request.into_inner().dependency).map_err(domain)?;
        self.command(Command::DeclareDependency(dep), md).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "RemoveDependency"))]
    async fn remove_dependency(
        &self,
        request: Request<pb::RemoveDependencyRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let md = metadata(&request)?;
        self.guard(&request, [&request.get_ref().consumer]).await?;
        let r = request.into_inner();
        let consumer = convert::name("consumer", &r.consumer).map_err(domain)?;
        let provider = convert::name("provider", &r.provider).map_err(domain)?;
        self.command(Command::RemoveDependency { consumer, provider }, md)
            .await
    }

    #[tracing::instrument(skip_all, fields(rpc = "PinCoDeployment"))]
    async fn pin_co_deployment(
        &self,
        request: Request<pb::PinCoDeploymentRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let md = metadata(&request)?;
        if let Some(p) = &request.get_ref().pin {
            sized(
                "pin.services",
                &p.services,
                crate::domain::model::MAX_PIN_SERVICES,
            )?;
        }
        let (group, mut services): (String, Vec<String>) = request
            .get_ref()
            .pin
            .as_ref()
            .map(|p| (p.group.clone(), p.services.clone()))
            .unwrap_or_default();
        // A pin replaces its whole group: the units of the services pinned now count too.
        let existing: Vec<String> = self
            .app
            .read(|c| {
                c.pins
                    .get(&group)
                    .map(|p| p.services.iter().map(|n| n.to_string()).collect())
                    .unwrap_or_default()
            })
            .await
            .map_err(status)?;
        services.extend(existing);
        self.guard(&request, &services).await?;
        let pin = convert::pin(request.into_inner().pin).map_err(domain)?;
        self.command(Command::PinCoDeployment(pin), md).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "AnalyzeImpact"))]
    async fn analyze_impact(
        &self,
        request: Request<pb::AnalyzeImpactRequest>,
    ) -> Result<Response<pb::AnalyzeImpactResponse>, Status> {
        let name = convert::name("service", &request.into_inner().service).map_err(domain)?;
        let entries = self
            .app
            .graph()
            .await
            .map_err(status)?
            .impact(&name)
            .map_err(domain)?;
        Ok(Response::new(pb::AnalyzeImpactResponse {
            entries: entries.iter().map(impact_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetCoDeploymentGroups"))]
    async fn get_co_deployment_groups(
        &self,
        _request: Request<pb::GetCoDeploymentGroupsRequest>,
    ) -> Result<Response<pb::GetCoDeploymentGroupsResponse>, Status> {
        let groups = self
            .app
            .graph()
            .await
            .map_err(status)?
            .co_deployment_groups();
        Ok(Response::new(pb::GetCoDeploymentGroupsResponse {
            groups: groups
                .into_iter()
                .map(|g| pb::CoDeploymentGroup {
                    name: g.name,
                    members: g
                        .members
                        .into_iter()
                        .map(|(s, reasons)| pb::CoDeploymentMember {
                            service: s.to_string(),
                            reasons,
                        })
                        .collect(),
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "PlanRelease"))]
    async fn plan_release(
        &self,
        request: Request<pb::PlanReleaseRequest>,
    ) -> Result<Response<pb::ReleasePlan>, Status> {
        if request.get_ref().items.len() > MAX_PLAN_ITEMS {
            return Err(domain(DomainError::Invalid {
                field: "items",
                reason: format!(
                    "{} items, at most {MAX_PLAN_ITEMS} in one release plan",
                    request.get_ref().items.len()
                ),
            }));
        }
        let items = request
            .into_inner()
            .items
            .into_iter()
            .map(|i| {
                if i.version.trim().is_empty() {
                    return Err(DomainError::Invalid {
                        field: "items.version",
                        reason: format!("{} needs a version", i.service),
                    });
                }
                let version = convert::version("items.version", &i.version)?;
                Ok((
                    convert::name("items.service", &i.service)?,
                    version.to_string(),
                ))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(domain)?;
        let plan = self
            .app
            .graph()
            .await
            .map_err(status)?
            .plan_release(&items)
            .map_err(domain)?;
        // Skew only for items with semantic versions (calver releases are not ranged).
        let semver_items: Vec<_> = items
            .iter()
            .filter_map(|(s, v)| semver::Version::parse(v).ok().map(|v| (s.clone(), v)))
            .collect();
        let skew = self
            .app
            .read(|c| graph::skew_after_release(c, &semver_items))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ReleasePlan {
            waves: plan
                .waves
                .iter()
                .map(|w| pb::Wave {
                    services: w
                        .iter()
                        .map(|p| pb::PlannedService {
                            service: p.service.to_string(),
                            version: p.version.clone().unwrap_or_default(),
                            co_deployment_group: p.group.clone().unwrap_or_default(),
                        })
                        .collect(),
                })
                .collect(),
            impact: plan.impact.iter().map(impact_pb).collect(),
            skew_violations: skew.iter().map(convert::skew_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "RecordObservedCalls"))]
    async fn record_observed_calls(
        &self,
        request: Request<pb::RecordObservedCallsRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let md = metadata(&request)?;
        if request.get_ref().calls.len() > MAX_OBSERVED_CALLS {
            return Err(domain(DomainError::Invalid {
                field: "calls",
                reason: format!(
                    "{} calls in one report, at most {MAX_OBSERVED_CALLS}; send them in parts",
                    request.get_ref().calls.len()
                ),
            }));
        }
        let clients: Vec<&str> = request
            .get_ref()
            .calls
            .iter()
            .map(|c| c.client.as_str())
            .collect();
        self.guard(&request, clients).await?;
        let r = request.into_inner();
        let calls = convert::observed_calls(r.calls).map_err(domain)?;
        let at = match r.observed_at.as_ref() {
            Some(t) => convert::micros("observed_at", t).map_err(domain)?,
            None => flotilla_core::event::Timestamp::now().as_micros(),
        };
        self.command(Command::RecordObservedCalls { calls, at }, md)
            .await
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetDependencyDrift"))]
    async fn get_dependency_drift(
        &self,
        _request: Request<pb::GetDependencyDriftRequest>,
    ) -> Result<Response<pb::DependencyDrift>, Status> {
        let drift = self
            .app
            .read(|c| {
                let d = graph::drift(c);
                pb::DependencyDrift {
                    declared_not_observed: d
                        .declared_not_observed
                        .iter()
                        .filter_map(|(consumer, provider, _)| {
                            c.dependencies.get(&(consumer.clone(), provider.clone()))
                        })
                        .map(convert::dependency_pb)
                        .collect(),
                    observed_not_declared: d
                        .observed_not_declared
                        .iter()
                        .map(|(client, server, o)| pb::ObservedEdge {
                            client: client.to_string(),
                            server: server.to_string(),
                            calls: o.calls,
                            first_seen: Some(convert::timestamp(o.first_seen)),
                            last_seen: Some(convert::timestamp(o.last_seen)),
                        })
                        .collect(),
                }
            })
            .await
            .map_err(status)?;
        Ok(Response::new(drift))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetDependencyMatrix"))]
    async fn get_dependency_matrix(
        &self,
        request: Request<pb::GetDependencyMatrixRequest>,
    ) -> Result<Response<pb::DependencyMatrix>, Status> {
        let r = request.into_inner();
        let format = pb::MatrixFormat::try_from(r.format).unwrap_or(pb::MatrixFormat::Unspecified);
        if format == pb::MatrixFormat::Unspecified {
            return Err(domain(DomainError::Invalid {
                field: "format",
                reason: "choose MATRIX_FORMAT_JSON or MATRIX_FORMAT_CSV".into(),
            }));
        }
        let services = r
            .services
            .iter()
            .map(|s| convert::name("services", s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(domain)?;
        let body = self
            .app
            .read(|c| {
                graph::matrix(c, &services, &r.business_unit).map(|(names, cells)| match format {
                    pb::MatrixFormat::Csv => matrix_csv(&names, &cells),
                    _ => matrix_json(&names, &cells),
                })
            })
            .await
            .map_err(status)?
            .map_err(domain)?;
        let content_type = if format == pb::MatrixFormat::Csv {
            "text/csv"
        } else {
            "application/json"
        };
        Ok(Response::new(pb::DependencyMatrix {
            content_type: content_type.into(),
            body,
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "RecordDeployment"))]
    async fn record_deployment(
        &self,
        request: Request<pb::RecordDeploymentRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let md = metadata(&request)?;
        self.guard(&request, [&request.get_ref().service]).await?;
        let r = request.into_inner();
        let now = convert::timestamp(flotilla_core::event::Timestamp::now().as_micros());
        let d = convert::deployment(
            r.environment,
            &r.service,
            &r.version,
            Some(r.finished_at.as_ref().unwrap_or(&now)),
        )
        .map_err(domain)?;
        self.command(Command::RecordDeployment(d), md).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "TagFootprint"))]
    async fn tag_footprint(
        &self,
        request: Request<pb::TagFootprintRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let md = metadata(&request)?;
        let r = request.into_inner();
        let at = match r.at.as_ref() {
            Some(t) => convert::micros("at", t).map_err(domain)?,
            None => flotilla_core::event::Timestamp::now().as_micros(),
        };
        self.command(
            Command::TagFootprint {
                environment: r.environment,
                tag: r.tag,
                at,
            },
            md,
        )
        .await
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
            .map(|t| convert::micros("as_of", t))
            .transpose()
            .map_err(domain)?;
        let env = r.environment.clone();
        let services = self
            .app
            .read(|c| {
                if r.tag.is_empty() {
                    Ok(c.footprint(&env, as_of))
                } else {
                    c.tags
                        .get(&(env.clone(), r.tag.clone()))
                        .map(|t| t.services.clone())
                        .ok_or_else(|| {
                            DomainError::NotFound(format!("{} names no footprint of {env}", r.tag))
                        })
                }
            })
            .await
            .map_err(status)?
            .map_err(domain)?;
        Ok(Response::new(pb::Footprint {
            environment: r.environment,
            services: convert::running_pb(&services),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "DeclareVersionRequirement"))]
    async fn declare_version_requirement(
        &self,
        request: Request<pb::DeclareVersionRequirementRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let md = metadata(&request)?;
        self.guard(&request, [&request.get_ref().consumer]).await?;
        let r = request.into_inner();
        let consumer = convert::name("consumer", &r.consumer).map_err(domain)?;
        let provider = convert::name("provider", &r.provider).map_err(domain)?;
        let requirement = convert::requirement(&r.requirement).map_err(domain)?;
        self.command(
            Command::DeclareVersionRequirement {
                consumer,
                provider,
                requirement,
            },
            md,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetVersionSkew"))]
    async fn get_version_skew(
        &self,
        request: Request<pb::GetVersionSkewRequest>,
    ) -> Result<Response<pb::VersionSkew>, Status> {
        let env = request.into_inner().environment;
        let violations = self
            .app
            .read(|c| graph::version_skew(c, (!env.is_empty()).then_some(env.as_str())))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::VersionSkew {
            violations: violations.iter().map(convert::skew_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "PublishSchema"))]
    async fn publish_schema(
        &self,
        request: Request<pb::PublishSchemaRequest>,
    ) -> Result<Response<pb::CompatibilityVerdict>, Status> {
        let md = metadata(&request)?;
        self.guard(&request, [&request.get_ref().service]).await?;
        let r = request.into_inner();
        let doc = crate::domain::SchemaDoc {
            service: convert::name("service", &r.service).map_err(domain)?,
            name: r.name,
            version: convert::version("version", &r.version).map_err(domain)?,
            format: convert::schema_format(r.format).map_err(domain)?,
            content: r.content,
        };
        let at = flotilla_core::event::Timestamp::now().as_micros();
        let (verdict, published) = self
            .app
            .check_schema(doc, !r.check_only, at, md)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::verdict_pb(&verdict, published)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "DeclareSchemaUse"))]
    async fn declare_schema_use(
        &self,
        request: Request<pb::DeclareSchemaUseRequest>,
    ) -> Result<Response<pb::CommandAccepted>, Status> {
        let md = metadata(&request)?;
        self.guard(&request, [&request.get_ref().consumer]).await?;
        let r = request.into_inner();
        let consumer = convert::name("consumer", &r.consumer).map_err(domain)?;
        let provider = convert::name("provider", &r.provider).map_err(domain)?;
        let version = convert::version("version", &r.version).map_err(domain)?;
        self.command(
            Command::DeclareSchemaUse {
                consumer,
                provider,
                name: r.name,
                version,
            },
            md,
        )
        .await
    }
}

fn cell_text(d: &crate::domain::Dependency) -> String {
    if d.data_flows.is_empty() {
        d.kind.as_str().to_owned()
    } else {
        format!(
            "{}:{}",
            d.kind.as_str(),
            d.data_flows.iter().cloned().collect::<Vec<_>>().join(";")
        )
    }
}

/// A CSV cell, quoted when needed; a value a spreadsheet would run as a formula (starting with
/// `=`, `+`, `-`, `@`, tab or carriage return) is prefixed with `'` so it stays text.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Rows are consumers, columns providers; a cell is `kind` or `kind:flow;flow`.
fn matrix_csv(
    names: &[crate::domain::ServiceName],
    cells: &[&crate::domain::Dependency],
) -> String {
    let index: std::collections::HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut grid = vec![vec![String::new(); names.len()]; names.len()];
    for d in cells {
        if let (Some(&r), Some(&c)) = (
            index.get(d.consumer.as_str()),
            index.get(d.provider.as_str()),
        ) {
            grid[r][c] = cell_text(d);
        }
    }
    let mut out = String::from("consumer\\provider");
    for n in names {
        out.push(',');
        out.push_str(&csv_field(n.as_str()));
    }
    out.push('\n');
    for (r, n) in names.iter().enumerate() {
        out.push_str(&csv_field(n.as_str()));
        for cell in &grid[r] {
            out.push(',');
            out.push_str(&csv_field(cell));
        }
        out.push('\n');
    }
    out
}

fn matrix_json(
    names: &[crate::domain::ServiceName],
    cells: &[&crate::domain::Dependency],
) -> String {
    serde_json::json!({
        "services": names.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        "cells": cells.iter().map(|d| serde_json::json!({
            "consumer": d.consumer.as_str(),
            "provider": d.provider.as_str(),
            "kind": d.kind.as_str(),
            "data_flows": d.data_flows,
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

#[cfg(test)]
mod csv_tests {
    #[test]
    fn formulas_stay_text_and_separators_are_quoted() {
        assert_eq!(super::csv_field("sync-api"), "sync-api");
        assert_eq!(
            super::csv_field("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(super::csv_field("+1"), "'+1");
        assert_eq!(super::csv_field("-2"), "'-2");
        assert_eq!(super::csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
    }
}
