//! The restock reconciler: every pending restock whose next attempt is due
//! goes to inventory again, until it is COMPLETED or FAILED.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED` and their next attempt is
//! pushed a [`LEASE`] ahead before inventory is asked, so replicas share the
//! work without asking twice at once, and a replica that dies mid-attempt
//! leaves the row to be picked up when the lease ends. Asking twice would do
//! no harm anyway: inventory keys restocks by transaction id.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures::future::join_all;

use crate::{
    LogisticsState,
    db::{RestockOrder, schema::restock_orders},
    error::LogisticsError,
    inventory::{RPC_TIMEOUT, Refusal},
    restock::{self, RestockStatus},
};

/// How long a restock being tried is left alone by everyone else: well past
/// the longest a call to inventory may take.
pub const LEASE: Duration = Duration::from_secs(6 * RPC_TIMEOUT.as_secs());
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Restocks claimed per transaction.
const CHUNK: i64 = 20;

/// When pending restocks are tried again, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt; it doubles with each further one.
    pub first_backoff: Duration,
    /// Attempts (the first one included) before a restock is FAILED.
    pub max_attempts: i32,
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts: doubling, at most [`MAX_BACKOFF`].
    pub fn backoff(&self, attempts: i32) -> Duration {
        let doublings = attempts.saturating_sub(1).clamp(0, 16) as u32;
        self.first_backoff
            .saturating_mul(1 << doublings)
            .min(MAX_BACKOFF)
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub completed: usize,
    pub failed: usize,
    pub pending: usize,
}

impl Reconciled {
    fn count(&mut self, status: RestockStatus) {
        match status {
            RestockStatus::Completed => self.completed += 1,
            RestockStatus::Failed => self.failed += 1,
            RestockStatus::Pending => self.pending += 1,
        }
    }
}

/// Claims up to [`CHUNK`] due restocks for one [`LEASE`].
async fn claim(st: &LogisticsState) -> Result<Vec<RestockOrder>, LogisticsError> {
    let mut conn = st.pool.get().await?;
    conn.transaction(async |conn| {
        let due: Vec<RestockOrder> = restock_orders::table
            .filter(restock_orders::status.eq(RestockStatus::Pending.as_str()))
            .filter(restock_orders::next_attempt_at.le(Utc::now()))
            .order(restock_orders::next_attempt_at)
            .limit(CHUNK)
            .select(RestockOrder::as_select())
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        let ids: Vec<_> = due.iter().map(|r| r.id).collect();
        diesel::update(restock_orders::table.filter(restock_orders::id.eq_any(&ids)))
            .set(restock_orders::next_attempt_at.eq(Utc::now() + LEASE))
            .execute(conn)
            .await?;
        Ok(due)
    })
    .await
}

/// Asks inventory to take `order` once more and records the answer.
async fn attempt(
    st: &LogisticsState,
    order: &RestockOrder,
) -> Result<Option<RestockOrder>, LogisticsError> {
    let outcome = match order.delivery() {
        Ok(delivery) => st.stock.restock(order.id, &delivery).await,
        // Unreadable lines cannot be sent; waiting will not fix them.
        Err(err) => Err(Refusal::Rejected(err.to_string())),
    };
    restock::settle(st, order.id, outcome).await
}

/// Tries every due pending restock once; returns what became of them.
pub async fn reconcile(st: &LogisticsState) -> Result<Reconciled, LogisticsError> {
    let mut done = Reconciled::default();
    loop {
        let due = claim(st).await?;
        // All at once: a slow inventory must not make a chunk outlast its lease.
        let settled = join_all(due.iter().map(|order| attempt(st, order))).await;
        for order in settled {
            if let Some(order) = order? {
                done.count(order.status);
            }
        }
        if due.len() < CHUNK as usize {
            return Ok(done);
        }
    }
}

/// Reconciles every `interval` until the task is dropped.
pub async fn run(st: Arc<LogisticsState>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match reconcile(&st).await {
            Ok(Reconciled {
                completed: 0,
                failed: 0,
                pending: 0,
            }) => {}
            Ok(done) => tracing::info!(
                completed = done.completed,
                failed = done.failed,
                pending = done.pending,
                "reconciled pending restocks"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "restock reconciliation failed; retrying next tick")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let policy = RetryPolicy {
            first_backoff: Duration::from_secs(5),
            max_attempts: 10,
        };
        let waits: Vec<u64> = (1..=9).map(|a| policy.backoff(a).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(policy.backoff(i32::MAX), MAX_BACKOFF);
        assert_eq!(policy.backoff(0).as_secs(), 5);
    }
}
