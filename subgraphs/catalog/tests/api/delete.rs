use serde_json::{Value, json};

use crate::support::*;

const DELETE: &str =
    "mutation($s: String!) { deleteProduct(sku: $s) { sku deleted product { sku active } } }";

#[tokio::test]
async fn a_product_without_stock_history_is_deleted() {
    let app = TestApp::new().await;
    app.product("APPLE", "Gala Apples").await;
    app.registry.clear_calls();
    let resp = app
        .gql(Some(&app.admin), DELETE, json!({ "s": "apple" }))
        .await;
    assert_no_errors(&resp);
    assert_eq!(
        resp["data"]["deleteProduct"],
        json!({ "sku": "APPLE", "deleted": true, "product": null })
    );
    assert_eq!(app.registry.calls(), [Call::Retire("APPLE".into())]);
    assert_eq!(app.count().await, 0);
    let gone = app
        .gql(None, "{ product(sku: \"APPLE\") { sku } }", json!({}))
        .await;
    assert_eq!(gone["data"]["product"], Value::Null);
    // The name is free again.
    app.product("APPLE2", "Gala Apples").await;
}

#[tokio::test]
async fn a_product_with_stock_history_is_deactivated_instead() {
    let app = TestApp::new().await;
    app.product("MILK", "Whole Milk").await;
    app.registry.give_history("MILK");
    app.registry.clear_calls();
    let resp = app
        .gql(Some(&app.admin), DELETE, json!({ "s": "MILK" }))
        .await;
    assert_no_errors(&resp);
    assert_eq!(
        resp["data"]["deleteProduct"],
        json!({ "sku": "MILK", "deleted": false, "product": { "sku": "MILK", "active": false } })
    );
    assert_eq!(app.registry.calls(), [Call::Retire("MILK".into())]);
    assert_eq!(app.count().await, 1);
    let listed = app
        .gql(None, "{ products { totalCount } }", json!({}))
        .await;
    assert_eq!(listed["data"]["products"]["totalCount"], 0);
    let history = app
        .gql(
            None,
            "{ product(sku: \"MILK\") { name active } }",
            json!({}),
        )
        .await;
    assert_eq!(
        history["data"]["product"],
        json!({ "name": "Whole Milk", "active": false })
    );
}

#[tokio::test]
async fn deleting_an_unknown_sku_is_not_found_and_does_not_reach_inventory() {
    let app = TestApp::new().await;
    let resp = app
        .gql(Some(&app.admin), DELETE, json!({ "s": "KIWI" }))
        .await;
    assert_eq!(code(&resp), "NOT_FOUND");
    assert!(app.registry.calls().is_empty());
}

#[tokio::test]
async fn delete_changes_nothing_when_inventory_fails() {
    let app = TestApp::new().await;
    app.product("APPLE", "Gala Apples").await;
    app.registry.fail_for("APPLE");
    let resp = app
        .gql(Some(&app.admin), DELETE, json!({ "s": "APPLE" }))
        .await;
    assert_eq!(code(&resp), "INTERNAL_SERVER_ERROR");
    let still = app
        .gql(None, "{ product(sku: \"APPLE\") { active } }", json!({}))
        .await;
    assert_eq!(still["data"]["product"]["active"], true);
}
