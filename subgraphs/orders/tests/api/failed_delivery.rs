//! What an ADMIN does about a delivery that failed: `reshipOrder` (back to
//! CONFIRMED, the next delivery attempt) or `refundOrder` (REFUNDED once, the
//! goods returned to stock or written off), and what both refuse.

use serde_json::{Value, json};

use crate::{
    shipping::{Shipments, paid_order, status},
    support::*,
};

const RESHIP: &str = "mutation($id: ID!) { reshipOrder(orderId: $id) { status confirmedAt } }";
const REFUND: &str = "mutation($id: ID!, $goods: FailedDeliveryGoods!) {
    refundOrder(orderId: $id, goods: $goods) { status total
        payment { status amount refunds { amount reason goods } } } }";

/// A paid order of 2 APPLE (1.00) whose first shipment failed in transit.
async fn failed_order(shop: &Shop, token: &str, shipments: &mut Shipments) -> String {
    let id = paid_order(shop, token).await;
    shipments
        .walk(&id, 1, &["PICKED", "IN_TRANSIT", "FAILED"])
        .await;
    assert_eq!(status(shop, token, &id).await.0, "DELIVERY_FAILED");
    id
}

fn statuses(history: &[Value]) -> Vec<&str> {
    history
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_reshipped_order_is_confirmed_again_and_follows_its_new_shipment_only() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let mut shipments = Shipments::new(&shop);
    let id = failed_order(&shop, &token, &mut shipments).await;
    let confirmed_at =
        shop.gql(&token, &ORDER, json!({ "id": id })).await["data"]["order"]["confirmedAt"].clone();

    let resp = shop.gql(&shop.admin, RESHIP, json!({ "id": id })).await;
    assert_no_errors(&resp);
    assert_eq!(resp["data"]["reshipOrder"]["status"], "CONFIRMED");
    assert_eq!(
        resp["data"]["reshipOrder"]["confirmedAt"], confirmed_at,
        "it was paid once, when first confirmed"
    );
    // Its event asks logistics for the second delivery's shipment.
    assert_eq!(
        shop.scalar(
            "SELECT count(*) FROM outbox WHERE topic = 'order.status_changed' \
             AND payload->>'status' = 'CONFIRMED' AND payload->>'previousStatus' = 'DELIVERY_FAILED' \
             AND payload->>'deliveryAttempt' = '2'"
        )
        .await,
        1
    );
    let twice = shop.gql(&shop.admin, RESHIP, json!({ "id": id })).await;
    assert_eq!(code(&twice), "INVALID_STATE");
    assert!(
        message(&twice).contains("only an order whose delivery failed can be reshipped"),
        "{twice}"
    );

    // Late news of the failed shipment changes nothing now.
    shipments.walk(&id, 1, &["FAILED"]).await;
    assert_eq!(status(&shop, &token, &id).await.0, "CONFIRMED");
    shipments
        .walk(&id, 2, &["PICKED", "IN_TRANSIT", "DELIVERED"])
        .await;
    let (now, history) = status(&shop, &token, &id).await;
    assert_eq!(now, "DELIVERED");
    assert_eq!(
        statuses(&history),
        [
            "RESERVED",
            "CONFIRMED",
            "PROCESSING",
            "SHIPPED",
            "DELIVERY_FAILED",
            "CONFIRMED",
            "PROCESSING",
            "SHIPPED",
            "DELIVERED"
        ]
    );
    assert_eq!(
        history[5]["reason"],
        "reshipped by an admin (delivery attempt 2)"
    );
    assert_eq!(shop.provider.refunds_made(), 0);
}

#[tokio::test]
async fn a_refund_with_the_goods_returned_pays_back_once_and_restocks() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let mut shipments = Shipments::new(&shop);
    let id = failed_order(&shop, &token, &mut shipments).await;
    assert_eq!(shop.levels("APPLE").await, (18, 0, 18));

    let resp = shop
        .gql(
            &shop.admin,
            REFUND,
            json!({ "id": id, "goods": "RETURNED" }),
        )
        .await;
    assert_no_errors(&resp);
    let order = &resp["data"]["refundOrder"];
    assert_eq!(order["status"], "REFUNDED");
    assert_eq!(order["total"], "1.00");
    assert_eq!(
        order["payment"],
        json!({ "status": "REFUNDED", "amount": "1.00", "refunds": [{
            "amount": "1.00",
            "reason": "delivery failed; the goods were returned",
            "goods": "RETURNED",
        }] })
    );
    assert_eq!(shop.levels("APPLE").await, (20, 0, 20));

    let twice = shop
        .gql(
            &shop.admin,
            REFUND,
            json!({ "id": id, "goods": "RETURNED" }),
        )
        .await;
    assert_eq!(code(&twice), "INVALID_STATE");
    assert!(message(&twice).contains("was refunded"), "{twice}");
    let reship = shop.gql(&shop.admin, RESHIP, json!({ "id": id })).await;
    assert_eq!(code(&reship), "INVALID_STATE");
    assert_eq!(shop.levels("APPLE").await, (20, 0, 20));
    assert_eq!(shop.provider.refunds_made(), 1);
    assert_eq!(shop.scalar("SELECT count(*) FROM refunds").await, 1);
    assert_eq!(
        shop.scalar(
            "SELECT count(*) FROM outbox WHERE topic = 'payment.refunded' \
             AND payload->>'goods' = 'RETURNED' AND payload->>'amount' = '1.00'"
        )
        .await,
        1
    );
    let (_, history) = status(&shop, &token, &id).await;
    assert_eq!(statuses(&history).last(), Some(&"REFUNDED"));
}

#[tokio::test]
async fn a_refund_with_the_goods_lost_writes_them_off_without_restocking() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let mut shipments = Shipments::new(&shop);
    let id = failed_order(&shop, &token, &mut shipments).await;
    let resp = shop
        .gql(&shop.admin, REFUND, json!({ "id": id, "goods": "LOST" }))
        .await;
    assert_no_errors(&resp);
    let order = &resp["data"]["refundOrder"];
    assert_eq!(order["status"], "REFUNDED");
    assert_eq!(order["payment"]["status"], "REFUNDED");
    assert_eq!(
        order["payment"]["refunds"],
        json!([{ "amount": "1.00", "reason": "delivery failed; the goods were lost", "goods": "LOST" }])
    );
    assert_eq!(
        shop.levels("APPLE").await,
        (18, 0, 18),
        "lost goods stay sold"
    );
    assert_eq!(
        shop.scalar("SELECT count(*) FROM refunds WHERE goods = 'LOST'")
            .await,
        1
    );
    assert_eq!(shop.provider.refunds_made(), 1);
}

#[tokio::test]
async fn only_an_admin_settles_a_failed_delivery_and_only_a_failed_one() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let mut shipments = Shipments::new(&shop);
    let failed = failed_order(&shop, &token, &mut shipments).await;
    let on_its_way = paid_order(&shop, &token).await;

    // The customer (even the order's own) and a truck are refused.
    let truck = kit::testing::user(kit::auth::Role::Truck).1;
    for who in [&token, &truck] {
        assert_eq!(
            code(&shop.gql(who, RESHIP, json!({ "id": failed })).await),
            "FORBIDDEN"
        );
        let refund = shop
            .gql(who, REFUND, json!({ "id": failed, "goods": "RETURNED" }))
            .await;
        assert_eq!(code(&refund), "FORBIDDEN");
    }
    // An order whose delivery did not fail.
    let reship = shop
        .gql(&shop.admin, RESHIP, json!({ "id": on_its_way }))
        .await;
    assert_eq!(code(&reship), "INVALID_STATE");
    assert!(message(&reship).contains("is already paid"), "{reship}");
    let refund = shop
        .gql(
            &shop.admin,
            REFUND,
            json!({ "id": on_its_way, "goods": "LOST" }),
        )
        .await;
    assert_eq!(code(&refund), "INVALID_STATE");
    // No such order.
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        code(
            &shop
                .gql(&shop.admin, RESHIP, json!({ "id": unknown }))
                .await
        ),
        "NOT_FOUND"
    );
    // The generic status change does not go around them, and a failed
    // delivery is not cancelled (it is refunded).
    for (order, to) in [
        (&on_its_way, "DELIVERY_FAILED"),
        (&failed, "CONFIRMED"),
        (&failed, "REFUNDED"),
        (&failed, "CANCELLED"),
    ] {
        let resp = shop
            .gql(
                &shop.admin,
                &SET_STATUS,
                json!({ "id": order, "status": to }),
            )
            .await;
        assert_eq!(code(&resp), "INVALID_STATE", "{to}: {resp}");
    }
    let cancel = shop.gql(&token, &CANCEL, json!({ "id": failed })).await;
    assert_eq!(code(&cancel), "INVALID_STATE");
    assert!(
        message(&cancel).contains("could not be delivered"),
        "{cancel}"
    );

    // Nothing was written by any refusal.
    assert_eq!(status(&shop, &token, &failed).await.0, "DELIVERY_FAILED");
    assert_eq!(status(&shop, &token, &on_its_way).await.0, "CONFIRMED");
    assert_eq!(shop.provider.refunds_made(), 0);
    assert_eq!(shop.scalar("SELECT count(*) FROM refunds").await, 0);
    assert_eq!(shop.levels("APPLE").await, (16, 0, 16));
}
