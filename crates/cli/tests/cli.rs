//! The `flotilla` binary as a user runs it: `store verify` exit codes, `store bench` figures,
//! and `up` serving until SIGTERM with `status` answering in between.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flotilla_core::ExpectedVersion;
use flotilla_core::conformance::synthetic;
use flotilla_core::ids::StreamId;
use flotilla_core::store::AppendRequest;

fn flotilla() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    c.env_remove("FLOTILLA_CONFIG").env("RUST_LOG", "warn");
    c
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_verify_exits_0_with_count_then_1_with_the_bad_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("gov.db").display());
    {
        let store = flotilla_store::SqliteStore::connect(&url)
            .await
            .expect("open");
        use flotilla_core::EventStore;
        for w in 0..5 {
            let events = (0..4).map(|i| synthetic(w, i)).collect();
            store
                .append(AppendRequest::new(
                    StreamId::new_for("release"),
                    ExpectedVersion::NoStream,
                    events,
                ))
                .await
                .expect("append");
        }
    }
    let ok = flotilla()
        .args(["store", "verify", "--url", &url, "--output", "json"])
        .output()
        .expect("run");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v = json(&ok);
    assert_eq!(v["holds"], true);
    assert_eq!(v["checked"], 20);

    let table = flotilla()
        .args(["store", "verify", "--url", &url])
        .output()
        .expect("run");
    assert!(table.status.success());
    assert!(String::from_utf8_lossy(&table.stdout).contains("holds"));

    {
        let store = flotilla_store::SqliteStore::connect(&url)
            .await
            .expect("open");
        sqlx::query("UPDATE events SET business_unit = 'other' WHERE global_position = 13")
            .execute(store.pool())
            .await
            .expect("tamper");
    }
    let bad = flotilla()
        .args(["store", "verify", "--url", &url, "--output", "json"])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(1));
    let v = json(&bad);
    assert_eq!(v["holds"], false);
    assert_eq!(v["broken_at"], 13);
    let bad = flotilla()
        .args(["store", "verify", "--url", &url])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("chain broken at position 13"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // Verify creates nothing: a mistyped path or schema is an error, not an empty chain that holds.
    let typo = dir.path().join("gov-typo.db");
    let out = flotilla()
        .args([
            "store",
            "verify",
            "--url",
            &format!("sqlite://{}", typo.display()),
        ])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!typo.exists());
    let pg = std::env::var("FLOTILLA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let out = flotilla()
        .args([
            "store",
            "verify",
            "--url",
            &pg,
            "--schema",
            "flotilla_no_such_store",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no flotilla event store in schema flotilla_no_such_store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let missing = flotilla()
        .args([
            "store",
            "verify",
            "--url",
            "postgres://postgres@127.0.0.1:5432/test",
        ])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--service"));
}

#[test]
fn store_bench_reports_throughput_latency_and_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let out = flotilla()
        .args([
            "store",
            "bench",
            "--url",
            &url,
            "--events",
            "600",
            "--writers",
            "8",
            "--batch",
            "3",
            "--replay",
            "--output",
            "json",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let append = &v["figures"][0];
    assert_eq!(append["events"], 600);
    assert!(append["per_second"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(
        append["p50_ms"].as_f64().is_some()
            && append["p99_ms"].as_f64() >= append["p50_ms"].as_f64()
    );
    let replay = &v["figures"][1];
    assert_eq!(replay["events"], 600);
    assert!(
        replay["name"]
            .as_str()
            .unwrap_or_default()
            .contains("8 writers"),
        "{replay}"
    );
    let table = flotilla()
        .args([
            "store",
            "bench",
            "--url",
            &url,
            "--events",
            "50",
            "--writers",
            "2",
        ])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&table.stdout).contains("EVENTS/S"));
    let bad = flotilla()
        .args(["store", "bench", "--url", &url, "--writers", "0"])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn up_serves_six_services_until_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = flotilla()
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
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
    // The rest of its log, kept to check once it stopped.
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<String>>());
    // Without a token the node refuses, and says how to get one.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = flotilla()
            .env_remove("FLOTILLA_TOKEN")
            .args(["status", "--addr", &format!("http://{addr}")])
            .output()
            .expect("run status");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if err.contains("Unauthenticated") {
            assert!(!out.status.success());
            assert!(err.contains("flotilla token issue"), "{err}");
            break;
        }
        assert!(Instant::now() < deadline, "status never refused: {err}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = flotilla()
        .args([
            "token",
            "issue",
            "--subject",
            "ops",
            "--role",
            "admin",
            "--bu",
            "central",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .expect("token issue");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let out = flotilla()
            .env("FLOTILLA_TOKEN", &token)
            .args([
                "status",
                "--addr",
                &format!("http://{addr}"),
                "--output",
                "json",
            ])
            .output()
            .expect("run status");
        if out.status.success() {
            break json(&out);
        }
        assert!(
            Instant::now() < deadline,
            "status never answered: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let services: Vec<&str> = status
        .as_array()
        .expect("array")
        .iter()
        .filter(|s| s["state"] == "serving")
        .filter_map(|s| s["service"].as_str())
        .collect();
    assert_eq!(
        services,
        [
            "governance",
            "dependency-mapping",
            "orchestration",
            "risk-validation",
            "monitoring",
            "compliance"
        ]
    );
    // The catalog client against the running node: import a Backstage file, then ask.
    let url = format!("http://{addr}");
    let yaml = dir.path().join("catalog-info.yaml");
    std::fs::write(
        &yaml,
        "kind: Component\nmetadata: { name: web, annotations: { flotilla.dev/criticality-tier: \"2\" } }\nspec: { owner: web-team, dependsOn: [\"component:checkout\"] }\n---\nkind: Component\nmetadata: { name: checkout, annotations: { flotilla.dev/handles-personal-data: \"true\" } }\nspec: { owner: shop-team, dependsOn: [\"resource:orders-db\"] }\n---\nkind: Resource\nmetadata: { name: orders-db }\nspec: { type: database, owner: dba }\n",
    )
    .expect("write yaml");
    let out = flotilla()
        .env("FLOTILLA_TOKEN", &token)
        .args(["catalog", "--addr", &url, "--output", "json", "import"])
        .arg(&yaml)
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(
        (
            v["registered"].as_u64(),
            v["dependencies_declared"].as_u64()
        ),
        (Some(3), Some(2))
    );
    let again = json(
        &flotilla()
            .env("FLOTILLA_TOKEN", &token)
            .args(["catalog", "--addr", &url, "--output", "json", "import"])
            .arg(&yaml)
            .output()
            .expect("import again"),
    );
    assert_eq!(
        (
            again["registered"].as_u64(),
            again["unchanged"].as_u64(),
            again["dependencies_declared"].as_u64()
        ),
        (Some(0), Some(3), Some(0))
    );
    // A file without Flotilla annotations keeps the tier and personal-data flag already set.
    let bare = dir.path().join("bare.yaml");
    std::fs::write(
        &bare,
        "kind: Component\nmetadata: { name: web }\nspec: { owner: web-team }\n---\nkind: Component\nmetadata: { name: checkout }\nspec: { owner: shop-team }\n",
    )
    .expect("write bare yaml");
    let out = flotilla()
        .env("FLOTILLA_TOKEN", &token)
        .args(["catalog", "--addr", &url, "--output", "json", "import"])
        .arg(&bare)
        .output()
        .expect("import bare");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = json(
        &flotilla()
            .env("FLOTILLA_TOKEN", &token)
            .args(["catalog", "--addr", &url, "--output", "json", "list"])
            .output()
            .expect("list"),
    );
    let find = |n: &str| {
        list.as_array()
            .expect("array")
            .iter()
            .find(|s| s["name"] == n)
            .cloned()
            .expect("listed")
    };
    assert_eq!(find("web")["criticality_tier"], 2);
    assert_eq!(find("checkout")["handles_personal_data"], true);
    let impact = json(
        &flotilla()
            .env("FLOTILLA_TOKEN", &token)
            .args([
                "catalog",
                "--addr",
                &url,
                "--output",
                "json",
                "impact",
                "orders-db",
            ])
            .output()
            .expect("impact"),
    );
    let reached: Vec<(&str, u64)> = impact
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            (
                e["service"].as_str().unwrap_or_default(),
                e["distance"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // web (tier 2, synchronous) outranks checkout (tier 3 by default, personal data, database edge).
    assert_eq!(reached, [("web", 2), ("checkout", 1)]);
    let plan = json(
        &flotilla()
            .env("FLOTILLA_TOKEN", &token)
            .args([
                "catalog",
                "--addr",
                &url,
                "--output",
                "json",
                "plan",
                "web@2.0.0",
                "orders-db@15.2.0",
            ])
            .output()
            .expect("plan"),
    );
    assert_eq!(plan["waves"][0][0]["service"], "orders-db");
    assert_eq!(plan["waves"][1][0]["service"], "web");
    let csv = flotilla()
        .env("FLOTILLA_TOKEN", &token)
        .args(["catalog", "--addr", &url, "matrix", "--format", "csv"])
        .output()
        .expect("matrix");
    assert_eq!(
        String::from_utf8_lossy(&csv.stdout).lines().next(),
        Some("consumer\\provider,checkout,orders-db,web")
    );
    let bad = flotilla()
        .env("FLOTILLA_TOKEN", &token)
        .args(["catalog", "--addr", &url, "plan", "web"])
        .output()
        .expect("bad plan");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SERVICE@VERSION"));
    let skew = flotilla()
        .env("FLOTILLA_TOKEN", &token)
        .args(["catalog", "--addr", &url, "--output", "json", "skew"])
        .output()
        .expect("skew");
    assert!(skew.status.success());
    assert_eq!(json(&skew), serde_json::json!([]));
    let schema_file = dir.path().join("events.schema.json");
    std::fs::write(
        &schema_file,
        r#"{"type": "object", "properties": {"id": {"type": "string"}}}"#,
    )
    .expect("schema");
    let v = json(
        &flotilla()
            .env("FLOTILLA_TOKEN", &token)
            .args([
                "catalog",
                "--addr",
                &url,
                "--output",
                "json",
                "schema",
                "checkout",
                "order-events",
                "1.0.0",
            ])
            .arg(&schema_file)
            .args(["--format", "json-schema"])
            .output()
            .expect("schema"),
    );
    assert_eq!(
        (v["compatible"].as_bool(), v["published"].as_bool()),
        (Some(true), Some(true))
    );
    std::fs::write(&schema_file, r#"{"type": "object", "properties": {}}"#).expect("schema v2");
    let broke = flotilla()
        .env("FLOTILLA_TOKEN", &token)
        .args([
            "catalog",
            "--addr",
            &url,
            "schema",
            "checkout",
            "order-events",
            "2.0.0",
        ])
        .arg(&schema_file)
        .args(["--format", "json-schema"])
        .output()
        .expect("schema v2");
    assert_eq!(broke.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&broke.stdout).contains("property id was removed"),
        "{}",
        String::from_utf8_lossy(&broke.stdout)
    );
    let bad_time = flotilla()
        .env("FLOTILLA_TOKEN", &token)
        .args([
            "catalog",
            "--addr",
            &url,
            "footprint",
            "prod",
            "--as-of",
            "yesterday",
        ])
        .output()
        .expect("footprint");
    assert_eq!(bad_time.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_time.stderr).contains("RFC 3339"));

    let unknown = flotilla()
        .env("FLOTILLA_TOKEN", &token)
        .args(["catalog", "--addr", &url, "impact", "ghost"])
        .output()
        .expect("unknown");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("ghost"));

    let partial = dir.path().join("partial.yaml");
    std::fs::write(&partial, "kind: Component\nmetadata: { name: mobile }\nspec: { owner: app-team, dependsOn: [\"component:checkout\", \"component:not-yet-imported\"] }\n").expect("write");
    let v = json(
        &flotilla()
            .env("FLOTILLA_TOKEN", &token)
            .args(["catalog", "--addr", &url, "--output", "json", "import"])
            .arg(&partial)
            .output()
            .expect("partial import"),
    );
    assert_eq!(
        (
            v["registered"].as_u64(),
            v["dependencies_declared"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(
        v["skipped"][0]
            .as_str()
            .unwrap_or_default()
            .contains("not-yet-imported"),
        "{v}"
    );
    // Governance through the CLI: tokens per role, an approval request, the gate before and
    // after the approval (exit 1 when denied, 0 when allowed).
    let token_for = |subject: &str, role: &str, bu: &str| {
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
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .output()
            .expect("token issue");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    };
    let rm = token_for("rita", "release-manager", "payments");
    let owner = token_for("sam", "service-owner", "payments");
    // Governance takes a release's unit and tier from the catalog: a payments service.
    let payments = dir.path().join("payments.yaml");
    std::fs::write(&payments, "kind: Component\nmetadata: { name: pay-gateway, annotations: { flotilla.dev/criticality-tier: \"3\" } }\nspec: { owner: pay-team, system: payments }\n").expect("write");
    let imported = flotilla()
        .env("FLOTILLA_TOKEN", &token)
        .args(["catalog", "--addr", &url, "import"])
        .arg(&payments)
        .output()
        .expect("import");
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    // Governance learns it from the catalog's events, moments later.
    let open = || {
        flotilla()
            .env("FLOTILLA_TOKEN", &rm)
            .args([
                "governance",
                "--addr",
                &url,
                "--output",
                "json",
                "approvals",
                "open",
                "--release",
                "pay-42",
                "--version",
                "1.2.0",
                "--env",
                "prod",
                "--service",
                "pay-gateway",
                "--risk",
                "10",
                "--author",
                "alice",
            ])
            .output()
            .expect("open")
    };
    let mut out = open();
    for _ in 0..100 {
        if out.status.success()
            || !String::from_utf8_lossy(&out.stderr).contains("not in the service catalog")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        out = open();
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)[0]["requirements"][0]["role"], "service-owner");
    let gate = |token: &str| {
        flotilla()
            .env("FLOTILLA_TOKEN", token)
            .args([
                "governance",
                "--addr",
                &url,
                "--output",
                "json",
                "gate",
                "pay-42",
                "prod",
            ])
            .output()
            .expect("gate")
    };
    let denied = gate(&rm);
    assert_eq!(denied.status.code(), Some(1));
    assert_eq!(json(&denied)["reasons"][0]["kind"], "missing-approvals");
    let out = flotilla()
        .env("FLOTILLA_TOKEN", &owner)
        .args([
            "governance",
            "--addr",
            &url,
            "approvals",
            "approve",
            "pay-42",
            "prod",
            "--role",
            "service-owner",
        ])
        .output()
        .expect("approve");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let allowed = gate(&rm);
    assert_eq!(
        allowed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&allowed.stdout)
    );
    // A unit freeze window from now on denies the release again, naming the window.
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let once = format!(
        "{},{}",
        fmt(now - time::Duration::minutes(1)),
        fmt(now + time::Duration::hours(2))
    );
    let out = flotilla()
        .env("FLOTILLA_TOKEN", &rm)
        .args([
            "governance",
            "--addr",
            &url,
            "--output",
            "json",
            "windows",
            "create",
            "--name",
            "payments month-end",
            "--bu",
            "payments",
            "--env",
            "prod",
            "--once",
            &once,
        ])
        .output()
        .expect("window");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frozen = gate(&rm);
    assert_eq!(frozen.status.code(), Some(1));
    let v = json(&frozen);
    assert_eq!(v["reasons"][0]["kind"], "freeze-window");
    assert_eq!(v["reasons"][0]["subject"], "payments month-end");
    // Embargoes are for compliance officers only.
    let out = flotilla()
        .env("FLOTILLA_TOKEN", &rm)
        .args([
            "governance",
            "--addr",
            &url,
            "windows",
            "create",
            "--name",
            "exam",
            "--kind",
            "embargo",
            "--bu",
            "payments",
            "--once",
            &once,
        ])
        .output()
        .expect("embargo");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("compliance-officer"));
    let out = flotilla()
        .env("FLOTILLA_TOKEN", &rm)
        .args(["governance", "--addr", &url, "access", "show"])
        .output()
        .expect("access show");
    assert!(String::from_utf8_lossy(&out.stdout).contains("business-unit-isolation"));
    // The author may not approve: the error names the rule and what to do.
    let alice = token_for("alice", "service-owner", "payments");
    let out = flotilla()
        .env("FLOTILLA_TOKEN", &alice)
        .args([
            "governance",
            "--addr",
            &url,
            "approvals",
            "approve",
            "pay-42",
            "prod",
            "--role",
            "service-owner",
        ])
        .output()
        .expect("approve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("PermissionDenied") && err.contains("sod-author-approves"),
        "{err}"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(code) = child.try_wait().expect("wait") {
            assert!(code.success(), "flotilla up exited with {code}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "flotilla up did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(dir.path().join("data/compliance.db").exists());
    // Written to a pipe, not a terminal: no colour codes.
    let log = log.join().expect("log reader");
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|l| !l.contains('\u{1b}')),
        "ANSI escape codes in a log that is not a terminal: {:?}",
        log.iter().find(|l| l.contains('\u{1b}'))
    );
}
