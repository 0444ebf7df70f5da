//! Orders whose reservation lapsed become EXPIRED.
//!
//! Orders runs its own sweeper rather than waiting to hear from inventory:
//! inventory publishes no events yet, and the order's `reservedUntil` is the
//! reservation's own expiry, so orders knows the moment without asking. The
//! sweeper releases through inventory (a no-op when inventory's sweeper got
//! there first, a return when a failed payment left the stock committed) and
//! changes the status through the lifecycle. `SKIP LOCKED` lets replicas
//! sweep together, and an order being confirmed right now is skipped.

use std::{sync::Arc, time::Duration};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::{
    OrdersState,
    db::{Order, schema::orders},
    error::OrdersError,
    lifecycle::OrderStatus,
    transitions,
};

/// Orders expired per transaction.
const CHUNK: i64 = 50;

/// Expires every reserved order whose hold has lapsed; returns how many.
pub async fn sweep(st: &OrdersState) -> Result<usize, OrdersError> {
    let mut conn = st.pool.get().await?;
    let mut expired = 0;
    loop {
        let n = conn
            .transaction(async |conn| {
                let due: Vec<Order> = orders::table
                    .filter(orders::status.eq(OrderStatus::Reserved.as_str()))
                    .filter(orders::reserved_until.le(diesel::dsl::now))
                    .order(orders::reserved_until)
                    .limit(CHUNK)
                    .select(Order::as_select())
                    .for_update()
                    .skip_locked()
                    .load(conn)
                    .await?;
                for order in &due {
                    transitions::expire(st, conn, order).await?;
                }
                Ok::<_, OrdersError>(due.len())
            })
            .await?;
        expired += n;
        if n > 0 {
            st.relay.wake();
        }
        if n < CHUNK as usize {
            return Ok(expired);
        }
    }
}

/// Sweeps every `interval` until the task is dropped.
pub async fn run(st: Arc<OrdersState>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match sweep(&st).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(orders = n, "expired lapsed reservations"),
            Err(err) => {
                tracing::warn!(error = %err, "order expiry sweep failed; retrying next tick")
            }
        }
    }
}
