//! Durable event stores for Flotilla: PostgreSQL (production, one schema per service) and
//! SQLite (embedded default), both behind [`flotilla_core::EventStore`], chosen by URL.
//!
//! Both group concurrent appends in a writer task (group commit) under a transaction-scoped
//! lock, so global positions are gap-free in commit order and each store has one hash chain.

pub mod baseline;
mod keyring;
mod postgres;
mod sqlite;
mod writer;

use std::sync::Arc;

use flotilla_core::MemoryStore;
use flotilla_core::store::{EventStore, Result, StoreError};

pub use keyring::{PgKeyring, SqliteKeyring, open_keyring};
pub use postgres::{IdempotencyRow, PgStore, Restore};
pub use sqlite::SqliteStore;

pub(crate) fn backend_err(e: sqlx::Error) -> StoreError {
    // PostgreSQL's detail names the row a constraint refused (which key), for the operator.
    let detail = match &e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|pg| pg.detail())
            .map(|d| format!(" ({d})")),
        _ => None,
    };
    StoreError::Backend(format!("{e}{}", detail.unwrap_or_default()))
}

/// Checks a PostgreSQL schema name: 1 to 63 lowercase letters, digits and `_`, not starting
/// with a digit.
pub(crate) fn check_schema_name(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "invalid schema name {schema:?}: use 1 to 63 lowercase letters, digits and '_', not starting with a digit"
        )))
    }
}

/// The schema (PostgreSQL) of a service in a deployment namespace: `<namespace>_<service>`
/// with `-` as `_` (the default namespace gives `flotilla_governance`).
pub fn schema_for(namespace: &str, service: &str) -> String {
    format!("{namespace}_{service}").replace('-', "_")
}

/// Opens a store that must already exist (no schema, file or table is created): for tools that
/// only read, such as `flotilla store verify`.
pub async fn open_existing(url: &str, schema: &str) -> Result<Arc<dyn EventStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect_existing(url, schema).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect_existing(url).await?))
    } else {
        Err(StoreError::Backend(format!(
            "unsupported store url {url:?} for an existing store: use postgres://user@host/db or sqlite://path/to/file.db"
        )))
    }
}

/// Opens the store a URL names: `postgres://…` (in `schema`), `sqlite://path` or `memory:`.
pub async fn open(url: &str, schema: &str) -> Result<Arc<dyn EventStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url, schema).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url == "memory:" || url == "memory://" {
        Ok(Arc::new(MemoryStore::new()))
    } else {
        Err(StoreError::Backend(format!(
            "unsupported store url {url:?}: use postgres://user@host/db, sqlite://path/to/file.db or memory:"
        )))
    }
}
