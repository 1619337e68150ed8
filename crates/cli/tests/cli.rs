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
    std::thread::spawn(move || for _ in lines {});
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let out = flotilla()
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
}
