//! Backup and restore: a served dependency-mapping's store exported with `flotilla store export`,
//! imported with `flotilla store import` into a fresh PostgreSQL database, and the service
//! started on the restored store answers exactly as before. An export altered by one byte, or
//! imported over a store that is not empty, is refused and nothing is kept.

use std::path::Path;
use std::process::Child;

use flotilla_auth::Bearer;
use flotilla_proto::dependency::v1 as pb;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

mod support;
use support::{catalog_client, flotilla, free_port, serve, stop, text, token_for_config};

type Client = DependencyMappingServiceClient<InterceptedService<Channel, Bearer>>;

fn config(
    dir: &Path,
    name: &str,
    namespace: &str,
    store_url: &str,
    keyring_url: &str,
) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "namespace = \"{namespace}\"\nstore_url = \"{store_url}\"\nkeyring_url = \"{keyring_url}\"\nnats_url = \"{nats}\"\nbuses = [\"nats\"]\n\
             auth_hs256_secret = \"backup-secret-for-the-test-0123456789\"\naccess_policy_source = \"none\"\ndata_dir = \"{data}\"\n",
            nats = flotilla_tests::nats_url(),
            data = dir.join("data").display(),
        ),
    )
    .expect("config");
    path
}

fn entry(name: &str, tier: u32) -> pb::ServiceEntry {
    pb::ServiceEntry {
        name: name.into(),
        owner_team: "team-a".into(),
        business_unit: "central".into(),
        criticality_tier: tier,
        handles_personal_data: tier == 1,
        data_classification: pb::DataClassification::Confidential as i32,
        runtime: pb::Runtime::Microservice as i32,
    }
}

/// What the service answers about its catalog: services, the impact of a change to the
/// database, the dependency matrix.
async fn answers(
    c: &mut Client,
) -> (
    pb::ListServicesResponse,
    pb::AnalyzeImpactResponse,
    pb::DependencyMatrix,
) {
    let listed = c
        .list_services(pb::ListServicesRequest::default())
        .await
        .expect("list")
        .into_inner();
    let impact = c
        .analyze_impact(pb::AnalyzeImpactRequest {
            service: "ledger-db".into(),
        })
        .await
        .expect("impact")
        .into_inner();
    let matrix = c
        .get_dependency_matrix(pb::GetDependencyMatrixRequest {
            format: pb::MatrixFormat::Json as i32,
            ..Default::default()
        })
        .await
        .expect("matrix")
        .into_inner();
    (listed, impact, matrix)
}

/// `flotilla store import` of `file` into dependency-mapping's store at `url`.
fn import(url: &str, namespace: &str, file: &Path) -> std::process::Output {
    flotilla()
        .args([
            "store",
            "import",
            "--url",
            url,
            "--service",
            "dependency-mapping",
            "--namespace",
            namespace,
            "--in",
        ])
        .arg(file)
        .output()
        .expect("import")
}

fn run_ok(args: &[&str]) -> String {
    let out = flotilla().args(args).output().expect("flotilla");
    assert!(out.status.success(), "flotilla {args:?}: {}", text(&out));
    text(&out)
}

async fn fresh_database(admin: &sqlx::PgPool) -> (String, String) {
    let name = format!("restore_{}", uuid::Uuid::now_v7().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin)
        .await
        .expect("create database");
    let base = flotilla_tests::postgres_url();
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("postgres url without a database: {base}"),
    };
    (name, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_exported_and_imported_into_a_fresh_database_answers_as_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let namespace = flotilla_tests::fresh_namespace();
    let source_url = flotilla_tests::postgres_url();
    let original = config(
        dir.path(),
        "original.toml",
        &namespace,
        &source_url,
        &source_url,
    );
    let token = token_for_config(&original, "ops", "admin", "central");
    let port = free_port();
    let node: Child = serve(
        &original,
        "dependency-mapping",
        port,
        &dir.path().join("original.log"),
    );
    let mut c = catalog_client(port, &token, String::new).await;
    for (name, tier) in [
        ("ledger-db", 1),
        ("payments-api", 1),
        ("cards-api", 2),
        ("web", 3),
    ] {
        c.register_service(pb::RegisterServiceRequest {
            service: Some(entry(name, tier)),
        })
        .await
        .expect("register");
    }
    for (consumer, provider) in [
        ("payments-api", "ledger-db"),
        ("cards-api", "payments-api"),
        ("web", "cards-api"),
    ] {
        c.declare_dependency(pb::DeclareDependencyRequest {
            dependency: Some(pb::Dependency {
                consumer: consumer.into(),
                provider: provider.into(),
                kind: pb::EdgeKind::SyncApi as i32,
                data_flows: vec![],
            }),
        })
        .await
        .expect("declare");
    }
    let before = answers(&mut c).await;
    assert_eq!(before.0.services.len(), 4);
    assert!(before.1.entries.len() >= 3, "{:?}", before.1);
    stop(node);

    let file = dir.path().join("dependency-mapping.export");
    let file_s = file.to_str().expect("utf8 path");
    let exported = run_ok(&[
        "store",
        "export",
        "--url",
        &source_url,
        "--service",
        "dependency-mapping",
        "--namespace",
        &namespace,
        "--out",
        file_s,
        "--output",
        "json",
    ]);
    let manifest: serde_json::Value = serde_json::from_str(
        exported
            .lines()
            .take_while(|l| !l.starts_with("written"))
            .collect::<Vec<_>>()
            .join("\n")
            .trim(),
    )
    .expect("the manifest as JSON");
    assert_eq!(
        manifest["events"], 7,
        "four services and three dependencies: {manifest}"
    );
    let head_hash = manifest["head_hash"]
        .as_str()
        .expect("head hash")
        .to_owned();

    let admin = sqlx::PgPool::connect(&source_url).await.expect("postgres");
    let (database, restored_url) = fresh_database(&admin).await;

    // One byte of one event changed: the chain does not hold, nothing is kept.
    let export = std::fs::read_to_string(&file).expect("read export");
    let altered = export.replacen("\"actor\":\"pii:v1:", "\"actor\":\"pii:v2:", 1);
    assert_ne!(altered, export);
    let altered_file = dir.path().join("altered.export");
    std::fs::write(&altered_file, altered).expect("write");
    let out = import(&restored_url, &namespace, &altered_file);
    assert!(!out.status.success());
    assert!(text(&out).contains("altered"), "{}", text(&out));
    let schema = flotilla_store::schema_for(&namespace, "dependency-mapping");
    let restored = sqlx::PgPool::connect(&restored_url)
        .await
        .expect("restored db");
    let kept: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{schema}\".events"
    )))
    .fetch_one(&restored)
    .await
    .expect("count");
    assert_eq!(kept, 0, "a refused import keeps nothing");

    // The export as written: imported, verified, and the service answers as before.
    let out = import(&restored_url, &namespace, &file);
    assert!(out.status.success(), "{}", text(&out));
    let imported = text(&out);
    assert!(imported.contains(&head_hash), "{imported}");
    let verified = run_ok(&[
        "store",
        "verify",
        "--url",
        &restored_url,
        "--service",
        "dependency-mapping",
        "--namespace",
        &namespace,
    ]);
    assert!(
        verified.contains("holds") && verified.contains(&head_hash),
        "{verified}"
    );
    // A second import over it is refused.
    let out = import(&restored_url, &namespace, &file);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("already holds a store"),
        "{}",
        text(&out)
    );

    // The deployment's keyring stays where it was (keyring_url), so sealed values still open.
    let restored_config = config(
        dir.path(),
        "restored.toml",
        &namespace,
        &restored_url,
        &source_url,
    );
    let port = free_port();
    let node = serve(
        &restored_config,
        "dependency-mapping",
        port,
        &dir.path().join("restored.log"),
    );
    let mut c = catalog_client(port, &token, String::new).await;
    let after = answers(&mut c).await;
    stop(node);
    assert_eq!(
        after, before,
        "the restored store answers exactly as before"
    );

    restored.close().await;
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&admin)
    .await;
}
