use kit::auth::Role;
use serde_json::json;

use crate::support::*;

const UPDATE: &str =
    "mutation($s: String!, $i: UpdateProductInput!) { updateProduct(sku: $s, input: $i) { sku } }";
const DELETE: &str = "mutation($s: String!) { deleteProduct(sku: $s) { sku deleted } }";

#[tokio::test]
async fn catalog_changes_are_for_admins_only() {
    let app = TestApp::new().await;
    app.product("APPLE", "Gala Apples").await;
    app.registry.clear_calls();
    let truck = token(Role::Truck);
    let operations = [
        (
            CREATE.as_str(),
            json!({ "i": { "sku": "PEAR", "name": "Pears" } }),
        ),
        (UPDATE, json!({ "s": "APPLE", "i": { "name": "Renamed" } })),
        (DELETE, json!({ "s": "APPLE" })),
    ];
    for (query, vars) in operations {
        let anonymous = app.gql(None, query, vars.clone()).await;
        assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{query}");
        let customer = app.gql(Some(&app.customer), query, vars.clone()).await;
        assert_eq!(code(&customer), "FORBIDDEN", "{query}");
        let truck = app.gql(Some(&truck), query, vars.clone()).await;
        assert_eq!(code(&truck), "FORBIDDEN", "{query}");
    }
    assert_eq!(app.count().await, 1);
    let resp = app
        .gql(
            None,
            "{ product(sku: \"APPLE\") { name active } }",
            json!({}),
        )
        .await;
    assert_eq!(
        resp["data"]["product"],
        json!({ "name": "Gala Apples", "active": true })
    );
    assert!(app.registry.calls().is_empty());
}

#[tokio::test]
async fn a_bad_bearer_token_may_browse_but_not_change_the_catalog() {
    let app = TestApp::new().await;
    app.product("APPLE", "Gala Apples").await;
    let bad = Some("not-a-jwt");
    let browse = app.gql(bad, "{ products { totalCount } }", json!({})).await;
    assert_eq!(browse["data"]["products"]["totalCount"], 1);
    let all = app
        .gql(
            bad,
            "{ products(includeInactive: true) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&all), "UNAUTHENTICATED");
    let create = app
        .gql(
            bad,
            &CREATE,
            json!({ "i": { "sku": "PEAR", "name": "Pears" } }),
        )
        .await;
    assert_eq!(code(&create), "UNAUTHENTICATED");
    assert_eq!(app.count().await, 1);
}
