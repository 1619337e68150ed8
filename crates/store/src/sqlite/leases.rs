//! Leases in SQLite: a row per lease, times by this machine's clock (every process sharing a
//! SQLite file runs on one machine), the token raised whenever the lease changes hands or
//! lapses. A fenced write checks the token inside the write transaction (`BEGIN IMMEDIATE`
//! holds the database's write lock, so no new term begins meanwhile).

use std::time::Duration;

use flotilla_core::lease::{Fence, LeaseState, check_lease};
use flotilla_core::store::{Result, StoreError};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::backend_err;
use crate::writer::now_ms;

const ACQUIRE: &str = r#"
INSERT INTO leases (name, holder, token, expires_at_ms) VALUES (?1, ?2, 1, ?3 + ?4)
ON CONFLICT (name) DO UPDATE SET
    token = CASE WHEN leases.holder = excluded.holder AND leases.expires_at_ms > ?3
                 THEN leases.token ELSE leases.token + 1 END,
    holder = excluded.holder,
    expires_at_ms = excluded.expires_at_ms
WHERE leases.holder = excluded.holder OR leases.expires_at_ms <= ?3
RETURNING token
"#;

pub(super) async fn acquire(
    pool: &SqlitePool,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Option<Fence>> {
    check_lease(name, holder, ttl)?;
    let token: Option<i64> = sqlx::query_scalar(ACQUIRE)
        .bind(name)
        .bind(holder)
        .bind(now_ms())
        .bind(ttl.as_millis() as i64)
        .fetch_optional(pool)
        .await
        .map_err(backend_err)?;
    Ok(token.map(|t| Fence {
        lease: name.to_owned(),
        holder: holder.to_owned(),
        token: t as u64,
    }))
}

pub(super) async fn release(pool: &SqlitePool, fence: &Fence) -> Result<()> {
    sqlx::query("UPDATE leases SET expires_at_ms = ? WHERE name = ? AND holder = ? AND token = ?")
        .bind(now_ms() - 1)
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.token as i64)
        .execute(pool)
        .await
        .map_err(backend_err)?;
    Ok(())
}

pub(super) async fn state(pool: &SqlitePool, name: &str) -> Result<Option<LeaseState>> {
    let row = sqlx::query("SELECT holder, token, expires_at_ms FROM leases WHERE name = ?")
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(backend_err)?;
    row.map(|r| {
        let expires: i64 = r.try_get(2).map_err(backend_err)?;
        Ok(LeaseState {
            holder: r.try_get(0).map_err(backend_err)?,
            token: r.try_get::<i64, _>(1).map_err(backend_err)? as u64,
            expires_in: Duration::from_millis(expires.saturating_sub(now_ms()).max(0) as u64),
        })
    })
    .transpose()
}

pub(super) async fn save_checkpoint(
    pool: &SqlitePool,
    name: &str,
    position: u64,
    fence: &Fence,
) -> Result<()> {
    let done = sqlx::query(
        "INSERT INTO checkpoints (name, position) SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM leases WHERE name = ?3 AND holder = ?4 AND token = ?5) ON CONFLICT (name) DO UPDATE SET position = excluded.position",
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

/// The fences among `leases` that hold (call inside the write transaction).
pub(super) async fn holding(conn: &mut SqliteConnection, leases: &[String]) -> Result<Vec<Fence>> {
    let mut out = Vec::new();
    for name in leases {
        let row = sqlx::query("SELECT holder, token FROM leases WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend_err)?;
        if let Some(r) = row {
            out.push(Fence {
                lease: name.clone(),
                holder: r.try_get(0).map_err(backend_err)?,
                token: r.try_get::<i64, _>(1).map_err(backend_err)? as u64,
            });
        }
    }
    Ok(out)
}
