//! What the binary's tests share: running `flotilla` as a user would, a `flotilla up` on a
//! folder of its own, tokens for it, and reading what a run printed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub fn flotilla() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    c.env_remove("FLOTILLA_CONFIG").env("RUST_LOG", "warn");
    c
}

/// `flotilla up` with data in `dir/data` (and `dir/flotilla.toml` when there is one); answers
/// the child and its URL once it listens.
pub fn up(dir: &Path) -> (Child, String) {
    let mut cmd = flotilla();
    cmd.args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"));
    if dir.join("flotilla.toml").exists() {
        cmd.arg("--config").arg(dir.join("flotilla.toml"));
    }
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn flotilla up");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("flotilla up printed its address")
            .expect("line");
        if let Some(rest) = line.strip_prefix("flotilla up: six services on ") {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    // The node's warnings and errors go to the test's stderr (shown when the test fails).
    std::thread::spawn(move || {
        lines
            .map_while(Result::ok)
            .for_each(|l| eprintln!("flotilla up: {l}"))
    });
    (child, format!("http://{addr}"))
}

/// A token issued by `flotilla token issue` with the keys `keys` names (`--data-dir D` or
/// `--config F`).
fn issue_token(keys: (&str, &Path), subject: &str, role: &str, bu: &str) -> String {
    let out = flotilla()
        .args([
            "token",
            "issue",
            "--subject",
            subject,
            "--role",
            role,
            "--bu",
            bu,
            keys.0,
        ])
        .arg(keys.1)
        .output()
        .expect("token issue");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A token for the node whose data is in `dir/data`.
pub fn token(dir: &Path, subject: &str, role: &str, bu: &str) -> String {
    issue_token(("--data-dir", &dir.join("data")), subject, role, bu)
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `flotilla serve SERVICE` on `port` with `config`, its log in `log`.
pub fn serve(config: &Path, service: &str, port: u16, log: &Path) -> Child {
    serve_with(config, service, port, log, &[])
}

/// As [`serve`], with more environment variables.
pub fn serve_with(
    config: &Path,
    service: &str,
    port: u16,
    log: &Path,
    env: &[(&str, &str)],
) -> Child {
    flotilla()
        .args([
            "serve",
            service,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(config)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("flotilla serve")
}

/// A token issued with the keys a config file names.
pub fn token_for_config(config: &Path, subject: &str, role: &str, bu: &str) -> String {
    issue_token(("--config", config), subject, role, bu)
}

/// Stops a node with SIGTERM and waits for it.
pub fn stop(mut node: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status();
    let _ = node.wait();
}

/// What a run printed, stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A run's stdout as JSON.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `flotilla <args>` as the holder of `token` against `url` (the noun's --addr).
pub fn as_user(token: &str, url: &str, noun: &str, args: &[&str]) -> Output {
    flotilla()
        .env("FLOTILLA_TOKEN", token)
        .args([noun, "--addr", url])
        .args(args)
        .output()
        .expect("run flotilla")
}

/// The run, which must have succeeded.
pub fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", text(&out));
    out
}

/// Imports a one-component Backstage catalog (payments-api, tier 3) as `admin`.
pub fn import_catalog(dir: &Path, admin: &str, url: &str) {
    let yaml = dir.join("catalog-info.yaml");
    std::fs::write(
        &yaml,
        "kind: Component\nmetadata: { name: payments-api, annotations: { flotilla.dev/criticality-tier: \"3\" } }\nspec: { owner: payments-core, system: payments }\n",
    )
    .expect("write catalog");
    ok(as_user(
        admin,
        url,
        "catalog",
        &["import", &yaml.to_string_lossy()],
    ));
}

/// A dependency-mapping client on `port` once the service there answers (it lists services);
/// `why` is added to the panic when it never does.
pub async fn catalog_client(
    port: u16,
    token: &str,
    why: impl Fn() -> String,
) -> flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, flotilla_auth::Bearer>,
>{
    use flotilla_proto::dependency::v1 as pb;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Ok(ch) = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("url")
            .connect()
            .await
        {
            let mut c = pb::dependency_mapping_service_client::DependencyMappingServiceClient::new(
                tonic::service::interceptor::InterceptedService::new(
                    ch,
                    flotilla_auth::Bearer::new(token),
                ),
            );
            if c.list_services(pb::ListServicesRequest::default())
                .await
                .is_ok()
            {
                return c;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the service on {port} never served\n{}",
            why()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A configuration file `dir/flotilla.toml` for `flotilla serve` on the test PostgreSQL and
/// NATS in a fresh namespace, with `extra` lines; answers its path and the namespace.
pub fn served_config(dir: &Path, extra: &str) -> (std::path::PathBuf, String) {
    let namespace = flotilla_tests::fresh_namespace();
    let config = dir.join("flotilla.toml");
    std::fs::write(
        &config,
        format!(
            "namespace = \"{namespace}\"\nstore_url = \"{pg}\"\nnats_url = \"{nats}\"\nbuses = [\"nats\"]\n\
             auth_hs256_secret = \"served-secret-for-the-tests-0123456789\"\naccess_policy_source = \"none\"\n\
             data_dir = \"{data}\"\n{extra}",
            pg = flotilla_tests::postgres_url(),
            nats = flotilla_tests::nats_url(),
            data = dir.join("data").display(),
        ),
    )
    .expect("config");
    (config, namespace)
}

/// A catalog entry for a service `name` of team-a in the central unit.
pub fn catalog_entry(name: &str) -> flotilla_proto::dependency::v1::ServiceEntry {
    use flotilla_proto::dependency::v1 as pb;
    pb::ServiceEntry {
        name: name.into(),
        owner_team: "team-a".into(),
        business_unit: "central".into(),
        criticality_tier: 3,
        handles_personal_data: false,
        data_classification: pb::DataClassification::Internal as i32,
        runtime: pb::Runtime::Microservice as i32,
    }
}
