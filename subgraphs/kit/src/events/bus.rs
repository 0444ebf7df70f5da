//! Where relayed events go: an in-process broadcast, fed either directly or
//! from a Redis stream that every replica reads.

use std::time::Duration;

use anyhow::Context as _;
use redis::{
    AsyncConnectionConfig,
    aio::MultiplexedConnection,
    streams::{StreamRangeReply, StreamReadOptions, StreamReadReply},
};
use tokio::sync::broadcast;

use super::Event;

/// The Redis stream events go to unless configured otherwise.
pub const DEFAULT_STREAM: &str = "grocery:events";
/// Entries a stream keeps (approximately); consumers further behind catch up from the outbox.
const STREAM_MAXLEN: usize = 100_000;
/// Events a slow local subscriber may fall behind before it is told it lagged.
const LOCAL_CAPACITY: usize = 4096;

/// Publishes events and hands them to this process's subscribers.
#[derive(Clone)]
pub struct Bus {
    local: broadcast::Sender<Event>,
    redis: Option<RedisSink>,
}

#[derive(Clone)]
struct RedisSink {
    conn: MultiplexedConnection,
    stream: String,
}

impl Bus {
    /// A bus that never leaves this process.
    pub fn in_process() -> Self {
        Self {
            local: broadcast::channel(LOCAL_CAPACITY).0,
            redis: None,
        }
    }

    /// A bus over the Redis stream `stream` at `url`. A reader task follows the
    /// stream from its current end and hands every entry, from any replica,
    /// to local subscribers; it ends when the last clone of the bus is dropped.
    pub async fn redis(url: &str, stream: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("REDIS_URL is not a Redis URL")?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("cannot connect to Redis at {url}"))?;
        // The reader blocks on XREAD, so it has its own connection without a response timeout.
        let mut reader = client
            .get_multiplexed_async_connection_with_config(
                &AsyncConnectionConfig::new().set_response_timeout(None),
            )
            .await
            .with_context(|| format!("cannot connect to Redis at {url}"))?;
        // Start after the newest entry; `$` would miss entries added between reads.
        let newest: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut reader)
            .await?;
        let start = newest
            .ids
            .first()
            .map_or_else(|| "0-0".to_owned(), |e| e.id.clone());
        let local = broadcast::channel(LOCAL_CAPACITY).0;
        tokio::spawn(follow(reader, stream.to_owned(), start, local.downgrade()));
        Ok(Self {
            local,
            redis: Some(RedisSink {
                conn,
                stream: stream.to_owned(),
            }),
        })
    }

    /// Redis when `redis_url` is given, in-process otherwise.
    pub async fn connect(redis_url: Option<&str>, stream: &str) -> anyhow::Result<Self> {
        match redis_url {
            Some(url) => Self::redis(url, stream).await,
            None => Ok(Self::in_process()),
        }
    }

    /// True when events go through Redis.
    pub fn is_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// Publishes one event: to Redis (whose reader delivers it locally), or
    /// straight to local subscribers.
    pub async fn publish(&self, event: &Event) -> anyhow::Result<()> {
        match &self.redis {
            Some(sink) => {
                let mut conn = sink.conn.clone();
                let _: String = redis::cmd("XADD")
                    .arg(&sink.stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(STREAM_MAXLEN)
                    .arg("*")
                    .arg("event")
                    .arg(serde_json::to_string(event)?)
                    .query_async(&mut conn)
                    .await
                    .context("publishing to Redis")?;
            }
            None => {
                // No subscriber is not an error: the event is in the outbox.
                let _ = self.local.send(event.clone());
            }
        }
        Ok(())
    }

    /// How many receivers in this process follow the bus.
    pub fn subscribers(&self) -> usize {
        self.local.receiver_count()
    }

    /// Events published from now on. A receiver that falls more than a few
    /// thousand events behind gets `Lagged` and should catch up from the outbox.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }
}

/// Reads the stream after `last` and forwards entries until the bus is gone.
async fn follow(
    mut conn: MultiplexedConnection,
    stream: String,
    mut last: String,
    local: broadcast::WeakSender<Event>,
) {
    let options = StreamReadOptions::default().block(1000).count(500);
    loop {
        if local.upgrade().is_none() {
            return;
        }
        let read: Result<Option<StreamReadReply>, _> = redis::cmd("XREAD")
            .arg(&options)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&last)
            .query_async(&mut conn)
            .await;
        let reply = match read {
            Ok(Some(reply)) => reply,
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "reading the event stream failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let Some(sender) = local.upgrade() else {
            return;
        };
        for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
            last = entry.id.clone();
            let parsed = entry
                .get::<String>("event")
                .and_then(|json| serde_json::from_str::<Event>(&json).ok());
            match parsed {
                Some(event) => {
                    let _ = sender.send(event);
                }
                None => tracing::warn!(id = %entry.id, "skipping a malformed event entry"),
            }
        }
    }
}
