//! The keyring conformance suite against SQLite (two pools on one file, as two processes) and
//! the real PostgreSQL (two handles on one fresh schema), and what the tables hold.

use std::sync::Arc;

use flotilla_core::personal::conformance::Pair;
use flotilla_core::personal::{Keyring, subject_digest};
use flotilla_store::{PgKeyring, SqliteKeyring};

fn postgres_url() -> String {
    std::env::var("FLOTILLA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

mod sqlite {
    use super::*;

    async fn pair() -> Pair {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("keyring.db").display());
        let a = SqliteKeyring::connect(&url).await.expect("open");
        let b = SqliteKeyring::connect(&url).await.expect("open again");
        // The folder lives as long as the test process (each test has its own).
        std::mem::forget(dir);
        (Arc::new(a), Arc::new(b))
    }

    flotilla_core::keyring_conformance_tests!(pair().await);
}

mod postgres {
    use super::*;

    pub async fn pair() -> Pair {
        let schema = format!("keyring_test_{}", uuid::Uuid::new_v4().simple());
        let a = PgKeyring::connect(&postgres_url(), &schema)
            .await
            .expect("open");
        let b = PgKeyring::connect(&postgres_url(), &schema)
            .await
            .expect("open again");
        (Arc::new(a), Arc::new(b))
    }

    flotilla_core::keyring_conformance_tests!(pair().await);
}

/// id, digest, secret.
type KeyRow = (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);

/// An insider reading the table finds no subject, and after an erasure no secret either.
#[tokio::test]
async fn the_table_holds_no_subject_and_nothing_after_erasure() {
    let schema = format!("keyring_test_{}", uuid::Uuid::new_v4().simple());
    let ring = PgKeyring::connect(&postgres_url(), &schema)
        .await
        .expect("open");
    let key = ring.key_for("erin@bank.example").await.expect("key");
    let rows: Vec<KeyRow> = sqlx::query_as("SELECT id, digest, secret FROM subject_keys")
        .fetch_all(ring.pool())
        .await
        .expect("read");
    assert_eq!(rows.len(), 1);
    let (id, digest, secret) = &rows[0];
    assert_eq!(id.as_slice(), key.id.0.as_bytes());
    assert_eq!(
        digest.as_deref(),
        Some(subject_digest("erin@bank.example").as_slice())
    );
    assert_eq!(secret.as_deref(), Some(key.secret().as_slice()));
    let text: String = sqlx::query_scalar("SELECT string_agg(t::text, ' ') FROM subject_keys t")
        .fetch_one(ring.pool())
        .await
        .expect("read");
    assert!(!text.contains("erin"), "{text}");
    assert!(ring.erase(key.id).await.expect("erase"));
    let after: (Option<Vec<u8>>, Option<Vec<u8>>, Option<i64>) =
        sqlx::query_as("SELECT digest, secret, erased_at FROM subject_keys")
            .fetch_one(ring.pool())
            .await
            .expect("read");
    assert_eq!((after.0, after.1), (None, None));
    assert!(after.2.is_some());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(ring.pool())
    .await
    .expect("drop");
}
