//! Orchestration with governance and dependency-mapping on one embedded node, one module per
//! job: promotion and rollback, strategies and shared capacity, migrations, planning, emergency
//! releases, and canary steps judged by risk-validation.

#[path = "../flow/mod.rs"]
mod flow;

mod canary;
mod emergency;
mod migrations;
mod planning;
mod promotion;
mod strategies;
