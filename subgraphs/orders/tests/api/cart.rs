//! The cart: lines priced by inventory's GetPrice.

use serde_json::json;

use crate::support::*;

const CART: &str = "query($id: ID!) { _entities(representations: [{ __typename: \"User\", id: $id }]) {
    ... on User { cart { subtotal itemCount lines { sku quantity unitPrice lineTotal available product { sku } } } } } }";
const ADD: &str = "mutation($s: String!, $q: Int!) { addToCart(sku: $s, quantity: $q) { subtotal itemCount lines { sku quantity unitPrice lineTotal available } } }";

#[tokio::test]
async fn the_cart_adds_updates_removes_and_is_priced_now() {
    let shop = Shop::new().await;
    let (customer, token) = shop.customer();
    shop.gql(&token, ADD, json!({ "s": "apple", "q": 2 })).await;
    let added = shop.gql(&token, ADD, json!({ "s": "APPLE", "q": 3 })).await;
    assert_no_errors(&added);
    assert_eq!(
        added["data"]["addToCart"],
        json!({ "subtotal": "2.50", "itemCount": 5, "lines": [
            { "sku": "APPLE", "quantity": 5, "unitPrice": "0.50", "lineTotal": "2.50", "available": null }] })
    );
    let set = shop
        .gql(
            &token,
            "mutation { updateCartLine(sku: \"MILK\", quantity: 2) { subtotal } }",
            json!({}),
        )
        .await;
    assert_eq!(set["data"]["updateCartLine"]["subtotal"], "4.50");
    let cart = shop.gql(&token, CART, json!({ "id": customer })).await;
    assert_eq!(
        cart["data"]["_entities"][0]["cart"]["lines"][1]["product"]["sku"],
        "MILK"
    );
    let removed = shop
        .gql(
            &token,
            "mutation { removeFromCart(sku: \"apple\") { subtotal lines { sku } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        removed["data"]["removeFromCart"],
        json!({ "subtotal": "2.00", "lines": [{ "sku": "MILK" }] })
    );
    let cleared = shop
        .gql(&token, "mutation { clearCart { itemCount } }", json!({}))
        .await;
    assert_eq!(cleared["data"]["clearCart"]["itemCount"], 0);
    // A cart holds nothing in inventory.
    assert_eq!(shop.levels("MILK").await, (10, 0, 10));
}

#[tokio::test]
async fn short_lines_stay_unpriced_and_bad_lines_are_refused() {
    let shop = Shop::new().await;
    let (customer, token) = shop.customer();
    let (_, stranger) = shop.customer();
    let short = shop
        .gql(&token, ADD, json!({ "s": "APPLE", "q": 30 }))
        .await;
    assert_no_errors(&short);
    assert_eq!(
        short["data"]["addToCart"]["lines"][0],
        json!({ "sku": "APPLE", "quantity": 30, "unitPrice": null, "lineTotal": null, "available": 20 })
    );
    for (sku, quantity, field) in [
        ("PEAR", 1, "sku"),
        ("APPLE", 0, "quantity"),
        ("APPLE", 971, "quantity"),
        ("no way", 1, "sku"),
    ] {
        let resp = shop
            .gql(&token, ADD, json!({ "s": sku, "q": quantity }))
            .await;
        assert_eq!(code(&resp), "BAD_USER_INPUT", "{sku} {quantity}: {resp}");
        assert_eq!(resp["errors"][0]["extensions"]["field"], field);
    }
    let snooping = shop.gql(&stranger, CART, json!({ "id": customer })).await;
    assert_eq!(code(&snooping), "FORBIDDEN");
    let admin = shop.gql(&shop.admin, CART, json!({ "id": customer })).await;
    assert_eq!(admin["data"]["_entities"][0]["cart"]["itemCount"], 30);
}
