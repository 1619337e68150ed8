//! `flotilla artifact|env|release|deploy` against a `flotilla up` on embedded defaults (the
//! dry-run executor): a build that may not ship exits 1 with why, a promotion blocked exits 1
//! with every reason, an allowed one is watched wave by wave to its end, and `--output json`
//! answers what machines read.

mod support;
use support::{as_user, import_catalog, json, ok, stop, text, token, up};

#[test]
fn artifacts_environments_and_a_release_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (node, url) = up(d);
    let admin = token(d, "ops", "admin", "central");
    let rm = token(d, "rita", "release-manager", "payments");
    let owner = token(d, "sam", "service-owner", "payments");
    let ci = token(d, "ci", "developer", "payments");
    // The node answers once it has caught up.
    let mut listed = as_user(&rm, &url, "release", &["list"]);
    for _ in 0..100 {
        if listed.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        listed = as_user(&rm, &url, "release", &["list"]);
    }
    ok(listed);
    import_catalog(d, &admin, &url);

    let register = |version: &str, failed: &str| {
        as_user(
            &ci,
            &url,
            "artifact",
            &[
                "--output",
                "json",
                "register",
                "--service",
                "payments-api",
                "--version",
                version,
                "--commit",
                "9f2c1e7",
                "--repository",
                "https://git.example.com/payments/api",
                "--digest",
                &format!(
                    "sha256:{}",
                    version.replace('.', "").repeat(22)[..64].to_owned()
                ),
                "--tests-passed",
                "120",
                "--tests-failed",
                failed,
                "--licence",
                "Apache-2.0",
            ],
        )
    };
    let bad = register("1.9.0", "2");
    assert_eq!(
        bad.status.code(),
        Some(1),
        "a build with failed tests exits 1: {}",
        text(&bad)
    );
    assert!(
        json(&bad)[0]["blocked"][0]
            .as_str()
            .unwrap_or("")
            .contains("2 tests failed"),
        "{}",
        text(&bad)
    );
    let good = ok(register("2.0.0", "0"));
    let purl = json(&good)[0]["purl"].as_str().unwrap_or("").to_owned();
    assert!(purl.starts_with("pkg:oci/payments-api@sha256%3A"), "{purl}");
    let shown = ok(as_user(&rm, &url, "artifact", &["show", &purl]));
    assert!(
        text(&shown).contains("2.0.0") && text(&shown).contains("ok"),
        "{}",
        text(&shown)
    );

    ok(as_user(
        &rm,
        &url,
        "env",
        &["define", "--bu", "payments", "dev", "--check", "smoke"],
    ));
    ok(as_user(
        &rm,
        &url,
        "env",
        &["define", "--bu", "payments", "prod"],
    ));
    let path = ok(as_user(
        &rm,
        &url,
        "env",
        &["path", "--bu", "payments", "dev", "prod"],
    ));
    assert!(
        text(&path).contains("payments: dev -> prod"),
        "{}",
        text(&path)
    );

    let created = ok(as_user(
        &rm,
        &url,
        "release",
        &[
            "--output",
            "json",
            "create",
            "payments-2.0.0",
            "--bu",
            "payments",
            "--service",
            "payments-api",
            "--label",
            "team=payments-core",
            "--cpu",
            "500m",
            "--memory",
            "512Mi",
        ],
    ));
    let r = json(&created);
    assert_eq!(r[0]["status"], "created");
    assert_eq!(
        r[0]["items"][0]["version"], "2.0.0",
        "the newest build that may ship"
    );

    let unplanned = as_user(&rm, &url, "release", &["promote", "payments-2.0.0", "dev"]);
    assert_eq!(unplanned.status.code(), Some(2), "{}", text(&unplanned));
    assert!(
        text(&unplanned).contains("not planned") && text(&unplanned).contains("FailedPrecondition"),
        "{}",
        text(&unplanned)
    );
    let planned = ok(as_user(&rm, &url, "release", &["plan", "payments-2.0.0"]));
    assert!(
        text(&planned).contains("payments-api"),
        "{}",
        text(&planned)
    );

    let blocked = as_user(
        &rm,
        &url,
        "release",
        &["--output", "json", "promote", "payments-2.0.0", "dev"],
    );
    assert_eq!(blocked.status.code(), Some(1), "{}", text(&blocked));
    let b = json(&blocked);
    assert_eq!(b["allowed"], false);
    assert!(
        b["reasons"].as_array().is_some_and(|r| r.iter().any(|x| {
            // Before or after governance opened the request from the assessment.
            let x = x.as_str().unwrap_or("");
            x.contains("no approval request") || x.contains("service-owner needs 1 approval")
        })),
        "{b}"
    );

    // Risk-validation assessed the plan; governance opens the request for dev from it.
    let show = || {
        as_user(
            &rm,
            &url,
            "governance",
            &[
                "--output",
                "json",
                "approvals",
                "show",
                "payments-2.0.0",
                "dev",
            ],
        )
    };
    let mut shown = show();
    for _ in 0..100 {
        if shown.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        shown = show();
    }
    let request = json(&ok(shown));
    assert_eq!(request[0]["service"], "payments-api", "{request}");
    ok(as_user(
        &owner,
        &url,
        "governance",
        &[
            "approvals",
            "approve",
            "payments-2.0.0",
            "dev",
            "--role",
            "service-owner",
        ],
    ));

    let watched = ok(as_user(
        &rm,
        &url,
        "release",
        &["promote", "payments-2.0.0", "dev", "--watch"],
    ));
    let out = text(&watched);
    assert!(
        out.contains("[wave 1/1] payments-api 2.0.0 deploy-rolling: succeeded"),
        "{out}"
    );
    assert!(out.contains("payments-2.0.0 into dev: succeeded"), "{out}");

    let again = ok(as_user(
        &rm,
        &url,
        "deploy",
        &["--output", "json", "watch", "payments-2.0.0"],
    ));
    let last: serde_json::Value = String::from_utf8_lossy(&again.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("a JSON line");
    assert_eq!(last["status"], "succeeded");

    // Leaving dev needs its smoke check: the reason names it.
    let gated = as_user(&rm, &url, "release", &["promote", "payments-2.0.0", "prod"]);
    assert_eq!(gated.status.code(), Some(1));
    assert!(
        text(&gated).contains("dev: check smoke has not been recorded"),
        "{}",
        text(&gated)
    );

    let envs = ok(as_user(
        &rm,
        &url,
        "env",
        &["--output", "json", "list", "--bu", "payments"],
    ));
    let e = json(&envs);
    let dev = e["environments"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["name"] == "dev"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(dev["running"]["payments-api"], "2.0.0", "{e}");
    let releases = ok(as_user(&rm, &url, "release", &["--output", "json", "list"]));
    assert_eq!(json(&releases)[0]["deployed_to"][0], "dev");
    stop(node);
}
