//! Where relayed events go: an in-process broadcast, fed either directly or
//! from a Redis stream that every replica reads.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use anyhow::Context as _;
use redis::{
    AsyncConnectionConfig,
    aio::MultiplexedConnection,
    streams::{StreamRangeReply, StreamReadOptions, StreamReadReply},
};
use tokio::sync::{Mutex, broadcast};

use super::Event;

/// The Redis stream events go to unless configured otherwise.
pub const DEFAULT_STREAM: &str = "grocery:events";
/// Entries a stream keeps (approximately); consumers further behind catch up from the outbox.
const STREAM_MAXLEN: usize = 100_000;
/// Events a slow local subscriber may fall behind before it is told it lagged.
const LOCAL_CAPACITY: usize = 4096;

/// Where a component's events go: `REDIS_URL` and `EVENT_STREAM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusConfig {
    /// Redis for the event bus; the process-wide in-process bus without it.
    pub redis_url: Option<String>,
    /// The Redis stream events go to (default [`DEFAULT_STREAM`]).
    pub stream: String,
}

impl Default for BusConfig {
    /// The in-process bus.
    fn default() -> Self {
        Self {
            redis_url: None,
            stream: DEFAULT_STREAM.into(),
        }
    }
}

impl BusConfig {
    /// Reads `REDIS_URL` and `EVENT_STREAM`.
    pub fn from_env(env: &mut crate::config::Env) -> Self {
        Self {
            redis_url: env.get("REDIS_URL"),
            stream: env
                .get("EVENT_STREAM")
                .unwrap_or_else(|| DEFAULT_STREAM.into()),
        }
    }

    /// The bus this names.
    pub async fn connect(&self) -> anyhow::Result<Bus> {
        Bus::connect(self.redis_url.as_deref(), &self.stream).await
    }
}

/// Publishes events and hands them to this process's subscribers.
#[derive(Clone)]
pub struct Bus {
    local: broadcast::Sender<Event>,
    redis: Option<RedisSink>,
}

#[derive(Clone)]
struct RedisSink {
    link: Link,
    stream: String,
}

/// A Redis connection that is opened again after it broke (a Redis restart,
/// a network cut): commands fail while Redis is away and work once it is back.
#[derive(Clone)]
pub struct Link {
    client: redis::Client,
    config: AsyncConnectionConfig,
    conn: Arc<Mutex<Option<MultiplexedConnection>>>,
}

impl Link {
    /// A link to `url`; `blocking` links wait on blocking reads without a response timeout.
    pub fn new(url: &str, blocking: bool) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("REDIS_URL is not a Redis URL")?;
        let mut config = AsyncConnectionConfig::new();
        if blocking {
            config = config.set_response_timeout(None);
        }
        Ok(Self {
            client,
            config,
            conn: Arc::default(),
        })
    }

    /// Another link to the same server.
    pub(crate) fn new_like(other: &Link, blocking: bool) -> anyhow::Result<Self> {
        let mut config = AsyncConnectionConfig::new();
        if blocking {
            config = config.set_response_timeout(None);
        }
        Ok(Self {
            client: other.client.clone(),
            config,
            conn: Arc::default(),
        })
    }

    /// The open connection, or a new one.
    pub(crate) async fn conn(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = &*slot {
            return Ok(conn.clone());
        }
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `cmd`; a failure that may have broken the connection drops it, so
    /// the next command reconnects.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let mut conn = self.conn().await?;
        let result = cmd.query_async(&mut conn).await;
        if let Err(err) = &result
            && (err.is_io_error()
                || err.is_connection_dropped()
                || err.is_connection_refusal()
                || err.is_timeout()
                || err.is_unrecoverable_error())
        {
            *self.conn.lock().await = None;
        }
        result
    }
}

/// One in-process bus per stream name, shared by every component of a process
/// (`grocery dev` runs them all in one), so events cross subgraphs without Redis.
/// The local channel of every bus of this process, for [`followers`].
type Channels = std::sync::Mutex<Vec<broadcast::WeakSender<Event>>>;

fn channels() -> &'static Channels {
    static CHANNELS: OnceLock<Channels> = OnceLock::new();
    CHANNELS.get_or_init(Default::default)
}

/// `local`, counted from now on by [`followers`].
fn tracked(local: broadcast::Sender<Event>) -> broadcast::Sender<Event> {
    let mut all = channels().lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|channel| channel.upgrade().is_some());
    all.push(local.downgrade());
    local
}

/// Receivers following any bus of this process: open subscriptions and
/// feeds. On `/metrics`, so that a test (or an operator) can see when a
/// subscription has started following events.
pub fn followers() -> usize {
    let all = channels().lock().unwrap_or_else(|p| p.into_inner());
    all.iter()
        .filter_map(broadcast::WeakSender::upgrade)
        .map(|channel| channel.receiver_count())
        .sum()
}

fn shared(stream: &str) -> broadcast::Sender<Event> {
    static SHARED: OnceLock<std::sync::Mutex<HashMap<String, broadcast::Sender<Event>>>> =
        OnceLock::new();
    let mut map = SHARED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(stream.to_owned())
        .or_insert_with(|| tracked(broadcast::channel(LOCAL_CAPACITY).0))
        .clone()
}

impl Bus {
    /// A bus of its own that never leaves this process (tests).
    pub fn in_process() -> Self {
        Self {
            local: tracked(broadcast::channel(LOCAL_CAPACITY).0),
            redis: None,
        }
    }

    /// The process-wide in-process bus of `stream`.
    pub fn shared_in_process(stream: &str) -> Self {
        Self {
            local: shared(stream),
            redis: None,
        }
    }

    /// A bus over the Redis stream `stream` at `url`. A reader task follows the
    /// stream from its current end and hands every entry, from any replica,
    /// to local subscribers; it ends when the last clone of the bus is dropped.
    pub async fn redis(url: &str, stream: &str) -> anyhow::Result<Self> {
        let link = Link::new(url, false)?;
        // The reader blocks on XREAD, so it has its own connection without a response timeout.
        let reader = Link::new(url, true)?;
        // Start after the newest entry; `$` would miss entries added between reads.
        let newest: StreamRangeReply = reader
            .query(
                redis::cmd("XREVRANGE")
                    .arg(stream)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await
            .with_context(|| format!("cannot read the event stream at {url}"))?;
        let start = newest
            .ids
            .first()
            .map_or_else(|| "0-0".to_owned(), |e| e.id.clone());
        let local = tracked(broadcast::channel(LOCAL_CAPACITY).0);
        tokio::spawn(follow(reader, stream.to_owned(), start, local.downgrade()));
        Ok(Self {
            local,
            redis: Some(RedisSink {
                link,
                stream: stream.to_owned(),
            }),
        })
    }

    /// Redis when `redis_url` is given, the process-wide in-process bus otherwise.
    pub async fn connect(redis_url: Option<&str>, stream: &str) -> anyhow::Result<Self> {
        match redis_url {
            Some(url) => Self::redis(url, stream).await,
            None => Ok(Self::shared_in_process(stream)),
        }
    }

    /// True when events go through Redis.
    pub fn is_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// The Redis link and stream, when events go through Redis.
    pub(crate) fn redis_stream(&self) -> Option<(&Link, &str)> {
        self.redis.as_ref().map(|r| (&r.link, r.stream.as_str()))
    }

    /// Publishes one event: to Redis (whose reader delivers it locally), or
    /// straight to local subscribers.
    pub async fn publish(&self, event: &Event) -> anyhow::Result<()> {
        match &self.redis {
            Some(sink) => {
                let _: String = sink
                    .link
                    .query(
                        redis::cmd("XADD")
                            .arg(&sink.stream)
                            .arg("MAXLEN")
                            .arg("~")
                            .arg(STREAM_MAXLEN)
                            .arg("*")
                            .arg("event")
                            .arg(serde_json::to_string(event)?),
                    )
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
async fn follow(link: Link, stream: String, mut last: String, local: broadcast::WeakSender<Event>) {
    let options = StreamReadOptions::default().block(1000).count(500);
    loop {
        if local.upgrade().is_none() {
            return;
        }
        let read: Result<Option<StreamReadReply>, _> = link
            .query(
                redis::cmd("XREAD")
                    .arg(&options)
                    .arg("STREAMS")
                    .arg(&stream)
                    .arg(&last),
            )
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
