//! The outbox relay on a real PostgreSQL: it publishes committed events in
//! order, marks them, and its asynchronous commit of the marks stays its own.

use diesel::sql_types::Text;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use kit::{
    db::{self, DbConfig},
    events::{Bus, NewEvent, Relay, outbox},
    testing::TestDatabase,
};

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    synchronous_commit: String,
}

/// Creates schema `schema` with an outbox as the subgraphs' migrations make it.
async fn outbox_in(conn: &mut diesel_async::AsyncPgConnection, schema: &str) {
    conn.batch_execute(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.outbox (
             id BIGSERIAL PRIMARY KEY, topic TEXT NOT NULL, key TEXT NOT NULL,
             payload JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
             published_at TIMESTAMPTZ);
         CREATE INDEX outbox_pending_idx ON {schema}.outbox (id) WHERE published_at IS NULL;"
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn the_relay_publishes_in_order_and_leaves_its_connection_durable() {
    let db = TestDatabase::empty("relay_test").await;
    // One connection: the relay and the checks below share it.
    let pool = db::pool(&DbConfig {
        max_connections: 1,
        ..db.config.clone()
    })
    .await
    .unwrap();
    let mut conn = pool.get().await.unwrap();
    outbox_in(&mut conn, "relay_test").await;
    let events: Vec<NewEvent> = (0..3)
        .map(|n| NewEvent {
            topic: "test.happened",
            key: format!("k{n}"),
            payload: serde_json::json!({ "n": n }),
        })
        .collect();
    outbox::append(&mut conn, &events).await.unwrap();
    drop(conn);

    let bus = Bus::in_process();
    let mut seen = bus.subscribe();
    let relay = Relay::new(pool.clone(), bus, "relay_test");
    assert_eq!(relay.run_once().await.unwrap(), 3);
    let published: Vec<i64> = (0..3)
        .map(|_| {
            seen.try_recv().expect("an event on the bus").payload["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(published, [0, 1, 2]);
    assert_eq!(
        relay.run_once().await.unwrap(),
        0,
        "marked rows are not published again"
    );

    let mut conn = pool.get().await.unwrap();
    let pending = outbox::pending(&mut conn, "relay_test", 10).await.unwrap();
    assert!(pending.is_empty(), "{} events left unmarked", pending.len());
    // The relay's `synchronous_commit = off` was transaction-local: the same
    // connection, next lent to a write of money or stock, commits durably.
    let setting: Setting = diesel::sql_query("SHOW synchronous_commit")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(setting.synchronous_commit, "on");
}

/// The relay marks and reads a batch in one statement and publishes it
/// before committing: when publishing fails, the marks roll back and the
/// next run publishes every event, in order.
#[tokio::test]
async fn a_failed_publish_leaves_the_batch_pending() {
    let db = TestDatabase::empty("relay_fail").await;
    let pool = db::pool(&db.config).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    outbox_in(&mut conn, "relay_fail").await;
    let events: Vec<NewEvent> = (0..3)
        .map(|n| NewEvent {
            topic: "test.happened",
            key: "same".into(),
            payload: serde_json::json!({ "n": n }),
        })
        .collect();
    outbox::append(&mut conn, &events).await.unwrap();

    // A stream whose key holds a string: Redis refuses every XADD to it.
    let url = kit::testing::redis_url();
    let stream = format!("relay-fail-{}", uuid::Uuid::new_v4().simple());
    let bus = Bus::redis(&url, &stream).await.unwrap();
    let mut redis = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| {
            panic!("Redis at {url} is not reachable ({e}); start redis-server or set REDIS_URL")
        });
    let _: () = redis::cmd("SET")
        .arg(&stream)
        .arg("not a stream")
        .query_async(&mut redis)
        .await
        .unwrap();
    let relay = Relay::new(pool.clone(), bus.clone(), "relay_fail");
    assert!(relay.run_once().await.is_err(), "XADD to a string fails");
    let pending = outbox::pending(&mut conn, "relay_fail", 10).await.unwrap();
    assert_eq!(pending.len(), 3, "the failed batch's marks rolled back");

    // Once Redis takes entries again, all three go out, oldest first.
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(relay.run_once().await.unwrap(), 3);
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    let order: Vec<i64> = reply
        .ids
        .iter()
        .map(|entry| {
            let event: String = entry.get("event").expect("an event field");
            let event: serde_json::Value = serde_json::from_str(&event).unwrap();
            event["payload"]["n"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(order, [0, 1, 2]);
    assert!(
        outbox::pending(&mut conn, "relay_fail", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut redis)
        .await
        .unwrap();
}
