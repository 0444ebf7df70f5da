//! The gateway's entity cache over the whole stack (`ENTITY_CACHE=on`, in
//! Redis): a product's price, kept from inventory's answer, is the new one
//! through the gateway within a second of the restock that changed it,
//! because inventory's `stock.changed` event drops the kept answer.

mod support;

use std::time::{Duration, Instant};

use kit::testing::{RedisServer, TestDatabase};
use serde_json::json;
use support::{PASSWORD, gql, login, ok};

const PRODUCT: &str = "{ product(sku: \"APPLE\") { sku unitPrice stock { available } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_change_is_visible_through_the_gateway_within_a_second_of_the_restock() {
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:cache:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(
        &db.config.url,
        &redis.url(),
        &stream,
        &[("ENTITY_CACHE", "on")],
    );
    let gw = dev.gateway;
    // The demo's APPLE: 200 units at 0.30, sold at 25% margin.
    let before = ok(gql(gw, None, PRODUCT, json!({})).await);
    assert_eq!(before["product"]["unitPrice"], "0.38", "{before}");
    // Asked again: answered from the cache, not inventory.
    assert_eq!(ok(gql(gw, None, PRODUCT, json!({})).await), before);
    let metrics = support::metrics(&format!("http://127.0.0.1:{gw}/graphql")).await;
    assert!(
        metrics.contains(
            r#"grocery_gateway_entity_cache_total{subgraph="inventory",type="Product",outcome="hit"}"#
        ),
        "{metrics}"
    );

    // A batch that expires before the demo's is sold first: at 2.00 + 25%.
    let truck = login(gw, "truck-1", PASSWORD).await;
    let expiry = (chrono::Utc::now() + chrono::Duration::days(2))
        .date_naive()
        .to_string();
    ok(gql(
        gw,
        Some(&truck),
        "mutation($e: Date!) { restock(input: { truckId: \"truck-1\", supplierId: \"acme\", \
         items: [{ sku: \"APPLE\", quantity: 10, unitCost: \"2.00\", expiryDate: $e }] }) { status } }",
        json!({ "e": expiry }),
    )
    .await);
    let restocked = Instant::now();
    let seen = loop {
        let now = ok(gql(gw, None, PRODUCT, json!({})).await);
        if now["product"]["unitPrice"] == "2.50" || restocked.elapsed() > Duration::from_secs(1) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        seen["product"],
        json!({ "sku": "APPLE", "unitPrice": "2.50", "stock": { "available": 210 } }),
        "the new price through the gateway within 1 s of the restock"
    );
}
