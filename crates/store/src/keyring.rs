//! The platform's keyring of subject keys in PostgreSQL (its own schema, `<namespace>_keyring`,
//! beside the services' stores) or SQLite (`keyring.db` beside the embedded stores).
//!
//! One table, `subject_keys`: `id` (16 bytes), `digest` (SHA-256 of the subject, unique, never
//! the subject itself), `secret` (32 bytes), `created_at`, `erased_at` (microseconds). Erasing
//! sets `secret` and `digest` to NULL and stamps `erased_at`; the row stays so the id reads as
//! erased, for good.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use flotilla_core::event::Timestamp;
use flotilla_core::personal::{
    KeyId, Keyring, KeyringError, MemoryKeyring, SubjectKey, subject_digest,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};
use sqlx::{Connection, Row};
use uuid::Uuid;

fn unavailable(e: sqlx::Error) -> KeyringError {
    KeyringError::Unavailable(e.to_string())
}

fn corrupt(e: sqlx::Error) -> KeyringError {
    KeyringError::Corrupt(e.to_string())
}

fn key_of(id: &[u8], secret: &[u8]) -> Result<SubjectKey, KeyringError> {
    let id = Uuid::from_slice(id).map_err(|e| KeyringError::Corrupt(format!("key id: {e}")))?;
    let secret: [u8; 32] = secret
        .try_into()
        .map_err(|_| KeyringError::Corrupt(format!("key {} has no 32-byte secret", id.simple())))?;
    Ok(SubjectKey::new(KeyId(id), secret))
}

/// Opens the keyring a URL names: `postgres://…` (schema `<namespace>_keyring`),
/// `sqlite://path` or `memory:`; creates its table if needed.
pub async fn open_keyring(url: &str, namespace: &str) -> Result<Arc<dyn Keyring>, KeyringError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let schema = crate::schema_for(namespace, "keyring");
        Ok(Arc::new(PgKeyring::connect(url, &schema).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteKeyring::connect(url).await?))
    } else if url == "memory:" || url == "memory://" {
        Ok(Arc::new(MemoryKeyring::default()))
    } else {
        Err(KeyringError::Unavailable(format!(
            "unsupported keyring url {url:?}: use postgres://user@host/db, sqlite://path/to/keyring.db or memory:"
        )))
    }
}

/// Subject keys in PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgKeyring {
    pool: PgPool,
    schema: String,
}

impl PgKeyring {
    /// Connects, creating the schema and table if needed.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, KeyringError> {
        crate::check_schema_name(schema).map_err(|e| KeyringError::Unavailable(e.to_string()))?;
        let base = PgConnectOptions::from_str(url)
            .map_err(|e| KeyringError::Unavailable(format!("invalid postgres url: {e}")))?;
        // Keys are cached by every process: two connections, released when idle, are plenty
        // (six services on one database share its connection limit).
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .idle_timeout(Duration::from_secs(30))
            .connect_with(base.options([("search_path", schema)]))
            .await
            .map_err(unavailable)?;
        // The schema name was checked to be a plain identifier above.
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS \"{schema}\".subject_keys (
               id BYTEA PRIMARY KEY,
               digest BYTEA UNIQUE,
               secret BYTEA,
               created_at BIGINT NOT NULL,
               erased_at BIGINT,
               CHECK ((secret IS NULL) = (erased_at IS NOT NULL)));"
        );
        // Two processes starting at once may both create: the loser's error is harmless.
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(ddl.clone()))
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "keyring table created concurrently; retrying once");
            sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
                .execute(&pool)
                .await
                .map_err(unavailable)?;
        }
        Ok(Self {
            pool,
            schema: schema.to_owned(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }
}

const CREATE_SUBJECT_KEYS: &str = "CREATE TABLE IF NOT EXISTS subject_keys (
   id BLOB PRIMARY KEY,
   digest BLOB UNIQUE,
   secret BLOB,
   created_at INTEGER NOT NULL,
   erased_at INTEGER,
   CHECK ((secret IS NULL) = (erased_at IS NOT NULL)))";

/// Subject keys in a SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteKeyring {
    pool: SqlitePool,
}

impl SqliteKeyring {
    /// Opens (creating if needed) the database at `url`.
    pub async fn connect(url: &str) -> Result<Self, KeyringError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| KeyringError::Unavailable(format!("invalid sqlite url {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // An erased secret's bytes are overwritten in the file, not left in a free page.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(30));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // Switch the file to WAL and create the table on one connection before the pool opens
        // more: concurrent first connections race for the journal-mode change ("database is
        // locked"), as they do for the event store.
        if !in_memory {
            let mut first = SqliteConnection::connect_with(&opts)
                .await
                .map_err(unavailable)?;
            sqlx::raw_sql(CREATE_SUBJECT_KEYS)
                .execute(&mut first)
                .await
                .map_err(unavailable)?;
            first.close().await.map_err(unavailable)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 4 })
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await
            .map_err(unavailable)?;
        if in_memory {
            sqlx::raw_sql(CREATE_SUBJECT_KEYS)
                .execute(&pool)
                .await
                .map_err(unavailable)?;
        }
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// The keyring contract over one table, the same for both databases but for the SQL's
/// placeholders.
macro_rules! keyring_on {
    ($ty:ty, insert: $insert:literal, by_digest: $by_digest:literal, find: $find:literal,
     secret: $secret:literal, erase: $erase:literal) => {
        #[async_trait::async_trait]
        impl Keyring for $ty {
            async fn key_for(&self, subject: &str) -> Result<SubjectKey, KeyringError> {
                let digest = subject_digest(subject);
                let fresh = flotilla_core::personal::fresh_key();
                sqlx::query($insert)
                    .bind(fresh.id.0.as_bytes().as_slice())
                    .bind(digest.as_slice())
                    .bind(fresh.secret().as_slice())
                    .bind(Timestamp::now().as_micros())
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                let row = sqlx::query($by_digest)
                    .bind(digest.as_slice())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(unavailable)?;
                key_of(
                    &row.try_get::<Vec<u8>, _>("id").map_err(corrupt)?,
                    &row.try_get::<Vec<u8>, _>("secret").map_err(corrupt)?,
                )
            }

            async fn find(&self, subject: &str) -> Result<Option<KeyId>, KeyringError> {
                let id: Option<Vec<u8>> = sqlx::query_scalar($find)
                    .bind(subject_digest(subject).as_slice())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(unavailable)?;
                id.map(|id| {
                    Uuid::from_slice(&id)
                        .map(KeyId)
                        .map_err(|e| KeyringError::Corrupt(format!("key id: {e}")))
                })
                .transpose()
            }

            async fn key(&self, id: KeyId) -> Result<Option<SubjectKey>, KeyringError> {
                let secret: Option<Option<Vec<u8>>> = sqlx::query_scalar($secret)
                    .bind(id.0.as_bytes().as_slice())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(unavailable)?;
                secret
                    .flatten()
                    .map(|s| key_of(id.0.as_bytes(), &s))
                    .transpose()
            }

            async fn erase(&self, id: KeyId) -> Result<bool, KeyringError> {
                let r = sqlx::query($erase)
                    .bind(Timestamp::now().as_micros())
                    .bind(id.0.as_bytes().as_slice())
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(r.rows_affected() == 1)
            }
        }
    };
}

keyring_on!(
    PgKeyring,
    insert: "INSERT INTO subject_keys (id, digest, secret, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (digest) DO NOTHING",
    by_digest: "SELECT id, secret FROM subject_keys WHERE digest = $1",
    find: "SELECT id FROM subject_keys WHERE digest = $1",
    secret: "SELECT secret FROM subject_keys WHERE id = $1",
    erase: "UPDATE subject_keys SET secret = NULL, digest = NULL, erased_at = $1
            WHERE id = $2 AND secret IS NOT NULL"
);

keyring_on!(
    SqliteKeyring,
    insert: "INSERT INTO subject_keys (id, digest, secret, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (digest) DO NOTHING",
    by_digest: "SELECT id, secret FROM subject_keys WHERE digest = ?",
    find: "SELECT id FROM subject_keys WHERE digest = ?",
    secret: "SELECT secret FROM subject_keys WHERE id = ?",
    erase: "UPDATE subject_keys SET secret = NULL, digest = NULL, erased_at = ?
            WHERE id = ? AND secret IS NOT NULL"
);
