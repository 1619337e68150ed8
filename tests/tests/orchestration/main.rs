//! Orchestration with governance and dependency-mapping on one embedded node, one module per
//! job: promotion and rollback, strategies and shared capacity, migrations, planning, emergency
//! releases, canary steps judged by risk-validation, and risk assessments, FMEA and
//! validations between orchestration and governance.

#[path = "../flow/mod.rs"]
mod flow;

mod aftermath;
mod canary;
mod emergency;
mod migrations;
mod planning;
mod promotion;
mod risk;
mod strategies;
mod watch;
