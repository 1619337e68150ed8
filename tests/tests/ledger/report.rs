//! The audit report of a release: the approval request governance opened for it, each line
//! cited and proven against a signed checkpoint, as JSON and as a page headless Chromium
//! renders.

use std::time::Duration;

use flotilla_proto::compliance::v1 as pb;
use flotilla_proto::compliance::v1::compliance_service_client::ComplianceServiceClient;
use flotilla_proto::governance::v1 as gv;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::config::BusKind;
use flotilla_tests::Deployment;
use flotilla_transparency::checkpoint::Checkpoint;
use flotilla_transparency::ledger::Leaf;
use flotilla_transparency::merkle::{leaf_hash, verify_inclusion};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_report_cites_and_proves_every_line_and_renders_in_a_browser() {
    let mut deployment = Deployment::new(vec![BusKind::Nats]).expect("deployment");
    settings(&mut deployment);
    let node = deployment.start(&SERVICES).await.expect("start");
    let admin = node
        .as_caller("ops", &["admin"], "central")
        .await
        .expect("admin");
    register(&admin, "till").await;
    let mut ledger = ComplianceServiceClient::new(
        node.as_caller("aud", &["auditor"], "central")
            .await
            .expect("auditor"),
    );
    let key = verifier_key(&mut ledger).await;

    // The audit report of a release: the approval request governance opened for it, cited
    // and proven against a signed checkpoint, as JSON and as a page a browser renders.
    let mut rm = GovernanceServiceClient::new(
        node.as_caller("rita", &["release-manager"], "retail")
            .await
            .expect("release manager"),
    );
    let facts = gv::ReleaseFacts {
        release: "till-1.0.0".into(),
        version: "1.0.0".into(),
        environment: "dev".into(),
        service: "till".into(),
        business_unit: "retail".into(),
        criticality_tier: 2,
        risk_score: 5,
        author: "alice".into(),
        ..Default::default()
    };
    // Governance knows the service once it took the catalog's event.
    let mut opened = None;
    for _ in 0..300 {
        match rm
            .open_approval_request(gv::OpenApprovalRequestRequest {
                release: Some(facts.clone()),
                emergency: false,
            })
            .await
        {
            Ok(r) => {
                opened = Some(r.into_inner());
                break;
            }
            Err(s) if s.message().contains("not in the service catalog") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(s) => panic!("open: {s:?}"),
        }
    }
    let opened = opened.expect("an approval request");
    let mut report = None;
    for _ in 0..300 {
        match ledger
            .get_audit_report(pb::GetAuditReportRequest {
                release: "till-1.0.0".into(),
                ..Default::default()
            })
            .await
        {
            Ok(r) => {
                report = Some(r.into_inner());
                break;
            }
            Err(s) if s.code() == tonic::Code::NotFound => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(s) => panic!("report: {s:?}"),
        }
    }
    let report = report.expect("a report once the approval request is ledgered");
    let doc: serde_json::Value = serde_json::from_str(&report.json).expect("json");
    let approvals = doc["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .find(|s| {
            s["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Approvals"))
        })
        .expect("an approvals section");
    let line = &approvals["lines"][0];
    assert_eq!(
        line["event_type"],
        "flotilla.governance.v1.ApprovalRequestOpened"
    );
    assert_eq!(line["actor"], "rita");
    assert!(
        line["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["value"] == opened.request_id),
        "{line}"
    );
    let report_cp =
        Checkpoint::open(&report.checkpoint, std::slice::from_ref(&key)).expect("signed");
    let leaf = hex::decode(line["leaf"].as_str().expect("leaf")).expect("hex");
    let raw: Vec<Vec<u8>> = line["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|h| hex::decode(h.as_str().expect("hex")).expect("hex"))
        .collect();
    let hashes = proof_hashes(&raw);
    let index = line["index"].as_u64().expect("index");
    verify_inclusion(
        index,
        report_cp.size,
        &leaf_hash(&leaf),
        &hashes,
        &report_cp.root,
    )
    .expect("the line is proven");
    assert_eq!(
        Leaf::decode(&leaf).expect("leaf").event_hash.to_vec(),
        hex::decode(line["event_hash"].as_str().expect("hash")).expect("hex")
    );
    // The page, as headless Chromium renders it: the release, the cited event, the checkpoint.
    let dir = tempfile::tempdir().expect("dir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, &report.html).expect("write");
    let chromium = std::env::var("FLOTILLA_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let dom = std::process::Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!("{chromium} does not run ({e}); scripts/services.sh installs it")
        });
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<span id=\"release\">till-1.0.0</span>"),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(
            "data-hash=\"{}\"",
            line["event_hash"].as_str().expect("hash")
        )),
        "{dom}"
    );
    assert!(dom.contains(report_cp.origin.as_str()), "{dom}");
    node.stop().await.expect("stop");
}
