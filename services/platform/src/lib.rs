//! Every service of the platform in one list: what `flotilla up` runs, what `flotilla serve`
//! chooses from, what the end-to-end tests start. The runtime names no service; this crate is
//! where the services meet.

use flotilla_runtime::{Config, Node, ServiceModule};

/// A service name that is none of the platform's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service {name:?}; choose one of: {known}")]
pub struct UnknownService {
    pub name: String,
    pub known: String,
}

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

/// Every service's name, in order.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|m| m.name()).collect()
}

/// One service by name.
pub fn by_name(name: &str) -> Result<Box<dyn ServiceModule>, UnknownService> {
    let mut all = all();
    match all.iter().position(|m| m.name() == name) {
        Some(i) => Ok(all.swap_remove(i)),
        None => Err(UnknownService {
            name: name.to_owned(),
            known: names().join(", "),
        }),
    }
}

/// The service that replaces the platform's access policy (the one whose module records
/// replacements), which every other service follows.
pub fn access_policy_source() -> Option<&'static str> {
    all()
        .iter()
        .find(|m| m.access_policy_stream().is_some())
        .map(|m| m.name())
}

/// The configuration with the platform's defaults for what it leaves unset: the access policy
/// source is the service that replaces policies.
pub fn with_defaults(mut config: Config) -> Config {
    if config.access_policy_source.is_empty()
        && let Some(source) = access_policy_source()
    {
        config.access_policy_source = source.to_owned();
    }
    config
}

/// A node running `modules` with the platform's defaults.
pub fn node(config: Config, modules: Vec<Box<dyn ServiceModule>>) -> Node {
    Node::new(with_defaults(config), modules)
}

#[cfg(test)]
mod tests {
    #[test]
    fn six_services_one_of_which_replaces_access_policies() {
        assert_eq!(super::all().len(), 6);
        assert_eq!(super::access_policy_source(), Some("governance"));
        let c = super::with_defaults(flotilla_runtime::Config::default());
        assert_eq!(c.access_policy_source, "governance");
        let none = flotilla_runtime::Config {
            access_policy_source: "none".into(),
            ..Default::default()
        };
        assert_eq!(super::with_defaults(none).access_policy_source, "none");
        assert!(super::by_name("ghost").is_err());
        assert_eq!(
            super::by_name("monitoring").map(|m| m.name()),
            Ok("monitoring")
        );
    }
}
