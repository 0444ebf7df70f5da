//! previewOrder: validation, reservation, and nothing written on refusal.

use std::{sync::atomic::Ordering, time::Duration};

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn preview_merges_lines_reserves_them_and_writes_a_reserved_order() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let order = shop
        .preview(&token, &[("apple", 3), ("MILK", 1), (" Apple ", 2)])
        .await;
    assert_eq!(order["status"], "RESERVED");
    let number = order["number"].as_str().unwrap();
    assert!(number.starts_with("GR-") && number.len() == 9, "{number}");
    assert_eq!(
        order["items"],
        json!([
            { "sku": "APPLE", "quantity": 5, "unitPrice": "0.50", "lineTotal": "2.50", "productName": null, "product": { "sku": "APPLE" } },
            { "sku": "MILK", "quantity": 1, "unitPrice": "1.00", "lineTotal": "1.00", "productName": null, "product": { "sku": "MILK" } },
        ])
    );
    // Estimated from inventory's quote of the order's own reservation.
    assert_eq!(
        (order["subtotal"].as_str(), order["total"].as_str()),
        (Some("3.50"), Some("3.50"))
    );
    assert!(order["reservedUntil"].is_string());
    assert_eq!(
        order["statusHistory"],
        json!([{ "previousStatus": null, "status": "RESERVED", "reason": null }])
    );
    assert_eq!(shop.levels("APPLE").await, (20, 5, 15));
    assert_eq!(shop.levels("MILK").await, (10, 1, 9));
    assert_eq!(
        shop.scalar("SELECT count(*) FROM outbox WHERE topic = 'order.status_changed'")
            .await,
        1
    );
}

#[tokio::test]
async fn bad_lines_are_refused_before_anything_is_reserved() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let many: Vec<(String, i32)> = (0..101).map(|i| (format!("SKU{i}"), 1)).collect();
    let many: Vec<(&str, i32)> = many.iter().map(|(s, q)| (s.as_str(), *q)).collect();
    for (items, field) in [
        (vec![("APPLE", 0)], "quantity"),
        (vec![("APPLE", 1001)], "quantity"),
        (vec![("APPLE", 600), ("apple", 401)], "quantity"),
        (vec![], "items"),
        (vec![("not a sku", 1)], "sku"),
        (many, "items"),
        (vec![("APPLE", 1), ("PEAR", 1)], "items"),
    ] {
        let resp = shop.try_preview(&token, &items).await;
        assert_eq!(code(&resp), "BAD_USER_INPUT", "{items:?}: {resp}");
        assert_eq!(resp["errors"][0]["extensions"]["field"], field, "{resp}");
    }
    assert!(message(&shop.try_preview(&token, &[("PEAR", 1)]).await).contains("PEAR"));
    assert_eq!(shop.scalar("SELECT count(*) FROM orders").await, 0);
    assert_eq!(shop.levels("APPLE").await, (20, 0, 20));
}

#[tokio::test]
async fn short_stock_names_the_shortfall_per_sku_and_writes_nothing() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let resp = shop
        .try_preview(&token, &[("APPLE", 25), ("MILK", 11)])
        .await;
    assert_eq!(code(&resp), "INSUFFICIENT_STOCK");
    assert_eq!(
        resp["errors"][0]["extensions"]["shortfall"],
        json!([
            { "sku": "APPLE", "requested": 25, "available": 20 },
            { "sku": "MILK", "requested": 11, "available": 10 },
        ])
    );
    assert_eq!(shop.scalar("SELECT count(*) FROM orders").await, 0);
    assert_eq!(shop.levels("APPLE").await, (20, 0, 20));
}

#[tokio::test]
async fn a_crash_between_reserving_and_writing_leaks_nothing_once_the_ttl_passes() {
    let shop = Shop::with(Options {
        ttl: Some(Duration::from_secs(1)),
        ..Default::default()
    })
    .await;
    let (_, token) = shop.customer();
    shop.state
        .faults
        .fail_after_reserve
        .store(true, Ordering::SeqCst);
    let resp = shop.try_preview(&token, &[("APPLE", 3)]).await;
    assert_eq!(code(&resp), "INTERNAL_SERVER_ERROR");
    assert_eq!(shop.scalar("SELECT count(*) FROM orders").await, 0);
    assert_eq!(shop.scalar("SELECT count(*) FROM outbox").await, 0);
    // The stock is held by a reservation nobody refers to…
    assert_eq!(shop.levels("APPLE").await, (20, 3, 17));
    // …until it lapses and inventory's sweeper takes it back. Kept: the
    // reservation's one-second TTL has to run out, which is what is tested.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (expired, _) = inventory::expiry::sweep(&shop.inventory_pool)
        .await
        .unwrap();
    assert_eq!(expired, 1);
    assert_eq!(shop.levels("APPLE").await, (20, 0, 20));
}

#[tokio::test]
async fn omitted_items_preview_the_cart() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let empty = shop.gql(&token, &PREVIEW, json!({})).await;
    assert_eq!(code(&empty), "BAD_USER_INPUT");
    assert!(message(&empty).contains("cart is empty"));
    for (sku, quantity) in [("MILK", 2), ("APPLE", 1)] {
        assert_no_errors(
            &shop
                .gql(
                    &token,
                    "mutation($s: String!, $q: Int!) { addToCart(sku: $s, quantity: $q) { subtotal } }",
                    json!({ "s": sku, "q": quantity }),
                )
                .await,
        );
    }
    let resp = shop.gql(&token, &PREVIEW, json!({})).await;
    assert_no_errors(&resp);
    let items: Vec<_> = resp["data"]["previewOrder"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["sku"].as_str().unwrap(), i["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(items, [("APPLE", 1), ("MILK", 2)]);
    assert_eq!(shop.levels("MILK").await, (10, 2, 8));
}

#[tokio::test]
async fn only_signed_in_shoppers_preview() {
    let shop = Shop::new().await;
    let anonymous = shop
        .orders
        .gql(
            None,
            &PREVIEW,
            json!({ "items": [{ "sku": "APPLE", "quantity": 1 }] }),
        )
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    let truck = kit::testing::access_token(&KEYS, uuid::Uuid::new_v4(), kit::auth::Role::Truck);
    assert_eq!(
        code(&shop.try_preview(&truck, &[("APPLE", 1)]).await),
        "FORBIDDEN"
    );
}

const EDIT: &str = "mutation($id: ID!, $sku: String!, $q: Int!) { addOrderLine(orderId: $id, sku: $sku, quantity: $q) {
    status subtotal total items { sku quantity lineTotal } } }";
const SET: &str = "mutation($id: ID!, $sku: String!, $q: Int!) { updateOrderLine(orderId: $id, sku: $sku, quantity: $q) {
    subtotal items { sku quantity } } }";
const REMOVE: &str = "mutation($id: ID!, $sku: String!) { removeOrderLine(orderId: $id, sku: $sku) { subtotal items { sku quantity } } }";

#[tokio::test]
async fn a_reserved_order_is_edited_and_its_reservation_follows() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let (_, stranger) = shop.customer();
    let order = shop.preview(&token, &[("APPLE", 2)]).await;
    let id = order["id"].clone();
    let added = shop
        .gql(&token, EDIT, json!({ "id": id, "sku": "milk", "q": 3 }))
        .await;
    assert_no_errors(&added);
    assert_eq!(
        added["data"]["addOrderLine"],
        json!({ "status": "RESERVED", "subtotal": "4.00", "total": "4.00", "items": [
            { "sku": "APPLE", "quantity": 2, "lineTotal": "1.00" },
            { "sku": "MILK", "quantity": 3, "lineTotal": "3.00" }] })
    );
    assert_eq!(shop.levels("MILK").await, (10, 3, 7));
    let more = shop
        .gql(&token, EDIT, json!({ "id": id, "sku": "APPLE", "q": 1 }))
        .await;
    assert_eq!(more["data"]["addOrderLine"]["items"][0]["quantity"], 3);
    let set = shop
        .gql(&token, SET, json!({ "id": id, "sku": "MILK", "q": 1 }))
        .await;
    assert_eq!(set["data"]["updateOrderLine"]["subtotal"], "2.50");
    assert_eq!(shop.levels("MILK").await, (10, 1, 9));
    let removed = shop
        .gql(&token, REMOVE, json!({ "id": id, "sku": "MILK" }))
        .await;
    assert_eq!(
        removed["data"]["removeOrderLine"],
        json!({ "subtotal": "1.50", "items": [{ "sku": "APPLE", "quantity": 3 }] })
    );
    assert_eq!(shop.levels("MILK").await, (10, 0, 10));
    assert_eq!(shop.levels("APPLE").await, (20, 3, 17));

    // Too much: refused whole, nothing moves.
    let short = shop
        .gql(&token, SET, json!({ "id": id, "sku": "APPLE", "q": 21 }))
        .await;
    assert_eq!(code(&short), "INSUFFICIENT_STOCK");
    assert_eq!(
        short["errors"][0]["extensions"]["shortfall"],
        json!([{ "sku": "APPLE", "requested": 21, "available": 20 }])
    );
    assert_eq!(shop.levels("APPLE").await, (20, 3, 17));
    let last = shop
        .gql(&token, REMOVE, json!({ "id": id, "sku": "APPLE" }))
        .await;
    assert_eq!(code(&last), "BAD_USER_INPUT");
    let theirs = shop
        .gql(&stranger, EDIT, json!({ "id": id, "sku": "MILK", "q": 1 }))
        .await;
    assert_eq!(code(&theirs), "NOT_FOUND");

    // Once paid, the order is what it is; the commit sells what was edited.
    let paid = shop.confirm(&token, id.as_str().unwrap(), None, None).await;
    assert_eq!(paid["data"]["confirmOrder"]["items"][0]["quantity"], 3);
    let late = shop
        .gql(&token, EDIT, json!({ "id": id, "sku": "MILK", "q": 1 }))
        .await;
    assert_eq!(code(&late), "INVALID_STATE");
    assert!(message(&late).contains("already paid"), "{late}");
    assert_eq!(shop.levels("APPLE").await, (17, 0, 17));
}
