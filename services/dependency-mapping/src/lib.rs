//! The dependency-mapping service: service catalog, dependency graph, co-deployment groups,
//! compatibility and impact.
//!
//! Layout (as every service on the kit):
//! - `domain`: pure: the [`domain::Catalog`] decider and graph queries.
//! - `codec`: events to and from stored payloads, decoding without the API's rules.
//! - `messages`: catalog values as protobuf messages (stored events and API answers).
//! - `compat`: schema compatibility (protobuf descriptor sets, JSON Schema).
//! - `backstage`: Backstage catalog-info.yaml parsing (the import RPC uses it).
//! - `app`: the graph index and schema checks around the kit's app, and the module's start.
//! - `inbound`: orchestration's deployments it consumes.
//! - `grpc`: the tonic edge (`convert` requests, `matrix`, `import`).

pub mod app;
pub mod backstage;
pub mod codec;
pub mod compat;
pub mod domain;
pub mod grpc;
pub mod inbound;
pub mod messages;

flotilla_runtime::service_module!(
    DependencyMappingModule,
    "dependency-mapping",
    start = app::start,
    aggregates = { "dependency-catalog" => "catalog" },
);
