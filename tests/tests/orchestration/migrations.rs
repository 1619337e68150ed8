//! Schema migrations as steps, forward and back, on the test PostgreSQL.

use flotilla_proto::orchestration::v1 as pb;

use crate::flow::*;

fn migration(name: &str, forward: &str, rollback: &str) -> pb::Migration {
    pb::Migration {
        name: name.into(),
        forward: forward.into(),
        rollback: rollback.into(),
    }
}

async fn columns(pool: &sqlx::PgPool, schema: &str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'accounts' ORDER BY ordinal_position",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("columns")
}

/// Schema migrations are steps: forward scripts run with the service, in order, and a rollback
/// runs their rollback scripts in reverse — real SQL, through psql, on the test PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_forward_and_back_on_postgres() {
    let schema = flotilla_tests::fresh_namespace();
    let pool = sqlx::PgPool::connect(&flotilla_tests::postgres_url())
        .await
        .expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&pool)
        .await
        .expect("schema");
    let mut flow = Flow::start().await;
    flow.migrate_on(&flotilla_tests::postgres_url());
    policy(&flow).await;
    catalog(&flow, UNIT, &["payments-ledger"], &[]).await;
    artifacts(&mut flow, &["payments-ledger"], "2.0.0").await;
    artifacts(&mut flow, &["payments-ledger"], "2.1.0").await;
    environments(&mut flow, UNIT, vec![env("dev")]).await;

    let release =
        |name: &str, version: &str, migrations: Vec<pb::Migration>| pb::CreateReleaseRequest {
            name: name.into(),
            business_unit: UNIT.into(),
            items: vec![pb::RequestedItem {
                migrations,
                ..item("payments-ledger", version)
            }],
            ..Default::default()
        };
    let t = format!("\"{schema}\".accounts");
    flow.orch
        .create_release(release(
            "payments-2.0.0",
            "2.0.0",
            vec![
                migration(
                    "001-accounts",
                    &format!("CREATE TABLE {t} (id bigint PRIMARY KEY)"),
                    &format!("DROP TABLE {t}"),
                ),
                migration(
                    "002-iban",
                    &format!("ALTER TABLE {t} ADD COLUMN iban text"),
                    &format!("ALTER TABLE {t} DROP COLUMN iban"),
                ),
            ],
        ))
        .await
        .expect("create");
    flow.orch
        .plan_release(pb::PlanReleaseRequest {
            release: "payments-2.0.0".into(),
        })
        .await
        .expect("plan");
    approve_for(&flow, UNIT, "payments-ledger", "payments-2.0.0", "dev").await;
    let d = flow
        .orch
        .promote_release(pb::PromoteReleaseRequest {
            release: "payments-2.0.0".into(),
            environment: "dev".into(),
        })
        .await
        .expect("promote")
        .into_inner();
    let kinds: Vec<&str> = d.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["migrate", "migrate", "deploy-rolling"]);
    let done = flow.finished(&d.deployment_id).await;
    assert_eq!(
        done.status,
        pb::DeploymentStatus::Succeeded as i32,
        "{done:#?}"
    );
    assert_eq!(columns(&pool, &schema).await, ["id", "iban"]);

    // 2.1.0 adds a column and its deploy fails: its migration is undone, 2.0.0's stay.
    flow.orch
        .create_release(release(
            "payments-2.1.0",
            "2.1.0",
            vec![migration(
                "003-currency",
                &format!("ALTER TABLE {t} ADD COLUMN currency char(3) NOT NULL DEFAULT 'EUR'"),
                &format!("ALTER TABLE {t} DROP COLUMN currency"),
            )],
        ))
        .await
        .expect("create 2.1.0");
    flow.orch
        .plan_release(pb::PlanReleaseRequest {
            release: "payments-2.1.0".into(),
        })
        .await
        .expect("plan");
    approve_for(&flow, UNIT, "payments-ledger", "payments-2.1.0", "dev").await;
    flow.fail("payments-ledger");
    let d = flow
        .orch
        .promote_release(pb::PromoteReleaseRequest {
            release: "payments-2.1.0".into(),
            environment: "dev".into(),
        })
        .await
        .expect("promote 2.1.0")
        .into_inner();
    decide_rollback(&mut flow, &d.deployment_id, true).await;
    let done = flow.finished(&d.deployment_id).await;
    assert_eq!(
        done.status,
        pb::DeploymentStatus::RolledBack as i32,
        "{done:#?}"
    );
    let steps: Vec<(&str, &str)> = done
        .steps
        .iter()
        .map(|s| (s.kind.as_str(), s.version.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("migrate", "2.1.0"),
            ("deploy-rolling", "2.1.0"),
            ("rollback-deploy", "2.0.0"),
            ("rollback-migrate", "2.0.0")
        ],
        "the rollback puts 2.0.0 back, then undoes 2.1.0's migration"
    );
    assert_eq!(columns(&pool, &schema).await, ["id", "iban"]);

    // Rolling back 2.0.0 by hand undoes its migrations in reverse: the table is gone.
    flow.succeed("payments-ledger");
    let back = flow
        .orch
        .rollback_release(pb::RollbackReleaseRequest {
            release: "payments-2.0.0".into(),
            reason: "the ledger team asked".into(),
        })
        .await
        .expect("rollback 2.0.0")
        .into_inner();
    let done = flow.finished(&back.deployment_id).await;
    assert_eq!(
        done.status,
        pb::DeploymentStatus::RolledBack as i32,
        "{done:#?}"
    );
    assert!(
        columns(&pool, &schema).await.is_empty(),
        "both migrations were undone"
    );
    let log = flow.log();
    let undone = log
        .iter()
        .filter(|l| l.starts_with("rollback-migrate"))
        .count();
    assert_eq!(
        undone, 3,
        "one rollback script of 2.1.0, two of 2.0.0: {log:#?}"
    );

    flow.node.stop().await.expect("stop");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await
    .expect("drop schema");
}
