//! The orchestration service: artifacts from CI, releases planned in dependency waves, gated
//! promotion along each unit's path, deployments step by step through an executor, atomic
//! rollback, drift and capacity. The first service written on the kit: read it as the example.
//!
//! - `domain`: the pure rules (decide on state and command, evolve with the recorded event);
//! - `codec`: the stored events as protobuf, and how old records still decode;
//! - `app`: the kit's app, with what orchestration asks other services before it decides;
//! - `peers`: those other services over gRPC; `executor`: what runs a step;
//! - `runner`: the task that moves deployments; `inbound`: other services' events it acts on;
//! - `cdevents`: CDEvents out (services deployed, environments) and in (builds from CI);
//! - `grpc`: the API edge; `messages`: domain values as API messages.

pub mod app;
pub mod cdevents;
pub mod codec;
pub mod domain;
pub mod executor;
pub mod gauges;
pub mod grpc;
pub mod inbound;
pub mod messages;
pub mod peers;
pub mod runner;

flotilla_runtime::service_module!(
    OrchestrationModule,
    "orchestration",
    start = app::start,
    aggregates = {"orchestration-policy" => "policy"}
);
