//! Orders follow their shipment: logistics' `shipment.status_changed` events,
//! applied through the `orders.shipments` consumer.

use std::sync::Arc;

use chrono::Utc;
use kit::events::{Applied, Bus, Consumer, ConsumerOptions, Event};
use orders::shipping::ShipmentsHandler;
use serde_json::{Value, json};

use crate::support::*;

pub struct Shipments {
    pub consumer: Consumer<ShipmentsHandler>,
    next: i64,
}

impl Shipments {
    pub fn new(shop: &Shop) -> Self {
        let handler = Arc::new(ShipmentsHandler::new(shop.state.clone()));
        Self {
            consumer: Consumer::new(
                handler,
                shop.pool.clone(),
                Bus::in_process(),
                ConsumerOptions::default(),
            ),
            next: 0,
        }
    }

    /// An event of the order's first shipment, as logistics published it before reships.
    pub fn event(&mut self, order_id: &str, status: &str) -> Event {
        let mut event = self.event_of(order_id, status, 1);
        event
            .payload
            .as_object_mut()
            .unwrap()
            .remove("deliveryAttempt");
        event
    }

    /// An event of the order's shipment for delivery `attempt`.
    pub fn event_of(&mut self, order_id: &str, status: &str, attempt: i32) -> Event {
        self.next += 1;
        Event {
            id: self.next,
            source: "logistics".into(),
            topic: "shipment.status_changed".into(),
            key: order_id.into(),
            payload: json!({
                "shipmentId": uuid::Uuid::new_v4(),
                "trackingId": "GRT-TEST",
                "orderId": order_id,
                "status": status,
                "deliveryAttempt": attempt,
                "at": Utc::now(),
            }),
            at: Utc::now(),
        }
    }

    pub async fn send(&mut self, order_id: &str, status: &str) -> Applied {
        let event = self.event(order_id, status);
        self.consumer.apply(&event).await.unwrap()
    }

    /// Sends the events of delivery `attempt`'s shipment, in order.
    pub async fn walk(&mut self, order_id: &str, attempt: i32, statuses: &[&str]) {
        for status in statuses {
            let event = self.event_of(order_id, status, attempt);
            assert_eq!(
                self.consumer.apply(&event).await.unwrap(),
                Applied::Processed,
                "{status}"
            );
        }
    }
}

pub async fn paid_order(shop: &Shop, token: &str) -> String {
    let order = shop.preview(token, &[("APPLE", 2)]).await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert_no_errors(&shop.confirm(token, &id, None, None).await);
    id
}

pub async fn status(shop: &Shop, token: &str, id: &str) -> (String, Vec<Value>) {
    let resp = shop
        .gql(
            token,
            "query($id: ID!) { order(id: $id) { status statusHistory { status reason } } }",
            json!({ "id": id }),
        )
        .await;
    assert_no_errors(&resp);
    let order = &resp["data"]["order"];
    (
        order["status"].as_str().unwrap().to_owned(),
        order["statusHistory"].as_array().unwrap().clone(),
    )
}

#[tokio::test]
async fn shipment_progress_moves_the_order_to_delivered_once() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let id = paid_order(&shop, &token).await;
    let mut shipments = Shipments::new(&shop);

    assert_eq!(shipments.send(&id, "CREATED").await, Applied::Processed);
    assert_eq!(status(&shop, &token, &id).await.0, "CONFIRMED");
    shipments.send(&id, "PICKED").await;
    assert_eq!(status(&shop, &token, &id).await.0, "PROCESSING");
    let in_transit = shipments.event(&id, "IN_TRANSIT");
    assert_eq!(
        shipments.consumer.apply(&in_transit).await.unwrap(),
        Applied::Processed
    );
    assert_eq!(status(&shop, &token, &id).await.0, "SHIPPED");
    // Redelivered: skipped, nothing written twice.
    assert_eq!(
        shipments.consumer.apply(&in_transit).await.unwrap(),
        Applied::Duplicate
    );
    shipments.send(&id, "DELIVERED").await;
    let (now, history) = status(&shop, &token, &id).await;
    assert_eq!(now, "DELIVERED");
    let path: Vec<&str> = history
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        path,
        [
            "RESERVED",
            "CONFIRMED",
            "PROCESSING",
            "SHIPPED",
            "DELIVERED"
        ]
    );
    assert_eq!(history[4]["reason"], "shipment GRT-TEST is delivered");
    assert_eq!(
        shop.scalar("SELECT count(*) FROM outbox WHERE topic = 'order.status_changed'")
            .await,
        5
    );
}

#[tokio::test]
async fn events_out_of_order_move_forward_through_each_step_and_never_back() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let id = paid_order(&shop, &token).await;
    let mut shipments = Shipments::new(&shop);

    shipments.send(&id, "IN_TRANSIT").await;
    let (now, history) = status(&shop, &token, &id).await;
    assert_eq!(now, "SHIPPED");
    let path: Vec<&str> = history
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        path,
        ["RESERVED", "CONFIRMED", "PROCESSING", "SHIPPED"],
        "PROCESSING is not skipped"
    );
    // The late PICKED changes nothing.
    assert_eq!(shipments.send(&id, "PICKED").await, Applied::Processed);
    let (now, history) = status(&shop, &token, &id).await;
    assert_eq!((now.as_str(), history.len()), ("SHIPPED", 4));
}

#[tokio::test]
async fn shipments_of_orders_not_on_their_way_change_nothing() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    // Reserved, never paid.
    let reserved = shop.preview(&token, &[("APPLE", 1)]).await;
    let reserved = reserved["id"].as_str().unwrap().to_owned();
    let mut shipments = Shipments::new(&shop);
    assert_eq!(
        shipments.send(&reserved, "PICKED").await,
        Applied::Processed
    );
    assert_eq!(status(&shop, &token, &reserved).await.0, "RESERVED");
    // Unknown order: recorded and skipped, not retried for ever.
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(shipments.send(&unknown, "PICKED").await, Applied::Processed);
    // A malformed event is an error (retried, then dead-lettered by the consumer).
    let mut bad = shipments.event(&reserved, "PICKED");
    bad.payload = json!({ "status": "PICKED" });
    assert!(shipments.consumer.apply(&bad).await.is_err());
    assert_eq!(
        shop.scalar("SELECT count(*) FROM processed_events").await,
        2,
        "the failed event is not recorded"
    );
}

#[tokio::test]
async fn a_shipment_failing_from_any_state_fails_the_delivery_once() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let mut shipments = Shipments::new(&shop);
    for (before, order_then) in [
        (&[][..], "CONFIRMED"),
        (&["PICKED"][..], "PROCESSING"),
        (&["PICKED", "IN_TRANSIT"][..], "SHIPPED"),
    ] {
        let id = paid_order(&shop, &token).await;
        shipments.walk(&id, 1, before).await;
        assert_eq!(status(&shop, &token, &id).await.0, order_then);
        let failed = shipments.event_of(&id, "FAILED", 1);
        assert_eq!(
            shipments.consumer.apply(&failed).await.unwrap(),
            Applied::Processed
        );
        let (now, history) = status(&shop, &token, &id).await;
        assert_eq!(now, "DELIVERY_FAILED", "after {before:?}");
        let n = history.len();
        assert_eq!(history[n - 2]["status"], order_then);
        assert_eq!(history[n - 1]["reason"], "shipment GRT-TEST is failed");
        // Redelivered, or published again under another id: nothing changes.
        assert_eq!(
            shipments.consumer.apply(&failed).await.unwrap(),
            Applied::Duplicate
        );
        shipments.walk(&id, 1, &["FAILED", "IN_TRANSIT"]).await;
        let (again, later) = status(&shop, &token, &id).await;
        assert_eq!(
            (again.as_str(), later.len()),
            ("DELIVERY_FAILED", history.len())
        );
    }
    assert_eq!(
        shop.scalar(
            "SELECT count(*) FROM outbox WHERE topic = 'order.status_changed' \
             AND payload->>'status' = 'DELIVERY_FAILED'"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn a_failed_shipment_of_an_order_not_on_its_way_changes_nothing() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let mut shipments = Shipments::new(&shop);
    let delivered = paid_order(&shop, &token).await;
    shipments
        .walk(
            &delivered,
            1,
            &["PICKED", "IN_TRANSIT", "DELIVERED", "FAILED"],
        )
        .await;
    assert_eq!(status(&shop, &token, &delivered).await.0, "DELIVERED");
    let reserved = shop.preview(&token, &[("APPLE", 1)]).await;
    let reserved = reserved["id"].as_str().unwrap().to_owned();
    shipments.walk(&reserved, 1, &["FAILED"]).await;
    assert_eq!(status(&shop, &token, &reserved).await.0, "RESERVED");
}
