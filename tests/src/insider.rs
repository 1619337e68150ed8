//! What an insider with write access to a service's PostgreSQL schema can do, for the tests
//! that show who notices.

use flotilla_core::chain::Hash;

/// Rewrites `service`'s store from the event at `from` on as an insider who knows the chain
/// rule would: one byte added to that event's payload (an unknown protobuf field, so it still
/// decodes), every hash from there recomputed, the head moved. The service's own check of
/// its chain passes afterwards; only a party that saw the chain before (the ledger) can tell.
pub async fn rewrite_consistently(
    store_url: &str,
    namespace: &str,
    service: &str,
    from: u64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        from >= 2,
        "rewrite from position 2 on (the first has no event before it)"
    );
    let schema = flotilla_store::schema_for(namespace, service);
    let store = flotilla_store::open(store_url, &schema).await?;
    let mut events = store.read_all(1, 100_000).await?;
    anyhow::ensure!(
        events.len() as u64 >= from,
        "{service}'s store has {} events, none at {from}",
        events.len()
    );
    let pool = sqlx::PgPool::connect(store_url).await?;
    let mut prev: Hash = events[from as usize - 2].hash;
    for e in events.iter_mut().skip(from as usize - 1) {
        if e.global_position == from {
            e.payload.extend([0x78, 0x01]);
        }
        e.prev_hash = prev;
        e.hash = e.compute_hash();
        prev = e.hash;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE \"{schema}\".events SET payload = $1, prev_hash = $2, hash = $3 WHERE global_position = $4"
        )))
        .bind(&e.payload)
        .bind(e.prev_hash.0.to_vec())
        .bind(e.hash.0.to_vec())
        .bind(e.global_position as i64)
        .execute(&pool)
        .await?;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{schema}\".store_head SET hash = $1"
    )))
    .bind(prev.0.to_vec())
    .execute(&pool)
    .await?;
    pool.close().await;
    Ok(())
}
