//! Hostile input against the orders port (NUL, huge, wrong type, GET
//! mutations) and an inventory that does not answer: clean codes, nothing
//! written, no internal address in any message.

use axum::{body::Body, http::Request};
use kit::testing::TestClient;
use serde_json::json;

use crate::support::*;

const ADD: &str =
    "mutation($s: String!, $q: Int!) { addToCart(sku: $s, quantity: $q) { itemCount } }";

#[tokio::test]
async fn hostile_cart_input_is_bad_user_input_and_nothing_is_written() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let field = |resp: &serde_json::Value| {
        assert_eq!(code(resp), "BAD_USER_INPUT", "{resp:#}");
        resp["errors"][0]["extensions"]["field"].clone()
    };
    let nul = shop
        .gql(&token, ADD, json!({ "s": "APP\u{0}LE", "q": 1 }))
        .await;
    assert_eq!(field(&nul), "sku");
    let inline = shop
        .gql(
            &token,
            r#"mutation { previewOrder(items: [{sku: "APPLE", quantity: 1}, {sku: "MI\u0000LK", quantity: 1}]) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(field(&inline), "items.1.sku");
    let reason = shop
        .gql(
            &token,
            "mutation($r: String) { cancelOrder(orderId: \"0196f000-0000-7000-8000-000000000001\", reason: $r) { id } }",
            json!({ "r": "changed my mind\u{0}" }),
        )
        .await;
    assert_eq!(field(&reason), "reason");
    let huge = shop
        .gql(&token, ADD, json!({ "s": "A".repeat(300_000), "q": 1 }))
        .await;
    assert_eq!(code(&huge), "BAD_USER_INPUT", "{huge:#}");
    let wrong_type = shop
        .gql(&token, ADD, json!({ "s": "APPLE", "q": "many" }))
        .await;
    assert_eq!(code(&wrong_type), "BAD_USER_INPUT", "{wrong_type:#}");
    assert_eq!(shop.scalar("SELECT count(*) FROM cart_lines").await, 0);
    assert_eq!(shop.scalar("SELECT count(*) FROM orders").await, 0);
    assert_eq!(shop.levels("MILK").await, (10, 0, 10), "nothing reserved");
}

#[tokio::test]
async fn mutations_over_get_are_refused_with_405() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let request = Request::get(
        "/graphql?query=mutation%7BaddToCart(sku%3A%22APPLE%22%2Cquantity%3A1)%7BitemCount%7D%7D",
    )
    .header("authorization", format!("Bearer {token}"))
    .header("accept", "application/graphql-response+json")
    .body(Body::empty())
    .unwrap();
    let (status, headers, body) = shop.orders.exchange(request).await;
    assert_eq!(status, 405, "{body:#}");
    assert_eq!(headers["allow"], "POST");
    assert_eq!(shop.scalar("SELECT count(*) FROM cart_lines").await, 0);
}

#[tokio::test]
async fn an_inventory_that_does_not_answer_is_service_unavailable_without_its_address() {
    let shop = Shop::new().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rpc_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = orders::Config {
        inventory_rpc_url: rpc_url,
        ..shop.config.clone()
    };
    let cut_off = orders::build(
        &config,
        shop.pool.clone(),
        kit::events::Bus::in_process(),
        shop.provider.clone(),
    )
    .unwrap();
    let client = TestClient::new(cut_off.router);
    let (_, token) = shop.customer();
    for (query, variables) in [
        (ADD, json!({ "s": "APPLE", "q": 2 })),
        (
            "mutation($i: [OrderLineInput!]) { previewOrder(items: $i) { id } }",
            json!({ "i": [{ "sku": "APPLE", "quantity": 2 }] }),
        ),
    ] {
        let resp = client.gql(Some(&token), query, variables).await;
        assert_eq!(code(&resp), "SERVICE_UNAVAILABLE", "{resp:#}");
        assert_eq!(message(&resp), kit::error::DEPENDENCY_DOWN);
        let text = resp.to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("connect"),
            "{resp:#}"
        );
    }
    assert_eq!(shop.scalar("SELECT count(*) FROM orders").await, 0);
}

/// Parsed documents are kept by their text (`kit::documents`): a hostile
/// text sent again is refused again, by the same checks, and a repeated
/// valid one still runs with its own variables.
#[tokio::test]
async fn repeated_texts_are_checked_every_time() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    // 40 levels of selection: over the parser's recursion limit and the
    // schema's depth limit (32).
    let deep = format!(
        "{{ __type(name: \"Order\") {{ fields {{ type {} name {} }} }} }}",
        "{ ofType ".repeat(40),
        "}".repeat(40)
    );
    let malformed = "{ myCart { itemCount ";
    let first_deep = shop.gql(&token, &deep, json!({})).await;
    let first_malformed = shop.gql(&token, malformed, json!({})).await;
    for refused in [&first_deep, &first_malformed] {
        assert!(refused["data"].is_null(), "{refused:#}");
        assert!(code(refused).starts_with("GRAPHQL_"), "{refused:#}");
    }
    for _ in 0..3 {
        assert_eq!(shop.gql(&token, &deep, json!({})).await, first_deep);
        assert_eq!(
            shop.gql(&token, malformed, json!({})).await,
            first_malformed
        );
    }
    for (sku, quantity) in [("APPLE", 1), ("MILK", 2)] {
        let added = shop
            .gql(&token, ADD, json!({ "s": sku, "q": quantity }))
            .await;
        assert!(added["errors"].is_null(), "{added:#}");
    }
    assert_eq!(
        shop.scalar("SELECT sum(quantity) FROM cart_lines").await,
        3,
        "the same text ran twice with each call's own variables"
    );
}
