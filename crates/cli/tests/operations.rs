//! Operating Flotilla from the command line: `config show` (every effective setting and where it
//! came from, secrets masked), `doctor` (the configuration checked against the real
//! PostgreSQL, NATS and Kafka it names), and one `flotilla up` per data folder.

mod support;
use support::{flotilla, json, stop, text, up};

#[test]
fn config_show_says_where_each_setting_came_from_and_masks_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flotilla.toml");
    std::fs::write(
        &file,
        "store_url = \"postgres://app:hunter2@db:5432/flotilla\"\nauth_hs256_secret = \"0123456789abcdef0123456789abcdef\"\n[governance]\ndeadline_tick_secs = 30\n",
    )
    .expect("config");
    let out = flotilla()
        .arg("--config")
        .arg(&file)
        .args(["config", "--output", "json", "show"])
        .env("FLOTILLA_NAMESPACE", "acme-prod")
        .output()
        .expect("run flotilla");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let settings = json(&out);
    let find = |key: &str| {
        settings
            .as_array()
            .and_then(|a| a.iter().find(|s| s["key"] == key))
            .cloned()
            .unwrap_or_else(|| panic!("{key} in {settings}"))
    };
    let from_file = format!("file {}", file.display());
    assert_eq!(
        find("store_url")["value"],
        "postgres://app:***@db:5432/flotilla"
    );
    assert_eq!(find("store_url")["source"], from_file.as_str());
    assert_eq!(find("auth_hs256_secret")["value"], "***");
    assert_eq!(find("namespace")["source"], "env FLOTILLA_NAMESPACE");
    assert_eq!(find("listen")["source"], "default");
    assert_eq!(find("governance.deadline_tick_secs")["value"], "30");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
    // People get a table.
    let table = flotilla()
        .arg("--config")
        .arg(&file)
        .args(["config", "show"])
        .output()
        .expect("run flotilla");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.starts_with("KEY") && text.contains("keyring_url"),
        "{text}"
    );
}

fn test_env(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

#[test]
fn doctor_checks_the_configuration_against_what_it_names() {
    let ns = format!("doc{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let doctor = |store: &str, nats: &str| {
        flotilla()
            .args(["doctor", "--output", "json", "--service", "governance"])
            .env("FLOTILLA_NAMESPACE", &ns)
            .env("FLOTILLA_STORE_URL", store)
            .env("FLOTILLA_NATS_URL", nats)
            .env(
                "FLOTILLA_KAFKA_BROKERS",
                test_env("FLOTILLA_TEST_KAFKA_BROKERS", "127.0.0.1:9092"),
            )
            .output()
            .expect("run flotilla")
    };
    let pg = test_env(
        "FLOTILLA_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let nats = test_env("FLOTILLA_TEST_NATS_URL", "nats://127.0.0.1:4222");
    let verdicts = |out: &std::process::Output| -> Vec<(String, String, String)> {
        json(out)
            .as_array()
            .expect("checks")
            .iter()
            .map(|c| {
                (
                    c["check"].as_str().unwrap_or_default().to_owned(),
                    c["result"].as_str().unwrap_or_default().to_owned(),
                    c["detail"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let find = |v: &[(String, String, String)], name: &str| {
        v.iter()
            .find(|c| c.0 == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {v:?}"))
    };

    // Everything reachable; this fresh namespace has no store, stream or topic yet: warnings
    // that say what creates them, exit 0.
    let healthy = doctor(&pg, &nats);
    let v = verdicts(&healthy);
    assert!(healthy.status.success(), "{v:?}");
    assert_eq!(find(&v, "postgres").1, "ok", "{v:?}");
    assert_eq!(find(&v, "clock").1, "ok", "{v:?}");
    assert_eq!(find(&v, "keyring").1, "ok", "{v:?}");
    assert_eq!(find(&v, "nats").1, "ok", "{v:?}");
    assert_eq!(find(&v, "kafka").1, "ok", "{v:?}");
    let store = find(&v, "store governance");
    assert_eq!(store.1, "warn");
    assert!(
        store.2.contains(&format!("{ns}_governance"))
            && store.2.contains("flotilla serve governance"),
        "{store:?}"
    );
    assert_eq!(find(&v, "nats stream governance").1, "warn");
    assert_eq!(find(&v, "kafka topic governance").1, "warn");

    // Nothing listens where the config points: failures naming the setting to fix, exit 1.
    let broken = doctor("postgres://postgres@127.0.0.1:1/test", "nats://127.0.0.1:1");
    let v = verdicts(&broken);
    assert_eq!(broken.status.code(), Some(1), "{v:?}");
    let pg = find(&v, "postgres");
    assert_eq!(pg.1, "fail");
    assert!(pg.2.contains("FLOTILLA_STORE_URL"), "{pg:?}");
    let n = find(&v, "nats");
    assert_eq!(n.1, "fail");
    assert!(n.2.contains("nats_url"), "{n:?}");
}

#[test]
fn a_second_flotilla_up_on_one_data_folder_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, _url) = up(dir.path());
    let mut second = flotilla()
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("second flotilla up");
    // It must stop on its own; one that went on serving is stopped and fails the test.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while second.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = second.wait_with_output().expect("output");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("another flotilla up (process {})", first.id()))
            && said.contains("--data-dir"),
        "{said}"
    );
    stop(first);
    // Once the first one stopped, the folder is free again.
    let (again, _url) = up(dir.path());
    stop(again);
}
