//! `flotilla risk …` against a `flotilla up` on embedded defaults: a planned release's
//! assessment with every factor explained (points adding up to the score), an FMEA recorded
//! from a file, its required action open and then closed, validations, the factor weights, and
//! refusals that say what is wrong.

use std::path::Path;
use std::time::{Duration, Instant};

mod support;
use support::{as_user, import_catalog, json, ok, stop, text, token, up};

const FACTORS: [&str; 8] = [
    "criticality_tier",
    "blast_radius",
    "change_size",
    "schema_changes",
    "migrations",
    "change_failure_rate",
    "fmea_rpn",
    "emergency",
];

/// The catalog, a build that may ship, the payments path dev -> prod, and payments-2.0.0
/// created and planned (as in release.rs).
fn planned_release(dir: &Path, admin: &str, rm: &str, ci: &str, url: &str) {
    import_catalog(dir, admin, url);
    ok(as_user(
        ci,
        url,
        "artifact",
        &[
            "register",
            "--service",
            "payments-api",
            "--version",
            "2.0.0",
            "--commit",
            "9f2c1e7",
            "--repository",
            "https://git.example.com/payments/api",
            "--digest",
            &format!("sha256:{}", "200".repeat(22)[..64].to_owned()),
            "--tests-passed",
            "120",
            "--tests-failed",
            "0",
            "--licence",
            "Apache-2.0",
        ],
    ));
    ok(as_user(
        rm,
        url,
        "env",
        &["define", "--bu", "payments", "dev", "--check", "smoke"],
    ));
    ok(as_user(
        rm,
        url,
        "env",
        &["define", "--bu", "payments", "prod"],
    ));
    ok(as_user(
        rm,
        url,
        "env",
        &["path", "--bu", "payments", "dev", "prod"],
    ));
    ok(as_user(
        rm,
        url,
        "release",
        &[
            "create",
            "payments-2.0.0",
            "--bu",
            "payments",
            "--service",
            "payments-api",
        ],
    ));
    ok(as_user(rm, url, "release", &["plan", "payments-2.0.0"]));
}

/// `risk --output json assessment payments-2.0.0` once it answers a non-empty array (at most
/// 30 s: risk-validation assesses the plan from orchestration's events).
fn assessments(rm: &str, url: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = as_user(
            rm,
            url,
            "risk",
            &["--output", "json", "assessment", "payments-2.0.0"],
        );
        if out.status.success() {
            let a = json(&out);
            if a.as_array().is_some_and(|l| !l.is_empty()) {
                return a;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no risk assessment of payments-2.0.0 in 30 s: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn risk_assessment_fmea_validations_and_weights_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (node, url) = up(d);
    let admin = token(d, "ops", "admin", "central");
    let rm = token(d, "rita", "release-manager", "payments");
    let ci = token(d, "ci", "developer", "payments");
    // The node answers once it has caught up.
    let mut listed = as_user(&rm, &url, "release", &["list"]);
    for _ in 0..100 {
        if listed.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        listed = as_user(&rm, &url, "release", &["list"]);
    }
    ok(listed);
    planned_release(d, &admin, &rm, &ci, &url);

    // Every factor explained; the points add up to the score.
    let all = assessments(&rm, &url);
    for a in all.as_array().into_iter().flatten() {
        assert_eq!(a["release"], "payments-2.0.0", "{a}");
        assert_eq!(a["service"], "payments-api", "{a}");
        let factors = a["factors"].as_array().cloned().unwrap_or_default();
        let names: Vec<&str> = factors.iter().filter_map(|f| f["name"].as_str()).collect();
        assert_eq!(names, FACTORS, "{a}");
        let points: f64 = factors.iter().filter_map(|f| f["points"].as_f64()).sum();
        assert_eq!(Some(points.round() as u64), a["risk_score"].as_u64(), "{a}");
    }
    let dev = json(&ok(as_user(
        &rm,
        &url,
        "risk",
        &[
            "--output",
            "json",
            "assessment",
            "payments-2.0.0",
            "--env",
            "dev",
        ],
    )));
    assert!(
        dev.as_array()
            .is_some_and(|l| !l.is_empty() && l.iter().all(|a| a["environment"] == "dev")),
        "{dev}"
    );
    let shown = text(&ok(as_user(
        &rm,
        &url,
        "risk",
        &["assessment", "payments-2.0.0"],
    )));
    assert!(
        shown.contains("FACTOR") && shown.contains("POINTS") && shown.contains("WHY"),
        "{shown}"
    );
    assert!(shown.contains("criticality_tier"), "{shown}");
    assert!(shown.contains("in the catalog"), "{shown}");
    assert!(shown.contains("payments-2.0.0 in dev: risk "), "{shown}");

    // An FMEA from a file: RPN 9 x 4 x 3 = 108 reaches the threshold, so its action is open.
    let modes = d.join("modes.json");
    std::fs::write(
        &modes,
        r#"[{"name": "ledger-double-post", "effect": "customers charged twice", "severity": 9,
            "occurrence": 4, "detection": 3, "action": "idempotency keys on ledger writes",
            "action_owner": "sam"}]"#,
    )
    .expect("write modes");
    // Security records the FMEA (the release's author may not).
    let security = token(d, "quinn", "security", "payments");
    ok(as_user(
        &security,
        &url,
        "risk",
        &[
            "fmea",
            "record",
            "payments-2.0.0",
            "--file",
            &modes.to_string_lossy(),
        ],
    ));
    let open = text(&ok(as_user(
        &rm,
        &url,
        "risk",
        &["fmea", "show", "payments-2.0.0"],
    )));
    assert!(
        open.contains("108") && open.contains("required-open"),
        "{open}"
    );
    // The release's author may not close its required actions (segregation of duties).
    let by_author = as_user(
        &rm,
        &url,
        "risk",
        &[
            "fmea",
            "close",
            "payments-2.0.0",
            "--mode",
            "ledger-double-post",
            "--evidence",
            "https://git.example.com/payments/api/pull/412",
        ],
    );
    assert!(!by_author.status.success());
    assert!(
        text(&by_author).contains("someone else closes its FMEA actions"),
        "{}",
        text(&by_author)
    );
    let owner = token(d, "sam", "service-owner", "payments");
    let closed = text(&ok(as_user(
        &owner,
        &url,
        "risk",
        &[
            "fmea",
            "close",
            "payments-2.0.0",
            "--mode",
            "ledger-double-post",
            "--evidence",
            "https://git.example.com/payments/api/pull/412",
        ],
    )));
    assert!(closed.contains("closed by sam"), "{closed}");
    let f = json(&ok(as_user(
        &rm,
        &url,
        "risk",
        &["--output", "json", "fmea", "show", "payments-2.0.0"],
    )));
    assert_eq!(f[0]["highest_rpn"], 108, "{f}");
    assert_eq!(f[0]["modes"][0]["action_closed"], true, "{f}");
    assert_eq!(f[0]["open_actions"], serde_json::json!([]), "{f}");

    // A file that is not a list of failure modes is named in the error.
    let bad = d.join("bad-modes.json");
    std::fs::write(&bad, r#"{"name": "not in an array"}"#).expect("write bad modes");
    let refused = as_user(
        &rm,
        &url,
        "risk",
        &[
            "fmea",
            "record",
            "payments-2.0.0",
            "--file",
            &bad.to_string_lossy(),
        ],
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("bad-modes.json")
            && text(&refused).contains("not a JSON array of failure modes"),
        "{}",
        text(&refused)
    );

    // Nothing validated yet: an empty table, an empty array.
    let v = json(&ok(as_user(
        &rm,
        &url,
        "risk",
        &["--output", "json", "validations", "payments-2.0.0"],
    )));
    assert_eq!(v, serde_json::json!([]), "{v}");
    let vt = text(&ok(as_user(
        &rm,
        &url,
        "risk",
        &["validations", "payments-2.0.0", "--env", "dev"],
    )));
    assert!(vt.contains("ENV") && vt.contains("FAILURES"), "{vt}");

    // Weights: a flag not given keeps its value; only an admin sets them.
    let w = json(&ok(as_user(
        &rm,
        &url,
        "risk",
        &["--output", "json", "weights"],
    )));
    assert_eq!(w[0]["version"], 0, "{w}");
    let denied = as_user(&rm, &url, "risk", &["weights", "set", "--emergency", "7"]);
    assert!(!denied.status.success(), "{}", text(&denied));
    assert!(
        text(&denied).contains("PermissionDenied"),
        "{}",
        text(&denied)
    );
    let set = json(&ok(as_user(
        &admin,
        &url,
        "risk",
        &["--output", "json", "weights", "set", "--emergency", "7"],
    )));
    assert_eq!(set[0]["version"], 1, "{set}");
    assert_eq!(set[0]["emergency"], 7, "{set}");
    assert_eq!(
        set[0]["criticality_tier"], w[0]["criticality_tier"],
        "{set}"
    );
    assert_eq!(set[0]["set_by"], "ops", "{set}");

    // A release risk-validation does not know.
    let unknown = as_user(&rm, &url, "risk", &["assessment", "no-such-release"]);
    assert!(!unknown.status.success(), "{}", text(&unknown));
    assert!(text(&unknown).contains("not found"), "{}", text(&unknown));
    stop(node);
}
