//! `flotilla demo` as a newcomer runs it: beside `flotilla up` on embedded defaults, and against
//! the services running apart as `flotilla serve` processes on PostgreSQL, once with NATS and
//! once with Kafka between them. The demo exits 0 only when its story happened as told (the
//! refusals refused, the deployments deployed, the failed canary rolled back); its output says
//! each part.

use std::path::Path;
use std::process::{Child, Output, Stdio};

mod support;
use support::{flotilla, stop, text, up};

/// What the story must say it did.
fn told_the_story(out: &Output) {
    let said = text(out);
    assert!(out.status.success(), "the demo failed:\n{said}");
    for part in [
        "12 services of two units imported from a Backstage catalog-info.yaml",
        "GPL-3.0-only is not on the policy's allow-list",
        "risk-validation scored it",
        "rita, its author, may not approve it",
        "payments-2.0.0 into prod is blocked, with every reason",
        "dev: check smoke has not been recorded for release payments-2.0.0",
        "freeze window \"cards quarter-end close\" is active",
        "CapacityConflict: pg-shared takes 1 deployment(s) at once",
        "deploy-switch: succeeded",
        "risk-validation judged the canary: score 100 (pass)",
        "risk-validation judged the canary: score 0 (fail)",
        "analysis (canary-judge): failed",
        "cards-api (none before) rollback rollback-deploy: succeeded",
        "rolled-back: step",
    ] {
        assert!(
            said.contains(part),
            "the demo did not say {part:?}:\n{said}"
        );
    }
    // It ends with the audit report's path: the rolled-back release from source to rollback,
    // the canary's judgement among it, every line proven.
    let path = said
        .lines()
        .find_map(|l| l.strip_prefix("audit report of cards-2.0.0: "))
        .unwrap_or_else(|| panic!("no audit report path:\n{said}"));
    let page = std::fs::read_to_string(path.trim()).expect("the report's page");
    // And with what ran in prod at its end: payments-2.0.0's services, not the rolled-back
    // cards release.
    let prod = said
        .lines()
        .find_map(|l| l.strip_prefix("audit report of prod now: "))
        .unwrap_or_else(|| panic!("no prod report path:\n{said}"));
    let prod = std::fs::read_to_string(prod.trim()).expect("the prod report's page");
    let title = prod
        .split("<span id=\"release\">")
        .nth(1)
        .and_then(|t| t.split("</span>").next())
        .expect("a title");
    assert!(title.starts_with("prod at "), "{title}");
    assert!(
        title.contains("(payments-2.0.0)") && !title.contains("cards-2.0.0"),
        "{title}"
    );
    for part in [
        "<span id=\"release\">cards-2.0.0</span>",
        "flotilla.orchestration.v1.ReleaseCreated",
        "flotilla.risk.v1.CanaryJudged",
        "flotilla.orchestration.v1.RollbackStarted",
        "Signed checkpoint",
    ] {
        assert!(page.contains(part), "the report lacks {part:?}");
    }
}

#[test]
fn the_demo_tells_its_story_beside_flotilla_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, url) = up(dir.path());
    let out = flotilla()
        .args(["demo", "--addr", &url, "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--report-dir")
        .arg(dir.path().join("report"))
        .output()
        .expect("demo");
    stop(node);
    told_the_story(&out);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn fresh_namespace() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("t{:012x}{}", now.as_millis(), &random[..12])
}

fn serve(config: &Path, service: &str, port: u16, log: &Path) -> Child {
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
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("flotilla serve")
}

/// Four `flotilla serve` processes on PostgreSQL and one bus; the demo against their addresses.
fn apart(bus: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gov, cat, orch, risk, comp) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let postgres = std::env::var("FLOTILLA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let nats =
        std::env::var("FLOTILLA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let kafka =
        std::env::var("FLOTILLA_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let config = dir.path().join("flotilla.toml");
    std::fs::write(
        &config,
        format!(
            "namespace = \"{}\"\nstore_url = \"{postgres}\"\nnats_url = \"{nats}\"\nkafka_brokers = \"{kafka}\"\nbuses = [\"{bus}\"]\n\
             auth_hs256_secret = \"demo-secret-for-the-e2e-test-0123456789\"\naccess_policy_source = \"none\"\ndata_dir = \"{data}\"\n\
             [kafka_producer]\n\"batch.num.messages\" = \"1\"\n\
             [orchestration]\ngovernance_url = \"http://127.0.0.1:{gov}\"\ndependency_mapping_url = \"http://127.0.0.1:{cat}\"\n",
            fresh_namespace(),
            data = dir.path().join("data").display()
        ),
    )
    .expect("config");
    let nodes = [
        serve(
            &config,
            "governance",
            gov,
            &dir.path().join("governance.log"),
        ),
        serve(
            &config,
            "dependency-mapping",
            cat,
            &dir.path().join("dependency-mapping.log"),
        ),
        serve(
            &config,
            "orchestration",
            orch,
            &dir.path().join("orchestration.log"),
        ),
        serve(
            &config,
            "risk-validation",
            risk,
            &dir.path().join("risk-validation.log"),
        ),
        serve(
            &config,
            "compliance",
            comp,
            &dir.path().join("compliance.log"),
        ),
    ];
    let out = flotilla()
        .args(["demo", "--config"])
        .arg(&config)
        .args([
            "--governance-addr",
            &format!("http://127.0.0.1:{gov}"),
            "--catalog-addr",
            &format!("http://127.0.0.1:{cat}"),
            "--orchestration-addr",
            &format!("http://127.0.0.1:{orch}"),
            "--risk-addr",
            &format!("http://127.0.0.1:{risk}"),
            "--compliance-addr",
            &format!("http://127.0.0.1:{comp}"),
            "--report-dir",
        ])
        .arg(dir.path().join("report"))
        .output()
        .expect("demo");
    for n in nodes {
        stop(n);
    }
    if !out.status.success() {
        for s in [
            "governance",
            "dependency-mapping",
            "orchestration",
            "risk-validation",
            "compliance",
        ] {
            let log =
                std::fs::read_to_string(dir.path().join(format!("{s}.log"))).unwrap_or_default();
            eprintln!(
                "---- {s} ----\n{}",
                log.lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    told_the_story(&out);
}

#[test]
fn the_demo_runs_against_services_apart_on_nats() {
    apart("nats");
}

#[test]
fn the_demo_runs_against_services_apart_on_kafka() {
    apart("kafka");
}
