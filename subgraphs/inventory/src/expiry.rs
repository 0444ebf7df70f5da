//! Time: reservations whose hold ran out give their units back, and batches
//! past their expiry date are written off. The sweeper does both on an
//! interval; every step is safe with several replicas running it.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kit::db::PgPool;
use uuid::Uuid;

use crate::{
    db::{schema::batches, today},
    error::InventoryError,
    items,
    ledger::{self, Kind, Movement},
    reservations,
};

/// Writes off the remaining units of batches that expired before today.
/// Returns the units written off.
pub async fn write_off_expired(conn: &mut AsyncPgConnection) -> Result<i32, InventoryError> {
    let mut skus: Vec<String> = batches::table
        .filter(diesel::dsl::not(batches::sold_out))
        .filter(batches::expiry_date.lt(today()))
        .select(batches::sku)
        .distinct()
        .load(conn)
        .await?;
    skus.sort();
    let mut total = 0;
    for sku in skus {
        total += conn
            .transaction(async |conn| {
                // Item lock first, like every other writer of batches; the
                // batches are read again under it (another replica may have won).
                items::lock(conn, std::slice::from_ref(&sku)).await?;
                let expired: Vec<(Uuid, i32)> = batches::table
                    .filter(batches::sku.eq(&sku))
                    .filter(diesel::dsl::not(batches::sold_out))
                    .filter(batches::expiry_date.lt(today()))
                    .select((batches::id, batches::remaining))
                    .for_update()
                    .load(conn)
                    .await?;
                let mut movements = Vec::new();
                for (batch_id, units) in &expired {
                    diesel::update(batches::table.find(batch_id))
                        .set(batches::remaining.eq(0))
                        .execute(conn)
                        .await?;
                    movements.push(Movement {
                        sku: sku.clone(),
                        kind: Kind::Expiry,
                        on_hand_delta: -units,
                        reserved_delta: 0,
                        batch_id: Some(*batch_id),
                        reference: Some("expired".into()),
                    });
                }
                ledger::apply(conn, &movements).await?;
                Ok::<_, InventoryError>(expired.iter().map(|(_, units)| units).sum::<i32>())
            })
            .await?;
    }
    Ok(total)
}

/// Runs one sweep: expire due reservations (in chunks) and write off expired batches.
pub async fn sweep(pool: &PgPool) -> Result<(usize, i32), InventoryError> {
    let mut conn = pool.get().await?;
    let mut expired = 0;
    loop {
        let n = reservations::expire_due(&mut conn, 200).await?;
        expired += n;
        if n < 200 {
            break;
        }
    }
    let written_off = write_off_expired(&mut conn).await?;
    Ok((expired, written_off))
}

/// Sweeps every `interval` until the pool's owner drops the task; wakes
/// `relay` when a sweep changed stock (and so wrote events).
pub async fn run_sweeper(pool: PgPool, interval: Duration, relay: kit::events::Relay) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match sweep(&pool).await {
            Ok((0, 0)) => {}
            Ok((reservations, units)) => {
                relay.wake();
                tracing::info!(reservations, units_written_off = units, "expiry sweep")
            }
            Err(err) => tracing::warn!(error = %err, "expiry sweep failed; retrying next tick"),
        }
    }
}
