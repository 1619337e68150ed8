//! SQLite event store, the embedded default (`flotilla up`). WAL mode; one writer connection
//! owned by the group-commit task, which takes the database's write lock with `BEGIN IMMEDIATE`
//! (transaction-scoped), reads the chain head, writes the batch in multi-row inserts and commits.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use flotilla_core::chain::{ChainHead, Hash};
use flotilla_core::event::{Metadata, RecordedEvent, Snapshot, Timestamp};
use flotilla_core::ids::{EventId, StreamId};
use flotilla_core::lease::{Fence, LeaseState};
use flotilla_core::plan::plan_batch;
use flotilla_core::store::{
    AppendOutcome, AppendRequest, Direction, EventStore, Result, StoreError,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use tokio::sync::watch;
use uuid::Uuid;

use crate::backend_err;
use crate::writer::{self, BatchWriter, WriterHandle};

mod leases;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "events",
        include_str!("../migrations/sqlite/0001_events.sql"),
    ),
    (
        2,
        "leases",
        include_str!("../migrations/sqlite/0002_leases.sql"),
    ),
];

/// Rows per multi-row INSERT (16 columns each, well under SQLite's bind-parameter limit).
const ROWS_PER_INSERT: usize = 500;

/// A SQLite-backed event store.
pub struct SqliteStore {
    pool: SqlitePool,
    writer: WriterHandle,
    head_tx: watch::Sender<u64>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish()
    }
}

const SELECT_EVENT: &str = "SELECT global_position, stream_id, stream_version, event_id, event_type, schema_version, payload, actor, business_unit, correlation_id, causation_id, traceparent, command_id, recorded_at_us, prev_hash, hash FROM events";

fn parse_uuid(position: u64, column: &str, v: Option<String>) -> Result<Option<Uuid>> {
    v.map(|s| {
        Uuid::parse_str(&s).map_err(|e| StoreError::Corrupt {
            position,
            reason: format!("{column} {s:?} is not a uuid: {e}"),
        })
    })
    .transpose()
}

// Columns by index, in SELECT_EVENT's order (cheaper than by name on replay).
fn row_to_event(row: &SqliteRow) -> Result<RecordedEvent> {
    let position = row.try_get::<i64, _>(0).map_err(backend_err)? as u64;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let get = |e: sqlx::Error| corrupt(e.to_string());
    let stream_id: String = row.try_get(1).map_err(get)?;
    let event_id: String = row.try_get(3).map_err(get)?;
    let prev: Vec<u8> = row.try_get(14).map_err(get)?;
    let hash: Vec<u8> = row.try_get(15).map_err(get)?;
    Ok(RecordedEvent {
        global_position: position,
        stream_id: StreamId::parse(&stream_id).map_err(corrupt)?,
        stream_version: row.try_get::<i64, _>(2).map_err(get)? as u64,
        event_id: EventId(parse_uuid(position, "event_id", Some(event_id))?.unwrap_or_default()),
        event_type: row.try_get(4).map_err(get)?,
        schema_version: row.try_get::<i64, _>(5).map_err(get)? as u32,
        payload: row.try_get(6).map_err(get)?,
        metadata: Metadata {
            actor: row.try_get(7).map_err(get)?,
            business_unit: row.try_get(8).map_err(get)?,
            correlation_id: parse_uuid(position, "correlation_id", row.try_get(9).map_err(get)?)?,
            causation_id: parse_uuid(position, "causation_id", row.try_get(10).map_err(get)?)?,
            traceparent: row.try_get(11).map_err(get)?,
            command_id: parse_uuid(position, "command_id", row.try_get(12).map_err(get)?)?,
        },
        recorded_at: Timestamp(row.try_get(13).map_err(get)?),
        prev_hash: Hash::from_slice(&prev)
            .ok_or_else(|| corrupt(format!("prev_hash is {} bytes, not 32", prev.len())))?,
        hash: Hash::from_slice(&hash)
            .ok_or_else(|| corrupt(format!("hash is {} bytes, not 32", hash.len())))?,
    })
}

async fn read_head<'e, E: sqlx::SqliteExecutor<'e>>(ex: E) -> Result<ChainHead> {
    let row = sqlx::query("SELECT position, hash FROM store_head WHERE id = 1")
        .fetch_one(ex)
        .await
        .map_err(backend_err)?;
    let hash: Vec<u8> = row.try_get("hash").map_err(backend_err)?;
    Ok(ChainHead {
        position: row.try_get::<i64, _>("position").map_err(backend_err)? as u64,
        hash: Hash::from_slice(&hash).ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: "store head hash is not 32 bytes".into(),
        })?,
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path/to/file.db` or
    /// `sqlite::memory:`) and migrates it.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(url, true).await
    }

    /// Opens a database that must already hold a store; creates and migrates nothing.
    pub async fn connect_existing(url: &str) -> Result<Self> {
        Self::open(url, false).await
    }

    async fn open(url: &str, create: bool) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid sqlite url {url:?}: {e}")))?
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // Create the file, switch it to WAL and migrate on one connection before the pool opens
        // more: concurrent first connections race for the journal-mode change ("database is
        // locked").
        if create && !in_memory {
            let mut first = SqliteConnection::connect_with(&opts)
                .await
                .map_err(backend_err)?;
            migrate(&mut first).await?;
            first.close().await.map_err(backend_err)?;
        }
        // A private in-memory database exists per connection: keep one connection for all.
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 4 })
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await
            .map_err(|e| {
                if create {
                    backend_err(e)
                } else {
                    StoreError::Backend(format!("cannot open an existing store at {url}: {e}"))
                }
            })?;
        if create && in_memory {
            let mut conn = pool.acquire().await.map_err(backend_err)?;
            migrate(&mut conn).await?;
        } else if !create {
            let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'store_head')")
                .fetch_one(&pool)
                .await
                .map_err(backend_err)?;
            if tables != 2 {
                return Err(StoreError::Backend(format!(
                    "{url} holds no flotilla event store"
                )));
            }
        }
        let head = read_head(&pool).await?;
        let (head_tx, _) = watch::channel(head.position);
        let conn = if in_memory {
            SqliteWriterConn::Pool(pool.clone())
        } else {
            SqliteWriterConn::Own(Box::new(
                SqliteConnection::connect_with(&opts)
                    .await
                    .map_err(backend_err)?,
            ))
        };
        let writer = writer::spawn(
            SqliteWriter {
                conn,
                head: None,
                versions: HashMap::new(),
            },
            head_tx.clone(),
        );
        Ok(Self {
            pool,
            writer,
            head_tx,
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

async fn migrate(conn: &mut SqliteConnection) -> Result<()> {
    let mut tx = conn.begin().await.map_err(backend_err)?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS store_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
        .execute(&mut *tx)
        .await
        .map_err(backend_err)?;
    for (version, name, sql) in MIGRATIONS {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM store_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend_err)?;
        if done.is_none() {
            sqlx::raw_sql(*sql)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            sqlx::query("INSERT INTO store_migrations (version, name) VALUES (?, ?)")
                .bind(version)
                .bind(*name)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
        }
    }
    tx.commit().await.map_err(backend_err)
}

enum SqliteWriterConn {
    Own(Box<SqliteConnection>),
    Pool(SqlitePool),
}

struct SqliteWriter {
    conn: SqliteWriterConn,
    head: Option<ChainHead>,
    versions: HashMap<StreamId, Option<u64>>,
}

fn insert_sql(rows: usize) -> String {
    let one = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let mut s = String::from(
        "INSERT INTO events (global_position, stream_id, stream_version, event_id, event_type, schema_version, payload, actor, business_unit, correlation_id, causation_id, traceparent, command_id, recorded_at_us, prev_hash, hash) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(one);
    }
    s
}

impl SqliteWriter {
    async fn write_in(
        conn: &mut SqliteConnection,
        versions: &mut HashMap<StreamId, Option<u64>>,
        requests: Vec<AppendRequest>,
    ) -> Result<(Vec<Result<AppendOutcome>>, ChainHead, Vec<(StreamId, u64)>)> {
        let head = read_head(&mut *conn).await?;
        for s in requests.iter().flat_map(|r| r.streams()) {
            if !versions.contains_key(s) {
                let v: Option<i64> = sqlx::query_scalar(
                    "SELECT max(stream_version) FROM events WHERE stream_id = ?",
                )
                .bind(s.as_str())
                .fetch_one(&mut *conn)
                .await
                .map_err(backend_err)?;
                versions.insert(s.clone(), v.map(|v| v as u64));
            }
        }
        // One query for every key of the batch (sqlx runs each SQLite statement on a worker
        // thread, so statements, not rows, are what costs).
        let mut known = HashMap::new();
        let keys: Vec<&String> = requests
            .iter()
            .filter_map(|r| r.idempotency_key.as_ref())
            .collect();
        for chunk in keys.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "SELECT key, first_position, last_position, stream_version FROM idempotency_keys WHERE key IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for k in chunk {
                q = q.bind(k.as_str());
            }
            for row in q.fetch_all(&mut *conn).await.map_err(backend_err)? {
                let key: String = row.try_get(0).map_err(backend_err)?;
                let f: Option<i64> = row.try_get(1).map_err(backend_err)?;
                let l: Option<i64> = row.try_get(2).map_err(backend_err)?;
                let v: Option<i64> = row.try_get(3).map_err(backend_err)?;
                match (f, l, v) {
                    (Some(f), Some(l), Some(v)) => {
                        known.insert(
                            key,
                            AppendOutcome {
                                first_position: f as u64,
                                last_position: l as u64,
                                stream_version: v as u64,
                                deduplicated: true,
                            },
                        );
                    }
                    _ => {
                        return Err(StoreError::InvalidAppend(format!(
                            "idempotency key {key} was recorded without events"
                        )));
                    }
                }
            }
        }
        let plan = plan_batch(head, versions, &known, requests, Timestamp::now());
        let mut rows = plan.rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<RecordedEvent> = rows.by_ref().take(ROWS_PER_INSERT).collect();
            let sql = insert_sql(chunk.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(r.global_position as i64)
                    .bind(r.stream_id.as_str().to_owned())
                    .bind(r.stream_version as i64)
                    .bind(r.event_id.0.to_string())
                    .bind(r.event_type)
                    .bind(r.schema_version as i64)
                    .bind(r.payload)
                    .bind(r.metadata.actor)
                    .bind(r.metadata.business_unit)
                    .bind(r.metadata.correlation_id.map(|u| u.to_string()))
                    .bind(r.metadata.causation_id.map(|u| u.to_string()))
                    .bind(r.metadata.traceparent)
                    .bind(r.metadata.command_id.map(|u| u.to_string()))
                    .bind(r.recorded_at.0)
                    .bind(r.prev_hash.0.to_vec())
                    .bind(r.hash.0.to_vec());
            }
            q.execute(&mut *conn).await.map_err(backend_err)?;
        }
        for chunk in plan.keys.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO idempotency_keys (key, stream_id, first_position, last_position, stream_version) VALUES {}",
                vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (key, stream, o) in chunk {
                q = q
                    .bind(key.as_str())
                    .bind(stream.as_str())
                    .bind(o.first_position as i64)
                    .bind(o.last_position as i64)
                    .bind(o.stream_version as i64);
            }
            q.execute(&mut *conn).await.map_err(backend_err)?;
        }
        if plan.head != head {
            sqlx::query("UPDATE store_head SET position = ?, hash = ? WHERE id = 1")
                .bind(plan.head.position as i64)
                .bind(plan.head.hash.0.to_vec())
                .execute(&mut *conn)
                .await
                .map_err(backend_err)?;
        }
        Ok((plan.verdicts, plan.head, plan.stream_versions))
    }
}

#[async_trait]
impl BatchWriter for SqliteWriter {
    async fn write_batch(
        &mut self,
        requests: &[AppendRequest],
    ) -> Result<(Vec<Result<AppendOutcome>>, u64)> {
        let mut pooled;
        let conn: &mut SqliteConnection = match &mut self.conn {
            SqliteWriterConn::Own(c) => c,
            SqliteWriterConn::Pool(p) => {
                pooled = p.acquire().await.map_err(backend_err)?;
                &mut pooled
            }
        };
        // BEGIN IMMEDIATE takes the write lock now, so other processes wait rather than fail.
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(backend_err)?;
        let head_before = read_head(&mut *conn).await;
        if let (Ok(h), Some(cached)) = (&head_before, self.head)
            && *h != cached
        {
            // Someone else wrote: cached stream versions may be stale.
            self.versions.clear();
        }
        let fenced = crate::writer::fenced_leases(requests);
        let holding = if fenced.is_empty() {
            Ok(Vec::new())
        } else {
            leases::holding(&mut *conn, &fenced).await
        };
        let written = match holding {
            Ok(holding) => {
                let (kept, refused) = crate::writer::drop_fenced(requests, |f| holding.contains(f));
                Self::write_in(conn, &mut self.versions, kept).await.map(
                    |(verdicts, head, streams)| {
                        (
                            crate::writer::merge_fenced(refused, verdicts),
                            head,
                            streams,
                        )
                    },
                )
            }
            Err(e) => Err(e),
        };
        match written {
            Ok((verdicts, head, streams)) => {
                match sqlx::raw_sql("COMMIT").execute(&mut *conn).await {
                    Ok(_) => {
                        self.head = Some(head);
                        for (s, v) in streams {
                            self.versions.insert(s, Some(v));
                        }
                        Ok((verdicts, head.position))
                    }
                    Err(e) => {
                        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                        Err(backend_err(e))
                    }
                }
            }
            Err(e) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                Err(e)
            }
        }
    }

    fn reset(&mut self) {
        self.head = None;
        self.versions.clear();
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
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
            Direction::Forwards => sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_EVENT} WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version LIMIT ?")))
                .bind(stream_id.as_str())
                .bind(from.unwrap_or(0).min(i64::MAX as u64) as i64)
                .bind(limit)
                .fetch_all(&self.pool)
                .await,
            Direction::Backwards => sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_EVENT} WHERE stream_id = ? AND stream_version <= ? ORDER BY stream_version DESC LIMIT ?")))
                .bind(stream_id.as_str())
                .bind(from.unwrap_or(i64::MAX as u64).min(i64::MAX as u64) as i64)
                .bind(limit)
                .fetch_all(&self.pool)
                .await,
        }
        .map_err(backend_err)?;
        rows.iter().map(row_to_event).collect()
    }

    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_EVENT} WHERE global_position >= ? ORDER BY global_position LIMIT ?"
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
            sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_id = ?")
                .bind(stream_id.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(backend_err)?;
        Ok(v.map(|v| v as u64))
    }

    async fn head(&self) -> Result<ChainHead> {
        read_head(&self.pool).await
    }

    fn head_watch(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    async fn save_snapshot(&self, s: Snapshot) -> Result<()> {
        sqlx::query("INSERT INTO snapshots (stream_id, stream_version, schema_version, payload) VALUES (?, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET stream_version = excluded.stream_version, schema_version = excluded.schema_version, payload = excluded.payload")
            .bind(s.stream_id.as_str())
            .bind(s.stream_version as i64)
            .bind(s.schema_version as i64)
            .bind(s.payload)
            .execute(&self.pool)
            .await
            .map_err(backend_err)?;
        Ok(())
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>> {
        let row = sqlx::query(
            "SELECT stream_version, schema_version, payload FROM snapshots WHERE stream_id = ?",
        )
        .bind(stream_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_err)?;
        row.map(|r| {
            Ok(Snapshot {
                stream_id: stream_id.clone(),
                stream_version: r.try_get::<i64, _>("stream_version").map_err(backend_err)? as u64,
                schema_version: r.try_get::<i64, _>("schema_version").map_err(backend_err)? as u32,
                payload: r.try_get("payload").map_err(backend_err)?,
            })
        })
        .transpose()
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<u64>> {
        let v: Option<i64> = sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        Ok(v.map(|v| v as u64))
    }

    async fn save_checkpoint(&self, name: &str, position: u64) -> Result<()> {
        sqlx::query("INSERT INTO checkpoints (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position")
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
        ttl: Duration,
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
            "INSERT INTO idempotency_keys (key) VALUES (?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(backend_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn is_processed(&self, key: &str) -> Result<bool> {
        let v: Option<String> =
            sqlx::query_scalar("SELECT key FROM idempotency_keys WHERE key = ?")
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
