//! The PostgreSQL writer task: plans each batch of appends against the chain head and writes it
//! in one statement (head moved under its row lock, events inserted with `unnest`, idempotency
//! keys recorded), planning again from fresh state when another process moved the head.

use std::collections::HashMap;

use async_trait::async_trait;
use flotilla_core::chain::ChainHead;
use flotilla_core::event::Timestamp;
use flotilla_core::ids::StreamId;
use flotilla_core::plan::plan_batch;
use flotilla_core::store::{AppendOutcome, AppendRequest, Result, StoreError};
use sqlx::{Connection, PgConnection, PgPool, Row};
use uuid::Uuid;

use super::*;
use crate::writer::BatchWriter;

pub(super) struct PgWriter {
    /// Reads (custom plans).
    pub(super) pool: PgPool,
    /// The writer's own connection, with generic plans: the batch statement has no plan to
    /// choose, so planning it once saves a fifth of a batch's time. Reconnected after errors.
    pub(super) conn: Option<PgConnection>,
    pub(super) write_opts: PgConnectOptions,
    pub(super) head: Option<ChainHead>,
    pub(super) versions: HashMap<StreamId, Option<u64>>,
    /// The connection broke during the batch (its outcome was settled by a lookup).
    pub(super) broken_conn: bool,
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
            // Cached stream versions hold only with the head they were cached with: versions
            // older than a head read now would let an append through that another process
            // made stale (its row then refused by the unique version, not as a conflict).
            (false, None) => {
                self.versions.clear();
                read_head(&self.pool).await?
            }
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
            // Refused on cached versions: true only while nobody else moved the head since.
            let refused = plan
                .verdicts
                .iter()
                .any(|v| matches!(v, Err(StoreError::WrongExpectedVersion { .. })));
            if !locked && refused && read_head(&self.pool).await? != head {
                return Ok(Attempt::HeadMoved);
            }
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
        if requests.iter().any(|r| r.fence.is_some()) {
            // A fenced write checks its lease in the transaction it commits in.
            return self.write_locked(conn, requests).await;
        }
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
        self.write_locked(conn, requests).await
    }

    /// Writes the batch in a transaction holding the head's row lock (and the share locks of
    /// the leases its fences name, so no new term begins before it commits).
    async fn write_locked(
        &mut self,
        conn: &mut PgConnection,
        requests: &[AppendRequest],
    ) -> Result<(Vec<Result<AppendOutcome>>, u64)> {
        self.reset();
        let mut tx = conn.begin().await.map_err(backend_err)?;
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        let leases = crate::writer::fenced_leases(requests);
        let holding = if leases.is_empty() {
            Vec::new()
        } else {
            super::leases::holding(&mut tx, &leases).await?
        };
        let (kept, refused) = crate::writer::drop_fenced(requests, |f| holding.contains(f));
        let requests = &kept[..];
        let written = self.attempt(&mut tx, requests, true, true).await;
        let merge = |(verdicts, head)| (crate::writer::merge_fenced(refused, verdicts), head);
        match written {
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
                        Ok(true) => Ok(merge((verdicts, head))),
                        Ok(false) => {
                            self.reset();
                            Err(backend_err(e))
                        }
                        Err(lookup) => Err(StoreError::Unsettled(format!(
                            "the connection broke at commit ({e}) and looking the batch up failed ({lookup})"
                        ))),
                    };
                }
                Ok(merge((verdicts, head)))
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
