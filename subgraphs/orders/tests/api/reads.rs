//! order(id), User.orders, the admin's orders, entities and order numbers.

use serde_json::{Value, json};

use crate::support::*;

const USER_ORDERS: &str = "query($id: ID!, $first: Int, $after: String, $status: OrderStatus) {
    _entities(representations: [{ __typename: \"User\", id: $id }]) {
        ... on User { orders(first: $first, after: $after, status: $status) {
            totalCount pageInfo { hasNextPage endCursor } edges { node { number status } } } } } }";

fn numbers(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["number"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_order_is_seen_by_its_customer_and_admins_only() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let (_, stranger) = shop.customer();
    let order = shop.preview(&token, &[("APPLE", 1)]).await;
    let id = order["id"].clone();
    for caller in [&token, &shop.admin] {
        let resp = shop.gql(caller, &ORDER, json!({ "id": id })).await;
        assert_eq!(resp["data"]["order"]["number"], order["number"]);
    }
    assert_eq!(
        code(&shop.gql(&stranger, &ORDER, json!({ "id": id })).await),
        "NOT_FOUND"
    );
    let unknown = json!({ "id": uuid::Uuid::new_v4().to_string() });
    assert_eq!(code(&shop.gql(&token, &ORDER, unknown).await), "NOT_FOUND");
    assert_eq!(
        code(&shop.gql(&token, &ORDER, json!({ "id": "x" })).await),
        "BAD_USER_INPUT"
    );
    let anonymous = shop.orders.gql(None, &ORDER, json!({ "id": id })).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    // Logistics resolves Order entities: only for the customer or an admin.
    let entity = "query($id: ID!) { _entities(representations: [{ __typename: \"Order\", id: $id }]) { ... on Order { number } } }";
    let mine = shop.gql(&token, entity, json!({ "id": id })).await;
    assert_eq!(mine["data"]["_entities"][0]["number"], order["number"]);
    let theirs = shop.gql(&stranger, entity, json!({ "id": id })).await;
    assert_eq!(theirs["data"]["_entities"][0], Value::Null);
}

#[tokio::test]
async fn a_users_orders_are_listed_newest_first_paged_and_filtered() {
    let shop = Shop::new().await;
    let (customer, token) = shop.customer();
    let (_, other) = shop.customer();
    shop.preview(&other, &[("MILK", 1)]).await;
    let mut placed = Vec::new();
    for _ in 0..3 {
        placed.push(shop.preview(&token, &[("APPLE", 1)]).await);
    }
    assert_no_errors(
        &shop
            .confirm(&token, placed[0]["id"].as_str().unwrap(), None, None)
            .await,
    );
    let page = shop
        .gql(&token, USER_ORDERS, json!({ "id": customer, "first": 2 }))
        .await;
    assert_no_errors(&page);
    let first = &page["data"]["_entities"][0]["orders"];
    assert_eq!(first["totalCount"], 3);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let expected: Vec<String> = placed
        .iter()
        .rev()
        .map(|o| o["number"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(numbers(first), expected[..2]);
    let rest = shop
        .gql(
            &token,
            USER_ORDERS,
            json!({ "id": customer, "first": 2, "after": first["pageInfo"]["endCursor"] }),
        )
        .await;
    let second = &rest["data"]["_entities"][0]["orders"];
    assert_eq!(numbers(second), expected[2..]);
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    let confirmed = shop
        .gql(
            &token,
            USER_ORDERS,
            json!({ "id": customer, "status": "CONFIRMED" }),
        )
        .await;
    assert_eq!(
        numbers(&confirmed["data"]["_entities"][0]["orders"]),
        expected[2..]
    );
    let snooping = shop
        .gql(&other, USER_ORDERS, json!({ "id": customer }))
        .await;
    assert_eq!(code(&snooping), "FORBIDDEN");
    let too_many = shop
        .gql(&token, USER_ORDERS, json!({ "id": customer, "first": 101 }))
        .await;
    assert_eq!(code(&too_many), "BAD_USER_INPUT");
}

#[tokio::test]
async fn admins_list_every_order_and_numbers_are_unique() {
    let shop = Shop::new().await;
    let (_, ann) = shop.customer();
    let (_, bob) = shop.customer();
    let a = shop.preview(&ann, &[("APPLE", 1)]).await;
    let b = shop.preview(&bob, &[("APPLE", 1)]).await;
    assert_ne!(a["number"], b["number"]);
    let query = "query($status: OrderStatus) { orders(status: $status) { totalCount edges { node { number } } } }";
    assert_eq!(code(&shop.gql(&ann, query, json!({})).await), "FORBIDDEN");
    let all = shop.gql(&shop.admin, query, json!({})).await;
    assert_eq!(all["data"]["orders"]["totalCount"], 2);
    assert_eq!(
        numbers(&all["data"]["orders"]),
        [b["number"].as_str().unwrap(), a["number"].as_str().unwrap()]
    );
    let none = shop
        .gql(&shop.admin, query, json!({ "status": "SHIPPED" }))
        .await;
    assert_eq!(none["data"]["orders"]["totalCount"], 0);
    assert_eq!(
        shop.scalar("SELECT count(DISTINCT number) FROM orders")
            .await,
        2
    );
}
