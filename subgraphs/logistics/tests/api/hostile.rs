//! Hostile input against the logistics port: NUL bytes, huge and wrongly
//! typed values, and mutations over GET; clean codes and nothing written.

use axum::{body::Body, http::Request};
use serde_json::json;

use crate::support::*;

const RESTOCK: &str = "mutation($input: RestockInput!) { restock(input: $input) { status } }";

fn restock_input(truck: &str, sku: &str) -> serde_json::Value {
    json!({ "truckId": truck, "supplierId": "farm-1",
            "items": [{ "sku": sku, "quantity": 3, "unitCost": "0.40" }] })
}

#[tokio::test]
async fn hostile_restock_input_is_bad_user_input_and_nothing_is_written() {
    let depot = Depot::new().await;
    let field = |resp: &serde_json::Value| {
        assert_eq!(code(resp), "BAD_USER_INPUT", "{resp:#}");
        resp["errors"][0]["extensions"]["field"].clone()
    };
    let truck = Some(depot.truck.as_str());
    let nul = depot
        .gql(
            truck,
            RESTOCK,
            json!({ "input": restock_input("truck\u{0}-1", "APPLE") }),
        )
        .await;
    assert_eq!(field(&nul), "input.truckId");
    let nul_sku = depot
        .gql(
            truck,
            RESTOCK,
            json!({ "input": restock_input("truck-1", "APP\u{0}LE") }),
        )
        .await;
    assert_eq!(field(&nul_sku), "input.items.0.sku");
    let listing = depot
        .gql(
            Some(&depot.admin),
            r#"{ restocks(truckId: "t\u0000") { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(field(&listing), "truckId");
    let huge = depot
        .gql(
            truck,
            RESTOCK,
            json!({ "input": restock_input(&"t".repeat(300_000), "APPLE") }),
        )
        .await;
    assert_eq!(code(&huge), "BAD_USER_INPUT", "{huge:#}");
    let mut wrong_type = restock_input("truck-1", "APPLE");
    wrong_type["items"][0]["quantity"] = json!("three");
    let wrong_type = depot
        .gql(truck, RESTOCK, json!({ "input": wrong_type }))
        .await;
    assert_eq!(code(&wrong_type), "BAD_USER_INPUT", "{wrong_type:#}");
    assert_eq!(depot.scalar("SELECT count(*) FROM restock_orders").await, 0);
    assert_eq!(
        depot.inventory_scalar("SELECT count(*) FROM batches").await,
        0
    );
}

#[tokio::test]
async fn mutations_over_get_are_refused_with_405() {
    let depot = Depot::new().await;
    let query = "mutation%7Brestock(input%3A%7BtruckId%3A%22t-1%22%2CsupplierId%3A%22f%22%2Citems%3A%5B%5D%7D)%7Bstatus%7D%7D";
    let request = Request::get(format!("/graphql?query={query}"))
        .header("authorization", format!("Bearer {}", depot.truck))
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = depot.logistics.exchange(request).await;
    assert_eq!((status, &headers["allow"]), (405, &"POST".parse().unwrap()));
    assert_eq!(depot.scalar("SELECT count(*) FROM restock_orders").await, 0);
}
