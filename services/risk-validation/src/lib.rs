//! The risk-validation service: canary judgements today (as Kayenta's judge judges), with risk
//! assessments, FMEA and validations to come.
//!
//! - `domain`: the pure rules and statistics; `codec`: the stored events as protobuf;
//! - `app`: the kit's app; `grpc`: the API edge; `messages`: domain values as API messages.

pub mod app;
pub mod codec;
pub mod domain;
pub mod grpc;
pub mod messages;

flotilla_runtime::service_module!(RiskValidationModule, "risk-validation", start = app::start);
