//! The governance service: policies, approval requests with segregation of duties, CAB
//! decisions, freeze windows and embargoes, deviations, rollback decisions, the gate, and the
//! platform's access policy.
//!
//! Layout (as every service on the kit):
//! - `domain`: pure: the [`domain::Governance`] decider (`decide/` per command family).
//! - `codec`: events to and from stored payloads, decoding without the API's rules.
//! - `messages`: domain values as protobuf messages (stored events and API views).
//! - `app`: what is governance's own around the kit's app (segregation-of-duties records,
//!   signed access policy replacements, the deadline scheduler) and the module's start.
//! - `inbound`: other services' events it consumes.
//! - `grpc`: the tonic edge (`convert` requests, `scope` checks, `view` answers).

pub mod app;
pub mod codec;
pub mod domain;
pub mod gauges;
pub mod grpc;
pub mod inbound;
pub mod messages;
pub mod testing;

flotilla_runtime::service_module!(
    GovernanceModule,
    "governance",
    start = app::start,
    aggregates = {
        "governance-policy" => "policy",
        "governance-access-policy" => "access-policy",
    },
    access_policy = "governance-access-policy",
);
