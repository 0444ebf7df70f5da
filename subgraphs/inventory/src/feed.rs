//! Stock changes as a stream, for the `stockChanged` subscription: the
//! `stock.changed` events of some SKUs (or all), coalesced per SKU.
//!
//! Coalescing: the first change of a quiet SKU goes out at once; changes that
//! follow within the interval (`STOCK_EVENT_INTERVAL_MS`) are held, and when
//! the interval has passed the newest of them goes out: at most one event per
//! SKU per interval, the latest value wins. Events are compared by outbox id,
//! which grows with every change of a SKU, so a repeat or an older value (the
//! relay publishes at least once) never replaces a newer one: the last event
//! a subscriber sees is the SKU's last committed value. A receiver that fell
//! behind the bus reads each SKU's newest event from the outbox.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::Duration,
};

use diesel::{prelude::*, sql_types};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures::Stream;
use kit::{
    db::PgPool,
    events::{Bus, Event},
};
use tokio::{
    sync::broadcast::{Receiver, error::RecvError},
    time::Instant,
};

use crate::{
    error::InventoryError,
    events::{STOCK_CHANGED, StockChanged},
    items,
};

/// Most SKUs one subscription may name (omit the list to follow every SKU).
pub const MAX_SKUS: usize = 100;

/// The SKUs a subscription follows: normalised, deduplicated; `None` is every SKU.
pub fn normalize_skus(skus: Option<&[String]>) -> Result<Option<HashSet<String>>, InventoryError> {
    let Some(skus) = skus else {
        return Ok(None);
    };
    if skus.is_empty() || skus.len() > MAX_SKUS {
        return Err(InventoryError::invalid(
            "skus",
            format!("name 1 to {MAX_SKUS} SKUs, or leave skus out to follow every SKU"),
        ));
    }
    skus.iter()
        .map(|raw| {
            // Checked for length first, so a huge value is not echoed back.
            if raw.len() > 64 {
                return Err(InventoryError::invalid(
                    "skus",
                    "a SKU has at most 32 characters",
                ));
            }
            items::normalize_sku(raw)
        })
        .collect::<Result<HashSet<_>, _>>()
        .map(Some)
}

/// One SKU's coalescing state.
#[derive(Default)]
struct Slot {
    /// The newest outbox id received (sent or held).
    newest: i64,
    /// When the last event went out.
    sent_at: Option<Instant>,
    /// The newest change not yet sent.
    held: Option<StockChanged>,
}

/// The coalescing of one feed: which SKUs, how often, what is held.
struct Coalescer {
    skus: Option<HashSet<String>>,
    interval: Duration,
    slots: HashMap<String, Slot>,
    ready: VecDeque<StockChanged>,
}

struct Follow {
    rx: Receiver<Event>,
    pool: PgPool,
    /// The newest outbox id when the feed started: catching up reads after it.
    floor: i64,
    coalescer: Coalescer,
}

impl Coalescer {
    /// Takes one event in: out at once, held, or dropped as old.
    fn receive(&mut self, change: StockChanged, now: Instant) {
        if self.skus.as_ref().is_some_and(|s| !s.contains(&change.sku)) {
            return;
        }
        let slot = self.slots.entry(change.sku.clone()).or_default();
        if change.id <= slot.newest {
            return;
        }
        slot.newest = change.id;
        let quiet = slot.held.is_none()
            && slot
                .sent_at
                .is_none_or(|at| now.duration_since(at) >= self.interval);
        if quiet {
            slot.sent_at = Some(now);
            self.ready.push_back(change);
        } else {
            slot.held = Some(change);
        }
    }

    /// When the next held change is due.
    fn next_due(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter(|s| s.held.is_some())
            .filter_map(|s| s.sent_at.map(|at| at + self.interval))
            .min()
    }

    /// Sends every held change whose interval has passed.
    fn release_due(&mut self, now: Instant) {
        for slot in self.slots.values_mut() {
            let due = slot
                .sent_at
                .is_none_or(|at| now.duration_since(at) >= self.interval);
            if due && let Some(change) = slot.held.take() {
                slot.sent_at = Some(now);
                self.ready.push_back(change);
            }
        }
        // Quiet SKUs need no state once their interval has passed.
        let interval = self.interval;
        self.slots.retain(|_, s| {
            s.held.is_some()
                || s.sent_at
                    .is_some_and(|at| now.duration_since(at) < interval)
        });
    }
}

/// Changes of `skus` (every SKU when `None`) committed from now on, coalesced
/// per SKU to at most one per `interval`.
pub async fn follow(
    pool: &PgPool,
    bus: &Bus,
    skus: Option<HashSet<String>>,
    interval: Duration,
) -> Result<impl Stream<Item = StockChanged> + Send + use<>, InventoryError> {
    // Subscribe before reading where the outbox is, so nothing falls between.
    let rx = bus.subscribe();
    let floor = {
        let mut conn = pool.get().await?;
        newest_id(&mut conn).await?
    };
    let state = Follow {
        rx,
        pool: pool.clone(),
        floor,
        coalescer: Coalescer {
            skus,
            interval,
            slots: HashMap::new(),
            ready: VecDeque::new(),
        },
    };
    Ok(futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(change) = s.coalescer.ready.pop_front() {
                return Some((change, s));
            }
            let due = s.coalescer.next_due();
            let received = tokio::select! {
                received = s.rx.recv() => received,
                () = sleep_until(due) => {
                    s.coalescer.release_due(Instant::now());
                    continue;
                }
            };
            match received {
                Ok(event) => {
                    if event.topic != STOCK_CHANGED {
                        continue;
                    }
                    match StockChanged::from_event(&event) {
                        Some(change) => s.coalescer.receive(change, Instant::now()),
                        None if event.source == crate::DB_SCHEMA => {
                            tracing::warn!(id = event.id, "malformed stock.changed event");
                        }
                        None => {}
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "stock feed fell behind; catching up");
                    match catch_up(&s.pool, s.coalescer.skus.as_ref(), s.floor).await {
                        Ok(changes) => {
                            let now = Instant::now();
                            for change in changes {
                                s.coalescer.receive(change, now);
                            }
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "catching up failed; ending the feed");
                            return None;
                        }
                    }
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }))
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[derive(QueryableByName)]
struct Newest {
    #[diesel(sql_type = sql_types::BigInt)]
    id: i64,
}

/// The newest outbox id (0 when empty).
async fn newest_id(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    let row: Newest = diesel::sql_query("SELECT COALESCE(MAX(id), 0) AS id FROM outbox")
        .get_result(conn)
        .await?;
    Ok(row.id)
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = sql_types::Text)]
    key: String,
    #[diesel(sql_type = sql_types::Jsonb)]
    payload: serde_json::Value,
}

/// The newest `stock.changed` event of each SKU after `floor`.
async fn catch_up(
    pool: &PgPool,
    skus: Option<&HashSet<String>>,
    floor: i64,
) -> anyhow::Result<Vec<StockChanged>> {
    let mut conn = pool.get().await?;
    let skus: Option<Vec<&String>> = skus.map(|s| s.iter().collect());
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT DISTINCT ON (key) id, key, payload FROM outbox
         WHERE topic = 'stock.changed' AND id > $1 AND ($2::text[] IS NULL OR key = ANY($2))
         ORDER BY key, id DESC",
    )
    .bind::<sql_types::BigInt, _>(floor)
    .bind::<sql_types::Nullable<sql_types::Array<sql_types::Text>>, _>(skus)
    .load(&mut conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            StockChanged::from_event(&Event {
                id: r.id,
                source: crate::DB_SCHEMA.into(),
                topic: STOCK_CHANGED.into(),
                key: r.key,
                payload: r.payload,
                at: chrono::Utc::now(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: i64, sku: &str, available: i32) -> StockChanged {
        StockChanged {
            id,
            sku: sku.into(),
            available,
            unit_price: None,
        }
    }

    #[test]
    fn skus_are_checked_normalised_and_deduplicated() {
        let given = vec!["apple".to_owned(), "APPLE".to_owned(), "milk".to_owned()];
        let skus = normalize_skus(Some(&given)).unwrap().unwrap();
        assert_eq!(skus.len(), 2);
        assert!(skus.contains("APPLE") && skus.contains("MILK"));
        assert_eq!(normalize_skus(None).unwrap(), None);
        for bad in [
            vec![],
            vec!["A\0B".to_owned()],
            vec!["x".repeat(100_000)],
            vec!["A".to_owned(); MAX_SKUS + 1],
        ] {
            assert!(normalize_skus(Some(&bad)).is_err());
        }
    }

    #[test]
    fn a_burst_yields_the_first_at_once_and_the_latest_after_the_interval() {
        let mut s = Coalescer {
            skus: None,
            interval: Duration::from_millis(100),
            slots: HashMap::new(),
            ready: VecDeque::new(),
        };
        let t0 = Instant::now();
        s.receive(change(1, "APPLE", 10), t0);
        s.receive(change(3, "APPLE", 8), t0);
        s.receive(change(2, "APPLE", 9), t0); // older than what is held: dropped
        s.receive(change(4, "MILK", 5), t0);
        assert_eq!(
            s.ready.drain(..).collect::<Vec<_>>(),
            [change(1, "APPLE", 10), change(4, "MILK", 5)]
        );
        assert_eq!(s.next_due(), Some(t0 + Duration::from_millis(100)));
        s.release_due(t0 + Duration::from_millis(50));
        assert!(s.ready.is_empty());
        s.release_due(t0 + Duration::from_millis(100));
        assert_eq!(
            s.ready.drain(..).collect::<Vec<_>>(),
            [change(3, "APPLE", 8)]
        );
        s.receive(change(3, "APPLE", 8), t0 + Duration::from_millis(300));
        assert!(s.ready.is_empty(), "a repeat is dropped");
    }
}
