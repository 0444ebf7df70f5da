//! Consuming events: one consumer group per handler, at-least-once delivery,
//! exactly-once effects.
//!
//! A [`Handler`] applies an event inside a transaction that also records the
//! event in the consumer's `processed_events` table, so a redelivered event
//! (a crash before the acknowledgement, a second replica claiming it) finds
//! its row and changes nothing. With Redis the consumer reads the stream
//! through a consumer group: replicas sharing a group split the events, an
//! event is acknowledged only after its transaction committed, entries left
//! pending by a dead replica are claimed after [`ConsumerOptions::claim_idle`],
//! and an event that keeps failing goes to the dead-letter stream after
//! [`ConsumerOptions::max_attempts`]. Without Redis it follows the in-process
//! bus (events published while it was not running are not seen).
//!
//! Every consumer's schema has the table:
//!
//! ```sql
//! CREATE TABLE processed_events (
//!     consumer     TEXT NOT NULL,
//!     source       TEXT NOT NULL,
//!     event_id     BIGINT NOT NULL,
//!     processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
//!     PRIMARY KEY (consumer, source, event_id)
//! );
//! ```

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use diesel::ExpressionMethods;
use diesel_async::{AsyncConnection, AsyncPgConnection};

use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use tokio::sync::broadcast::error::RecvError;

use super::{Bus, Event, bus::Link};
use crate::db::PgPool;

diesel::table! {
    /// Every consumer's `processed_events` (found through the connection's `search_path`).
    processed_events (consumer, source, event_id) {
        consumer -> Text,
        source -> Text,
        event_id -> Int8,
        processed_at -> Timestamptz,
    }
}

/// What a consumer does with events.
pub trait Handler: Send + Sync + 'static {
    /// The consumer group: unique per handler, shared by its replicas, and
    /// named after the component that runs it, a dot, then what it is for
    /// (e.g. `logistics.shipments`): that component's `/metrics` shows it.
    fn group(&self) -> &'static str;

    /// Whether this handler wants `event` at all; others are acknowledged untouched.
    fn wants(&self, event: &Event) -> bool;

    /// Applies `event` inside the transaction that records it as processed.
    /// An error rolls both back and the event is retried (then dead-lettered).
    fn handle(
        &self,
        conn: &mut AsyncPgConnection,
        event: &Event,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Runs after the transaction of `event` committed (e.g. to wake a relay).
    fn committed(&self, _event: &Event) {}
}

/// How a consumer retries and shares work.
#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// This replica's name within the group; a restarted replica with the
    /// same name resumes its own pending entries at once.
    pub name: String,
    /// Attempts before an event goes to the dead-letter stream.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, capped at 10 s.
    pub backoff: Duration,
    /// Entries pending this long at another replica are taken over.
    pub claim_idle: Duration,
    /// Entries read per call.
    pub batch: usize,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            name: default_name(),
            max_attempts: 5,
            backoff: Duration::from_millis(200),
            claim_idle: Duration::from_secs(30),
            batch: 100,
        }
    }
}

/// `CONSUMER_NAME`, else the host name and process id.
fn default_name() -> String {
    std::env::var("CONSUMER_NAME").unwrap_or_else(|_| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "local".to_owned());
        format!("{host}-{}", std::process::id())
    })
}

/// Counters of one consumer, for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Events applied (transactions committed).
    pub processed: AtomicU64,
    /// Events seen again and skipped because they were already processed.
    pub duplicates: AtomicU64,
    /// Failed attempts.
    pub failures: AtomicU64,
    /// Events given up on and written to the dead-letter stream.
    pub dead_lettered: AtomicU64,
    /// Entries in the stream not yet delivered to the group (Redis only).
    pub lag: AtomicU64,
}

impl ConsumerStats {
    pub fn processed(&self) -> u64 {
        self.processed.load(Ordering::Relaxed)
    }
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }
}

/// The outcome of applying one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The handler ran and its transaction committed.
    Processed,
    /// The event had been processed before; nothing ran.
    Duplicate,
    /// The handler does not want it.
    Ignored,
}

/// A handler bound to its pool and bus.
pub struct Consumer<H> {
    handler: Arc<H>,
    pool: PgPool,
    bus: Bus,
    options: ConsumerOptions,
    stats: Arc<ConsumerStats>,
}

impl<H: Handler> Consumer<H> {
    pub fn new(handler: Arc<H>, pool: PgPool, bus: Bus, options: ConsumerOptions) -> Self {
        Self {
            handler,
            pool,
            bus,
            options,
            stats: Arc::default(),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Applies one event once: records it and runs the handler in one
    /// transaction, unless it was recorded before.
    pub async fn apply(&self, event: &Event) -> anyhow::Result<Applied> {
        apply(&*self.handler, &self.pool, &self.stats, event).await
    }
}

async fn apply<H: Handler>(
    handler: &H,
    pool: &PgPool,
    stats: &ConsumerStats,
    event: &Event,
) -> anyhow::Result<Applied> {
    // Scoped: its blanket `load` would shadow the atomics' own.
    use diesel_async::RunQueryDsl;
    if !handler.wants(event) {
        return Ok(Applied::Ignored);
    }
    let mut conn = pool.get().await?;
    let applied = conn
        .transaction(async |conn| {
            let fresh = diesel::insert_into(processed_events::table)
                .values((
                    processed_events::consumer.eq(handler.group()),
                    processed_events::source.eq(&event.source),
                    processed_events::event_id.eq(event.id),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if fresh == 0 {
                return Ok::<_, anyhow::Error>(Applied::Duplicate);
            }
            handler.handle(conn, event).await?;
            Ok(Applied::Processed)
        })
        .await?;
    match applied {
        Applied::Processed => {
            stats.processed.fetch_add(1, Ordering::Relaxed);
            handler.committed(event);
        }
        Applied::Duplicate => {
            stats.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        Applied::Ignored => {}
    }
    Ok(applied)
}

impl<H: Handler> Consumer<H> {
    /// Consumes events until the task is dropped: through the Redis consumer
    /// group when the bus is Redis, from the in-process bus otherwise.
    pub async fn run(self) {
        register(self.handler.group(), &self.stats);
        match self.bus.redis_stream() {
            Some((link, stream)) => {
                let link = match Link::new_like(link, true) {
                    Ok(link) => link,
                    Err(err) => {
                        tracing::error!(error = %err, "event consumer cannot open Redis");
                        return;
                    }
                };
                let stream = stream.to_owned();
                self.run_redis(link, stream).await
            }
            None => self.run_local().await,
        }
    }

    async fn run_local(self) {
        let mut rx = self.bus.subscribe();
        loop {
            match rx.recv().await {
                Ok(event) => {
                    if let Err(err) = self.process(&event).await {
                        // Nowhere durable to park it without Redis: log it whole.
                        tracing::error!(
                            group = self.handler.group(),
                            event = %serde_json::to_string(&event).unwrap_or_default(),
                            error = format!("{err:#}"),
                            "giving up on an event"
                        );
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        group = self.handler.group(),
                        missed,
                        "event consumer lagged"
                    )
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Applies one event with retries. Infrastructure errors (no database
    /// connection) are retried until they pass; handler errors up to
    /// `max_attempts`, then the last error is returned.
    async fn process(&self, event: &Event) -> anyhow::Result<Applied> {
        let mut attempt = 0u32;
        loop {
            match self.apply(event).await {
                Ok(applied) => return Ok(applied),
                Err(err) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    let outage = is_outage(&err);
                    if !outage {
                        attempt += 1;
                        if attempt >= self.options.max_attempts {
                            return Err(err);
                        }
                    }
                    let delay = backoff(self.options.backoff, attempt.max(1));
                    tracing::warn!(
                        group = self.handler.group(),
                        event = event.id,
                        topic = %event.topic,
                        attempt,
                        error = format!("{err:#}"),
                        "event handling failed; retrying in {delay:?}"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn run_redis(self, link: Link, stream: String) {
        let group = self.handler.group();
        let dead = format!("{stream}{DEAD_LETTER_SUFFIX}");
        // Own pending entries first (a restart after a crash), then new ones.
        let mut own_pending = true;
        let mut last_claim = tokio::time::Instant::now();
        let mut last_lag = None::<tokio::time::Instant>;
        let mut ready = false;
        loop {
            if !ready {
                match ensure_group(&link, &stream, group).await {
                    Ok(()) => ready = true,
                    Err(err) => {
                        tracing::warn!(group, error = %err, "cannot reach the event stream; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            let mut read = redis::cmd("XREADGROUP");
            read.arg("GROUP")
                .arg(group)
                .arg(&self.options.name)
                .arg("COUNT")
                .arg(self.options.batch);
            if !own_pending {
                read.arg("BLOCK").arg(1000);
            }
            read.arg("STREAMS")
                .arg(&stream)
                .arg(if own_pending { "0" } else { ">" });
            let reply: Option<StreamReadReply> = match link.query(&read).await {
                Ok(reply) => reply,
                Err(err) => {
                    // NOGROUP: Redis lost the group (restarted without its data).
                    ready = false;
                    own_pending = true;
                    tracing::warn!(group, error = %err, "reading the event stream failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let entries: Vec<StreamId> = reply
                .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
                .unwrap_or_default();
            if own_pending && entries.is_empty() {
                own_pending = false;
            }
            self.handle_entries(&link, &stream, &dead, entries).await;

            if last_claim.elapsed() >= self.options.claim_idle / 2 {
                last_claim = tokio::time::Instant::now();
                self.claim_abandoned(&link, &stream, &dead).await;
            }
            if last_lag.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                last_lag = Some(tokio::time::Instant::now());
                if let Some(lag) = group_lag(&link, &stream, group).await {
                    self.stats.lag.store(lag, Ordering::Relaxed);
                }
            }
        }
    }

    /// Takes over entries another replica left pending longer than `claim_idle`.
    async fn claim_abandoned(&self, link: &Link, stream: &str, dead: &str) {
        let group = self.handler.group();
        let mut cursor = "0-0".to_owned();
        loop {
            let claimed: redis::RedisResult<StreamAutoClaimReply> = link
                .query(
                    redis::cmd("XAUTOCLAIM")
                        .arg(stream)
                        .arg(group)
                        .arg(&self.options.name)
                        .arg(self.options.claim_idle.as_millis() as u64)
                        .arg(&cursor)
                        .arg("COUNT")
                        .arg(self.options.batch),
                )
                .await;
            match claimed {
                Ok(reply) => {
                    if !reply.claimed.is_empty() {
                        tracing::info!(
                            group,
                            count = reply.claimed.len(),
                            "took over abandoned events"
                        );
                    }
                    self.handle_entries(link, stream, dead, reply.claimed).await;
                    if reply.next_stream_id == "0-0" {
                        return;
                    }
                    cursor = reply.next_stream_id;
                }
                Err(err) => {
                    tracing::warn!(group, error = %err, "claiming abandoned events failed");
                    return;
                }
            }
        }
    }

    /// Applies entries in stream order and acknowledges each once it is
    /// applied or dead-lettered.
    async fn handle_entries(&self, link: &Link, stream: &str, dead: &str, entries: Vec<StreamId>) {
        let group = self.handler.group();
        for entry in entries {
            let raw = entry.get::<String>("event");
            let event = raw
                .as_deref()
                .and_then(|json| serde_json::from_str::<Event>(json).ok());
            let failure = match &event {
                // A deleted entry (trimmed while pending) has no fields: nothing to do.
                None if entry.map.is_empty() => None,
                None => Some("malformed event entry".to_owned()),
                Some(event) => match self.process(event).await {
                    Ok(_) => None,
                    Err(err) => Some(format!("{err:#}")),
                },
            };
            if let Some(error) = failure {
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                tracing::error!(group, id = %entry.id, error = %error, "event dead-lettered");
                let parked: redis::RedisResult<String> = link
                    .query(
                        redis::cmd("XADD")
                            .arg(dead)
                            .arg("*")
                            .arg("group")
                            .arg(group)
                            .arg("entry")
                            .arg(&entry.id)
                            .arg("event")
                            .arg(raw.unwrap_or_default())
                            .arg("error")
                            .arg(&error),
                    )
                    .await;
                if let Err(err) = parked {
                    // Leave it pending: it is claimed and tried again later.
                    tracing::warn!(group, error = %err, "cannot dead-letter; leaving the event pending");
                    continue;
                }
            }
            let acked: redis::RedisResult<i64> = link
                .query(redis::cmd("XACK").arg(stream).arg(group).arg(&entry.id))
                .await;
            if let Err(err) = acked {
                // Redelivered later and then skipped as a duplicate.
                tracing::warn!(group, error = %err, "acknowledging an event failed");
            }
        }
    }
}

/// Suffix of the dead-letter stream beside an event stream.
pub const DEAD_LETTER_SUFFIX: &str = ":dead";

fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(Duration::from_secs(10))
}

/// True when the error is the database being unreachable, not the event.
fn is_outage(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.downcast_ref::<crate::db::PoolError>().is_some())
}

/// Creates the group (reading the stream from its start, so events published
/// before the consumer first ran are not missed); an existing group is kept.
async fn ensure_group(link: &Link, stream: &str, group: &str) -> redis::RedisResult<()> {
    let created: redis::RedisResult<String> = link
        .query(
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(group)
                .arg("0")
                .arg("MKSTREAM"),
        )
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
        Err(err) => Err(err),
    }
}

/// Entries of the stream the group has not read yet (Redis 7's `lag`).
async fn group_lag(link: &Link, stream: &str, group: &str) -> Option<u64> {
    let groups: Vec<HashMap<String, redis::Value>> = link
        .query(redis::cmd("XINFO").arg("GROUPS").arg(stream))
        .await
        .ok()?;
    let info = groups.into_iter().find(|g| {
        g.get("name")
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
            .as_deref()
            == Some(group)
    })?;
    info.get("lag")
        .and_then(|v| redis::from_redis_value_ref::<u64>(v).ok())
}

/// Each running consumer group of this process and its counters.
type Registry = std::sync::Mutex<Vec<(&'static str, Arc<ConsumerStats>)>>;

/// Consumers started in this process, for `/metrics`.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn register(group: &'static str, stats: &Arc<ConsumerStats>) {
    let mut all = registry().lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|(g, _)| *g != group);
    all.push((group, stats.clone()));
}

/// The counters of `component`'s consumers in this process (groups named
/// `component.…`), and the process's bus followers, in Prometheus text format.
pub fn metrics_text(component: &str) -> String {
    use std::fmt::Write as _;
    let all = registry().lock().unwrap_or_else(|p| p.into_inner());
    let mut out = String::new();
    type Series = (
        &'static str,
        &'static str,
        &'static str,
        fn(&ConsumerStats) -> u64,
    );
    let series: [Series; 5] = [
        (
            "grocery_events_processed_total",
            "counter",
            "Events applied.",
            |s| s.processed(),
        ),
        (
            "grocery_events_duplicates_total",
            "counter",
            "Redelivered events skipped.",
            |s| s.duplicates(),
        ),
        (
            "grocery_events_failures_total",
            "counter",
            "Failed attempts to apply an event.",
            |s| s.failures(),
        ),
        (
            "grocery_events_dead_lettered_total",
            "counter",
            "Events given up on.",
            |s| s.dead_lettered(),
        ),
        (
            "grocery_events_lag",
            "gauge",
            "Stream entries the group has not read yet.",
            |s| s.lag.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        let own = all
            .iter()
            .filter(|(group, _)| group.split_once('.').map(|(c, _)| c) == Some(component));
        for (group, stats) in own {
            let _ = writeln!(out, "{name}{{group=\"{group}\"}} {}", value(stats));
        }
    }
    let _ = writeln!(
        out,
        "# HELP grocery_events_followers Local followers of the event bus (open subscriptions, feeds).\n\
         # TYPE grocery_events_followers gauge\n\
         grocery_events_followers {}",
        super::bus::followers()
    );
    out
}
