//! Domain events: written to an outbox table in the same transaction as the
//! change they describe, then relayed, in order, to a [`Bus`].
//!
//! A producer calls [`outbox::append`] inside its transaction; the [`Relay`]
//! publishes committed rows in id order and marks them (at-least-once: a crash
//! between publishing and marking publishes again). The bus is Redis Streams
//! when `REDIS_URL` is set, so every replica sees every event, and an
//! in-process broadcast otherwise. Events of one key (an order id) are
//! published in the order they were committed as long as the producer writes
//! them while holding that key's row lock; consumers drop repeats by
//! [`Event::id`], which grows per key.
//!
//! Every producer's schema has the same table:
//!
//! ```sql
//! CREATE TABLE outbox (
//!     id           BIGSERIAL PRIMARY KEY,
//!     topic        TEXT NOT NULL,          -- e.g. order.status_changed
//!     key          TEXT NOT NULL,          -- what the event is about (an order id)
//!     payload      JSONB NOT NULL,
//!     created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
//!     published_at TIMESTAMPTZ
//! );
//! CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;
//! CREATE INDEX outbox_key_idx ON outbox (key, id);
//! ```

mod bus;
mod consumer;
pub mod outbox;
mod relay;

pub use bus::{Bus, BusConfig, DEFAULT_STREAM};
pub use consumer::{
    Applied, Consumer, ConsumerOptions, ConsumerStats, DEAD_LETTER_SUFFIX, Handler, metrics_text,
};
pub use relay::Relay;

/// The variables of the bus ([`BusConfig::from_env`]) and of consumers.
pub const ENV: &[crate::config::Var] = &[
    crate::config::Var {
        file: &[crate::config::key("redis.url", crate::config::Kind::Text)],
        names: &["REDIS_URL"],
        used_by: "every component",
        default: "none: in-process bus",
        meaning: "Redis for the event bus (Redis Streams, one consumer group per consumer; every \
                  process also reads the whole stream for access changes; run it with \
                  persistence), and the gateway's APQ documents and rate-limit buckets",
    },
    crate::config::Var {
        file: &[crate::config::key(
            "redis.event_stream",
            crate::config::Kind::Text,
        )],
        names: &["EVENT_STREAM"],
        used_by: "every component",
        default: "`grocery:events`",
        meaning: "the Redis stream events go to (dead letters: `<stream>:dead`)",
    },
    crate::config::Var {
        file: &[],
        names: &["CONSUMER_NAME"],
        used_by: "orders, users, logistics",
        default: "host name and pid",
        meaning: "this replica's name in the consumer groups; a restarted replica with the same \
                  name resumes its pending events at once",
    },
];

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A committed domain event as consumers receive it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the producer's outbox; grows with every event of a key.
    pub id: i64,
    /// The producing subgraph (`orders`), so ids of different producers never mix.
    pub source: String,
    /// What happened, e.g. `order.status_changed`.
    pub topic: String,
    /// What it happened to, e.g. the order id.
    pub key: String,
    pub payload: serde_json::Value,
    /// When the change was committed.
    pub at: DateTime<Utc>,
}

/// An event to write to the outbox.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub topic: &'static str,
    pub key: String,
    pub payload: serde_json::Value,
}
