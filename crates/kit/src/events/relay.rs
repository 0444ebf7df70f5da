//! The relay: moves committed outbox rows to the bus, oldest first.

use std::{sync::Arc, time::Duration};

use diesel_async::{AsyncConnection, RunQueryDsl};
use tokio::sync::Notify;

use super::{Bus, outbox};
use crate::db::PgPool;

/// Rows moved per transaction.
const BATCH: i64 = 500;
/// Published rows are kept this long for consumers catching up, then pruned.
const KEEP: Duration = Duration::from_secs(24 * 3600);

/// Publishes one producer's outbox to a bus.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    bus: Bus,
    source: String,
    wake: Arc<Notify>,
}

impl Relay {
    /// A relay of the outbox in `source`'s schema (the pool's `search_path`).
    pub fn new(pool: PgPool, bus: Bus, source: &str) -> Self {
        Self {
            pool,
            bus,
            source: source.to_owned(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The bus it publishes to.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Tells the relay that rows were committed, so it runs now instead of at its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes every pending row; returns how many. Only one relay per
    /// outbox works at a time (a transaction-scoped advisory lock), which
    /// keeps the published order the commit order of each key.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let mut conn = self.pool.get().await?;
        let mut total = 0;
        loop {
            let bus = &self.bus;
            let source = self.source.as_str();
            let moved = conn
                .transaction(async |conn| {
                    #[derive(diesel::QueryableByName)]
                    struct Locked {
                        #[diesel(sql_type = diesel::sql_types::Bool)]
                        locked: bool,
                    }
                    // The marks are committed without waiting for the WAL
                    // flush: a mark lost in a crash only publishes its event
                    // again, and delivery is at least once anyway (consumers
                    // keep their effects exactly once by event id). Events,
                    // stock and money are written by the producers' own,
                    // durable commits; this saves a flush per relay batch.
                    let lock: Locked = crate::prepared::prepared(
                        "SELECT pg_try_advisory_xact_lock($1) AS locked,
                                set_config('synchronous_commit', 'off', true) AS commit",
                    )
                    .bind::<diesel::sql_types::BigInt, _>(lock_key(source))
                    .get_result(conn)
                    .await?;
                    if !lock.locked {
                        return Ok::<_, anyhow::Error>(0);
                    }
                    // Marked and read in one statement; published before
                    // the commit, so a failed publish takes the marks back.
                    let events = outbox::claim_pending(conn, source, BATCH).await?;
                    for event in &events {
                        bus.publish(event).await?;
                    }
                    Ok(events.len())
                })
                .await?;
            total += moved;
            if moved < BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// Relays whenever woken, and every `poll` in any case (rows committed by
    /// other replicas), until the task is dropped. Old published rows are pruned hourly.
    pub async fn run(self, poll: Duration) {
        let mut last_prune = tokio::time::Instant::now();
        loop {
            if let Err(err) = self.run_once().await {
                tracing::warn!(error = format!("{err:#}"), "event relay failed; retrying");
                tokio::time::sleep(poll).await;
            }
            if last_prune.elapsed() > Duration::from_secs(3600) {
                last_prune = tokio::time::Instant::now();
                if let Ok(mut conn) = self.pool.get().await
                    && let Err(err) = outbox::prune(&mut conn, KEEP).await
                {
                    tracing::warn!(error = %err, "pruning the outbox failed");
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

fn lock_key(source: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"grocery-outbox:".iter().chain(source.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}
