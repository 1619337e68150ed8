//! Catalog values, each validated when it is made.

use std::collections::BTreeSet;
use std::fmt;

use super::{DomainError, Result, Timestamp};

/// A service's catalog name: 1 to 63 lowercase letters, digits and `-`, starting with a letter
/// (a DNS label, as Kubernetes and Backstage use).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName(std::sync::Arc<str>);

/// As its text; a snapshot's names are taken as they were recorded.
impl serde::Serialize for ServiceName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ServiceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self::stored(&s))
    }
}

impl ServiceName {
    /// A DNS name: one or more labels of lowercase letters, digits and '-' separated by '.'
    /// (so OpenTelemetry names such as `checkout.svc` and namespaced names fit), each label
    /// 1 to 63 characters, not starting or ending with '-', the whole at most 253 and starting
    /// with a letter.
    pub fn parse(s: &str) -> Result<Self> {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.split('.').all(label_ok);
        if ok {
            Ok(Self(s.into()))
        } else {
            Err(DomainError::Invalid {
                field: "service name",
                reason: format!(
                    "{} must be a DNS name: labels of 1 to 63 lowercase letters, digits or '-' (not at a label's start or end) separated by '.', starting with a letter, at most 253 characters",
                    flotilla_core::names::shown(s)
                ),
            })
        }
    }

    /// A name as it was recorded: stored events and snapshots replay whatever the naming rule
    /// is today.
    pub fn stored(s: &str) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The smallest name, for range scans.
    pub(crate) fn min() -> Self {
        Self("".into())
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Business criticality: tier 1 (most critical) to tier 4.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Tier(u8);

impl Tier {
    pub fn new(tier: u32) -> Result<Self> {
        if (1..=4).contains(&tier) {
            Ok(Self(tier as u8))
        } else {
            Err(DomainError::Invalid {
                field: "criticality tier",
                reason: format!("{tier} is not 1 (most critical) to 4"),
            })
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// A tier as it was recorded (clamped to 1-4: only a hand-edited store holds another).
    pub fn stored(tier: u32) -> Self {
        Self(tier.clamp(1, 4) as u8)
    }

    /// Weight in risk ranking: tier 1 weighs 4, tier 4 weighs 1.
    pub fn weight(self) -> u32 {
        5 - u32::from(self.0)
    }
}

/// What kind of thing a catalog entry is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum RuntimeKind {
    Microservice,
    Database,
    Queue,
    ExternalApi,
    SharedInfrastructure,
}

/// How sensitive the data a service holds is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum DataClassification {
    Public,
    Internal,
    Confidential,
    Restricted,
}

/// A catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceSpec {
    pub name: ServiceName,
    pub owner_team: String,
    pub business_unit: String,
    pub tier: Tier,
    pub handles_personal_data: bool,
    pub classification: DataClassification,
    pub runtime: RuntimeKind,
}

impl ServiceSpec {
    /// Checks the free-text fields.
    pub fn validate(&self) -> Result<()> {
        use flotilla_core::names;
        super::named(
            "business unit",
            names::label("business unit", &self.business_unit),
        )?;
        super::named("owner team", names::id("owner team", &self.owner_team))
    }
}

/// How a consumer is coupled to a provider.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum EdgeKind {
    SyncApi,
    AsyncMessage,
    Database,
    SharedInfrastructure,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SyncApi => "sync_api",
            Self::AsyncMessage => "async_message",
            Self::Database => "database",
            Self::SharedInfrastructure => "shared_infrastructure",
        }
    }
}

/// A declared dependency: `consumer` needs `provider`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dependency {
    pub consumer: ServiceName,
    pub provider: ServiceName,
    pub kind: EdgeKind,
    /// Data classes that move along the edge (e.g. `customer-pii`, `payment-card`).
    pub data_flows: BTreeSet<String>,
}

impl Dependency {
    pub fn validate(&self) -> Result<()> {
        if self.data_flows.len() > MAX_DATA_FLOWS {
            return Err(DomainError::Invalid {
                field: "data flow",
                reason: format!("at most {MAX_DATA_FLOWS} data flows on an edge"),
            });
        }
        for d in &self.data_flows {
            super::named("data flow", flotilla_core::names::label("data flow", d))?;
        }
        Ok(())
    }
}

/// Most data classes one edge may carry.
pub const MAX_DATA_FLOWS: usize = 50;

/// Most services one pin may hold.
pub const MAX_PIN_SERVICES: usize = 200;

/// Services that must be deployed together, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CoDeploymentPin {
    pub group: String,
    pub services: Vec<ServiceName>,
    pub reason: String,
}

impl CoDeploymentPin {
    pub fn validate(&self) -> Result<()> {
        super::named("group", flotilla_core::names::id("group", &self.group))?;
        let distinct: std::collections::BTreeSet<&ServiceName> = self.services.iter().collect();
        if distinct.len() != self.services.len() {
            return Err(DomainError::Invalid {
                field: "services",
                reason: "a service is named twice in the pin".into(),
            });
        }
        if self.services.len() > MAX_PIN_SERVICES {
            return Err(DomainError::Invalid {
                field: "services",
                reason: format!("a pin holds at most {MAX_PIN_SERVICES} services"),
            });
        }
        if self.reason.trim().is_empty() {
            return Err(DomainError::Invalid {
                field: "reason",
                reason: "say why these services move together".into(),
            });
        }
        super::named(
            "reason",
            flotilla_core::names::text("reason", &self.reason, 1_000),
        )?;
        Ok(())
    }
}

/// Calls from one service to another in a reporting window. Names need not be registered:
/// an unregistered caller is exactly what the drift report should show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedCall {
    pub client: ServiceName,
    pub server: ServiceName,
    pub calls: u64,
}

/// What runtime observation says about one edge .
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedEdge {
    pub calls: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// A finished deployment: `service@version` runs in `environment` from `at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deployment {
    pub environment: String,
    pub service: ServiceName,
    pub version: semver::Version,
    pub at: Timestamp,
}

/// A named composite footprint: the versions running in an environment at a moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FootprintTag {
    pub environment: String,
    pub tag: String,
    pub at: Timestamp,
    pub services: std::collections::BTreeMap<ServiceName, semver::Version>,
}

/// Schema formats Flotilla checks for compatibility.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum SchemaFormat {
    /// An encoded `google.protobuf.FileDescriptorSet`.
    Protobuf,
    /// A JSON Schema document.
    JsonSchema,
}

/// One version of a service's API or message schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchemaDoc {
    pub service: ServiceName,
    /// The schema's name within the service, e.g. `orders-api` or `order-events`.
    pub name: String,
    pub version: semver::Version,
    pub format: SchemaFormat,
    pub content: Vec<u8>,
}

/// The outcome of checking a schema version against what its consumers use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompatibilityVerdict {
    pub service: ServiceName,
    pub name: String,
    pub version: semver::Version,
    /// What it was compared with: (who uses it, which version).
    pub compared: Vec<(String, semver::Version)>,
    /// Every breaking change found (empty: compatible).
    pub breaking: Vec<String>,
    pub at: Timestamp,
}
