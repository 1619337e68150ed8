//! The risk-validation service: risk assessments of planned releases with every factor
//! explained, FMEA, validations judged from their evidence, and canary judgements (as
//! Kayenta's judge judges).
//!
//! - `domain`: the pure rules and statistics; `codec`: the stored events as protobuf;
//! - `app`: the kit's app; `grpc`: the API edge; `messages`: domain values as API messages;
//! - `inbound`: orchestration's and the catalog's events, taken as commands.

pub mod app;
pub mod codec;
pub mod domain;
pub mod grpc;
pub mod inbound;
pub mod messages;

flotilla_runtime::service_module!(RiskValidationModule, "risk-validation", start = app::start);
