//! The life of an order, end to end: `grocery dev` with every subgraph and
//! the gateway, events through a real Redis (restarted half-way), a customer
//! watching `orderStatusChanged`, a truck moving the shipment.
//!
//! preview → confirm → the shipment appears (logistics consumed
//! `order.status_changed`) → PICKED → IN_TRANSIT → DELIVERED (orders consumed
//! `shipment.status_changed`) → the subscriber saw each status once, in order,
//! and the customer has a notification for each step (users consumed both).

mod support;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use support::{PASSWORD, PATIENCE, Socket, eventually, gql, login, next_message, ok};
use tokio_tungstenite::tungstenite::Message;

/// What a subscriber asks of each status change: fields of the orders,
/// users and catalog subgraphs, resolved by the gateway for every event.
const WATCH: &str = "subscription($id: ID!) { orderStatusChanged(orderId: $id) { \
    previousStatus status at \
    order { number customer { deviceId } items { quantity product { name } } } } }";

/// Subscribes to `orderStatusChanged(orderId)` through the gateway.
async fn watch(gateway: u16, token: &str, order_id: &str) -> Socket {
    support::subscribe(gateway, token, WATCH, json!({ "id": order_id })).await
}

/// The `graphql-ws` npm package subscribing through the gateway (see
/// `tests/graphql-ws/subscribe.mjs`, installed by [`support::node::package`]);
/// its stdout lines (one JSON value each) arrive on the returned channel.
fn node_watch(
    gateway: u16,
    token: &str,
    order_id: &str,
    events: usize,
) -> (std::process::Child, mpsc::Receiver<String>) {
    let dir = support::node::package("graphql-ws");
    let mut child = Command::new("node")
        .arg("subscribe.mjs")
        .arg(format!("ws://127.0.0.1:{gateway}/graphql"))
        .arg(token)
        .arg(order_id)
        .arg(events.to_string())
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// The next status the subscriber sees, and when.
async fn next_status(ws: &mut Socket) -> (String, String) {
    let message = next_message(ws).await;
    assert_eq!(message["type"], "next", "{message}");
    status_of(&message["payload"])
}

/// The (previous, new) status of one `orderStatusChanged` result, after
/// checking the fields other subgraphs resolved for it.
fn status_of(result: &Value) -> (String, String) {
    assert!(result.get("errors").is_none(), "{result}");
    let event = &result["data"]["orderStatusChanged"];
    assert_eq!(
        event["order"]["customer"]["deviceId"], "fridge-e2e",
        "{result}"
    );
    let item = &event["order"]["items"][0];
    assert_eq!(item["quantity"], 3, "{result}");
    assert!(
        item["product"]["name"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "the catalog's product name: {result}"
    );
    (
        event["previousStatus"].as_str().unwrap_or("").to_owned(),
        event["status"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_goes_from_preview_to_delivered_through_events_and_a_redis_restart() {
    let db = TestDatabase::empty("public").await;
    let mut redis = RedisServer::start();
    let stream = format!("grocery:e2e:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(&db.config.url, &redis.url(), &stream, &[]);
    let gw = dev.gateway;

    ok(gql(
        gw,
        None,
        "mutation { register(input: { deviceId: \"fridge-e2e\", password: \"cold-storage-1\", email: \"fridge@example.com\" }) { id } }",
        json!({}),
    )
    .await);
    let customer = login(gw, "fridge-e2e", "cold-storage-1").await;
    let truck = login(gw, "truck-1", PASSWORD).await;

    let preview = ok(gql(
        gw,
        Some(&customer),
        "mutation { previewOrder(items: [{ sku: \"APPLE\", quantity: 3 }]) { id number status } }",
        json!({}),
    )
    .await);
    let order_id = preview["previewOrder"]["id"].as_str().unwrap().to_owned();
    let number = preview["previewOrder"]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let orders = dev.urls["orders"].clone();
    let followers = support::bus_followers(&orders).await;
    let mut ws = watch(gw, &customer, &order_id).await;
    // A third-party client watches too: four changes are coming.
    let (mut node, node_lines) = node_watch(gw, &customer, &order_id, 4);
    let connected = node_lines
        .recv_timeout(PATIENCE)
        .expect("the graphql-ws client connects");
    assert_eq!(connected, r#"{"connected":true}"#);
    // The subscriptions are live once the orders process follows the bus
    // for each (they differ in their fields, so neither shares the other's).
    eventually("both subscriptions to follow orders' events", async || {
        (support::bus_followers(&orders).await >= followers + 2).then_some(())
    })
    .await;

    // The customer keeps an address in their profile and confirms without
    // one: the order's snapshot takes it (and the e-mail) from users.
    ok(gql(
        gw,
        Some(&customer),
        "mutation { updateProfile(input: { phone: \"+41 31 000 00 00\", shippingAddress: { line1: \"1 Cold Lane\", city: \"Bern\", postalCode: \"3000\", country: \"CH\" } }) { phone } }",
        json!({}),
    )
    .await);

    let confirmed_at = Instant::now();
    let confirm = ok(gql(
        gw,
        Some(&customer),
        "mutation($id: ID!) { confirmOrder(orderId: $id, idempotencyKey: \"e2e-1\", customer: { phone: \"+41 79 111 11 11\" }) { status total customerSnapshot { email phone shippingAddress { line1 city country } billingAddress { city } } } }",
        json!({ "id": order_id }),
    )
    .await);
    assert_eq!(confirm["confirmOrder"]["status"], "CONFIRMED");
    assert_eq!(
        confirm["confirmOrder"]["customerSnapshot"],
        json!({
            "email": "fridge@example.com",
            "phone": "+41 79 111 11 11",
            "shippingAddress": { "line1": "1 Cold Lane", "city": "Bern", "country": "CH" },
            "billingAddress": { "city": "Bern" },
        }),
        "what the call gave, the rest from the profile"
    );
    let shipment_query =
        "query($id: ID!) { order(id: $id) { status shipment { trackingId status carrier } } }";
    let tracking = eventually("the shipment", async || {
        let data = ok(gql(
            gw,
            Some(&customer),
            shipment_query,
            json!({ "id": order_id }),
        )
        .await);
        data["order"]["shipment"]["trackingId"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    let to_shipment = confirmed_at.elapsed();
    assert_eq!(
        next_status(&mut ws).await,
        ("RESERVED".into(), "CONFIRMED".into())
    );

    // Redis goes away and comes back with its data; the flow goes on.
    redis.stop();
    // Kept: Redis stays away a while, as in an outage, for the flow to ride out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.spawn();

    let update = "mutation($t: String!, $s: ShipmentStatus!) { updateShipmentStatus(trackingId: $t, status: $s) { status } }";
    let mut to_subscriber = Vec::new();
    for (shipment, previous, order) in [
        ("PICKED", "CONFIRMED", "PROCESSING"),
        ("IN_TRANSIT", "PROCESSING", "SHIPPED"),
        ("DELIVERED", "SHIPPED", "DELIVERED"),
    ] {
        let started = Instant::now();
        let data = ok(gql(
            gw,
            Some(&truck),
            update,
            json!({ "t": tracking, "s": shipment }),
        )
        .await);
        assert_eq!(data["updateShipmentStatus"]["status"], shipment);
        assert_eq!(
            next_status(&mut ws).await,
            (previous.to_owned(), order.to_owned()),
            "after {shipment}"
        );
        to_subscriber.push(started.elapsed());
    }
    let data = ok(gql(
        gw,
        Some(&customer),
        shipment_query,
        json!({ "id": order_id }),
    )
    .await);
    assert_eq!(data["order"]["status"], "DELIVERED");
    assert_eq!(data["order"]["shipment"]["status"], "DELIVERED");

    // One notification per step, newest first, whatever the redeliveries.
    let kinds = eventually("the notifications", async || {
        let data = ok(gql(
            gw,
            Some(&customer),
            "{ me { notifications(first: 10) { totalCount edges { node { kind orderNumber } } } } }",
            json!({}),
        )
        .await);
        let notes = &data["me"]["notifications"];
        (notes["totalCount"] == 3).then(|| {
            notes["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    assert_eq!(e["node"]["orderNumber"], number.as_str());
                    e["node"]["kind"].as_str().unwrap().to_owned()
                })
                .collect::<Vec<_>>()
        })
    })
    .await;
    assert_eq!(
        kinds,
        ["ORDER_DELIVERED", "ORDER_SHIPPED", "ORDER_CONFIRMED"]
    );

    // The graphql-ws client saw the same four changes, once each, in order.
    let exited = node.wait().unwrap();
    let node_seen: Vec<(String, String)> = node_lines
        .try_iter()
        .map(|line| status_of(&serde_json::from_str(&line).unwrap()))
        .collect();
    assert!(
        exited.success(),
        "graphql-ws client: {exited}, saw {node_seen:?}"
    );
    assert_eq!(
        node_seen,
        [
            ("RESERVED", "CONFIRMED"),
            ("CONFIRMED", "PROCESSING"),
            ("PROCESSING", "SHIPPED"),
            ("SHIPPED", "DELIVERED"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    // Nothing more arrives: every change was delivered once.
    let extra = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
    assert!(
        extra.is_err() || matches!(extra, Ok(Some(Ok(Message::Ping(_) | Message::Pong(_))))),
        "{extra:?}"
    );
    eprintln!(
        "life of an order: confirmOrder → shipment visible {to_shipment:?}; \
         updateShipmentStatus → subscriber saw the order status {to_subscriber:?} \
         (the first after a Redis restart)"
    );
    drop(dev);
}
