//! `flotilla audit` as an auditor runs it. Offline, `audit verify` with only the ledger's
//! verifier key: a bundle made from a signed checkpoint and inclusion proofs verifies; a changed
//! leaf, proof or checkpoint, or another key, does not, and says why. Online, against a
//! `flotilla up`: the ledger takes in dependency-mapping's events after a catalog import,
//! `audit replay` gives them back as CloudEvents JSON lines (the ids the service's store holds,
//! in ledger order), `audit checkpoint --sign` signs the ledger, `audit bundle` exports them with
//! their proofs and `audit verify` checks that bundle with the key compliance gave.

use flotilla_transparency::bundle::{Bundle, FORMAT};
use flotilla_transparency::checkpoint::Checkpoint;
use flotilla_transparency::merkle::{Tree, leaf_hash};
use flotilla_transparency::note::NoteSigner;

mod support;
use support::{as_user, flotilla, json, ok, stop, text, token, up};

#[test]
fn a_bundle_verifies_offline_and_a_tampered_one_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events: Vec<Vec<u8>> = (0..20u8)
        .map(|i| format!("event {i} of the ledger").into_bytes())
        .collect();
    let mut tree = Tree::new();
    for e in &events {
        tree.push(leaf_hash(e));
    }
    let signer = NoteSigner::new("flotilla.example/ledger", &[11; 32]).expect("signer");
    let checkpoint = Checkpoint {
        origin: "flotilla.example/ledger".into(),
        size: 20,
        root: tree.root(20).expect("root"),
        extensions: vec![],
    }
    .sign(&signer)
    .expect("signed");
    let bundle = |leaf: &[u8], index: usize| Bundle {
        format: FORMAT.into(),
        checkpoint: checkpoint.clone(),
        entries: vec![Bundle::entry(
            index as u64,
            leaf,
            &tree.inclusion_proof(index, 20).expect("proof"),
        )],
    };
    let key = signer.verifier().encode();
    let key_file = dir.path().join("ledger.vkey");
    std::fs::write(&key_file, &key).expect("key");
    let run = |b: &Bundle, key: &str| {
        let file = dir.path().join("bundle.json");
        std::fs::write(&file, serde_json::to_vec(b).expect("json")).expect("bundle");
        flotilla()
            .args(["audit", "verify"])
            .arg(&file)
            .args(["--key", key])
            .output()
            .expect("run flotilla")
    };
    let ok = run(&bundle(&events[7], 7), &key);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("at size 20"), "{}", text(&ok));
    let from_file = run(&bundle(&events[7], 7), &key_file.to_string_lossy());
    assert!(from_file.status.success(), "{}", text(&from_file));
    // Another leaf claimed at 7, the right leaf at another index, a checkpoint of another
    // size, another key: refused, exit 1, with the reason.
    for (b, k, why) in [
        (
            bundle(&events[8], 7),
            key.clone(),
            "does not lead to the root",
        ),
        (
            bundle(&events[7], 6),
            key.clone(),
            "does not lead to the root",
        ),
        (
            Bundle {
                checkpoint: checkpoint.replacen("\n20\n", "\n21\n", 1),
                ..bundle(&events[7], 7)
            },
            key.clone(),
            "does not verify",
        ),
        (
            bundle(&events[7], 7),
            NoteSigner::new("flotilla.example/ledger", &[12; 32])
                .expect("other")
                .verifier()
                .encode(),
            "no signature by a known key",
        ),
    ] {
        let out = run(&b, &k);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(why), "{why}: {}", text(&out));
    }
    let bad_key = run(&bundle(&events[7], 7), "not-a-key");
    assert!(!bad_key.status.success());
    assert!(
        text(&bad_key).contains("verifier key"),
        "{}",
        text(&bad_key)
    );
}

/// One column of a service's store in the node's data folder, in store order (as an insider
/// reading the file sees it).
fn store_column(dir: &std::path::Path, service: &str, column: &str) -> Vec<String> {
    let file = dir.join("data").join(format!("{service}.db"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&file)
                .read_only(true),
        )
        .await
        .expect("open the store");
        let sql = format!("SELECT {column} FROM events ORDER BY global_position");
        let values: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .expect("read the store");
        pool.close().await;
        values
    })
}

fn store_ids(dir: &std::path::Path, service: &str) -> Vec<String> {
    store_column(dir, service, "event_id")
}

/// Two components as `admin`, one depending on the other: a few events of dependency-mapping's.
fn import_two_components(dir: &std::path::Path, admin: &str, url: &str) {
    let yaml = dir.join("catalog-info.yaml");
    std::fs::write(
        &yaml,
        "kind: Component\nmetadata: { name: payments-api }\nspec: { owner: payments-core, system: payments, dependsOn: [component:ledger-db] }\n---\nkind: Component\nmetadata: { name: ledger-db }\nspec: { owner: payments-core, system: payments }\n",
    )
    .expect("write catalog");
    ok(as_user(
        admin,
        url,
        "catalog",
        &["import", &yaml.to_string_lossy()],
    ));
}

/// The JSON lines of a replay, each an object.
fn lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a replayed line is not JSON ({e}): {l:?}"))
        })
        .collect()
}

#[test]
fn the_ledger_replays_signs_and_exports_what_a_service_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, url) = up(dir.path());
    let admin = token(dir.path(), "ada", "admin", "central");
    let officer = token(dir.path(), "olga", "compliance-officer", "central");
    let audit = |args: &[&str]| as_user(&officer, &url, "audit", args);
    import_two_components(dir.path(), &admin, &url);

    // The ledger takes the events in from the bus: wait until it has every event the store
    // holds, in the store's order.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (expected, replayed) = loop {
        let sources = json(&ok(audit(&["--output", "json", "sources"])));
        let events = sources
            .as_array()
            .and_then(|s| s.iter().find(|s| s["service"] == "dependency-mapping"))
            .and_then(|s| s["events"].as_u64())
            .unwrap_or(0);
        let expected = store_ids(dir.path(), "dependency-mapping");
        let replayed = ok(audit(&["replay", "--service", "dependency-mapping"]));
        let ids: Vec<String> = lines(&replayed)
            .iter()
            .filter_map(|e| e["id"].as_str().map(str::to_owned))
            .collect();
        if (events > 0 && ids == expected) || std::time::Instant::now() > deadline {
            assert!(
                events > 0,
                "the ledger saw no dependency-mapping event: {sources}"
            );
            break (expected, replayed);
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert!(
        expected.len() >= 3,
        "the import recorded events: {expected:?}"
    );
    let events = lines(&replayed);
    let ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(
        ids, expected,
        "the replay gives the store's events in its order"
    );
    let indexes: Vec<u64> = events
        .iter()
        .map(|e| {
            e["ledgerindex"]
                .as_u64()
                .unwrap_or_else(|| panic!("ledgerindex: {e}"))
        })
        .collect();
    assert!(
        indexes.windows(2).all(|w| w[0] < w[1]),
        "ledger order: {indexes:?}"
    );
    for e in &events {
        assert_eq!(e["specversion"], "1.0", "{e}");
        assert_eq!(e["ledgerservice"], "dependency-mapping", "{e}");
        assert!(e["type"].as_str().is_some_and(|t| !t.is_empty()), "{e}");
        assert!(e["data_base64"].is_string(), "{e}");
        // The extensions are top-level attributes, as the CloudEvents JSON format puts them.
        assert!(
            e["eventhash"].is_string() && e["sequence"].is_string(),
            "{e}"
        );
    }
    let last = indexes.last().copied().unwrap_or_default();
    let said = String::from_utf8_lossy(&replayed.stderr);
    assert!(
        said.contains(&format!(
            "replayed {} event{}; resume with --from-index {}",
            events.len(),
            if events.len() == 1 { "" } else { "s" },
            last + 1
        )),
        "{said}"
    );
    // Resuming after the last event brings nothing more of the service.
    let resumed = ok(audit(&[
        "replay",
        "--service",
        "dependency-mapping",
        "--from-index",
        &(last + 1).to_string(),
    ]));
    assert!(lines(&resumed).is_empty(), "{}", text(&resumed));
    let one = ok(audit(&[
        "replay",
        "--service",
        "dependency-mapping",
        "--limit",
        "1",
    ]));
    assert_eq!(lines(&one).len(), 1, "{}", text(&one));

    let signed = json(&ok(audit(&["--output", "json", "checkpoint", "--sign"])));
    let size = signed["size"].as_u64().unwrap_or_default();
    assert!(
        size > last,
        "the checkpoint covers the replayed events: {signed}"
    );
    assert_eq!(
        signed["root_hex"].as_str().map(str::len),
        Some(64),
        "{signed}"
    );
    let key = signed["verifier_key"]
        .as_str()
        .expect("verifier key")
        .to_owned();
    assert!(
        signed["note"]
            .as_str()
            .is_some_and(|n| n.contains(&format!("\n{size}\n"))),
        "{signed}"
    );
    let shown = ok(audit(&["checkpoint"]));
    assert!(
        text(&shown).contains(&key) && text(&shown).contains("SIGNED AT"),
        "{}",
        text(&shown)
    );

    let file = dir.path().join("bundle.json");
    let file_arg = file.to_string_lossy().into_owned();
    let exported = json(&ok(audit(&[
        "--output",
        "json",
        "bundle",
        "--service",
        "dependency-mapping",
        "--out",
        &file_arg,
    ])));
    assert_eq!(exported["entries"], expected.len(), "{exported}");
    assert_eq!(exported["tree_size"], size, "{exported}");
    assert_eq!(exported["verifier_key"], key.as_str(), "{exported}");
    let verified = ok(flotilla()
        .args(["audit", "verify", &file_arg, "--key", &key])
        .output()
        .expect("run flotilla"));
    assert!(
        text(&verified).contains(&format!("{} entries proven included", expected.len())),
        "{}",
        text(&verified)
    );
    let table = ok(audit(&[
        "bundle",
        "--service",
        "dependency-mapping",
        "--out",
        &file_arg,
    ]));
    assert!(
        text(&table).contains("flotilla audit verify") && text(&table).contains(&key),
        "{}",
        text(&table)
    );

    let sources = ok(audit(&["sources"]));
    assert!(
        text(&sources).contains("dependency-mapping") && text(&sources).contains("HEAD HASH"),
        "{}",
        text(&sources)
    );
    let alerts = json(&ok(audit(&["--output", "json", "alerts"])));
    assert!(alerts.is_array(), "{alerts}");
    ok(audit(&["alerts", "--service", "dependency-mapping"]));

    let bad = audit(&["replay", "--from", "yesterday"]);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        text(&bad).contains("is not an RFC 3339 time like 2026-12-01T00:00:00Z"),
        "{}",
        text(&bad)
    );
    assert!(bad.stdout.is_empty(), "{}", text(&bad));
    stop(node);
}

#[test]
fn a_person_is_held_then_erased_from_the_command_line_and_the_ledger_still_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, url) = up(dir.path());
    let admin = token(dir.path(), "ada@bank.example", "admin", "central");
    let officer = token(dir.path(), "olga", "compliance-officer", "central");
    let audit = |args: &[&str]| as_user(&officer, &url, "audit", args);
    import_two_components(dir.path(), &admin, &url);

    // At rest, the importer is a token.
    let actors = store_column(dir.path(), "dependency-mapping", "actor");
    assert!(!actors.is_empty());
    assert!(
        actors.iter().all(|a| !a.contains("ada@bank.example"))
            && actors.iter().any(|a| a.starts_with("pii:v1:")),
        "{actors:?}"
    );
    // The ledger shows who, revealed, once it has the events.
    let revealed = |replay: &std::process::Output| -> Vec<String> {
        lines(replay)
            .iter()
            .filter_map(|e| e["revealedactor"].as_str().map(str::to_owned))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let before = loop {
        let r = ok(audit(&["replay", "--service", "dependency-mapping"]));
        let seen = json(&ok(audit(&["--output", "json", "retention"])));
        if (revealed(&r).iter().any(|a| a == "ada@bank.example")
            && seen["subjects_seen"].as_u64().unwrap_or(0) >= 1)
            || std::time::Instant::now() > deadline
        {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert!(
        revealed(&before).iter().any(|a| a == "ada@bank.example"),
        "{}",
        text(&before)
    );

    let set = ok(audit(&[
        "retention",
        "set",
        "gdpr-catalog",
        "--regulation",
        "gdpr",
        "--personal-data-days",
        "30",
        "--service",
        "dependency-mapping",
    ]));
    assert!(
        text(&set).contains("personal data 30 days"),
        "{}",
        text(&set)
    );
    ok(audit(&[
        "hold",
        "place",
        "h1",
        "--matter",
        "Doe v. Bank",
        "--subject",
        "ada@bank.example",
    ]));
    let held = audit(&[
        "erase",
        "ada@bank.example",
        "--reason",
        "GDPR art. 17 request",
    ]);
    assert!(!held.status.success(), "{}", text(&held));
    assert!(
        text(&held).contains("legal hold h1 (Doe v. Bank)"),
        "{}",
        text(&held)
    );
    let released = ok(audit(&["hold", "release", "h1"]));
    assert!(text(&released).contains("released"), "{}", text(&released));
    let erased = json(&ok(audit(&[
        "--output",
        "json",
        "erase",
        "ada@bank.example",
        "--reason",
        "GDPR art. 17 request",
        "--request",
        "DSR-9",
    ])));
    let key = erased["subject_key"]
        .as_str()
        .expect("subject key")
        .to_owned();
    assert_eq!(erased["erased_by"], "olga", "{erased}");

    // Every replayed event of the importer now shows the placeholder; the bytes are the same.
    let after = ok(audit(&["replay", "--service", "dependency-mapping"]));
    let placeholder = format!("[erased:{}]", &key[..16]);
    assert!(
        revealed(&after).iter().any(|a| a == &placeholder),
        "{}",
        text(&after)
    );
    assert!(
        !revealed(&after).iter().any(|a| a.contains("ada@bank.example")),
        "{}",
        text(&after)
    );
    let data = |r: &std::process::Output| -> Vec<serde_json::Value> {
        lines(r).iter().map(|e| e["data_base64"].clone()).collect()
    };
    assert_eq!(data(&after)[..data(&before).len()], data(&before)[..]);
    let listed = json(&ok(audit(&["--output", "json", "retention"])));
    assert_eq!(listed["erasures"][0]["request_ref"], "DSR-9", "{listed}");
    assert_eq!(listed["policies"][0]["regulation"], "GDPR", "{listed}");
    assert!(
        listed["holds"][0]["released"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{listed}"
    );

    // The archive of the policy's records verifies offline with only the ledger's key.
    let archive = dir.path().join("archive.json");
    let exported = json(&ok(audit(&[
        "--output",
        "json",
        "archive",
        "gdpr-catalog",
        "--out",
        &archive.to_string_lossy(),
    ])));
    assert!(exported["entries"].as_u64().unwrap_or(0) >= 3, "{exported}");
    let vkey = exported["verifier_key"].as_str().expect("key").to_owned();
    let verified = flotilla()
        .args(["audit", "verify"])
        .arg(&archive)
        .args(["--key", &vkey])
        .output()
        .expect("run flotilla");
    assert!(verified.status.success(), "{}", text(&verified));
    stop(node);
}
