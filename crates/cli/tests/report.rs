//! `flotilla report dora` against a `flotilla up` on embedded defaults: every metric over the
//! period, one point per day as GitLab's DORA API shapes it (nothing deployed yet: counts 0,
//! medians and rates without a value), a table for people, and a bad date refused.

mod support;
use support::{flotilla, stop, text, token, up};

#[test]
fn dora_metrics_come_per_day_for_every_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, url) = up(dir.path());
    let rm = token(dir.path(), "rita", "release-manager", "payments");
    let run = |args: &[&str]| {
        flotilla()
            .env("FLOTILLA_TOKEN", &rm)
            .args(["report", "--addr", &url])
            .args(args)
            .output()
            .expect("run flotilla")
    };
    let period = [
        "dora",
        "--bu",
        "payments",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-03",
    ];
    let json = run(&[&["--output", "json"][..], &period[..]].concat());
    assert!(json.status.success(), "{}", text(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    for key in [
        "deployment_frequency",
        "lead_time_for_changes",
        "change_failure_rate",
        "time_to_restore_service",
        "deploy_duration",
        "failure_frequency",
        "rollback_incidence",
    ] {
        let points = v[key].as_array().unwrap_or_else(|| panic!("{key}: {v}"));
        let dates: Vec<&str> = points.iter().filter_map(|p| p["date"].as_str()).collect();
        assert_eq!(dates, ["2026-11-01", "2026-11-02", "2026-11-03"], "{key}");
        let counts = key.ends_with("frequency") || key == "rollback_incidence";
        for p in points {
            if counts {
                assert_eq!(p["value"], 0.0, "{key}: {p}");
            } else {
                assert!(
                    p["value"].is_null(),
                    "{key}: nothing measured is no value: {p}"
                );
            }
        }
    }
    let table = run(&period);
    assert!(table.status.success(), "{}", text(&table));
    let said = text(&table);
    assert!(
        said.contains("DEPLOYMENT FREQUENCY") && said.contains("2026-11-02"),
        "{said}"
    );
    let bad = run(&[
        "dora",
        "--bu",
        "payments",
        "--from",
        "yesterday",
        "--to",
        "2026-11-03",
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("is not a date (YYYY-MM-DD)"),
        "{}",
        text(&bad)
    );
    stop(node);
}
