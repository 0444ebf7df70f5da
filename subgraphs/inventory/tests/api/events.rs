//! `stock.changed`: every cause of a change of availability or price writes
//! the SKU's new availability and price to the outbox in its own
//! transaction; the `stockChanged` feed coalesces bursts and ends on the
//! database's value; its `skus` argument refuses hostile input.

use std::time::Duration;

use diesel::sql_types;
use diesel_async::RunQueryDsl;
use futures::StreamExt;
use inventory::{allocation, expiry, feed, items, reservations, stock};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::*;

#[derive(diesel::QueryableByName, Debug)]
struct Outboxed {
    #[diesel(sql_type = sql_types::Text)]
    key: String,
    #[diesel(sql_type = sql_types::Jsonb)]
    payload: Value,
}

/// The `stock.changed` events written after `after`, oldest first.
async fn events_after(room: &Stockroom, after: i64) -> Vec<Outboxed> {
    let mut conn = room.conn().await;
    diesel::sql_query(
        "SELECT key, payload FROM outbox WHERE topic = 'stock.changed' AND id > $1 ORDER BY id",
    )
    .bind::<sql_types::BigInt, _>(after)
    .load(&mut conn)
    .await
    .unwrap()
}

/// Runs `step` and answers the payloads of the events it wrote.
async fn written(room: &Stockroom, step: impl AsyncFnOnce()) -> Vec<Value> {
    let before = room.scalar("SELECT COALESCE(MAX(id), 0) FROM outbox").await;
    step().await;
    events_after(room, before)
        .await
        .into_iter()
        .map(|e| {
            assert_eq!(e.key, e.payload["sku"], "the key is the SKU");
            e.payload
        })
        .collect()
}

fn changed(sku: &str, available: i32, price: Option<&str>) -> Value {
    json!({ "sku": sku, "available": available, "unitPrice": price })
}

#[tokio::test]
async fn every_cause_of_a_change_writes_the_new_availability_and_price() {
    let room = Stockroom::new().await;
    // Restock: a new batch (10 units at 1.00, +25 %).
    let restocked = written(&room, async || {
        room.stock("APPLE", 10, "1.00", Some(10)).await;
    })
    .await;
    assert_eq!(restocked, [changed("APPLE", 10, Some("1.25"))]);
    let mut conn = room.conn().await;

    // Reservation, then its release.
    let order = Uuid::new_v4();
    let reserved = written(&room, async || {
        reservations::reserve(&conn, order, &[line("APPLE", 3)], TTL)
            .await
            .unwrap();
    })
    .await;
    assert_eq!(reserved, [changed("APPLE", 7, Some("1.25"))]);
    let released = written(&room, async || {
        reservations::release(&mut conn, order).await.unwrap();
    })
    .await;
    assert_eq!(released, [changed("APPLE", 10, Some("1.25"))]);

    // A dearer batch behind the first: the next unit's price moves once the
    // cheaper units are held, and stays when they are committed, so the
    // commitment (availability and price unmoved) writes nothing.
    room.stock("APPLE", 5, "2.00", Some(20)).await;
    let order = Uuid::new_v4();
    let reserved = written(&room, async || {
        reservations::reserve(&conn, order, &[line("APPLE", 10)], TTL)
            .await
            .unwrap();
    })
    .await;
    assert_eq!(reserved, [changed("APPLE", 5, Some("2.50"))]);
    let committed = written(&room, async || {
        allocation::commit(&mut conn, order, "0.25".parse().unwrap())
            .await
            .unwrap();
    })
    .await;
    assert_eq!(committed, Vec::<Value>::new());
    let view = &stock::views(&mut conn, &["APPLE".to_owned()])
        .await
        .unwrap()["APPLE"];
    assert_eq!(
        (view.available(), view.unit_price("0.25".parse().unwrap())),
        (5, Some("2.50".parse().unwrap())),
        "what the reservation's event said is still so"
    );
    assert_eq!(
        (view.on_hand, view.reserved),
        (5, 0),
        "the units left the stock"
    );

    // Adjustment (a count found two units fewer).
    let adjusted = written(&room, async || {
        stock::adjust(&mut conn, "APPLE", -2, "count")
            .await
            .unwrap();
    })
    .await;
    assert_eq!(adjusted, [changed("APPLE", 3, Some("2.50"))]);

    // Expiry of a reservation whose hold ran out.
    let lapsed = Uuid::new_v4();
    reservations::reserve(&conn, lapsed, &[line("APPLE", 1)], TTL)
        .await
        .unwrap();
    diesel::sql_query(
        "UPDATE reservations SET expires_at = now() - interval '1 second' WHERE order_id = $1",
    )
    .bind::<sql_types::Uuid, _>(lapsed)
    .execute(&mut conn)
    .await
    .unwrap();
    let swept = written(&room, async || {
        assert_eq!(expiry::sweep(&room.pool).await.unwrap(), (1, 0));
    })
    .await;
    assert_eq!(swept, [changed("APPLE", 3, Some("2.50"))]);

    // Expiry of a batch: its units are written off, nothing is left to price.
    diesel::sql_query("UPDATE batches SET expiry_date = CURRENT_DATE - 1 WHERE sku = 'APPLE'")
        .execute(&mut conn)
        .await
        .unwrap();
    let written_off = written(&room, async || {
        assert_eq!(expiry::sweep(&room.pool).await.unwrap(), (0, 3));
    })
    .await;
    assert_eq!(written_off, [changed("APPLE", 0, None)]);

    // A margin changes the price.
    room.stock("APPLE", 4, "1.00", Some(10)).await;
    let repriced = written(&room, async || {
        items::set_margin(&mut conn, "APPLE", Some("0.5".parse().unwrap()))
            .await
            .unwrap();
    })
    .await;
    assert_eq!(repriced, [changed("APPLE", 4, Some("1.50"))]);
    room.audit().await;
}

#[tokio::test]
async fn a_refused_change_writes_no_event_and_one_reservation_writes_one_per_sku() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 5, "0.30", Some(10)).await;
    room.stock("MILK", 1, "0.80", Some(10)).await;
    let conn = room.conn().await;
    let refused = written(&room, async || {
        let short = reservations::reserve(
            &conn,
            Uuid::new_v4(),
            &[line("APPLE", 2), line("MILK", 3)],
            TTL,
        )
        .await;
        assert!(short.is_err());
    })
    .await;
    assert_eq!(refused, Vec::<Value>::new());
    let both = written(&room, async || {
        reservations::reserve(
            &conn,
            Uuid::new_v4(),
            &[line("MILK", 1), line("APPLE", 2)],
            TTL,
        )
        .await
        .unwrap();
    })
    .await;
    assert_eq!(
        both,
        [changed("APPLE", 3, Some("0.38")), changed("MILK", 0, None)]
    );
}

#[tokio::test]
async fn a_burst_of_reservations_is_coalesced_and_ends_on_the_databases_value() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 500, "1.00", Some(10)).await;
    room.stock("MILK", 5, "1.00", Some(10)).await;
    let parts = inventory::build(&room.config, room.pool.clone()).unwrap();
    let relay = tokio::spawn(inventory::Inventory::run_relay(parts.relay.clone()));
    let interval = Duration::from_millis(200);
    let skus = feed::normalize_skus(Some(&["apple".to_owned()]))
        .unwrap()
        .unwrap();
    let mut changes = Box::pin(
        feed::follow(&room.pool, parts.relay.bus(), Some(skus), interval)
            .await
            .unwrap(),
    );
    let started = std::time::Instant::now();
    let burst = (0..50).map(|_| {
        let pool = room.pool.clone();
        let relay = parts.relay.clone();
        async move {
            let conn = pool.get().await.unwrap();
            reservations::reserve(&conn, Uuid::new_v4(), &[line("APPLE", 1)], TTL)
                .await
                .unwrap();
            relay.wake();
        }
    });
    futures::future::join_all(burst).await;
    // Another SKU's change is not this feed's.
    reservations::reserve(&*room.conn().await, Uuid::new_v4(), &[line("MILK", 1)], TTL)
        .await
        .unwrap();
    parts.relay.wake();
    let (_, _, in_database) = room.levels("APPLE").await;
    assert_eq!(in_database, 450);
    let mut seen = Vec::new();
    while seen
        .last()
        .is_none_or(|c: &inventory::events::StockChanged| c.available != in_database)
    {
        let change = tokio::time::timeout(Duration::from_secs(30), changes.next())
            .await
            .expect("the last value arrives")
            .expect("the feed goes on");
        assert_eq!(change.sku, "APPLE");
        seen.push(change);
    }
    let elapsed = started.elapsed();
    // At most one at once and one per interval after it.
    let bound = 2 + (elapsed.as_millis() / interval.as_millis()) as usize;
    assert!(
        seen.len() <= bound && seen.len() < 50,
        "{} events in {elapsed:?}",
        seen.len()
    );
    assert!(
        seen.windows(2)
            .all(|w| w[0].id < w[1].id && w[0].available > w[1].available)
    );
    println!("50 reservations → {} events in {elapsed:?}", seen.len());
    relay.abort();
}

#[tokio::test]
async fn stock_changed_refuses_hostile_sku_lists_with_bad_user_input() {
    let room = Stockroom::new().await;
    let parts = inventory::build(&room.config, room.pool.clone()).unwrap();
    let schema = inventory::build_schema(inventory::schema::InventoryState {
        pool: room.pool.clone(),
        default_margin: "0.25".parse().unwrap(),
        relay: parts.relay.clone(),
        stock_event_interval: Duration::from_millis(100),
    });
    let many: Vec<String> = (0..10_000).map(|i| format!("SKU-{i}")).collect();
    let repeated = vec!["APPLE".to_owned(); 101];
    for (name, variables) in [
        ("10k SKUs", json!({ "skus": many })),
        ("101 repeats", json!({ "skus": repeated })),
        ("empty list", json!({ "skus": [] })),
        ("NUL", json!({ "skus": ["APP\u{0}LE"] })),
        ("1 MB SKU", json!({ "skus": ["A".repeat(1 << 20)] })),
        ("empty SKU", json!({ "skus": [""] })),
    ] {
        let request = async_graphql::Request::new(
            "subscription($skus: [String!]) { stockChanged(skus: $skus) { sku } }",
        )
        .variables(async_graphql::Variables::from_json(variables));
        let first = schema.execute_stream(request).next().await.unwrap();
        let errors = serde_json::to_value(&first.errors).unwrap();
        assert_eq!(
            errors[0]["extensions"]["code"], "BAD_USER_INPUT",
            "{name}: {errors}"
        );
        assert!(
            errors.to_string().len() < 1_000,
            "{name}: the answer stays small"
        );
    }
    for (name, variables) in [
        ("wrong type", json!({ "skus": 5 })),
        ("null inside", json!({ "skus": [null] })),
        ("nested list", json!({ "skus": [["APPLE"]] })),
        ("object", json!({ "skus": { "sku": "APPLE" } })),
    ] {
        let request = async_graphql::Request::new(
            "subscription($skus: [String!]) { stockChanged(skus: $skus) { sku } }",
        )
        .variables(async_graphql::Variables::from_json(variables));
        let first = schema.execute_stream(request).next().await.unwrap();
        assert!(!first.errors.is_empty(), "{name} is refused");
    }
}
