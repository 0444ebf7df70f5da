//! Event consumers on a real Redis and Postgres: every event applied exactly
//! once through crashes, replicas, poison events and a Redis restart.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use kit::{
    db::PgPool,
    events::{Applied, Bus, Consumer, ConsumerOptions, DEAD_LETTER_SUFFIX, Event, Handler},
    testing::{RedisServer, TestDatabase, eventually, eventually_within, redis_url, wait_until},
};
use tokio::sync::Notify;

const TOPIC: &str = "test.happened";

fn stream_name() -> String {
    format!("test:consumer:{}", uuid::Uuid::new_v4().simple())
}

async fn database() -> (TestDatabase, PgPool) {
    let db = TestDatabase::empty("consumer_test").await;
    let pool = db.pool().await;
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(
        "CREATE SCHEMA consumer_test;
         CREATE TABLE processed_events (
             consumer TEXT NOT NULL, source TEXT NOT NULL, event_id BIGINT NOT NULL,
             processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
             PRIMARY KEY (consumer, source, event_id));
         CREATE TABLE seen (event_id BIGINT NOT NULL, replica TEXT NOT NULL);",
    )
    .await
    .unwrap();
    drop(conn);
    (db, pool)
}

fn event(id: i64) -> Event {
    Event {
        id,
        source: "test".into(),
        topic: TOPIC.into(),
        key: format!("k{}", id % 7),
        payload: serde_json::json!({ "n": id }),
        at: Utc::now(),
    }
}

/// Records every event it applies in `seen`; fails for ever on `poison`,
/// and on `hang` says so, then hangs until released.
struct Recorder {
    replica: String,
    poison: Option<i64>,
    hang: Option<(i64, Arc<Notify>, Arc<Notify>)>,
}

impl Recorder {
    fn new(replica: &str) -> Self {
        Self {
            replica: replica.into(),
            poison: None,
            hang: None,
        }
    }
}

impl Handler for Recorder {
    fn group(&self) -> &'static str {
        "test.recorder"
    }

    fn wants(&self, event: &Event) -> bool {
        event.topic == TOPIC
    }

    async fn handle(&self, conn: &mut AsyncPgConnection, event: &Event) -> anyhow::Result<()> {
        if self.poison == Some(event.id) {
            anyhow::bail!("event {} cannot be handled", event.id);
        }
        diesel::sql_query("INSERT INTO seen (event_id, replica) VALUES ($1, $2)")
            .bind::<BigInt, _>(event.id)
            .bind::<Text, _>(&self.replica)
            .execute(conn)
            .await?;
        if let Some((id, hanging, release)) = &self.hang
            && *id == event.id
        {
            hanging.notify_one();
            release.notified().await;
        }
        Ok(())
    }
}

#[derive(diesel::QueryableByName)]
struct Seen {
    #[diesel(sql_type = BigInt)]
    event_id: i64,
    #[diesel(sql_type = BigInt)]
    times: i64,
}

/// How often each event was applied, by id.
async fn seen(pool: &PgPool) -> Vec<(i64, i64)> {
    let mut conn = pool.get().await.unwrap();
    let rows: Vec<Seen> = diesel::sql_query(
        "SELECT event_id, count(*) AS times FROM seen GROUP BY event_id ORDER BY event_id",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| (r.event_id, r.times)).collect()
}

/// How often each event was applied, once `count` events were.
async fn wait_until_seen(pool: &PgPool, count: usize) -> Vec<(i64, i64)> {
    let what = format!("{count} events applied");
    eventually_within(Duration::from_secs(20), &what, async || {
        let rows = seen(pool).await;
        if rows.len() >= count {
            Ok(rows)
        } else {
            Err(rows)
        }
    })
    .await
}

fn once_each(ids: impl IntoIterator<Item = i64>) -> Vec<(i64, i64)> {
    ids.into_iter().map(|id| (id, 1)).collect()
}

fn options(name: &str) -> ConsumerOptions {
    ConsumerOptions {
        name: name.into(),
        max_attempts: 3,
        backoff: Duration::from_millis(10),
        claim_idle: Duration::from_millis(300),
        batch: 10,
    }
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| {
            panic!("Redis at {url} is not reachable ({e}); start redis-server or set REDIS_URL")
        })
}

async fn pending_count(url: &str, stream: &str, group: &str) -> i64 {
    let mut conn = redis_conn(url).await;
    let summary: (i64, Option<String>, Option<String>, redis::Value) = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query_async(&mut conn)
        .await
        .unwrap();
    summary.0
}

#[tokio::test]
async fn applies_each_event_once_even_when_published_twice() {
    let (_db, pool) = database().await;
    let stream = stream_name();
    let bus = Bus::redis(&redis_url(), &stream).await.unwrap();
    let consumer = Consumer::new(
        Arc::new(Recorder::new("a")),
        pool.clone(),
        bus.clone(),
        options("a"),
    );
    let stats = consumer.stats();
    let task = tokio::spawn(consumer.run());
    for id in 1..=20 {
        bus.publish(&event(id)).await.unwrap();
    }
    // The relay is at-least-once: the same events again.
    for id in 5..=10 {
        bus.publish(&event(id)).await.unwrap();
    }
    assert_eq!(wait_until_seen(&pool, 20).await, once_each(1..=20));
    wait_until("the 6 duplicates skipped", async || stats.duplicates() >= 6).await;
    assert_eq!(stats.processed(), 20);
    assert_eq!(stats.duplicates(), 6);
    assert_eq!(
        seen(&pool).await,
        once_each(1..=20),
        "duplicates changed nothing"
    );
    assert_eq!(
        pending_count(&redis_url(), &stream, "test.recorder").await,
        0
    );
    task.abort();
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_nothing_and_doubles_nothing() {
    let (_db, pool) = database().await;
    let stream = stream_name();
    let url = redis_url();
    let bus = Bus::redis(&url, &stream).await.unwrap();
    for id in 1..=30 {
        bus.publish(&event(id)).await.unwrap();
    }
    // First life: hangs inside event 12's transaction, then is killed.
    let release = Arc::new(Notify::new());
    let hanging = Arc::new(Notify::new());
    let mut first = Recorder::new("a");
    first.hang = Some((12, hanging.clone(), release.clone()));
    let task =
        tokio::spawn(Consumer::new(Arc::new(first), pool.clone(), bus.clone(), options("a")).run());
    tokio::time::timeout(Duration::from_secs(20), hanging.notified())
        .await
        .expect("the consumer reaches event 12");
    let before = seen(&pool).await;
    task.abort();
    let _ = task.await;
    assert_eq!(
        before,
        once_each(1..=11),
        "event 12 was in flight, uncommitted"
    );
    assert!(
        pending_count(&url, &stream, "test.recorder").await > 0,
        "the batch was delivered, not acknowledged"
    );

    // Also a crash after a commit and before the acknowledgement: event 13 is
    // applied (as the dead process had done) while still pending in Redis.
    let direct = Consumer::new(
        Arc::new(Recorder::new("a")),
        pool.clone(),
        bus.clone(),
        options("a"),
    );
    assert_eq!(direct.apply(&event(13)).await.unwrap(), Applied::Processed);

    // Second life, same name: resumes its pending entries, then the rest.
    let consumer = Consumer::new(
        Arc::new(Recorder::new("a")),
        pool.clone(),
        bus.clone(),
        options("a"),
    );
    let stats = consumer.stats();
    let task = tokio::spawn(consumer.run());
    assert_eq!(wait_until_seen(&pool, 30).await, once_each(1..=30));
    wait_until("every entry acknowledged", async || {
        pending_count(&url, &stream, "test.recorder").await == 0
    })
    .await;
    assert_eq!(stats.duplicates(), 1, "event 13 was skipped");
    assert_eq!(stats.processed(), 30 - 11 - 1);
    task.abort();
}

#[tokio::test]
async fn replicas_share_a_group_and_take_over_a_dead_ones_events() {
    let (_db, pool) = database().await;
    let stream = stream_name();
    let url = redis_url();
    let bus = Bus::redis(&url, &stream).await.unwrap();
    // A replica that dies holding events 1..=10 (read, never acknowledged).
    let mut conn = redis_conn(&url).await;
    let _: String = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("test.recorder")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .unwrap();
    for id in 1..=10 {
        bus.publish(&event(id)).await.unwrap();
    }
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("test.recorder")
        .arg("dead")
        .arg("COUNT")
        .arg(100)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending_count(&url, &stream, "test.recorder").await, 10);

    let mut tasks = Vec::new();
    for name in ["b", "c"] {
        let consumer = Consumer::new(
            Arc::new(Recorder::new(name)),
            pool.clone(),
            bus.clone(),
            options(name),
        );
        tasks.push(tokio::spawn(consumer.run()));
    }
    for id in 11..=200 {
        bus.publish(&event(id)).await.unwrap();
    }
    assert_eq!(wait_until_seen(&pool, 200).await, once_each(1..=200));
    for task in tasks {
        task.abort();
    }
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_and_the_rest_flows() {
    let (_db, pool) = database().await;
    let stream = stream_name();
    let url = redis_url();
    let bus = Bus::redis(&url, &stream).await.unwrap();
    let mut recorder = Recorder::new("a");
    recorder.poison = Some(3);
    let consumer = Consumer::new(Arc::new(recorder), pool.clone(), bus.clone(), options("a"));
    let stats = consumer.stats();
    let task = tokio::spawn(consumer.run());
    for id in 1..=6 {
        bus.publish(&event(id)).await.unwrap();
    }
    assert_eq!(wait_until_seen(&pool, 5).await, once_each([1, 2, 4, 5, 6]));
    assert_eq!(stats.dead_lettered(), 1);
    assert_eq!(stats.failures(), 3, "three attempts");
    let mut conn = redis_conn(&url).await;
    let dead: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("{stream}{DEAD_LETTER_SUFFIX}"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(dead.ids.len(), 1);
    let parked: Event = serde_json::from_str(&dead.ids[0].get::<String>("event").unwrap()).unwrap();
    assert_eq!(parked.id, 3);
    assert!(
        dead.ids[0]
            .get::<String>("error")
            .unwrap()
            .contains("cannot be handled")
    );
    assert_eq!(pending_count(&url, &stream, "test.recorder").await, 0);
    let metrics = kit::events::metrics_text("test");
    assert!(
        metrics.contains("grocery_events_dead_lettered_total{group=\"test.recorder\"}"),
        "{metrics}"
    );
    task.abort();
}

#[tokio::test]
async fn without_redis_the_in_process_bus_feeds_the_consumer() {
    let (_db, pool) = database().await;
    let bus = Bus::in_process();
    let consumer = Consumer::new(
        Arc::new(Recorder::new("a")),
        pool.clone(),
        bus.clone(),
        options("a"),
    );
    let task = tokio::spawn(consumer.run());
    wait_until("the consumer to follow the bus", async || {
        bus.subscribers() > 0
    })
    .await;
    for id in [1, 2, 2, 3] {
        bus.publish(&event(id)).await.unwrap();
    }
    assert_eq!(wait_until_seen(&pool, 3).await, once_each(1..=3));
    task.abort();
}

#[tokio::test]
async fn the_flow_completes_across_a_redis_restart() {
    let (_db, pool) = database().await;
    let mut redis = RedisServer::start();
    let stream = stream_name();
    let bus = Bus::redis(&redis.url(), &stream).await.unwrap();
    let consumer = Consumer::new(
        Arc::new(Recorder::new("a")),
        pool.clone(),
        bus.clone(),
        options("a"),
    );
    let task = tokio::spawn(consumer.run());
    for id in 1..=10 {
        bus.publish(&event(id)).await.unwrap();
    }
    assert_eq!(wait_until_seen(&pool, 10).await, once_each(1..=10));

    redis.stop();
    assert!(
        bus.publish(&event(11)).await.is_err(),
        "publishing fails while Redis is away"
    );
    // Kept: Redis stays away a while, as in an outage; the consumer's reads fail meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.spawn();
    // The relay retries its unpublished rows; the same bus reconnects.
    for id in 11..=20 {
        eventually("Redis to take events again", async || {
            bus.publish(&event(id)).await.map_err(|e| format!("{e:#}"))
        })
        .await;
    }
    assert_eq!(wait_until_seen(&pool, 20).await, once_each(1..=20));
    task.abort();
}
