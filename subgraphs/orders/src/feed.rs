//! The status changes of one order as a stream, for the `orderStatusChanged`
//! subscription: every change committed after the stream starts, once, in
//! order.
//!
//! Events arrive from the bus. Each carries its outbox id, which grows with
//! every change of the order, so repeats (the relay publishes at least once)
//! are dropped by comparing ids; a receiver that fell behind the bus reads
//! what it missed from the outbox itself.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use futures::Stream;
use kit::{
    db::PgPool,
    events::{Event, outbox},
};
use tokio::sync::broadcast::{Receiver, error::RecvError};
use uuid::Uuid;

use crate::{
    DB_SCHEMA, OrdersState,
    error::OrdersError,
    lifecycle::{OrderStatus, STATUS_CHANGED},
};

/// One committed status change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChanged {
    /// The outbox id of the event.
    pub id: i64,
    pub order_id: Uuid,
    pub previous: Option<OrderStatus>,
    pub status: OrderStatus,
    pub at: DateTime<Utc>,
}

impl StatusChanged {
    fn from_event(event: &Event) -> Option<Self> {
        let p = &event.payload;
        let status = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|s| OrderStatus::try_from(s.to_owned()).ok())
        };
        Some(Self {
            id: event.id,
            order_id: p["orderId"].as_str()?.parse().ok()?,
            previous: status(&p["previousStatus"]),
            status: status(&p["status"])?,
            at: p["at"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map_or(event.at, |t| t.with_timezone(&Utc)),
        })
    }
}

struct Follow {
    rx: Receiver<Event>,
    pool: PgPool,
    key: String,
    last: i64,
    queue: VecDeque<Event>,
}

fn relevant(event: &Event, key: &str) -> bool {
    event.source == DB_SCHEMA && event.topic == STATUS_CHANGED && event.key == key
}

/// Status changes of `order_id` committed from now on.
pub async fn follow(
    st: &OrdersState,
    order_id: Uuid,
) -> Result<impl Stream<Item = StatusChanged> + Send + use<>, OrdersError> {
    // Subscribe before reading where the outbox is, so nothing falls between.
    let rx = st.relay.bus().subscribe();
    let key = order_id.to_string();
    let last = {
        let mut conn = st.pool.get().await?;
        outbox::last_id(&mut conn, &key).await?
    };
    let state = Follow {
        rx,
        pool: st.pool.clone(),
        key,
        last,
        queue: VecDeque::new(),
    };
    Ok(futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(event) = s.queue.pop_front() {
                if event.id <= s.last || !relevant(&event, &s.key) {
                    continue;
                }
                s.last = event.id;
                match StatusChanged::from_event(&event) {
                    Some(change) => return Some((change, s)),
                    None => {
                        tracing::warn!(id = event.id, "malformed order.status_changed event");
                        continue;
                    }
                }
            }
            match s.rx.recv().await {
                Ok(event) => s.queue.push_back(event),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "order status feed fell behind; catching up");
                    match catch_up(&s.pool, &s.key, s.last).await {
                        Ok(events) => s.queue.extend(events),
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

async fn catch_up(pool: &PgPool, key: &str, after: i64) -> anyhow::Result<Vec<Event>> {
    let mut conn = pool.get().await?;
    Ok(outbox::since(&mut conn, DB_SCHEMA, key, after).await?)
}
