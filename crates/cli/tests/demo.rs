//! `flotilla demo` as a newcomer runs it: beside `flotilla up` on embedded defaults, and against
//! the services running apart as `flotilla serve` processes on PostgreSQL, once with NATS and
//! once with Kafka between them. The demo exits 0 only when its story happened as told (the
//! refusals refused, the deployments deployed, the failed canary rolled back); its output says
//! each part.

use std::path::Path;
use std::process::{Child, Output};

mod support;
use support::{as_user, flotilla, free_port, json, ok, serve, stop, text, token, up};

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
        "cards asks to deviate from its freeze for cards-2.0.0 into prod",
        "security, a second role, approves the deviation",
        "monitoring watches payments-api in prod after payments-2.0.0: error_rate above 0.02",
        "monitoring records the breach and asks for a rollback",
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
    // And with what ran in prod before the breach: payments-2.0.0's services, not the
    // rolled-back cards release.
    let prod = said
        .lines()
        .find_map(|l| l.strip_prefix("audit report of prod before the breach: "))
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

/// A service's head position in `flotilla status --output json`.
fn service_head(heads: &serde_json::Value, service: &serde_json::Value) -> Option<u64> {
    heads
        .as_array()?
        .iter()
        .find(|h| h["service"] == *service)?["head_position"]
        .as_u64()
}

/// What compliance answers of the demo's history: a release as of an instant, what each
/// approver of cards' prod request knew, and the controls' evidence pack of the demo's period.
fn point_in_time_and_controls(dir: &Path, url: &str, began: &str) {
    let auditor = token(dir, "audrey", "auditor", "central");
    let audit = |args: &[&str]| as_user(&auditor, url, "audit", args);

    let state = json(&ok(audit(&[
        "--output",
        "json",
        "state",
        "release",
        "cards-2.0.0",
        "--service",
        "orchestration",
    ])));
    let release = &state["states"][0];
    assert_eq!(release["aggregate"], "release", "{state}");
    assert!(
        release["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["name"] == "release.name" && f["values"][0] == "cards-2.0.0"),
        "{release}"
    );
    let events = release["events"].as_array().expect("events");
    assert!(events.len() >= 2, "created and planned: {release}");
    assert!(
        events
            .iter()
            .all(|e| !e["leaf_hex"].as_str().unwrap_or_default().is_empty())
    );
    // Before the demo began, the release did not exist.
    let before = audit(&[
        "state",
        "release",
        "cards-2.0.0",
        "--at",
        "2020-01-01T00:00:00Z",
    ]);
    assert!(!before.status.success());
    assert!(
        text(&before).contains("holds no \"release\" aggregate named"),
        "{}",
        text(&before)
    );

    let requests = json(&ok(as_user(
        &auditor,
        url,
        "governance",
        &[
            "--output",
            "json",
            "approvals",
            "list",
            "--release",
            "cards-2.0.0",
        ],
    )));
    let prod = requests
        .as_array()
        .and_then(|r| r.iter().find(|r| r["environment"] == "prod"))
        .unwrap_or_else(|| panic!("no prod request: {requests}"));
    let id = prod["request_id"].as_str().expect("id");
    let known = json(&ok(audit(&["--output", "json", "evidence", id])));
    let given = known["approvals"].as_array().expect("approvals");
    assert!(!given.is_empty(), "{known}");
    for a in given {
        let digest = a["evidence_digest"].as_str().unwrap_or_default();
        assert_eq!(digest.len(), 64, "{a}");
        // The approver knew the release's creation; nothing recorded after the approval.
        let evidence = a["evidence"].as_array().expect("evidence");
        assert!(
            evidence
                .iter()
                .any(|e| e["event_type"] == "flotilla.orchestration.v1.ReleaseCreated"),
            "{a}"
        );
        let at = a["approval"]["recorded_at"].as_str().expect("approved at");
        assert!(
            evidence
                .iter()
                .all(|e| e["recorded_at"].as_str() <= Some(at)),
            "{a}"
        );
    }

    // The pack is of what the ledger holds: wait until it linked every service to its head.
    let heads = json(&ok(as_user(&auditor, url, "status", &["--output", "json"])));
    let services: Vec<&serde_json::Value> = heads
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| &h["service"])
        .filter(|s| *s != "compliance")
        .collect();
    assert_eq!(services.len(), 5, "{heads}");
    for _ in 0..150 {
        let sources = json(&ok(audit(&["--output", "json", "sources"])));
        let linked = |service: &&serde_json::Value| {
            sources.as_array().into_iter().flatten().any(|c| {
                c["service"] == **service
                    && c["linked_to"].as_u64() >= service_head(&heads, service)
            })
        };
        if services.iter().all(linked) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let pack = json(&ok(audit(&[
        "--output", "json", "controls", "--from", began,
    ])));
    let control = |id: &str| -> serde_json::Value {
        pack["controls"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("no control {id}: {pack}"))
    };
    // The deviation from the freeze: justified, compensated, bounded, a second person's.
    let register = control("deviation-register");
    assert_eq!(
        (
            register["population"].as_u64(),
            register["conclusion"].as_str()
        ),
        (Some(1), Some("effective")),
        "{register}"
    );
    assert_eq!(
        register["samples"][0]["events"].as_array().map(Vec::len),
        Some(2)
    );
    // Every approval given by someone independent; rita's refused self-approval operated it.
    let sod = control("segregation-of-duties");
    assert_eq!(sod["conclusion"], "effective", "{sod}");
    assert!(
        sod["population"].as_u64() > Some(1)
            && !sod["operated"].as_array().expect("operated").is_empty(),
        "{sod}"
    );
    assert_eq!(control("ledger-integrity")["conclusion"], "effective");
    assert_eq!(control("embargo")["conclusion"], "not exercised");
}

#[test]
fn the_demo_tells_its_story_beside_flotilla_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, url) = up(dir.path());
    let began = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("now");
    let out = flotilla()
        .args(["demo", "--addr", &url, "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--report-dir")
        .arg(dir.path().join("report"))
        .output()
        .expect("demo");
    if out.status.success() {
        point_in_time_and_controls(dir.path(), &url, &began);
    }
    stop(node);
    told_the_story(&out);
}

fn fresh_namespace() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("t{:012x}{}", now.as_millis(), &random[..12])
}

/// Served processes, stopped when dropped (when an assertion fails too).
struct Served(Vec<Child>);

impl Drop for Served {
    fn drop(&mut self) {
        for n in self.0.drain(..) {
            stop(n);
        }
    }
}

const SERVICES: [&str; 6] = [
    "governance",
    "dependency-mapping",
    "orchestration",
    "risk-validation",
    "monitoring",
    "compliance",
];

/// The last lines of each service's log, for a failure's message.
fn logs(dir: &Path) {
    for s in SERVICES {
        let log = std::fs::read_to_string(dir.join(format!("{s}.log"))).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!(
            "---- {s} ----\n{}",
            lines.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

/// The full platform: all six services as `flotilla serve` processes on PostgreSQL and one
/// bus, the demo's story against their addresses (catalog import, builds, a release assessed,
/// a segregation-of-duties refusal, a freeze that blocks, a deviation, a canary rolled back,
/// a threshold breach rolled back by monitoring, the audit reports); then an insider who
/// rewrites one stored event of dependency-mapping's database, and the ledger that catches it.
fn apart(bus: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = SERVICES.iter().map(|_| free_port()).collect();
    let addr = |service: &str| {
        let i = SERVICES
            .iter()
            .position(|s| *s == service)
            .expect("a service");
        format!("http://127.0.0.1:{}", ports[i])
    };
    let postgres = std::env::var("FLOTILLA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let nats =
        std::env::var("FLOTILLA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let kafka =
        std::env::var("FLOTILLA_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let namespace = fresh_namespace();
    let config = dir.path().join("flotilla.toml");
    std::fs::write(
        &config,
        format!(
            "namespace = \"{namespace}\"\nstore_url = \"{postgres}\"\nnats_url = \"{nats}\"\nkafka_brokers = \"{kafka}\"\nbuses = [\"{bus}\"]\n\
             auth_hs256_secret = \"demo-secret-for-the-e2e-test-0123456789\"\naccess_policy_source = \"none\"\ndata_dir = \"{data}\"\n\
             [kafka_producer]\n\"batch.num.messages\" = \"1\"\n\
             [compliance]\ncheckpoint_secs = 1\n\
             [orchestration]\ngovernance_url = \"{gov}\"\ndependency_mapping_url = \"{cat}\"\n",
            data = dir.path().join("data").display(),
            gov = addr("governance"),
            cat = addr("dependency-mapping"),
        ),
    )
    .expect("config");
    let log = |s: &str| dir.path().join(format!("{s}.log"));
    let mut nodes = Served(
        SERVICES
            .iter()
            .zip(&ports)
            .map(|(s, port)| serve(&config, s, *port, &log(s)))
            .collect(),
    );
    let out = flotilla()
        .args(["demo", "--config"])
        .arg(&config)
        .args([
            "--governance-addr",
            &addr("governance"),
            "--catalog-addr",
            &addr("dependency-mapping"),
            "--orchestration-addr",
            &addr("orchestration"),
            "--risk-addr",
            &addr("risk-validation"),
            "--monitoring-addr",
            &addr("monitoring"),
            "--compliance-addr",
            &addr("compliance"),
            "--report-dir",
        ])
        .arg(dir.path().join("report"))
        .output()
        .expect("demo");
    if !out.status.success() {
        logs(dir.path());
    }
    told_the_story(&out);

    // An insider rewrites one stored event of dependency-mapping's database while it is down,
    // every hash after it recomputed so that the service's own check passes when it starts.
    let catalog = SERVICES
        .iter()
        .position(|s| *s == "dependency-mapping")
        .expect("catalog");
    stop(nodes.0.remove(catalog));
    let as_who = |role: &str| -> String {
        let out = flotilla()
            .args([
                "token",
                "issue",
                "--subject",
                "t",
                "--role",
                role,
                "--bu",
                "central",
                "--config",
            ])
            .arg(&config)
            .output()
            .expect("token");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let (auditor, admin) = (as_who("auditor"), as_who("admin"));
    let linked = |auditor: &str| -> u64 {
        let out = ok(as_user(
            auditor,
            &addr("compliance"),
            "audit",
            &["--output", "json", "sources"],
        ));
        json(&out)
            .as_array()
            .and_then(|a| a.iter().find(|s| s["service"] == "dependency-mapping"))
            .and_then(|s| s["linked_to"].as_u64())
            .unwrap_or(0)
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let head = runtime
        .block_on(async {
            let schema = flotilla_store::schema_for(&namespace, "dependency-mapping");
            flotilla_store::open(&postgres, &schema).await?.head().await
        })
        .expect("dependency-mapping's head")
        .position;
    // The ledger saw the chain as it was, up to its head.
    for _ in 0..150 {
        if linked(&auditor) == head {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        linked(&auditor),
        head,
        "the ledger did not link dependency-mapping's chain to its head"
    );
    runtime
        .block_on(flotilla_tests::insider::rewrite_consistently(
            &postgres,
            &namespace,
            "dependency-mapping",
            2,
        ))
        .expect("the insider's rewrite");
    nodes.0.push(serve(
        &config,
        "dependency-mapping",
        ports[catalog],
        &log("dependency-mapping.restarted"),
    ));
    // The service serves (its chain is consistent) and records its next event, which links to
    // the rewritten history, not to the one the ledger saw.
    let yaml = dir.path().join("one-more.yaml");
    std::fs::write(
        &yaml,
        "kind: Component\nmetadata: { name: cards-rewards-v2, annotations: { flotilla.dev/criticality-tier: \"3\" } }\nspec: { owner: cards-core, system: cards }\n",
    )
    .expect("catalog");
    let mut imported = None;
    for _ in 0..150 {
        let out = as_user(
            &admin,
            &addr("dependency-mapping"),
            "catalog",
            &["import", &yaml.to_string_lossy()],
        );
        if out.status.success() {
            imported = Some(out);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        imported.is_some(),
        "dependency-mapping did not serve again after the rewrite"
    );
    let mut alerts = serde_json::Value::Null;
    for _ in 0..150 {
        let out = as_user(
            &auditor,
            &addr("compliance"),
            "audit",
            &[
                "--output",
                "json",
                "alerts",
                "--service",
                "dependency-mapping",
            ],
        );
        alerts = json(&out);
        if alerts.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(nodes);
    let mismatch = alerts
        .as_array()
        .and_then(|a| a.iter().find(|a| a["kind"] == "mismatch"))
        .unwrap_or_else(|| panic!("the ledger raised no mismatch: {alerts}"));
    assert_eq!(mismatch["sequence"].as_u64(), Some(head + 1), "{mismatch}");
}

#[test]
fn the_demo_runs_against_services_apart_on_nats() {
    apart("nats");
}

#[test]
fn the_demo_runs_against_services_apart_on_kafka() {
    apart("kafka");
}
