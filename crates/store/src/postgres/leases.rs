//! Leases in PostgreSQL: a row per lease, times by the database's clock (replicas' clocks may
//! differ), the token raised whenever the lease changes hands or lapses. A fenced write checks
//! the token under a share lock on the row, so a new term cannot begin while it commits.

use std::time::Duration;

use flotilla_core::lease::{Fence, LeaseState, check_lease};
use flotilla_core::store::{Result, StoreError};
use sqlx::{PgConnection, PgPool, Row};

use crate::backend_err;

const ACQUIRE: &str = r#"
INSERT INTO leases (name, holder, token, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE SET
    token = CASE WHEN leases.holder = EXCLUDED.holder AND leases.expires_at > clock_timestamp()
                 THEN leases.token ELSE leases.token + 1 END,
    holder = EXCLUDED.holder,
    expires_at = EXCLUDED.expires_at
WHERE leases.holder = EXCLUDED.holder OR leases.expires_at <= clock_timestamp()
RETURNING token
"#;

pub(super) async fn acquire(
    pool: &PgPool,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Option<Fence>> {
    check_lease(name, holder, ttl)?;
    let token: Option<i64> = sqlx::query_scalar(ACQUIRE)
        .bind(name)
        .bind(holder)
        .bind(ttl.as_millis() as f64)
        .fetch_optional(pool)
        .await
        .map_err(backend_err)?;
    Ok(token.map(|t| Fence {
        lease: name.to_owned(),
        holder: holder.to_owned(),
        token: t as u64,
    }))
}

pub(super) async fn release(pool: &PgPool, fence: &Fence) -> Result<()> {
    sqlx::query("UPDATE leases SET expires_at = clock_timestamp() - interval '1 millisecond' WHERE name = $1 AND holder = $2 AND token = $3")
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.token as i64)
        .execute(pool)
        .await
        .map_err(backend_err)?;
    Ok(())
}

pub(super) async fn state(pool: &PgPool, name: &str) -> Result<Option<LeaseState>> {
    let row = sqlx::query("SELECT holder, token, greatest(0, extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 FROM leases WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(backend_err)?;
    row.map(|r| {
        let ms: f64 = r.try_get(2).map_err(backend_err)?;
        Ok(LeaseState {
            holder: r.try_get(0).map_err(backend_err)?,
            token: r.try_get::<i64, _>(1).map_err(backend_err)? as u64,
            expires_in: Duration::from_millis(ms.max(0.0) as u64),
        })
    })
    .transpose()
}

pub(super) async fn save_checkpoint(
    pool: &PgPool,
    name: &str,
    position: u64,
    fence: &Fence,
) -> Result<()> {
    let done = sqlx::query(
        r#"
WITH held AS (
    SELECT 1 FROM leases WHERE name = $3 AND holder = $4 AND token = $5 FOR SHARE
)
INSERT INTO checkpoints (name, position)
SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM held)
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position
"#,
    )
    .bind(name)
    .bind(position as i64)
    .bind(&fence.lease)
    .bind(&fence.holder)
    .bind(fence.token as i64)
    .execute(pool)
    .await
    .map_err(backend_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::fenced(fence));
    }
    Ok(())
}

/// The fences among `leases` that hold, each lease's row share-locked until the transaction
/// on `conn` ends.
pub(super) async fn holding(conn: &mut PgConnection, leases: &[String]) -> Result<Vec<Fence>> {
    let rows = sqlx::query("SELECT name, holder, token FROM leases WHERE name = ANY($1) FOR SHARE")
        .bind(leases)
        .fetch_all(conn)
        .await
        .map_err(backend_err)?;
    rows.iter()
        .map(|r| {
            Ok(Fence {
                lease: r.try_get(0).map_err(backend_err)?,
                holder: r.try_get(1).map_err(backend_err)?,
                token: r.try_get::<i64, _>(2).map_err(backend_err)? as u64,
            })
        })
        .collect()
}
