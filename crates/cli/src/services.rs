//! The six services a node can run.

use flotilla_runtime::ServiceModule;

/// Every service, in the order `flotilla up` starts them.
pub fn all() -> Vec<Box<dyn ServiceModule>> {
    vec![
        Box::new(flotilla_governance::GovernanceModule),
        Box::new(flotilla_dependency_mapping::DependencyMappingModule),
        Box::new(flotilla_orchestration::OrchestrationModule),
        Box::new(flotilla_risk_validation::RiskValidationModule),
        Box::new(flotilla_monitoring::MonitoringModule),
        Box::new(flotilla_compliance::ComplianceModule),
    ]
}

/// One service by name.
pub fn by_name(name: &str) -> anyhow::Result<Box<dyn ServiceModule>> {
    let mut all = all();
    let names: Vec<&str> = all.iter().map(|m| m.name()).collect();
    match all.iter().position(|m| m.name() == name) {
        Some(i) => Ok(all.swap_remove(i)),
        None => anyhow::bail!(
            "unknown service {name:?}; choose one of: {}",
            names.join(", ")
        ),
    }
}
