//! Configuration: a TOML file, then `FLOTILLA_<KEY>` environment variables over it. Lists are
//! comma-separated in variables (`FLOTILLA_BUSES=nats,kafka`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key {key} is not valid: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("environment variable {name}={value:?} is not valid: {message}")]
    Env {
        name: String,
        value: String,
        message: String,
    },
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// Which buses a node publishes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    Nats,
    Kafka,
    Inprocess,
}

/// Flotilla's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The deployment's namespace: prefixes every NATS subject, JetStream stream and durable
    /// consumer, Kafka topic and consumer group, CloudEvents source and PostgreSQL schema, so
    /// deployments sharing brokers or a database never see each other's events.
    pub namespace: String,
    /// Address the gRPC server listens on.
    pub listen: String,
    /// Address of the HTTP server with Prometheus metrics on `/metrics` (empty: none).
    pub metrics_listen: String,
    /// The gRPC edge's certificate chain (PEM); with `tls_key`, the node serves TLS only.
    pub tls_cert: PathBuf,
    /// The private key of `tls_cert` (PEM; PKCS#8, PKCS#1 or SEC1).
    pub tls_key: PathBuf,
    /// CA certificates (PEM) client certificates are checked against: set, clients must show
    /// one it signed (mutual TLS; see `tls_client_auth`).
    pub tls_client_ca: PathBuf,
    /// `required` (the default when `tls_client_ca` is set) or `optional`: whether a client
    /// without a certificate is refused.
    pub tls_client_auth: String,
    /// CA certificates (PEM) this process trusts when it calls peers over https (default:
    /// `tls_client_ca`); it shows `tls_cert` as its client certificate.
    pub tls_ca: PathBuf,
    /// How often the certificate, key and CA files are read again, in seconds: a renewed
    /// certificate is served to new connections without a restart.
    pub tls_reload_secs: u64,
    /// Folder for embedded data (`flotilla up`: one SQLite file per service).
    pub data_dir: PathBuf,
    /// Event store URL for `flotilla serve` (postgres://… or sqlite://…).
    pub store_url: String,
    /// Where the subject keys that seal personal data live, shared by every service of the
    /// deployment (postgres://…, sqlite://… or memory:). Empty: `store_url` (schema
    /// `<namespace>_keyring`); `flotilla up` keeps `keyring.db` in its data folder.
    pub keyring_url: String,
    /// How long a process trusts a subject key it read, in seconds: an erasure made elsewhere
    /// is seen by every process within this time.
    pub keyring_ttl_secs: u64,
    pub nats_url: String,
    pub kafka_brokers: String,
    /// Buses the relay publishes to in `flotilla serve`.
    pub buses: Vec<BusKind>,
    /// Extra librdkafka producer settings.
    pub kafka_producer: BTreeMap<String, String>,
    /// OTLP gRPC endpoint for traces (e.g. http://127.0.0.1:4317); empty disables export.
    pub otlp_endpoint: String,
    /// Which spans are exported, in `RUST_LOG` syntax (apart from `log`, so quiet logs still
    /// trace).
    pub trace_filter: String,
    /// Log filter in `RUST_LOG` syntax.
    pub log: String,
    /// `text` or `json`.
    pub log_format: String,
    /// JWKS with the RS256 keys tokens are checked against: a file path or an http(s) URL.
    pub auth_jwks: String,
    /// Development only: HS256 secret (at least 32 bytes). `flotilla up` makes one under the
    /// data folder when neither this nor `auth_jwks` is set.
    pub auth_hs256_secret: String,
    /// Audience tokens must be issued for.
    pub auth_audience: String,
    /// Issuer tokens must name; empty accepts any issuer the keys vouch for.
    pub auth_issuer: String,
    /// Cedar policy file used until an admin replaces the policy; empty uses the shipped default.
    pub auth_policy_file: PathBuf,
    /// The service whose access policy replacements every other service follows from the bus.
    /// Empty: the one the binary names (the service among its modules that replaces access
    /// policies); `none`: none is followed.
    pub access_policy_source: String,
    /// The service that replaces access policies only: the Ed25519 key (a file holding the base64 32-byte seed) it signs
    /// access policy replacements with. `flotilla up` makes one under the data folder.
    pub access_policy_signing_key: PathBuf,
    /// Every other service: the base64 Ed25519 public keys an access policy replacement must
    /// be signed with to be adopted. Empty: replacements from the bus are not adopted.
    pub access_policy_verify_keys: Vec<String>,
    /// Largest request message any service accepts, in bytes; larger ones are
    /// RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
    /// How long JetStream remembers event ids to drop republished duplicates, in seconds.
    pub nats_duplicate_window_secs: u64,
    /// How long a service's JetStream stream keeps events, in seconds (0: no age limit).
    pub nats_max_age_secs: u64,
    /// Most bytes a service's JetStream stream keeps, oldest dropped first (-1: no limit;
    /// JetStream reserves a set limit against the server's storage).
    pub nats_max_bytes: i64,
    /// Hash-chain breaks the operator accepts, as `<service>@<position>`: a service whose
    /// store's chain is broken does not serve unless its break is named here; accepting is
    /// recorded in the store as `flotilla.common.v1.ChainBreakAccepted`.
    pub accept_chain_breaks: Vec<String>,
    /// This process's name among a service's replicas (the holder of its leases); empty: the
    /// host name and process id.
    pub replica: String,
    /// At most how long, in seconds, a service's relays and schedulers stay stopped after the
    /// replica running them dies: one replica per service and namespace runs them, under a
    /// lease in the store that another replica takes over once it lapses.
    pub failover_secs: u64,
    /// Per-service sections (`[<service>]`, named as the service is): each service reads its
    /// own (e.g. `snapshot_every`, or a scheduler's tick). Environment variables
    /// `FLOTILLA_<SERVICE>__<KEY>` (service in capitals, `-` as `_`) override them.
    #[serde(skip)]
    pub sections: BTreeMap<String, toml::Table>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: flotilla_bus::naming::DEFAULT_NAMESPACE.into(),
            listen: "127.0.0.1:50051".into(),
            metrics_listen: String::new(),
            data_dir: PathBuf::from(".flotilla"),
            store_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            keyring_url: String::new(),
            keyring_ttl_secs: 10,
            nats_url: "nats://127.0.0.1:4222".into(),
            kafka_brokers: "127.0.0.1:9092".into(),
            buses: vec![BusKind::Nats, BusKind::Kafka],
            kafka_producer: BTreeMap::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            tls_client_ca: PathBuf::new(),
            tls_client_auth: String::new(),
            tls_ca: PathBuf::new(),
            tls_reload_secs: 10,
            otlp_endpoint: String::new(),
            trace_filter: "info".into(),
            log: "info".into(),
            log_format: "text".into(),
            auth_jwks: String::new(),
            auth_hs256_secret: String::new(),
            auth_audience: flotilla_auth::token::DEFAULT_AUDIENCE.into(),
            auth_issuer: String::new(),
            auth_policy_file: PathBuf::new(),
            access_policy_source: String::new(),
            access_policy_signing_key: PathBuf::new(),
            access_policy_verify_keys: Vec::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            nats_duplicate_window_secs: 120,
            nats_max_age_secs: 7 * 24 * 3600,
            nats_max_bytes: -1,
            accept_chain_breaks: Vec::new(),
            replica: String::new(),
            failover_secs: 10,
            sections: BTreeMap::new(),
        }
    }
}

/// Largest request message accepted unless configured otherwise.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

impl Config {
    /// The namespace, checked.
    pub fn namespace(&self) -> Result<flotilla_bus::Namespace> {
        flotilla_bus::Namespace::new(&self.namespace).map_err(|e| ConfigError::Invalid {
            key: "namespace",
            message: format!("{e}; set namespace (FLOTILLA_NAMESPACE)"),
        })
    }

    /// Retention and dedupe of the JetStream streams.
    pub fn nats_limits(&self) -> flotilla_bus::nats::StreamLimits {
        flotilla_bus::nats::StreamLimits {
            duplicate_window: std::time::Duration::from_secs(self.nats_duplicate_window_secs),
            max_age: std::time::Duration::from_secs(self.nats_max_age_secs),
            max_bytes: self.nats_max_bytes,
        }
    }

    /// The chain break positions accepted for a service.
    pub fn accepted_breaks(&self, service: &str) -> Result<Vec<u64>> {
        let invalid = |message: String| ConfigError::Invalid {
            key: "accept_chain_breaks",
            message,
        };
        let mut out = Vec::new();
        for entry in &self.accept_chain_breaks {
            let (svc, pos) = entry.split_once('@').ok_or_else(|| {
                invalid(format!(
                    "{entry:?} is not <service>@<position>, e.g. my-service@42"
                ))
            })?;
            let pos: u64 = pos
                .parse()
                .map_err(|_| invalid(format!("{entry:?}: {pos:?} is not a position")))?;
            if svc == service {
                out.push(pos);
            }
        }
        Ok(out)
    }
}

impl Config {
    /// Loads `path` (if given) and applies the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Loads `path` (if given) and applies the given `FLOTILLA_*` variables.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
        let mut sections: BTreeMap<String, toml::Table> = BTreeMap::new();
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                let mut t: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: p.to_owned(),
                    message: e.to_string(),
                })?;
                // Tables that are not keys of the configuration are services' sections.
                let section_names: Vec<String> = t
                    .iter()
                    .filter(|(k, v)| v.is_table() && !defaults.contains_key(*k))
                    .map(|(k, _)| k.clone())
                    .collect();
                for name in section_names {
                    if let Some(toml::Value::Table(section)) = t.remove(&name) {
                        sections.insert(name.replace('-', "_"), section);
                    }
                }
                // Check the file alone first so its errors name the file.
                t.clone()
                    .try_into::<Config>()
                    .map_err(|e| ConfigError::Parse {
                        path: p.to_owned(),
                        message: e.to_string(),
                    })?;
                t
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("FLOTILLA_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            // FLOTILLA_<SERVICE>__<KEY>: a service's section.
            if let Some((section, field)) = key.split_once("__") {
                if !section.is_empty() && !field.is_empty() {
                    let parsed = value
                        .trim()
                        .parse::<i64>()
                        .map(toml::Value::Integer)
                        .or_else(|_| value.trim().parse::<bool>().map(toml::Value::Boolean))
                        .unwrap_or_else(|_| toml::Value::String(value.clone()));
                    sections
                        .entry(section.to_owned())
                        .or_default()
                        .insert(field.to_owned(), parsed);
                }
                continue;
            }
            // Only this struct's keys: other FLOTILLA_* variables (tests, tools) are not config.
            let Some(default) = defaults.get(&key) else {
                continue;
            };
            let parsed = match default {
                toml::Value::Array(_) => toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_owned()))
                        .collect(),
                ),
                toml::Value::Table(_) => {
                    let mut t = toml::Table::new();
                    for pair in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let (k, v) = pair.split_once('=').ok_or_else(|| ConfigError::Env {
                            name: name.clone(),
                            value: value.clone(),
                            message: "expected key=value pairs separated by commas".into(),
                        })?;
                        t.insert(
                            k.trim().to_owned(),
                            toml::Value::String(v.trim().to_owned()),
                        );
                    }
                    toml::Value::Table(t)
                }
                toml::Value::Integer(_) => match value.trim().parse::<i64>() {
                    Ok(n) => toml::Value::Integer(n),
                    Err(_) => {
                        return Err(ConfigError::Env {
                            name: name.clone(),
                            value: value.clone(),
                            message: "expected a whole number".into(),
                        });
                    }
                },
                toml::Value::Boolean(_) => match value.trim() {
                    "true" | "1" => toml::Value::Boolean(true),
                    "false" | "0" => toml::Value::Boolean(false),
                    _ => {
                        return Err(ConfigError::Env {
                            name: name.clone(),
                            value: value.clone(),
                            message: "expected true or false".into(),
                        });
                    }
                },
                _ => toml::Value::String(value.clone()),
            };
            table.insert(key, parsed);
            // Validate as we go so the error names the variable.
            table
                .clone()
                .try_into::<Config>()
                .map_err(|e| ConfigError::Env {
                    name: name.clone(),
                    value: value.clone(),
                    message: e.to_string(),
                })?;
        }
        let mut config = table.try_into::<Config>().map_err(|e| ConfigError::Parse {
            path: path.map(Path::to_owned).unwrap_or_default(),
            message: e.to_string(),
        })?;
        config.sections = sections;
        Ok(config)
    }

    /// A service's section (empty when it has none).
    pub fn section(&self, service: &str) -> toml::Table {
        self.sections
            .get(&service.replace('-', "_"))
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("flotilla.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\nbuses = [\"kafka\"]\nstore_url = \"sqlite://x.db\"\n[kafka_producer]\n\"batch.num.messages\" = \"1\"\n").expect("write");
        let c = Config::load_with_env(
            Some(&path),
            env(&[
                ("FLOTILLA_STORE_URL", "postgres://db/x"),
                ("FLOTILLA_TEST_POSTGRES_URL", "ignored"),
                ("OTHER", "x"),
            ]),
        )
        .expect("load");
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.buses, vec![BusKind::Kafka]);
        assert_eq!(c.store_url, "postgres://db/x");
        assert_eq!(
            c.kafka_producer
                .get("batch.num.messages")
                .map(String::as_str),
            Some("1")
        );
        let c = Config::load_with_env(
            Some(&path),
            env(&[
                ("FLOTILLA_BUSES", "nats, kafka"),
                ("FLOTILLA_KAFKA_PRODUCER", "linger.ms=5"),
            ]),
        )
        .expect("load");
        assert_eq!(c.buses, vec![BusKind::Nats, BusKind::Kafka]);
        assert_eq!(
            c.kafka_producer.get("linger.ms").map(String::as_str),
            Some("5")
        );
        let c = Config::load_with_env(
            None,
            env(&[
                ("FLOTILLA_NAMESPACE", "acme-prod"),
                ("FLOTILLA_MAX_MESSAGE_BYTES", "65536"),
                ("FLOTILLA_NATS_MAX_AGE_SECS", "3600"),
                ("FLOTILLA_ACCEPT_CHAIN_BREAKS", "ledger@42, billing-run@7"),
            ]),
        )
        .expect("load");
        assert_eq!(c.namespace().expect("ns").as_str(), "acme-prod");
        assert_eq!(c.max_message_bytes, 65_536);
        assert_eq!(c.nats_limits().max_age.as_secs(), 3600);
        assert_eq!(c.accepted_breaks("ledger").expect("breaks"), vec![42]);
        let e = Config::load_with_env(None, env(&[("FLOTILLA_MAX_MESSAGE_BYTES", "lots")]))
            .expect_err("not a number");
        assert!(e.to_string().contains("FLOTILLA_MAX_MESSAGE_BYTES"), "{e}");
        // Services' sections, from the file and the environment.
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\n[ledger]\ntick_secs = 5\n[billing-run]\nsnapshot_every = 100\n",
        )
        .expect("write");
        let c = Config::load_with_env(
            Some(&path),
            env(&[("FLOTILLA_BILLING_RUN__SNAPSHOT_EVERY", "7")]),
        )
        .expect("sections");
        assert_eq!(
            c.section("ledger").get("tick_secs"),
            Some(&toml::Value::Integer(5))
        );
        assert_eq!(
            c.section("billing-run").get("snapshot_every"),
            Some(&toml::Value::Integer(7))
        );
        let c = Config::load_with_env(None, env(&[("FLOTILLA_NAMESPACE", "Bad.Name")]))
            .expect("loads; checked when used");
        assert!(c.namespace().is_err());
    }

    #[test]
    fn bad_values_name_their_source() {
        let e = Config::load_with_env(None, env(&[("FLOTILLA_BUSES", "nats,carrier-pigeon")]))
            .expect_err("bad bus");
        assert!(e.to_string().contains("FLOTILLA_BUSES"), "{e}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "lisen = \"typo\"\n").expect("write");
        let e = Config::load_with_env(Some(&path), env(&[])).expect_err("unknown key");
        assert!(
            e.to_string().contains("bad.toml") && e.to_string().contains("lisen"),
            "{e}"
        );
        assert!(Config::load_with_env(Some(Path::new("/nonexistent/f.toml")), env(&[])).is_err());
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn shipped_example_config_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/flotilla.example.toml");
        let c =
            super::Config::load_with_env(Some(&path), Vec::new()).expect("example config is valid");
        assert_eq!(c.listen, "0.0.0.0:50051");
    }
}
