//! `flotilla doctor`: the configuration checked against what it names. PostgreSQL reachable,
//! each service's store present in its schema, the keyring, the clock against the database's,
//! NATS with JetStream and each service's stream, Kafka and each service's topic; each check
//! says what to do when it does not hold; the TLS files and when their certificates end. Exit 1
//! when a check failed.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use flotilla_bus::Namespace;
use flotilla_runtime::Config;
use flotilla_runtime::config::BusKind;
use serde::Serialize;

use crate::format::print_json;
use crate::output::{Output, table};

/// How long any one check waits for what it asks.
const WAIT: Duration = Duration::from_secs(5);
/// Clock skew from the database's clock that is worth a warning, and a failure.
const SKEW_WARN: f64 = 1.0;
const SKEW_FAIL: f64 = 30.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub result: Verdict,
    pub detail: String,
}

fn check(name: impl Into<String>, result: Verdict, detail: impl Into<String>) -> Check {
    Check {
        check: name.into(),
        result,
        detail: detail.into(),
    }
}

/// PostgreSQL: reachable, the clock, each service's store, the keyring.
async fn postgres(config: &Config, ns: &Namespace, services: &[&str], out: &mut Vec<Check>) {
    let url = &config.store_url;
    let opts = match sqlx::postgres::PgConnectOptions::from_str(url) {
        Ok(o) => o,
        Err(e) => {
            out.push(check("postgres", Verdict::Fail, format!("store_url is not a PostgreSQL URL ({e}); set store_url (FLOTILLA_STORE_URL) to postgres://user@host:5432/db")));
            return;
        }
    };
    let pool = match sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(WAIT)
        .connect_with(opts)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            out.push(check("postgres", Verdict::Fail, format!("cannot connect with store_url ({e}); is PostgreSQL running and the URL right (FLOTILLA_STORE_URL)?")));
            return;
        }
    };
    let version: Result<String, _> = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await;
    out.push(match version {
        Ok(v) => check("postgres", Verdict::Ok, format!("PostgreSQL {v} reachable")),
        Err(e) => check(
            "postgres",
            Verdict::Fail,
            format!("connected but cannot query ({e})"),
        ),
    });
    let theirs: Result<f64, _> =
        sqlx::query_scalar("SELECT extract(epoch FROM clock_timestamp())::float8")
            .fetch_one(&pool)
            .await;
    if let Ok(theirs) = theirs {
        let ours = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let skew = ours - theirs;
        let verdict = if skew.abs() >= SKEW_FAIL {
            Verdict::Fail
        } else if skew.abs() >= SKEW_WARN {
            Verdict::Warn
        } else {
            Verdict::Ok
        };
        let mut detail = format!("{skew:+.3} s from the database's clock");
        if verdict != Verdict::Ok {
            detail.push_str(
                "; events are stamped with this host's clock: run NTP (chrony, systemd-timesyncd)",
            );
        }
        out.push(check("clock", verdict, detail));
    }
    pool.close().await;
    for s in services {
        let schema = flotilla_store::schema_for(ns.as_str(), s);
        use flotilla_core::store::EventStore;
        match flotilla_store::PgStore::connect_existing(url, &schema).await {
            Ok(store) => {
                out.push(match store.head().await {
                    Ok(h) => check(format!("store {s}"), Verdict::Ok, format!("schema {schema}, {} events", h.position)),
                    Err(e) => check(format!("store {s}"), Verdict::Fail, format!("schema {schema} cannot be read ({e})")),
                });
                out.push(schema_version(&store, s).await);
                out.push(lease(&store, s).await);
            }
            Err(_) => out.push(check(
                format!("store {s}"),
                Verdict::Warn,
                format!("no store in schema {schema} yet; `flotilla serve {s}` creates it at its first start (or check namespace)"),
            )),
        }
    }
    let keyring = if config.keyring_url.is_empty() {
        url.clone()
    } else {
        config.keyring_url.clone()
    };
    out.push(match flotilla_store::open_keyring(&keyring, ns.as_str()).await {
        Ok(_) if keyring.starts_with("memory:") => check("keyring", Verdict::Fail, "keyring_url is memory:, which loses every subject key at a restart; leave it empty (the store's database) or give a postgres:// URL"),
        Ok(_) => check("keyring", Verdict::Ok, format!("subject keys at {}", flotilla_runtime::config_sources::mask_url(&keyring))),
        Err(e) => check("keyring", Verdict::Fail, format!("{e}; check keyring_url (FLOTILLA_KEYRING_URL)")),
    });
}

/// Whether a service's store is at the schema this build writes.
async fn schema_version(store: &flotilla_store::PgStore, service: &str) -> Check {
    let name = format!("schema {service}");
    match store.schema_version().await {
        Ok((applied, known)) if applied == known => check(
            name,
            Verdict::Ok,
            format!("migration {applied}, as this build"),
        ),
        Ok((applied, known)) if applied < known => check(
            name,
            Verdict::Warn,
            format!(
                "migration {applied} of {known}: `flotilla serve {service}` of this build migrates it at its start"
            ),
        ),
        Ok((applied, known)) => check(
            name,
            Verdict::Fail,
            format!(
                "migration {applied}, newer than this build's {known}: a newer build migrated the store; upgrade this one"
            ),
        ),
        Err(e) => check(
            name,
            Verdict::Fail,
            format!("the migrations cannot be read ({e})"),
        ),
    }
}

/// Who runs a service's relays and schedulers: the holder of its duty lease.
async fn lease(store: &dyn flotilla_core::store::EventStore, service: &str) -> Check {
    let name = format!("lease {service}");
    match store
        .lease(&flotilla_runtime::duty::lease_name(service))
        .await
    {
        Ok(Some(l)) if !l.expired() => check(
            name,
            Verdict::Ok,
            format!(
                "held by {} (term {}), {:.1} s left unless renewed: it runs the relays and schedulers",
                l.holder,
                l.token,
                l.expires_in.as_secs_f64()
            ),
        ),
        Ok(Some(l)) => check(
            name,
            Verdict::Warn,
            format!(
                "lapsed (last held by {}, term {}): no replica runs {service}'s relays and schedulers; start `flotilla serve {service}` or see why its replicas stopped",
                l.holder, l.token
            ),
        ),
        Ok(None) => check(
            name,
            Verdict::Warn,
            format!(
                "never taken: no replica of {service} has run yet (or it runs a build without leases)"
            ),
        ),
        Err(e) => check(
            name,
            Verdict::Fail,
            format!("the lease cannot be read ({e})"),
        ),
    }
}

/// NATS: reachable, JetStream on, each service's stream.
async fn nats(config: &Config, ns: &Namespace, services: &[&str], out: &mut Vec<Check>) {
    let url = &config.nats_url;
    let client = match tokio::time::timeout(WAIT, async_nats::connect(url)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            out.push(check("nats", Verdict::Fail, format!("cannot connect to {url} ({e}); is nats-server running, and nats_url (FLOTILLA_NATS_URL) right?")));
            return;
        }
        Err(_) => {
            out.push(check(
                "nats",
                Verdict::Fail,
                format!(
                    "{url} did not answer in {} s; check nats_url (FLOTILLA_NATS_URL)",
                    WAIT.as_secs()
                ),
            ));
            return;
        }
    };
    // JetStream's account info, read as JSON (the server's fields vary by version).
    let info =
        tokio::time::timeout(WAIT, client.request("$JS.API.INFO", bytes::Bytes::new())).await;
    let js = async_nats::jetstream::new(client);
    match info {
        Ok(Ok(m)) => {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_default();
            if let Some(e) = v.get("error") {
                out.push(check("nats", Verdict::Fail, format!("JetStream refuses at {url} ({e}); enable it (nats-server -js, or jetstream {{}} in its config)")));
                return;
            }
            let streams = v
                .get("streams")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            out.push(check(
                "nats",
                Verdict::Ok,
                format!("JetStream on at {url} ({streams} streams)"),
            ));
        }
        Ok(Err(e)) => {
            out.push(check("nats", Verdict::Fail, format!("JetStream does not answer at {url} ({e}); enable it (nats-server -js, or jetstream {{}} in its config)")));
            return;
        }
        Err(_) => {
            out.push(check(
                "nats",
                Verdict::Fail,
                format!(
                    "JetStream at {url} did not answer in {} s; is it enabled (nats-server -js)?",
                    WAIT.as_secs()
                ),
            ));
            return;
        }
    }
    for s in services {
        let name = ns.stream(s);
        out.push(
            match tokio::time::timeout(WAIT, js.get_stream(&name)).await {
                Ok(Ok(_)) => check(format!("nats stream {s}"), Verdict::Ok, name),
                _ => check(
                    format!("nats stream {s}"),
                    Verdict::Warn,
                    format!(
                        "no stream {name} yet; the service's relay creates it at its first start"
                    ),
                ),
            },
        );
    }
}

/// Kafka: reachable, each service's topic.
fn kafka(config: &Config, ns: &Namespace, services: &[&str], out: &mut Vec<Check>) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let brokers = &config.kafka_brokers;
    let consumer: Result<BaseConsumer, _> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("socket.timeout.ms", "5000")
        .create();
    let metadata = consumer.and_then(|c| c.fetch_metadata(None, WAIT));
    let metadata = match metadata {
        Ok(m) => m,
        Err(e) => {
            out.push(check("kafka", Verdict::Fail, format!("no metadata from {brokers} ({e}); is the broker running, and kafka_brokers (FLOTILLA_KAFKA_BROKERS) right?")));
            return;
        }
    };
    out.push(check(
        "kafka",
        Verdict::Ok,
        format!(
            "{} brokers at {brokers}, {} topics",
            metadata.brokers().len(),
            metadata.topics().len()
        ),
    ));
    for s in services {
        let topic = ns.topic(s);
        let found = metadata.topics().iter().any(|t| t.name() == topic);
        out.push(if found {
            check(format!("kafka topic {s}"), Verdict::Ok, topic)
        } else {
            check(
                format!("kafka topic {s}"),
                Verdict::Warn,
                format!("no topic {topic} yet; the service's relay creates it at its first start"),
            )
        });
    }
}

/// A certificate this close to its end is worth a warning.
const EXPIRY_WARN_DAYS: u64 = 14;

/// The TLS files: that they make a configuration (a key matching its certificate, a usable CA)
/// and when each file's certificates stop being valid.
fn certificates(config: &Config, out: &mut Vec<Check>) {
    match flotilla_runtime::tls::TlsFiles::from_config(config) {
        Ok(Some(files)) => match flotilla_runtime::tls::ServerTls::load(files.clone()) {
            Ok(t) => out.push(check(
                "tls",
                Verdict::Ok,
                format!(
                    "serving TLS with {}; client certificates {}",
                    files.cert.display(),
                    t.client_auth()
                ),
            )),
            Err(e) => out.push(check("tls", Verdict::Fail, e.to_string())),
        },
        Ok(None) => {}
        Err(e) => {
            out.push(check("tls", Verdict::Fail, e.to_string()));
            return;
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (key, path) in [
        ("tls_cert", &config.tls_cert),
        ("tls_client_ca", &config.tls_client_ca),
        ("tls_ca", &config.tls_ca),
    ] {
        if !path.as_os_str().is_empty() {
            out.push(expiry(key, path, now));
        }
    }
}

/// When the first certificate of a file to stop being valid does, against `now`.
fn expiry(key: &str, path: &std::path::Path, now: u64) -> Check {
    let name = format!("{key} expiry");
    let certs = std::fs::read(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|pem| flotilla_runtime::tls::certificates(path, &pem).map_err(|e| e.to_string()));
    let ends = certs.and_then(|certs| {
        certs
            .iter()
            .map(flotilla_runtime::tls::not_after)
            .collect::<Result<Vec<u64>, String>>()
    });
    let ends = match ends {
        Ok(ends) => ends,
        Err(e) => return check(name, Verdict::Fail, format!("{e}; set {key} to a PEM file")),
    };
    // A CA bundle still works while one of its CAs is valid (one expiring during a rotation
    // is a warning); a certificate chain needs every certificate.
    let bundle = key != "tls_cert";
    let first_end = ends.iter().copied().min().unwrap_or(0);
    let last_end = ends.iter().copied().max().unwrap_or(0);
    if bundle && first_end <= now && last_end > now {
        return check(
            name,
            Verdict::Warn,
            format!(
                "{} holds an expired CA among {} (the others are valid); remove it",
                path.display(),
                ends.len()
            ),
        );
    }
    let end = first_end;
    let at = time::OffsetDateTime::from_unix_timestamp(i64::try_from(end).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| end.to_string());
    let shown = path.display();
    if end <= now {
        return check(
            name,
            Verdict::Fail,
            format!(
                "{shown} expired at {at}; renew it (a running node picks the new file up within tls_reload_secs)"
            ),
        );
    }
    let days = (end - now) / 86_400;
    if days < EXPIRY_WARN_DAYS {
        check(
            name,
            Verdict::Warn,
            format!("{shown} expires at {at}, in {days} day(s); renew it before then"),
        )
    } else {
        check(
            name,
            Verdict::Ok,
            format!("{shown} valid until {at} ({days} days)"),
        )
    }
}

/// Every check of a configuration, for the given services (all six when none).
pub async fn checks(config: &Config, services: &[String]) -> Vec<Check> {
    let mut out = Vec::new();
    let ns = match config.namespace() {
        Ok(ns) => ns,
        Err(e) => {
            out.push(check("config", Verdict::Fail, e.to_string()));
            return out;
        }
    };
    let all = flotilla_platform::names();
    let services: Vec<&str> = if services.is_empty() {
        all
    } else {
        services.iter().map(String::as_str).collect()
    };
    out.push(check(
        "config",
        Verdict::Ok,
        format!("namespace {}, buses {:?}", ns.as_str(), config.buses),
    ));
    certificates(config, &mut out);
    postgres(config, &ns, &services, &mut out).await;
    if config.buses.contains(&BusKind::Nats) {
        nats(config, &ns, &services, &mut out).await;
    }
    if config.buses.contains(&BusKind::Kafka) {
        kafka(config, &ns, &services, &mut out);
    }
    out
}

pub async fn run(
    config: &Config,
    output: Output,
    services: Vec<String>,
) -> anyhow::Result<ExitCode> {
    for s in &services {
        flotilla_platform::by_name(s)?;
    }
    let found = checks(config, &services).await;
    match output {
        Output::Json => print_json(&found)?,
        Output::Table => table(
            &["check", "result", "detail"],
            &found
                .iter()
                .map(|c| {
                    vec![
                        c.check.clone(),
                        match c.result {
                            Verdict::Ok => "ok".into(),
                            Verdict::Warn => "warn".into(),
                            Verdict::Fail => "FAIL".into(),
                        },
                        c.detail.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
    Ok(if found.iter().any(|c| c.result == Verdict::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
