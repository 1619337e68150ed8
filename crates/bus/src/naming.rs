//! How a deployment names what it puts on the buses. Every name starts from the deployment's
//! namespace (config `namespace`, default `flotilla`), so two deployments on one NATS server or
//! one Kafka cluster share no subject, stream, durable consumer, topic or consumer group:
//!
//! | what | name |
//! |---|---|
//! | CloudEvents `source` | `/<namespace>/<service>` |
//! | NATS subject | `<namespace>.<service>.<aggregate type>.<event>` |
//! | JetStream stream | `<NAMESPACE>_<SERVICE>` (upper case, `-` as `_`) over `<namespace>.<service>.>` |
//! | JetStream durable consumer | `<namespace>-<group>` |
//! | Kafka topic | `<namespace>.<service>.events` |
//! | Kafka consumer group | `<namespace>.<group>` |
//! | CDEvents topic and subject | `<namespace>.cdevents` (stream `<NAMESPACE>_CDEVENTS`) |
//!
//! CDEvents travel on a log of their own, named by [`CDEVENTS`] where a service name goes: every
//! bus publishes to and reads from `<namespace>.cdevents` for it, in both directions (CI tools'
//! `artifact.packaged` in, Flotilla's `service.deployed` out).

use std::fmt;

use crate::BusError;

/// A deployment's namespace: 1 to 32 lowercase letters, digits or `-`, starting with a letter
/// and not ending with `-` (it must be a NATS subject token, part of a JetStream stream name, a
/// Kafka topic prefix and a PostgreSQL schema prefix).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Namespace(String);

/// The log of CDEvents, named where a service's log would be.
pub const CDEVENTS: &str = "cdevents";

/// The namespace of a deployment that does not name one.
pub const DEFAULT_NAMESPACE: &str = "flotilla";

impl Default for Namespace {
    fn default() -> Self {
        Self(DEFAULT_NAMESPACE.to_owned())
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subject token: what is not a letter, digit, `-` or `_` becomes `_`.
fn token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Namespace {
    pub fn new(s: &str) -> Result<Self, BusError> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && !s.ends_with('-')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(BusError::Connect(format!(
                "namespace {:?} is not valid: use 1 to 32 lowercase letters, digits or '-', starting with a letter and not ending with '-'",
                s.chars().take(40).collect::<String>()
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The CloudEvents `source` of a service's events.
    pub fn source(&self, service: &str) -> String {
        format!("/{}/{service}", self.0)
    }

    /// The subject prefix of a service's events (`<namespace>.<service>`).
    pub fn subject_root(&self, service: &str) -> String {
        format!("{}.{}", self.0, token(service))
    }

    /// The subjects of a log: a service's `<namespace>.<service>.>`, the CDEvents subject.
    pub fn subjects(&self, service: &str) -> String {
        if service == CDEVENTS {
            self.cdevents()
        } else {
            format!("{}.>", self.subject_root(service))
        }
    }

    /// The NATS subject of one event: `<namespace>.<service>.<aggregate type>.<event>`, where
    /// the event is the last segment of its protobuf type name.
    pub fn subject(&self, service: &str, aggregate: &str, event_type: &str) -> String {
        if service == CDEVENTS {
            return self.cdevents();
        }
        let event = event_type.rsplit('.').next().unwrap_or(event_type);
        format!(
            "{}.{}.{}",
            self.subject_root(service),
            token(aggregate),
            token(event)
        )
    }

    /// The JetStream stream of a service.
    pub fn stream(&self, service: &str) -> String {
        format!("{}_{}", self.0, service)
            .to_ascii_uppercase()
            .replace(['-', '.'], "_")
    }

    /// The durable JetStream consumer of a group.
    pub fn durable(&self, group: &str) -> String {
        format!("{}-{}", self.0, group).replace(['.', '*', '>', ' '], "_")
    }

    /// The Kafka topic of a service's events.
    pub fn topic(&self, service: &str) -> String {
        if service == CDEVENTS {
            return self.cdevents();
        }
        format!("{}.{service}.events", self.0)
    }

    /// The Kafka consumer group of a group.
    pub fn group(&self, group: &str) -> String {
        format!("{}.{group}", self.0)
    }

    /// Where CDEvents go (Kafka topic and NATS subject).
    pub fn cdevents(&self) -> String {
        format!("{}.cdevents", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_starts_from_the_namespace() {
        let ns = Namespace::new("acme-prod").expect("valid");
        assert_eq!(ns.source("governance"), "/acme-prod/governance");
        assert_eq!(
            ns.subject(
                "dependency-mapping",
                "catalog",
                "flotilla.dependency.v1.ServiceRegistered"
            ),
            "acme-prod.dependency-mapping.catalog.ServiceRegistered"
        );
        assert_eq!(
            ns.stream("dependency-mapping"),
            "ACME_PROD_DEPENDENCY_MAPPING"
        );
        assert_eq!(ns.durable("governance"), "acme-prod-governance");
        assert_eq!(ns.topic("governance"), "acme-prod.governance.events");
        assert_eq!(ns.group("governance"), "acme-prod.governance");
        assert_eq!(ns.cdevents(), "acme-prod.cdevents");
        let d = Namespace::default();
        assert_eq!(d.stream("governance"), "FLOTILLA_GOVERNANCE");
        assert_eq!(d.topic("governance"), "flotilla.governance.events");
    }

    #[test]
    fn bad_namespaces_are_refused() {
        for bad in [
            "",
            "Acme",
            "a.b",
            "a_b",
            "-a",
            "a-",
            "1a",
            &"a".repeat(33),
            "a b",
        ] {
            assert!(Namespace::new(bad).is_err(), "{bad:?}");
        }
    }
}
