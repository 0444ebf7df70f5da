//! Cancelling, the admin's status changes and expiry, all through the one lifecycle.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

fn id(order: &Value) -> String {
    order["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn cancelling_a_reserved_order_releases_its_stock() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let order = shop.preview(&token, &[("APPLE", 5)]).await;
    let resp = shop
        .gql(
            &token,
            &CANCEL,
            json!({ "id": id(&order), "reason": "changed my mind" }),
        )
        .await;
    assert_no_errors(&resp);
    let cancelled = &resp["data"]["cancelOrder"];
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["cancelReason"], "changed my mind");
    assert_eq!(cancelled["payment"], Value::Null);
    assert_eq!(shop.levels("APPLE").await, (20, 0, 20));
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_once_and_returns_the_stock() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let order = shop.preview(&token, &[("APPLE", 5)]).await;
    assert_no_errors(&shop.confirm(&token, &id(&order), None, None).await);
    assert_eq!(shop.levels("APPLE").await, (15, 0, 15));
    let resp = shop.gql(&token, &CANCEL, json!({ "id": id(&order) })).await;
    assert_no_errors(&resp);
    let cancelled = &resp["data"]["cancelOrder"];
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["payment"]["status"], "REFUNDED");
    assert_eq!(cancelled["payment"]["refunds"][0]["amount"], "2.50");
    assert_eq!(shop.levels("APPLE").await, (20, 0, 20));
    let again = shop.gql(&token, &CANCEL, json!({ "id": id(&order) })).await;
    assert_eq!(code(&again), "INVALID_STATE");
    assert!(message(&again).contains("was cancelled"));
    assert_eq!(shop.provider.refunds_made(), 1);
    assert_eq!(shop.scalar("SELECT count(*) FROM refunds").await, 1);
    assert_eq!(
        shop.scalar("SELECT count(*) FROM outbox WHERE topic = 'payment.refunded'")
            .await,
        1
    );
}

#[tokio::test]
async fn the_admin_moves_orders_along_the_same_lifecycle() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let order = shop.preview(&token, &[("MILK", 1)]).await;
    let set = |status: &str| {
        shop.gql(
            &shop.admin,
            &SET_STATUS,
            json!({ "id": id(&order), "status": status }),
        )
    };
    let by_admin = set("CONFIRMED").await;
    assert_eq!(
        code(&by_admin),
        "INVALID_STATE",
        "confirming needs a payment"
    );
    let by_customer = shop
        .gql(
            &token,
            &SET_STATUS,
            json!({ "id": id(&order), "status": "PROCESSING" }),
        )
        .await;
    assert_eq!(code(&by_customer), "FORBIDDEN");
    let skipping = set("SHIPPED").await;
    assert_eq!(code(&skipping), "INVALID_STATE");
    assert!(message(&skipping).contains("not paid yet"), "{skipping}");
    assert_no_errors(&shop.confirm(&token, &id(&order), None, None).await);
    for status in ["PROCESSING", "SHIPPED"] {
        let resp = set(status).await;
        assert_no_errors(&resp);
        assert_eq!(resp["data"]["updateOrderStatus"]["status"], status);
    }
    let cancel = shop.gql(&token, &CANCEL, json!({ "id": id(&order) })).await;
    assert_eq!(code(&cancel), "INVALID_STATE");
    assert!(message(&cancel).contains("already shipped"), "{cancel}");
    assert_no_errors(&set("DELIVERED").await);
    assert_eq!(code(&set("PROCESSING").await), "INVALID_STATE");
    let history = shop.gql(&token, &ORDER, json!({ "id": id(&order) })).await;
    let statuses: Vec<_> = history["data"]["order"]["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        statuses,
        [
            "RESERVED",
            "CONFIRMED",
            "PROCESSING",
            "SHIPPED",
            "DELIVERED"
        ]
    );
    assert_eq!(
        shop.scalar("SELECT count(*) FROM outbox WHERE topic = 'order.status_changed'")
            .await,
        5
    );
}

#[tokio::test]
async fn the_admin_cancelling_a_processing_order_refunds_it() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let order = shop.preview(&token, &[("MILK", 2)]).await;
    assert_no_errors(&shop.confirm(&token, &id(&order), None, None).await);
    let processing = shop
        .gql(
            &shop.admin,
            &SET_STATUS,
            json!({ "id": id(&order), "status": "PROCESSING" }),
        )
        .await;
    assert_no_errors(&processing);
    let resp = shop
        .gql(
            &shop.admin,
            &SET_STATUS,
            json!({ "id": id(&order), "status": "CANCELLED" }),
        )
        .await;
    assert_no_errors(&resp);
    assert_eq!(
        resp["data"]["updateOrderStatus"]["payment"]["status"],
        "REFUNDED"
    );
    assert_eq!(shop.levels("MILK").await, (10, 0, 10));
}

#[tokio::test]
async fn lapsed_reservations_expire_and_give_their_stock_back() {
    let shop = Shop::with(Options {
        ttl: Some(Duration::from_secs(1)),
        ..Default::default()
    })
    .await;
    let (_, token) = shop.customer();
    let lapsing = shop.preview(&token, &[("APPLE", 4)]).await;
    assert_eq!(
        orders::expiry::sweep(&shop.state).await.unwrap(),
        0,
        "not due yet"
    );
    // Kept: the one-second TTL has to run out, which is what is tested.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(orders::expiry::sweep(&shop.state).await.unwrap(), 1);
    let now = shop
        .gql(&token, &ORDER, json!({ "id": id(&lapsing) }))
        .await;
    assert_eq!(now["data"]["order"]["status"], "EXPIRED");
    assert_eq!(
        now["data"]["order"]["statusHistory"][1]["reason"],
        "the reservation lapsed"
    );
    assert_eq!(shop.levels("APPLE").await, (20, 0, 20));
    assert_eq!(orders::expiry::sweep(&shop.state).await.unwrap(), 0);
}
