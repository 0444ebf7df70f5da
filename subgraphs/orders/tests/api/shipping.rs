//! Orders follow their shipment: logistics' `shipment.status_changed` events,
//! applied through the `orders.shipments` consumer.

use std::sync::Arc;

use chrono::Utc;
use kit::events::{Applied, Bus, Consumer, ConsumerOptions, Event};
use orders::shipping::ShipmentsHandler;
use serde_json::{Value, json};

use crate::support::*;

struct Shipments {
    consumer: Consumer<ShipmentsHandler>,
    next: i64,
}

impl Shipments {
    fn new(shop: &Shop) -> Self {
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

    fn event(&mut self, order_id: &str, status: &str) -> Event {
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
                "at": Utc::now(),
            }),
            at: Utc::now(),
        }
    }

    async fn send(&mut self, order_id: &str, status: &str) -> Applied {
        let event = self.event(order_id, status);
        self.consumer.apply(&event).await.unwrap()
    }
}

async fn paid_order(shop: &Shop, token: &str) -> String {
    let order = shop.preview(token, &[("APPLE", 2)]).await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert_no_errors(&shop.confirm(token, &id, None, None).await);
    id
}

async fn status(shop: &Shop, token: &str, id: &str) -> (String, Vec<Value>) {
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
