//! PostgreSQL event store. One schema per service; appends are grouped by the writer task and
//! each batch is one statement that moves the chain head under its row lock (transaction-scoped),
//! inserts the events with `unnest` (so 20,000 events are 16 bind parameters, not 320,000) and
//! records idempotency keys. If another process moved the head meanwhile, nothing is written and
//! the batch is planned again from fresh state.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use flotilla_core::chain::{ChainHead, Hash};
use flotilla_core::event::{Metadata, RecordedEvent, Snapshot, Timestamp};
use flotilla_core::ids::{EventId, StreamId};
use flotilla_core::lease::{Fence, LeaseState};
use flotilla_core::store::{
    AppendOutcome, AppendRequest, Direction, EventStore, Result, StoreError,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::watch;

use crate::writer::{self, WriterHandle};
use crate::{backend_err, check_schema_name};

mod batches;
use batches::PgWriter;

mod backup;
mod leases;

pub use backup::{IdempotencyRow, Restore};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "events",
        include_str!("../migrations/postgres/0001_events.sql"),
    ),
    (
        2,
        "leases",
        include_str!("../migrations/postgres/0002_leases.sql"),
    ),
];

/// The advisory lock that serialises creating and migrating stores in a database.
const MIGRATION_LOCK: i64 = 7_343_624_512;

/// A PostgreSQL-backed event store.
pub struct PgStore {
    pool: PgPool,
    schema: String,
    writer: WriterHandle,
    head_tx: watch::Sender<u64>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .finish()
    }
}

const SELECT_EVENT: &str = "SELECT global_position, stream_id, stream_version, event_id, event_type, schema_version, payload, actor, business_unit, correlation_id, causation_id, traceparent, command_id, recorded_at_us, prev_hash, hash FROM events";

// Columns by index, in SELECT_EVENT's order (cheaper than by name on replay).
fn row_to_event(row: &PgRow) -> Result<RecordedEvent> {
    let position: i64 = row.try_get(0).map_err(backend_err)?;
    let position = position as u64;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let get = |e: sqlx::Error| corrupt(e.to_string());
    let stream_id: String = row.try_get(1).map_err(get)?;
    let prev: Vec<u8> = row.try_get(14).map_err(get)?;
    let hash: Vec<u8> = row.try_get(15).map_err(get)?;
    Ok(RecordedEvent {
        global_position: position,
        stream_id: StreamId::parse(&stream_id).map_err(corrupt)?,
        stream_version: row.try_get::<i64, _>(2).map_err(get)? as u64,
        event_id: EventId(row.try_get(3).map_err(get)?),
        event_type: row.try_get(4).map_err(get)?,
        schema_version: row.try_get::<i32, _>(5).map_err(get)? as u32,
        payload: row.try_get(6).map_err(get)?,
        metadata: Metadata {
            actor: row.try_get(7).map_err(get)?,
            business_unit: row.try_get(8).map_err(get)?,
            correlation_id: row.try_get(9).map_err(get)?,
            causation_id: row.try_get(10).map_err(get)?,
            traceparent: row.try_get(11).map_err(get)?,
            command_id: row.try_get(12).map_err(get)?,
        },
        recorded_at: Timestamp(row.try_get(13).map_err(get)?),
        prev_hash: Hash::from_slice(&prev)
            .ok_or_else(|| corrupt(format!("prev_hash is {} bytes, not 32", prev.len())))?,
        hash: Hash::from_slice(&hash)
            .ok_or_else(|| corrupt(format!("hash is {} bytes, not 32", hash.len())))?,
    })
}

async fn read_head_with<'e, E: sqlx::PgExecutor<'e>>(
    ex: E,
    sql: &'static str,
) -> Result<ChainHead> {
    let row = sqlx::query(sql).fetch_one(ex).await.map_err(backend_err)?;
    let hash: Vec<u8> = row.try_get(1).map_err(backend_err)?;
    Ok(ChainHead {
        position: row.try_get::<i64, _>(0).map_err(backend_err)? as u64,
        hash: Hash::from_slice(&hash).ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: "store head hash is not 32 bytes".into(),
        })?,
    })
}

async fn read_head<'e, E: sqlx::PgExecutor<'e>>(ex: E) -> Result<ChainHead> {
    read_head_with(ex, "SELECT position, hash FROM store_head WHERE id = 1").await
}

/// Reads the head and holds its row lock until the transaction ends.
async fn read_head_for_update(conn: &mut PgConnection) -> Result<ChainHead> {
    read_head_with(
        conn,
        "SELECT position, hash FROM store_head WHERE id = 1 FOR UPDATE",
    )
    .await
}

impl PgStore {
    /// Connects to `url`, creates `schema` if needed, and migrates it.
    pub async fn connect(url: &str, schema: &str) -> Result<Self> {
        Self::open(url, schema, true).await
    }

    /// Connects to a store that must already exist in `schema`; creates and migrates nothing
    /// (for tools that only read, such as `flotilla store verify`).
    pub async fn connect_existing(url: &str, schema: &str) -> Result<Self> {
        Self::open(url, schema, false).await
    }

    async fn open(url: &str, schema: &str, create: bool) -> Result<Self> {
        check_schema_name(schema)?;
        let base = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid postgres url: {e}")))?;
        if create {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(base.clone())
                .await
                .map_err(backend_err)?;
            // Replicas starting at once would race in CREATE SCHEMA IF NOT EXISTS (the catalog's
            // unique name refuses the loser): creators take the migrators' lock first.
            let mut tx = admin.begin().await.map_err(backend_err)?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            // The schema name was checked to be a plain identifier above.
            let ddl = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            tx.commit().await.map_err(backend_err)?;
            admin.close().await;
        }
        // Custom plans: a generic plan made while a table was small (a seq scan) would stay as it grows.
        let opts = base.clone().options([
            ("search_path", schema),
            ("plan_cache_mode", "force_custom_plan"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(backend_err)?;
        if create {
            migrate(&pool).await?;
        } else {
            let present: bool = sqlx::query_scalar("SELECT to_regclass('store_head') IS NOT NULL AND to_regclass('events') IS NOT NULL")
                .fetch_one(&pool)
                .await
                .map_err(backend_err)?;
            if !present {
                return Err(StoreError::Backend(format!(
                    "no flotilla event store in schema {schema}; check the service or schema name"
                )));
            }
        }
        let head = read_head(&pool).await?;
        let (head_tx, _) = watch::channel(head.position);
        let writer = writer::spawn(
            PgWriter {
                pool: pool.clone(),
                conn: None,
                write_opts: base.options([("search_path", schema)]),
                head: None,
                versions: HashMap::new(),
                broken_conn: false,
            },
            head_tx.clone(),
        );
        Ok(Self {
            pool,
            schema: schema.to_owned(),
            writer,
            head_tx,
        })
    }

    /// The newest schema migration applied to this store, and the newest this build knows.
    pub async fn schema_version(&self) -> Result<(i64, i64)> {
        let applied: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM store_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(backend_err)?;
        let known = MIGRATIONS.iter().map(|(v, _, _)| *v).max().unwrap_or(0);
        Ok((applied.unwrap_or(0), known))
    }

    /// The pool, for tests and tools that inspect the tables.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops the store's schema with everything in it (tests and benchmarks).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
        check_schema_name(schema)?;
        let base = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid postgres url: {e}")))?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(base)
            .await
            .map_err(backend_err)?;
        let ddl = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(&admin)
            .await
            .map_err(backend_err)?;
        admin.close().await;
        Ok(())
    }
}

async fn migrate(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await.map_err(backend_err)?;
    // Serialise concurrent migrators of the same database.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(backend_err)?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS store_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .execute(&mut *tx)
        .await
        .map_err(backend_err)?;
    for (version, name, sql) in MIGRATIONS {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM store_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend_err)?;
        if done.is_none() {
            sqlx::raw_sql(*sql)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            sqlx::query("INSERT INTO store_migrations (version, name) VALUES ($1, $2)")
                .bind(version)
                .bind(*name)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
        }
    }
    tx.commit().await.map_err(backend_err)
}

#[async_trait]
impl EventStore for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome> {
        self.writer.append(request).await
    }

    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: Option<u64>,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let limit = max.min(i64::MAX as usize) as i64;
        let rows = match direction {
            Direction::Forwards => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_EVENT} WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3")))
                    .bind(stream_id.as_str())
                    .bind(from.unwrap_or(0).min(i64::MAX as u64) as i64)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
            Direction::Backwards => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_EVENT} WHERE stream_id = $1 AND stream_version <= $2 ORDER BY stream_version DESC LIMIT $3")))
                    .bind(stream_id.as_str())
                    .bind(from.unwrap_or(i64::MAX as u64).min(i64::MAX as u64) as i64)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(backend_err)?;
        rows.iter().map(row_to_event).collect()
    }

    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_EVENT} WHERE global_position >= $1 ORDER BY global_position LIMIT $2"
        )))
        .bind(from.min(i64::MAX as u64) as i64)
        .bind(max.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_err)?;
        rows.iter().map(row_to_event).collect()
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<Option<u64>> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_id = $1")
                .bind(stream_id.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(backend_err)?;
        Ok(v.map(|v| v as u64))
    }

    async fn head(&self) -> Result<ChainHead> {
        let head = read_head(&self.pool).await?;
        // A head other processes moved wakes this handle's subscribers now rather than at
        // their next poll (a replica that lost a conflict catches up at once).
        self.head_tx.send_if_modified(|seen| {
            let newer = head.position > *seen;
            if newer {
                *seen = head.position;
            }
            newer
        });
        Ok(head)
    }

    fn head_watch(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    async fn save_snapshot(&self, s: Snapshot) -> Result<()> {
        sqlx::query("INSERT INTO snapshots (stream_id, stream_version, schema_version, payload) VALUES ($1, $2, $3, $4) ON CONFLICT (stream_id) DO UPDATE SET stream_version = EXCLUDED.stream_version, schema_version = EXCLUDED.schema_version, payload = EXCLUDED.payload")
            .bind(s.stream_id.as_str())
            .bind(s.stream_version as i64)
            .bind(s.schema_version as i32)
            .bind(s.payload)
            .execute(&self.pool)
            .await
            .map_err(backend_err)?;
        Ok(())
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>> {
        let row = sqlx::query(
            "SELECT stream_version, schema_version, payload FROM snapshots WHERE stream_id = $1",
        )
        .bind(stream_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_err)?;
        row.map(|r| {
            Ok(Snapshot {
                stream_id: stream_id.clone(),
                stream_version: r.try_get::<i64, _>("stream_version").map_err(backend_err)? as u64,
                schema_version: r.try_get::<i32, _>("schema_version").map_err(backend_err)? as u32,
                payload: r.try_get("payload").map_err(backend_err)?,
            })
        })
        .transpose()
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<u64>> {
        let v: Option<i64> = sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        Ok(v.map(|v| v as u64))
    }

    async fn save_checkpoint(&self, name: &str, position: u64) -> Result<()> {
        sqlx::query("INSERT INTO checkpoints (name, position) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position")
            .bind(name)
            .bind(position as i64)
            .execute(&self.pool)
            .await
            .map_err(backend_err)?;
        Ok(())
    }

    async fn save_checkpoint_fenced(&self, name: &str, position: u64, fence: &Fence) -> Result<()> {
        leases::save_checkpoint(&self.pool, name, position, fence).await
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Fence>> {
        leases::acquire(&self.pool, name, holder, ttl).await
    }

    async fn release_lease(&self, fence: &Fence) -> Result<()> {
        leases::release(&self.pool, fence).await
    }

    async fn lease(&self, name: &str) -> Result<Option<LeaseState>> {
        leases::state(&self.pool, name).await
    }

    async fn record_processed(&self, key: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO idempotency_keys (key) VALUES ($1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(backend_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn is_processed(&self, key: &str) -> Result<bool> {
        let v: Option<String> =
            sqlx::query_scalar("SELECT key FROM idempotency_keys WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend_err)?;
        Ok(v.is_some())
    }

    fn writer_stats(&self) -> Option<flotilla_core::writer_stats::WriterStats> {
        Some(self.writer.stats())
    }
}
