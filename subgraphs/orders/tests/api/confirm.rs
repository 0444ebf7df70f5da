//! confirmOrder: committed prices, totals, snapshots, one charge, declines and provider errors.

use std::time::Duration;

use kit::testing::TestClient;
use serde_json::{Value, json};

use crate::support::*;

fn id(order: &Value) -> String {
    order["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn confirming_commits_fefo_prices_charges_once_and_keeps_snapshots() {
    let shop = Shop::with(Options {
        charges: orders::Charges {
            tax_rate: "0.10".parse().unwrap(),
            shipping_fee: "4.99".parse().unwrap(),
            free_shipping_from: Some("100".parse().unwrap()),
        },
        ..Default::default()
    })
    .await;
    // PEAR: 2 units expiring soon at 1.00, then 5 at 2.00.
    shop.product("PEAR", "Conference Pears", 0, "0").await;
    shop.deliver_expiring("PEAR", 5, "2.00", 9).await;
    shop.deliver_expiring("PEAR", 2, "1.00", 3).await;
    let (customer, token) = shop.customer();
    let order = shop.preview(&token, &[("PEAR", 3), ("APPLE", 2)]).await;
    let address =
        json!({ "line1": "1 Orchard Way", "city": "Bern", "postalCode": "3000", "country": "ch" });
    let resp = shop
        .gql(
            &token,
            &CONFIRM,
            json!({
                "id": id(&order), "key": "checkout-1",
                "customer": { "email": "ann@example.com", "shippingAddress": address },
                "notes": "leave at the door",
            }),
        )
        .await;
    assert_no_errors(&resp);
    let done = &resp["data"]["confirmOrder"];
    assert_eq!(done["status"], "CONFIRMED");
    assert!(done["confirmedAt"].is_string());
    // FEFO: (2 × 1.00 + 1 × 2.00) × 1.25 = 5.00; apples 2 × 0.40 × 1.25 = 1.00.
    assert_eq!(
        done["items"],
        json!([
            { "sku": "APPLE", "quantity": 2, "unitPrice": "0.50", "lineTotal": "1.00", "productName": "Braeburn Apples", "product": { "sku": "APPLE" } },
            { "sku": "PEAR", "quantity": 3, "unitPrice": "1.67", "lineTotal": "5.00", "productName": "Conference Pears", "product": { "sku": "PEAR" } },
        ])
    );
    assert_eq!(
        [
            &done["subtotal"],
            &done["tax"],
            &done["shippingCost"],
            &done["total"]
        ],
        ["6.00", "0.60", "4.99", "11.59"]
    );
    let payment = &done["payment"];
    assert_eq!(
        (payment["status"].as_str(), payment["amount"].as_str()),
        (Some("SUCCEEDED"), Some("11.59"))
    );
    assert_eq!(payment["provider"], "test");
    assert!(
        payment["providerReference"]
            .as_str()
            .unwrap()
            .starts_with("test_ch_")
    );
    let snapshot = &done["customerSnapshot"];
    assert_eq!(snapshot["userId"], customer.to_string());
    assert_eq!(snapshot["email"], "ann@example.com");
    assert_eq!(snapshot["shippingAddress"]["country"], "CH");
    assert_eq!(
        snapshot["billingAddress"]["line1"], "1 Orchard Way",
        "billing defaults to shipping"
    );
    assert_eq!(done["notes"], "leave at the door");
    assert_eq!(
        done["statusHistory"],
        json!([
            { "previousStatus": null, "status": "RESERVED", "reason": null },
            { "previousStatus": "RESERVED", "status": "CONFIRMED", "reason": null },
        ])
    );
    assert_eq!(shop.levels("PEAR").await, (4, 0, 4));
    assert_eq!(shop.levels("APPLE").await, (18, 0, 18));
    assert_eq!(shop.provider.charge_calls(), 1);
    assert_eq!(
        shop.scalar("SELECT count(*) FROM outbox WHERE topic = 'payment.succeeded'")
            .await,
        1
    );
}

#[tokio::test]
async fn the_same_key_answers_the_same_order_and_never_charges_again() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let order = shop.preview(&token, &[("APPLE", 3)]).await;
    let first = shop.confirm(&token, &id(&order), Some("k-1"), None).await;
    assert_no_errors(&first);
    let again = shop.confirm(&token, &id(&order), Some("k-1"), None).await;
    assert_no_errors(&again);
    assert_eq!(again["data"]["confirmOrder"], first["data"]["confirmOrder"]);
    let other_key = shop.confirm(&token, &id(&order), Some("k-2"), None).await;
    assert_eq!(code(&other_key), "INVALID_STATE");
    assert!(message(&other_key).contains("already paid"), "{other_key}");
    let second = shop.preview(&token, &[("APPLE", 1)]).await;
    let reused = shop.confirm(&token, &id(&second), Some("k-1"), None).await;
    assert_eq!(code(&reused), "CONFLICT");
    assert_eq!(shop.provider.charge_calls(), 1);
    assert_eq!(shop.scalar("SELECT count(*) FROM payments").await, 1);
    assert_eq!(shop.levels("APPLE").await, (17, 1, 16));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_confirmations_of_one_order_charge_exactly_once() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let order = shop.preview(&token, &[("APPLE", 3)]).await;
    let order_id = id(&order);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let client = TestClient::new(shop.router.clone());
            let (token, order_id) = (token.clone(), order_id.clone());
            // Half retry one key, half bring their own.
            let key = if i % 2 == 0 {
                "same".to_owned()
            } else {
                format!("own-{i}")
            };
            tokio::spawn(async move {
                client
                    .gql(
                        Some(&token),
                        &CONFIRM,
                        json!({ "id": order_id, "key": key, "payment": "tok_visa" }),
                    )
                    .await
            })
        })
        .collect();
    let mut confirmed = 0;
    let mut refused = 0;
    for task in tasks {
        let resp = task.await.unwrap();
        match resp.get("errors") {
            None => {
                assert_eq!(resp["data"]["confirmOrder"]["status"], "CONFIRMED");
                confirmed += 1;
            }
            Some(_) => {
                assert_eq!(code(&resp), "INVALID_STATE", "{resp}");
                assert!(message(&resp).contains("already paid"));
                refused += 1;
            }
        }
    }
    assert_eq!(confirmed + refused, 50);
    assert!(
        confirmed >= 1,
        "the winner and every repeat of its key see the order"
    );
    assert_eq!(shop.provider.charge_calls(), 1, "exactly one charge");
    assert_eq!(shop.scalar("SELECT count(*) FROM payments").await, 1);
    assert_eq!(
        shop.scalar("SELECT count(*) FROM order_status_history WHERE to_status = 'CONFIRMED'")
            .await,
        1
    );
    assert_eq!(shop.levels("APPLE").await, (17, 0, 17));
}

#[tokio::test]
async fn a_declined_payment_fails_the_order_and_returns_the_stock() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let order = shop.preview(&token, &[("APPLE", 4)]).await;
    let resp = shop
        .confirm(&token, &id(&order), Some("d-1"), Some("tok_decline"))
        .await;
    assert_no_errors(&resp);
    let failed = &resp["data"]["confirmOrder"];
    assert_eq!(failed["status"], "PAYMENT_FAILED");
    assert_eq!(failed["payment"]["status"], "FAILED");
    assert!(
        failed["payment"]["failureReason"]
            .as_str()
            .unwrap()
            .contains("declined")
    );
    assert_eq!(shop.levels("APPLE").await, (20, 0, 20));
    let retry = shop.confirm(&token, &id(&order), None, None).await;
    assert_eq!(code(&retry), "INVALID_STATE");
    assert!(message(&retry).contains("payment failed"), "{retry}");
    assert_eq!(
        shop.scalar("SELECT count(*) FROM outbox WHERE topic = 'payment.failed'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_provider_error_keeps_the_order_reserved_and_a_retry_confirms_it() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let order = shop.preview(&token, &[("APPLE", 2)]).await;
    let resp = shop
        .confirm(&token, &id(&order), Some("e-1"), Some("tok_error"))
        .await;
    assert_eq!(code(&resp), "SERVICE_UNAVAILABLE");
    assert!(message(&resp).contains("still reserved"));
    let now = shop.gql(&token, &ORDER, json!({ "id": id(&order) })).await;
    assert_eq!(now["data"]["order"]["status"], "RESERVED");
    assert_eq!(now["data"]["order"]["payment"], Value::Null);
    assert_eq!(shop.scalar("SELECT count(*) FROM payments").await, 0);
    let retry = shop
        .confirm(&token, &id(&order), Some("e-1"), Some("tok_visa"))
        .await;
    assert_no_errors(&retry);
    assert_eq!(retry["data"]["confirmOrder"]["status"], "CONFIRMED");
    assert_eq!(shop.provider.charge_calls(), 1);
    assert_eq!(shop.levels("APPLE").await, (18, 0, 18));
}

#[tokio::test]
async fn confirm_refuses_cancelled_expired_and_other_peoples_orders() {
    let shop = Shop::with(Options {
        ttl: Some(Duration::from_secs(1)),
        ..Default::default()
    })
    .await;
    let (_, token) = shop.customer();
    let (_, stranger) = shop.customer();
    let order = shop.preview(&token, &[("APPLE", 1)]).await;
    assert_eq!(
        code(&shop.confirm(&stranger, &id(&order), None, None).await),
        "NOT_FOUND"
    );
    let anonymous = shop
        .orders
        .gql(None, &CONFIRM, json!({ "id": id(&order) }))
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    assert_no_errors(&shop.gql(&token, &CANCEL, json!({ "id": id(&order) })).await);
    let cancelled = shop.confirm(&token, &id(&order), None, None).await;
    assert_eq!(code(&cancelled), "INVALID_STATE");
    assert!(message(&cancelled).contains("was cancelled"), "{cancelled}");

    let lapsing = shop.preview(&token, &[("APPLE", 2)]).await;
    // Kept: the one-second TTL has to run out, which is what is tested.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let expired = shop.confirm(&token, &id(&lapsing), None, None).await;
    assert_eq!(code(&expired), "INVALID_STATE");
    assert!(message(&expired).contains("expired"), "{expired}");
    let now = shop
        .gql(&token, &ORDER, json!({ "id": id(&lapsing) }))
        .await;
    assert_eq!(now["data"]["order"]["status"], "EXPIRED");
    assert_eq!(shop.levels("APPLE").await, (20, 0, 20));
    assert_eq!(shop.provider.charge_calls(), 0);
    let bad = shop
        .gql(
            &token,
            &CONFIRM,
            json!({ "id": id(&order), "customer": { "email": "nope" } }),
        )
        .await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
}
