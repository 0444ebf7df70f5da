//! Deliveries that fail, end to end: `grocery dev` with every subgraph, the
//! gateway and events through a real Redis.
//!
//! One order: confirm → shipment → PICKED → IN_TRANSIT → FAILED → the
//! subscriber sees DELIVERY_FAILED → an ADMIN reships → a new shipment (the
//! failed one kept) → DELIVERED. Another: FAILED → the ADMIN refunds with the
//! goods RETURNED → the payment refunded once, the stock back. The customer is
//! notified of each step once.

mod support;

use std::collections::BTreeMap;

use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use support::{PASSWORD, Socket, eventually, gql, login, next_message, ok};

const WATCH: &str =
    "subscription($id: ID!) { orderStatusChanged(orderId: $id) { previousStatus status } }";
const UPDATE: &str = "mutation($t: String!, $s: ShipmentStatus!) { updateShipmentStatus(trackingId: $t, status: $s) { status } }";
const SHIPMENT: &str = "query($id: ID!) { order(id: $id) { status shipment { trackingId status attempt } shipments { trackingId status attempt } } }";

async fn next_status(ws: &mut Socket) -> (String, String) {
    let message = next_message(ws).await;
    assert_eq!(message["type"], "next", "{message}");
    let event = &message["payload"]["data"]["orderStatusChanged"];
    (
        event["previousStatus"].as_str().unwrap_or("").to_owned(),
        event["status"].as_str().unwrap().to_owned(),
    )
}

/// The order's current shipment once its delivery `attempt` exists: tracking id.
async fn shipment_of(gw: u16, token: &str, order_id: &str, attempt: i64) -> String {
    eventually("the shipment", async || {
        let data = ok(gql(gw, Some(token), SHIPMENT, json!({ "id": order_id })).await);
        let shipment = &data["order"]["shipment"];
        (shipment["attempt"] == attempt)
            .then(|| shipment["trackingId"].as_str().unwrap().to_owned())
    })
    .await
}

async fn order_status(gw: u16, token: &str, order_id: &str) -> String {
    let data = ok(gql(gw, Some(token), SHIPMENT, json!({ "id": order_id })).await);
    data["order"]["status"].as_str().unwrap().to_owned()
}

async fn milk_available(gw: u16) -> i64 {
    let data = ok(gql(
        gw,
        None,
        "{ product(sku: \"MILK\") { stock { available } } }",
        json!({}),
    )
    .await);
    data["product"]["stock"]["available"].as_i64().unwrap()
}

async fn move_shipment(gw: u16, truck: &str, tracking: &str, statuses: &[&str]) {
    for status in statuses {
        let data = ok(gql(
            gw,
            Some(truck),
            UPDATE,
            json!({ "t": tracking, "s": status }),
        )
        .await);
        assert_eq!(data["updateShipmentStatus"]["status"], *status);
    }
}

/// Previews and confirms `quantity` of `sku`: (order id, number, total).
async fn paid_order(gw: u16, token: &str, sku: &str, quantity: i32) -> (String, String, String) {
    let preview = ok(gql(
        gw,
        Some(token),
        "mutation($sku: String!, $q: Int!) { previewOrder(items: [{ sku: $sku, quantity: $q }]) { id number } }",
        json!({ "sku": sku, "q": quantity }),
    )
    .await);
    let id = preview["previewOrder"]["id"].as_str().unwrap().to_owned();
    let number = preview["previewOrder"]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let confirm = ok(gql(
        gw,
        Some(token),
        "mutation($id: ID!) { confirmOrder(orderId: $id) { status total } }",
        json!({ "id": id }),
    )
    .await);
    assert_eq!(confirm["confirmOrder"]["status"], "CONFIRMED");
    let total = confirm["confirmOrder"]["total"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, number, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_reshipped_or_refunded_by_an_admin() {
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:e2e:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(&db.config.url, &redis.url(), &stream, &[]);
    let gw = dev.gateway;
    let customer = support::customer(gw, "fridge-fails").await;
    let truck = login(gw, "truck-1", PASSWORD).await;
    let admin = login(gw, "admin", PASSWORD).await;

    // The first order is watched from before it is paid.
    let preview = ok(gql(
        gw,
        Some(&customer),
        "mutation { previewOrder(items: [{ sku: \"APPLE\", quantity: 2 }]) { id number } }",
        json!({}),
    )
    .await);
    let first = preview["previewOrder"]["id"].as_str().unwrap().to_owned();
    let first_number = preview["previewOrder"]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let orders = dev.urls["orders"].clone();
    let followers = support::bus_followers(&orders).await;
    let mut ws = support::subscribe(gw, &customer, WATCH, json!({ "id": first })).await;
    eventually("the subscription to follow orders' events", async || {
        (support::bus_followers(&orders).await > followers).then_some(())
    })
    .await;
    ok(gql(
        gw,
        Some(&customer),
        "mutation($id: ID!) { confirmOrder(orderId: $id) { status } }",
        json!({ "id": first }),
    )
    .await);
    let failed_tracking = shipment_of(gw, &customer, &first, 1).await;
    move_shipment(
        gw,
        &truck,
        &failed_tracking,
        &["PICKED", "IN_TRANSIT", "FAILED"],
    )
    .await;
    for (previous, status) in [
        ("RESERVED", "CONFIRMED"),
        ("CONFIRMED", "PROCESSING"),
        ("PROCESSING", "SHIPPED"),
        ("SHIPPED", "DELIVERY_FAILED"),
    ] {
        assert_eq!(
            next_status(&mut ws).await,
            (previous.to_owned(), status.to_owned())
        );
    }
    // A customer cannot reship; the ADMIN does, and gets a new shipment.
    let reship = "mutation($id: ID!) { reshipOrder(orderId: $id) { status } }";
    let refused = gql(gw, Some(&customer), reship, json!({ "id": first })).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let data = ok(gql(gw, Some(&admin), reship, json!({ "id": first })).await);
    assert_eq!(data["reshipOrder"]["status"], "CONFIRMED");
    assert_eq!(
        next_status(&mut ws).await,
        ("DELIVERY_FAILED".into(), "CONFIRMED".into())
    );
    let new_tracking = shipment_of(gw, &customer, &first, 2).await;
    assert_ne!(new_tracking, failed_tracking);
    move_shipment(
        gw,
        &truck,
        &new_tracking,
        &["PICKED", "IN_TRANSIT", "DELIVERED"],
    )
    .await;
    for (previous, status) in [
        ("CONFIRMED", "PROCESSING"),
        ("PROCESSING", "SHIPPED"),
        ("SHIPPED", "DELIVERED"),
    ] {
        assert_eq!(
            next_status(&mut ws).await,
            (previous.to_owned(), status.to_owned())
        );
    }
    let data = ok(gql(gw, Some(&customer), SHIPMENT, json!({ "id": first })).await);
    assert_eq!(data["order"]["status"], "DELIVERED");
    assert_eq!(
        data["order"]["shipments"],
        json!([
            { "trackingId": failed_tracking, "status": "FAILED", "attempt": 1 },
            { "trackingId": new_tracking, "status": "DELIVERED", "attempt": 2 },
        ])
    );
    assert!(
        support::quiet_for(&mut ws, std::time::Duration::from_millis(300))
            .await
            .is_ok(),
        "each status once"
    );

    // The second order fails once picked, and is refunded with its goods back.
    let before = milk_available(gw).await;
    let (second, second_number, total) = paid_order(gw, &customer, "MILK", 2).await;
    assert_eq!(milk_available(gw).await, before - 2);
    let tracking = shipment_of(gw, &customer, &second, 1).await;
    move_shipment(gw, &truck, &tracking, &["PICKED", "FAILED"]).await;
    eventually("the order to follow its failed shipment", async || {
        (order_status(gw, &customer, &second).await == "DELIVERY_FAILED").then_some(())
    })
    .await;
    let refund = "mutation($id: ID!) { refundOrder(orderId: $id, goods: RETURNED) { status payment { status amount refunds { amount goods } } } }";
    let data = ok(gql(gw, Some(&admin), refund, json!({ "id": second })).await);
    assert_eq!(
        data["refundOrder"],
        json!({ "status": "REFUNDED", "payment": {
            "status": "REFUNDED", "amount": total, "refunds": [{ "amount": total, "goods": "RETURNED" }] } })
    );
    let again = gql(gw, Some(&admin), refund, json!({ "id": second })).await;
    assert_eq!(again["errors"][0]["extensions"]["code"], "INVALID_STATE");
    assert_eq!(milk_available(gw).await, before, "the goods are back");
    let data = ok(gql(
        gw,
        Some(&customer),
        "query($id: ID!) { order(id: $id) { payment { refunds { amount } } } }",
        json!({ "id": second }),
    )
    .await);
    assert_eq!(
        data["order"]["payment"]["refunds"],
        json!([{ "amount": total }])
    );

    // One notification per step: the failure from the shipment, the reship
    // as a new confirmation, the refund.
    let by_order = eventually("the notifications", async || {
        let data = ok(gql(
            gw,
            Some(&customer),
            "{ me { notifications(first: 20) { totalCount edges { node { kind orderNumber } } } } }",
            json!({}),
        )
        .await);
        let notes = &data["me"]["notifications"];
        (notes["totalCount"] == 9).then(|| {
            let mut by_order: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for edge in notes["edges"].as_array().unwrap() {
                let node: &Value = &edge["node"];
                by_order
                    .entry(node["orderNumber"].as_str().unwrap().to_owned())
                    .or_default()
                    .push(node["kind"].as_str().unwrap().to_owned());
            }
            by_order.values_mut().for_each(|kinds| kinds.sort());
            by_order
        })
    })
    .await;
    assert_eq!(
        by_order[&first_number],
        [
            "ORDER_CONFIRMED",
            "ORDER_CONFIRMED",
            "ORDER_DELIVERED",
            "ORDER_SHIPPED",
            "ORDER_SHIPPED",
            "SHIPMENT_FAILED"
        ]
    );
    assert_eq!(
        by_order[&second_number],
        ["ORDER_CONFIRMED", "ORDER_REFUNDED", "SHIPMENT_FAILED"]
    );
    drop(dev);
}
