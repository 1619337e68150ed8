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
use flotilla_core::plan::plan_batch;
use flotilla_core::store::{
    AppendOutcome, AppendRequest, Direction, EventStore, Result, StoreError,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::sync::watch;
use uuid::Uuid;

use crate::writer::{self, BatchWriter, WriterHandle};
use crate::{backend_err, check_schema_name};

const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "events",
    include_str!("migrations/postgres/0001_events.sql"),
)];

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
            // The schema name was checked to be a plain identifier above.
            let ddl = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
                .execute(&admin)
                .await
                .map_err(backend_err)?;
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
    sqlx::query("SELECT pg_advisory_xact_lock(7343624512)")
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

struct PgWriter {
    /// Reads (custom plans).
    pool: PgPool,
    /// The writer's own connection, with generic plans: the batch statement has no plan to
    /// choose, so planning it once saves a fifth of a batch's time. Reconnected after errors.
    conn: Option<PgConnection>,
    write_opts: PgConnectOptions,
    head: Option<ChainHead>,
    versions: HashMap<StreamId, Option<u64>>,
    /// The connection broke during the batch (its outcome was settled by a lookup).
    broken_conn: bool,
}

const MAX_CACHED_STREAMS: usize = 1_000_000;

const INSERT_BATCH: &str = r#"
WITH head AS (
    UPDATE store_head SET position = $1, hash = $2
    WHERE id = 1 AND position = $3
    RETURNING 1
), ins AS (
    INSERT INTO events (global_position, stream_id, stream_version, event_id, event_type, schema_version, payload,
                        actor, business_unit, correlation_id, causation_id, traceparent, command_id,
                        recorded_at_us, prev_hash, hash)
    SELECT * FROM unnest($4::bigint[], $5::text[], $6::bigint[], $7::uuid[], $8::text[], $9::int[], $10::bytea[],
                         $11::text[], $12::text[], $13::uuid[], $14::uuid[], $15::text[], $16::uuid[],
                         $17::bigint[], $18::bytea[], $19::bytea[])
    WHERE EXISTS (SELECT 1 FROM head)
    RETURNING 1
), keys AS (
    INSERT INTO idempotency_keys (key, stream_id, first_position, last_position, stream_version)
    SELECT * FROM unnest($20::text[], $21::text[], $22::bigint[], $23::bigint[], $24::bigint[])
    WHERE EXISTS (SELECT 1 FROM head)
    RETURNING 1
)
SELECT (SELECT count(*) FROM head) AS moved
"#;

/// What one attempt at a batch came to.
enum Attempt {
    Done(Vec<Result<AppendOutcome>>, u64),
    /// An idempotency key of the batch is already recorded: plan again knowing the keys.
    CheckKeys,
    /// Another process moved the head since it was cached.
    HeadMoved,
}

impl PgWriter {
    /// Whether the event a batch began with was written at the position it was planned at
    /// (false: the batch was not written).
    async fn settle(&self, event_id: Uuid, position: u64) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT global_position FROM events WHERE event_id = $1")
                .bind(event_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend_err)?;
        Ok(found == Some(position as i64))
    }

    async fn load_state(
        &mut self,
        conn: &mut PgConnection,
        requests: &[AppendRequest],
        check_keys: bool,
        locked: bool,
    ) -> Result<(ChainHead, HashMap<String, AppendOutcome>)> {
        let head = match (locked, self.head) {
            (false, Some(h)) => h,
            (false, None) => read_head(&self.pool).await?,
            (true, _) => read_head_for_update(&mut *conn).await?,
        };
        let mut missing: Vec<String> = requests
            .iter()
            .flat_map(|r| r.streams())
            .filter(|s| !self.versions.contains_key(*s))
            .map(|s| s.as_str().to_owned())
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            let rows = sqlx::query("SELECT s.stream_id, (SELECT max(stream_version) FROM events e WHERE e.stream_id = s.stream_id) AS version FROM unnest($1::text[]) AS s(stream_id)")
                .bind(&missing);
            let rows = if locked {
                rows.fetch_all(&mut *conn).await
            } else {
                rows.fetch_all(&self.pool).await
            }
            .map_err(backend_err)?;
            if self.versions.len() + rows.len() > MAX_CACHED_STREAMS {
                self.versions.clear();
            }
            for row in rows {
                let id: String = row.try_get(0).map_err(backend_err)?;
                let v: Option<i64> = row.try_get(1).map_err(backend_err)?;
                if let Ok(id) = StreamId::parse(&id) {
                    self.versions.insert(id, v.map(|v| v as u64));
                }
            }
        }
        let mut known = HashMap::new();
        let keys: Vec<&str> = requests
            .iter()
            .filter_map(|r| r.idempotency_key.as_deref())
            .collect();
        if check_keys && !keys.is_empty() {
            let rows = sqlx::query("SELECT key, first_position, last_position, stream_version FROM idempotency_keys WHERE key = ANY($1)")
                .bind(&keys);
            let rows = if locked {
                rows.fetch_all(&mut *conn).await
            } else {
                rows.fetch_all(&self.pool).await
            }
            .map_err(backend_err)?;
            for row in rows {
                let key: String = row.try_get(0).map_err(backend_err)?;
                let first: Option<i64> = row.try_get(1).map_err(backend_err)?;
                let last: Option<i64> = row.try_get(2).map_err(backend_err)?;
                let version: Option<i64> = row.try_get(3).map_err(backend_err)?;
                match (first, last, version) {
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
        Ok((head, known))
    }

    /// Plans the batch on `conn` and runs the batch statement.
    async fn attempt(
        &mut self,
        conn: &mut PgConnection,
        requests: &[AppendRequest],
        check_keys: bool,
        locked: bool,
    ) -> Result<Attempt> {
        let (head, known) = self.load_state(conn, requests, check_keys, locked).await?;
        let plan = plan_batch(
            head,
            &self.versions,
            &known,
            requests.to_vec(),
            Timestamp::now(),
        );
        // A refused append that carries a key may be the retry of one already written: its
        // answer is the first outcome, not a conflict.
        if !check_keys
            && plan
                .verdicts
                .iter()
                .zip(requests)
                .any(|(v, r)| v.is_err() && r.idempotency_key.is_some())
        {
            return Ok(Attempt::CheckKeys);
        }
        if plan.rows.is_empty() {
            return Ok(Attempt::Done(plan.verdicts, head.position));
        }
        let n = plan.rows.len();
        let first_event = plan.rows.first().map(|r| (r.event_id.0, r.global_position));
        let mut positions = Vec::with_capacity(n);
        let mut streams = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        let mut schemas = Vec::with_capacity(n);
        let mut payloads = Vec::with_capacity(n);
        let mut actors = Vec::with_capacity(n);
        let mut bus = Vec::with_capacity(n);
        let mut correlations: Vec<Option<Uuid>> = Vec::with_capacity(n);
        let mut causations: Vec<Option<Uuid>> = Vec::with_capacity(n);
        let mut traceparents: Vec<Option<String>> = Vec::with_capacity(n);
        let mut commands: Vec<Option<Uuid>> = Vec::with_capacity(n);
        let mut recorded = Vec::with_capacity(n);
        let mut prevs = Vec::with_capacity(n);
        let mut hashes = Vec::with_capacity(n);
        for r in plan.rows {
            positions.push(r.global_position as i64);
            streams.push(r.stream_id.as_str().to_owned());
            versions.push(r.stream_version as i64);
            ids.push(r.event_id.0);
            types.push(r.event_type);
            schemas.push(r.schema_version as i32);
            payloads.push(r.payload);
            actors.push(r.metadata.actor);
            bus.push(r.metadata.business_unit);
            correlations.push(r.metadata.correlation_id);
            causations.push(r.metadata.causation_id);
            traceparents.push(r.metadata.traceparent);
            commands.push(r.metadata.command_id);
            recorded.push(r.recorded_at.0);
            prevs.push(r.prev_hash.0.to_vec());
            hashes.push(r.hash.0.to_vec());
        }
        let mut key_names = Vec::with_capacity(plan.keys.len());
        let mut key_streams = Vec::with_capacity(plan.keys.len());
        let mut key_first = Vec::with_capacity(plan.keys.len());
        let mut key_last = Vec::with_capacity(plan.keys.len());
        let mut key_versions = Vec::with_capacity(plan.keys.len());
        for (k, s, o) in plan.keys {
            key_names.push(k);
            key_streams.push(s.as_str().to_owned());
            key_first.push(o.first_position as i64);
            key_last.push(o.last_position as i64);
            key_versions.push(o.stream_version as i64);
        }
        let row = sqlx::query(INSERT_BATCH)
            .bind(plan.head.position as i64)
            .bind(plan.head.hash.0.to_vec())
            .bind(head.position as i64)
            .bind(positions)
            .bind(streams)
            .bind(versions)
            .bind(ids)
            .bind(types)
            .bind(schemas)
            .bind(payloads)
            .bind(actors)
            .bind(bus)
            .bind(correlations)
            .bind(causations)
            .bind(traceparents)
            .bind(commands)
            .bind(recorded)
            .bind(prevs)
            .bind(hashes)
            .bind(key_names)
            .bind(key_streams)
            .bind(key_first)
            .bind(key_last)
            .bind(key_versions)
            .fetch_one(&mut *conn)
            .await;
        let row = match row {
            Ok(row) => row,
            // A key of the batch is already recorded (a retry planned without looking keys up).
            Err(sqlx::Error::Database(db))
                if !locked && db.constraint() == Some("idempotency_keys_pkey") =>
            {
                return Ok(Attempt::CheckKeys);
            }
            Err(sqlx::Error::Database(db)) if db.constraint() == Some("events_event_id_unique") => {
                return Err(StoreError::InvalidAppend(
                    "an appended event reuses an event id already stored; give each event a new id"
                        .into(),
                ));
            }
            Err(sqlx::Error::Database(db)) => return Err(backend_err(sqlx::Error::Database(db))),
            // The connection broke: the statement may have committed before it did. Settle it
            // by looking the batch's first event up before answering, so a caller never sees an
            // error for an append that was written (and retries it twice).
            Err(e) if !locked => {
                let Some((event_id, position)) = first_event else {
                    return Err(backend_err(e));
                };
                self.broken_conn = true;
                return match self.settle(event_id, position).await {
                    Ok(true) => {
                        tracing::warn!(error = %e, position, "the connection broke at commit; the batch was written");
                        self.head = Some(plan.head);
                        for (s, v) in plan.stream_versions {
                            self.versions.insert(s, Some(v));
                        }
                        Ok(Attempt::Done(plan.verdicts, plan.head.position))
                    }
                    Ok(false) => Err(backend_err(e)),
                    Err(lookup) => Err(StoreError::Unsettled(format!(
                        "the connection broke at commit ({e}) and looking the batch up failed ({lookup})"
                    ))),
                };
            }
            Err(e) => return Err(backend_err(e)),
        };
        let moved: i64 = row.try_get(0).map_err(backend_err)?;
        if moved == 1 {
            self.head = Some(plan.head);
            for (s, v) in plan.stream_versions {
                self.versions.insert(s, Some(v));
            }
            return Ok(Attempt::Done(plan.verdicts, plan.head.position));
        }
        Ok(Attempt::HeadMoved)
    }
}

#[async_trait]
impl BatchWriter for PgWriter {
    async fn write_batch(
        &mut self,
        requests: &[AppendRequest],
    ) -> Result<(Vec<Result<AppendOutcome>>, u64)> {
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => PgConnection::connect_with(&self.write_opts)
                .await
                .map_err(backend_err)?,
        };
        let result = self.write_on(&mut conn, requests).await;
        // Keep the connection unless it failed (it may be broken); the next batch reconnects.
        if result.is_ok() && !std::mem::take(&mut self.broken_conn) {
            self.conn = Some(conn);
        }
        result
    }

    fn reset(&mut self) {
        self.head = None;
        self.versions.clear();
    }
}

impl PgWriter {
    async fn write_on(
        &mut self,
        conn: &mut PgConnection,
        requests: &[AppendRequest],
    ) -> Result<(Vec<Result<AppendOutcome>>, u64)> {
        // Optimistic: one statement, planned from the cached head, that commits only if the
        // head is still there. First assume no key is a retry (the statement refuses to commit
        // if one is) and look the keys up only when that fails.
        let mut check_keys = false;
        for _ in 0..2 {
            match self.attempt(conn, requests, check_keys, false).await? {
                Attempt::Done(verdicts, head) => return Ok((verdicts, head)),
                Attempt::CheckKeys => check_keys = true,
                Attempt::HeadMoved => break,
            }
        }
        // Another process is writing too: lock the head first, then plan, so this batch
        // cannot lose again.
        tracing::debug!("store head moved by another writer; writing under the head lock");
        self.reset();
        let mut tx = conn.begin().await.map_err(backend_err)?;
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        match self.attempt(&mut tx, requests, true, true).await {
            Ok(Attempt::Done(verdicts, head)) => {
                if let Err(e) = tx.commit().await {
                    // Committed or not? The first event written tells.
                    let first = verdicts.iter().zip(requests).find_map(|(v, r)| match v {
                        Ok(o) if !o.deduplicated => {
                            r.events.first().map(|e| (e.event_id.0, o.first_position))
                        }
                        _ => None,
                    });
                    let Some((event_id, position)) = first else {
                        return Err(backend_err(e));
                    };
                    self.broken_conn = true;
                    return match self.settle(event_id, position).await {
                        Ok(true) => Ok((verdicts, head)),
                        Ok(false) => {
                            self.reset();
                            Err(backend_err(e))
                        }
                        Err(lookup) => Err(StoreError::Unsettled(format!(
                            "the connection broke at commit ({e}) and looking the batch up failed ({lookup})"
                        ))),
                    };
                }
                Ok((verdicts, head))
            }
            Ok(_) => Err(StoreError::Backend("batch refused while holding the head lock: an idempotency key was recorded concurrently; try again".into())),
            Err(e) => Err(e),
        }
    }

    fn reset(&mut self) {
        self.head = None;
        self.versions.clear();
    }
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
        read_head(&self.pool).await
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
}
