//! Raw-INSERT baselines for the store benchmark: what this machine's PostgreSQL does without
//! Flotilla, into a table identical to `events`, in the same run as the store's own figures.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flotilla_core::store::{Result, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{backend_err, check_schema_name};

/// Rows written and how long it took.
#[derive(Clone, Copy, Debug)]
pub struct BaselineRun {
    pub rows: u64,
    pub elapsed: Duration,
}

impl BaselineRun {
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

const INSERT_ONE: &str = "INSERT INTO raw_events (global_position, stream_id, stream_version, event_id, event_type, schema_version, payload, actor, business_unit, recorded_at_us, prev_hash, hash) VALUES ($1, $2, 0, gen_random_uuid(), 'flotilla.eventstore.v1.SyntheticEventRecorded', 1, $3, 'bench', 'bench', 0, $4, $4)";

const INSERT_MANY: &str = "INSERT INTO raw_events (global_position, stream_id, stream_version, event_id, event_type, schema_version, payload, actor, business_unit, recorded_at_us, prev_hash, hash) SELECT p, s, 0, gen_random_uuid(), 'flotilla.eventstore.v1.SyntheticEventRecorded', 1, b, 'bench', 'bench', 0, h, h FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[]) AS t(p, s, b, h)";

async fn pool(url: &str, schema: &str, connections: u32) -> Result<sqlx::PgPool> {
    check_schema_name(schema)?;
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Backend(format!("invalid postgres url: {e}")))?
        .options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(connections)
        .connect_with(opts)
        .await
        .map_err(backend_err)
}

/// (Re)creates `raw_events` like `events` (same columns, keys and indexes) in `schema`, which
/// must already hold a migrated store.
pub async fn prepare(url: &str, schema: &str) -> Result<()> {
    let p = pool(url, schema, 1).await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS raw_events; CREATE TABLE raw_events (LIKE events INCLUDING ALL)",
    )
    .execute(&p)
    .await
    .map_err(backend_err)?;
    p.close().await;
    Ok(())
}

/// One client writing `rows` rows in multi-row INSERT transactions of `batch` rows.
pub async fn multi_row(
    url: &str,
    schema: &str,
    rows: u64,
    batch: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<BaselineRun> {
    prepare(url, schema).await?;
    let p = pool(url, schema, 1).await?;
    let payload = vec![7u8; 80];
    let hash = vec![1u8; 32];
    let start = Instant::now();
    let mut written = 0u64;
    while written < rows {
        let n = batch.min(rows - written);
        let positions: Vec<i64> = (written..written + n).map(|i| i as i64 + 1).collect();
        let streams: Vec<String> = positions.iter().map(|p| format!("raw-{p}")).collect();
        sqlx::query(INSERT_MANY)
            .bind(positions)
            .bind(streams)
            .bind(vec![payload.clone(); n as usize])
            .bind(vec![hash.clone(); n as usize])
            .execute(&p)
            .await
            .map_err(backend_err)?;
        written += n;
        progress(written);
    }
    let run = BaselineRun {
        rows: written,
        elapsed: start.elapsed(),
    };
    p.close().await;
    Ok(run)
}

/// `clients` concurrent clients writing `rows` rows in all, one row per transaction.
pub async fn one_row_per_transaction(
    url: &str,
    schema: &str,
    rows: u64,
    clients: u32,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<BaselineRun> {
    prepare(url, schema).await?;
    let p = pool(url, schema, clients).await?;
    let next = Arc::new(AtomicU64::new(1));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let p = p.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let payload = vec![7u8; 80];
            let hash = vec![1u8; 32];
            loop {
                let pos = next.fetch_add(1, Ordering::Relaxed);
                if pos > rows {
                    return Ok::<_, StoreError>(());
                }
                sqlx::query(INSERT_ONE)
                    .bind(pos as i64)
                    .bind(format!("raw-{pos}"))
                    .bind(&payload)
                    .bind(&hash)
                    .execute(&p)
                    .await
                    .map_err(backend_err)?;
            }
        }));
    }
    let watcher = async {
        loop {
            let done = next.load(Ordering::Relaxed).saturating_sub(1).min(rows);
            progress(done);
            if done >= rows {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (results, ()) = futures_join(tasks, watcher).await;
    for r in results {
        r.map_err(|e| StoreError::Backend(e.to_string()))??;
    }
    let run = BaselineRun {
        rows,
        elapsed: start.elapsed(),
    };
    p.close().await;
    Ok(run)
}

async fn futures_join<T>(
    tasks: Vec<tokio::task::JoinHandle<T>>,
    watcher: impl std::future::Future<Output = ()>,
) -> (Vec<std::result::Result<T, tokio::task::JoinError>>, ()) {
    let all = async {
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await);
        }
        out
    };
    tokio::join!(all, watcher)
}
