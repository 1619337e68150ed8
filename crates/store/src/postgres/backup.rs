//! Backup and restore of a PostgreSQL store: what `flotilla store export` reads besides the
//! events (idempotency keys, relay checkpoints) and the restore that rebuilds a store from an
//! export in one transaction, walking the chain as it goes and committing only if every link
//! and hash holds and the chain ends at the head the export's manifest names.

use flotilla_core::chain::{ChainHead, ChainWalker};
use flotilla_core::event::RecordedEvent;
use flotilla_core::store::{Result, StoreError};
use sqlx::{Postgres, Row, Transaction};

use super::{PgStore, read_head};
use crate::backend_err;

/// A row of the idempotency keys: a command id or consumed event and what it wrote (no
/// positions: recorded as processed without events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRow {
    pub key: String,
    pub stream_id: Option<String>,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    pub stream_version: Option<u64>,
}

impl PgStore {
    /// Every idempotency key, in key order.
    pub async fn idempotency_rows(&self) -> Result<Vec<IdempotencyRow>> {
        let rows = sqlx::query("SELECT key, stream_id, first_position, last_position, stream_version FROM idempotency_keys ORDER BY key")
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter()
            .map(|r| {
                let pos = |i: usize| -> Result<Option<u64>> {
                    Ok(r.try_get::<Option<i64>, _>(i)
                        .map_err(backend_err)?
                        .map(|v| v as u64))
                };
                Ok(IdempotencyRow {
                    key: r.try_get(0).map_err(backend_err)?,
                    stream_id: r.try_get(1).map_err(backend_err)?,
                    first_position: pos(2)?,
                    last_position: pos(3)?,
                    stream_version: pos(4)?,
                })
            })
            .collect()
    }

    /// Every named checkpoint (relays' published positions), in name order.
    pub async fn checkpoints(&self) -> Result<Vec<(String, u64)>> {
        let rows = sqlx::query("SELECT name, position FROM checkpoints ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(backend_err)?,
                    r.try_get::<i64, _>(1).map_err(backend_err)? as u64,
                ))
            })
            .collect()
    }

    /// Begins rebuilding this store from an export; refused unless the store is empty.
    pub async fn restore(&self) -> Result<Restore> {
        let mut tx = self.pool.begin().await.map_err(backend_err)?;
        // Nobody appends meanwhile: the head row stays locked until the restore commits.
        sqlx::query("SELECT position FROM store_head WHERE id = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        let head = read_head(&mut *tx).await?;
        // Empty means nothing at all: no events, keys, snapshots or checkpoints of a service
        // that ran on it.
        let rows: i64 = sqlx::query_scalar("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM idempotency_keys) + (SELECT count(*) FROM snapshots) + (SELECT count(*) FROM checkpoints)")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend_err)?;
        if head.position != 0 || rows != 0 {
            return Err(StoreError::InvalidAppend(format!(
                "schema {} already holds a store (head at position {}, {rows} rows); restore into an empty one",
                self.schema, head.position
            )));
        }
        Ok(Restore {
            tx,
            walker: ChainWalker::new(),
        })
    }
}

/// A restore under way: one transaction, rolled back if dropped before [`Restore::finish`].
pub struct Restore {
    tx: Transaction<'static, Postgres>,
    walker: ChainWalker,
}

impl std::fmt::Debug for Restore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restore")
            .field("checked", &self.walker.checked())
            .finish()
    }
}

const INSERT_EVENTS: &str = r#"
INSERT INTO events (global_position, stream_id, stream_version, event_id, event_type, schema_version, payload,
                    actor, business_unit, correlation_id, causation_id, traceparent, command_id,
                    recorded_at_us, prev_hash, hash)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::int[], $7::bytea[],
                     $8::text[], $9::text[], $10::uuid[], $11::uuid[], $12::text[], $13::uuid[],
                     $14::bigint[], $15::bytea[], $16::bytea[])
"#;

impl Restore {
    /// Checks the next events' positions, links and hashes, and writes them as they are.
    pub async fn events(&mut self, page: &[RecordedEvent]) -> Result<()> {
        for e in page {
            if !self.walker.check(e) {
                let b = self.walker.broken().cloned().unwrap_or_else(|| {
                    flotilla_core::chain::ChainBreak {
                        position: e.global_position,
                        reason: "the chain is broken".into(),
                    }
                });
                return Err(StoreError::Corrupt {
                    position: b.position,
                    reason: b.reason,
                });
            }
        }
        let n = page.len();
        let mut cols = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut more = (
            Vec::with_capacity(n),
            Vec::<Option<uuid::Uuid>>::with_capacity(n),
            Vec::<Option<uuid::Uuid>>::with_capacity(n),
            Vec::<Option<String>>::with_capacity(n),
            Vec::<Option<uuid::Uuid>>::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for e in page {
            cols.0.push(e.global_position as i64);
            cols.1.push(e.stream_id.as_str().to_owned());
            cols.2.push(e.stream_version as i64);
            cols.3.push(e.event_id.0);
            cols.4.push(e.event_type.clone());
            cols.5.push(e.schema_version as i32);
            cols.6.push(e.payload.clone());
            cols.7.push(e.metadata.actor.clone());
            more.0.push(e.metadata.business_unit.clone());
            more.1.push(e.metadata.correlation_id);
            more.2.push(e.metadata.causation_id);
            more.3.push(e.metadata.traceparent.clone());
            more.4.push(e.metadata.command_id);
            more.5.push(e.recorded_at.0);
            more.6.push(e.prev_hash.0.to_vec());
            more.7.push(e.hash.0.to_vec());
        }
        sqlx::query(INSERT_EVENTS)
            .bind(cols.0)
            .bind(cols.1)
            .bind(cols.2)
            .bind(cols.3)
            .bind(cols.4)
            .bind(cols.5)
            .bind(cols.6)
            .bind(cols.7)
            .bind(more.0)
            .bind(more.1)
            .bind(more.2)
            .bind(more.3)
            .bind(more.4)
            .bind(more.5)
            .bind(more.6)
            .bind(more.7)
            .execute(&mut *self.tx)
            .await
            .map_err(backend_err)?;
        Ok(())
    }

    /// Events checked so far.
    pub fn checked(&self) -> u64 {
        self.walker.checked()
    }

    /// Commits the restore if the chain walked ends at `head`, with the keys and checkpoints.
    pub async fn finish(
        mut self,
        head: ChainHead,
        keys: &[IdempotencyRow],
        checkpoints: &[(String, u64)],
    ) -> Result<u64> {
        let checked = self.walker.checked();
        let report = std::mem::take(&mut self.walker).finish(head);
        if let Some(b) = report.broken {
            return Err(StoreError::Corrupt {
                position: b.position,
                reason: b.reason,
            });
        }
        for k in keys {
            if k.last_position.is_some_and(|p| p > head.position) {
                return Err(StoreError::InvalidAppend(format!(
                    "idempotency key {} names position {:?}, past the export's head {}",
                    k.key, k.last_position, head.position
                )));
            }
            sqlx::query("INSERT INTO idempotency_keys (key, stream_id, first_position, last_position, stream_version) VALUES ($1, $2, $3, $4, $5)")
                .bind(&k.key)
                .bind(&k.stream_id)
                .bind(k.first_position.map(|v| v as i64))
                .bind(k.last_position.map(|v| v as i64))
                .bind(k.stream_version.map(|v| v as i64))
                .execute(&mut *self.tx)
                .await
                .map_err(backend_err)?;
        }
        for (name, position) in checkpoints {
            sqlx::query("INSERT INTO checkpoints (name, position) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position")
                .bind(name)
                .bind((*position).min(head.position) as i64)
                .execute(&mut *self.tx)
                .await
                .map_err(backend_err)?;
        }
        sqlx::query("UPDATE store_head SET position = $1, hash = $2 WHERE id = 1")
            .bind(head.position as i64)
            .bind(head.hash.0.to_vec())
            .execute(&mut *self.tx)
            .await
            .map_err(backend_err)?;
        self.tx.commit().await.map_err(backend_err)?;
        Ok(checked)
    }
}
