//! What a truck may see of the order it delivers, through the gateway: a
//! truck asking `shipment(trackingId) { order { … } }` gets the number,
//! items and quantities, the delivery address and contact phone — and, field
//! by field, nothing of prices, payments, billing or the customer's e-mail,
//! and no order that is not on its way to delivery.

mod support;

use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use support::{PASSWORD, customer, eventually, gql, login, ok};

/// The code of the first error of `answer`.
fn code(answer: &Value) -> Option<&str> {
    answer["errors"][0]["extensions"]["code"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truck_sees_what_a_delivery_needs_and_nothing_of_payments() {
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:truck:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(&db.config.url, &redis.url(), &stream, &[]);
    let gw = dev.gateway;
    let buyer = customer(gw, "fridge-truck-view").await;
    let preview = ok(gql(
        gw,
        Some(&buyer),
        "mutation { previewOrder(items: [{ sku: \"APPLE\", quantity: 2 }, { sku: \"MILK\", quantity: 1 }]) { id number } }",
        json!({}),
    )
    .await);
    let order_id = preview["previewOrder"]["id"].as_str().unwrap().to_owned();
    let number = preview["previewOrder"]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let truck = login(gw, "truck-1", PASSWORD).await;

    // Not paid yet: not the truck's business.
    let early = gql(
        gw,
        Some(&truck),
        "query($id: ID!) { order(id: $id) { number } }",
        json!({ "id": order_id }),
    )
    .await;
    assert_eq!(code(&early), Some("NOT_FOUND"), "{early}");

    ok(gql(
        gw,
        Some(&buyer),
        "mutation($id: ID!) { confirmOrder(orderId: $id, customer: { email: \"buyer@example.com\", phone: \"+41 79 222 22 22\", \
         shippingAddress: { line1: \"5 Frost Road\", city: \"Basel\", postalCode: \"4000\", country: \"CH\" }, \
         billingAddress: { line1: \"9 Ledger St\", city: \"Zurich\", postalCode: \"8000\", country: \"CH\" } }) { status } }",
        json!({ "id": order_id }),
    )
    .await);
    let tracking = eventually("the shipment", async || {
        let data = ok(gql(
            gw,
            Some(&buyer),
            "query($id: ID!) { order(id: $id) { shipment { trackingId } } }",
            json!({ "id": order_id }),
        )
        .await);
        data["order"]["shipment"]["trackingId"]
            .as_str()
            .map(str::to_owned)
    })
    .await;

    // What a delivery needs, in one query, without an error.
    let seen = ok(gql(
        gw,
        Some(&truck),
        "query($t: String!) { shipment(trackingId: $t) { trackingId order { id number status \
         items { sku quantity productName } \
         customerSnapshot { phone shippingAddress { line1 city postalCode country } } } } }",
        json!({ "t": tracking }),
    )
    .await);
    let order = &seen["shipment"]["order"];
    assert_eq!(order["id"], order_id.as_str(), "{seen}");
    assert_eq!(order["number"], number.as_str());
    assert_eq!(
        order["items"],
        json!([
            { "sku": "APPLE", "quantity": 2, "productName": "Gala Apples" },
            { "sku": "MILK", "quantity": 1, "productName": "Whole Milk 1 L" },
        ]),
        "{seen}"
    );
    assert_eq!(
        order["customerSnapshot"],
        json!({
            "phone": "+41 79 222 22 22",
            "shippingAddress": { "line1": "5 Frost Road", "city": "Basel", "postalCode": "4000", "country": "CH" },
        })
    );

    // Field by field: each is refused on its own, and the rest still comes.
    for field in [
        "total",
        "subtotal",
        "tax",
        "shippingCost",
        "payment { amount status }",
        "items { unitPrice }",
        "items { lineTotal }",
        "customerSnapshot { email }",
        "customerSnapshot { billingAddress { line1 } }",
    ] {
        let answer = gql(
            gw,
            Some(&truck),
            &format!(
                "query($t: String!) {{ shipment(trackingId: $t) {{ order {{ number {field} }} }} }}"
            ),
            json!({ "t": tracking }),
        )
        .await;
        assert_eq!(code(&answer), Some("FORBIDDEN"), "{field}: {answer}");
        assert_eq!(
            answer["data"]["shipment"]["order"]["number"],
            number.as_str(),
            "{field}: {answer}"
        );
        let text = answer["data"].to_string();
        for secret in ["9 Ledger St", "buyer@example.com"] {
            assert!(!text.contains(secret), "{field}: {answer}");
        }
    }
    // The buyer still sees all of it.
    let own = ok(gql(
        gw,
        Some(&buyer),
        "query($id: ID!) { order(id: $id) { total payment { status } customerSnapshot { email billingAddress { line1 } } } }",
        json!({ "id": order_id }),
    )
    .await);
    assert_eq!(own["order"]["payment"]["status"], "SUCCEEDED", "{own}");
    assert_eq!(
        own["order"]["customerSnapshot"]["email"],
        "buyer@example.com"
    );

    // No list of orders, and nothing it may not deliver.
    let list = gql(gw, Some(&truck), "{ orders { nodes { id } } }", json!({})).await;
    assert_eq!(code(&list), Some("FORBIDDEN"), "{list}");
    let cancel = gql(
        gw,
        Some(&truck),
        "mutation($id: ID!) { cancelOrder(orderId: $id) { status } }",
        json!({ "id": order_id }),
    )
    .await;
    assert!(
        cancel.get("errors").is_some(),
        "a truck cancels nothing: {cancel}"
    );
}
