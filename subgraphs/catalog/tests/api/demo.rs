use serde_json::json;

use crate::support::*;

const DEMO_SKUS: [&str; 10] = [
    "APPLE", "BANANA", "BREAD", "CARROT", "CHEESE", "COFFEE", "EGGS", "MILK", "TOMATO", "YOGURT",
];

#[tokio::test]
async fn the_demo_catalog_is_seeded_once_and_registered_every_time() {
    let app = TestApp::new().await;
    catalog::seed_demo(&app.db, app.registry.as_ref())
        .await
        .expect("first seeding");
    let listed = app
        .gql(
            None,
            "{ products { totalCount edges { node { sku upc category } } } }",
            json!({}),
        )
        .await;
    assert_no_errors(&listed);
    let products = &listed["data"]["products"];
    assert_eq!(products["totalCount"], 10);
    let skus: Vec<_> = products["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, DEMO_SKUS);
    for edge in products["edges"].as_array().unwrap() {
        assert!(edge["node"]["upc"].is_string() && edge["node"]["category"].is_string());
    }
    let mut registered = app.registry.calls();
    registered.sort_by_key(|c| format!("{c:?}"));
    let expected: Vec<_> = DEMO_SKUS
        .iter()
        .map(|s| Call::Upsert((*s).into(), true))
        .collect();
    assert_eq!(registered, expected);

    // Again: nothing new, inventory told again (it may have been reset).
    app.registry.clear_calls();
    let renamed = app
        .gql(
            Some(&app.admin),
            "mutation { updateProduct(sku: \"MILK\", input: { name: \"Oat Milk\", active: false }) { sku } }",
            json!({}),
        )
        .await;
    assert_no_errors(&renamed);
    app.registry.clear_calls();
    catalog::seed_demo(&app.db, app.registry.as_ref())
        .await
        .expect("second seeding");
    assert_eq!(app.count().await, 10);
    assert_eq!(app.registry.calls().len(), 10);
    assert!(
        app.registry
            .calls()
            .contains(&Call::Upsert("MILK".into(), false))
    );
    let milk = app
        .gql(
            None,
            "{ product(sku: \"MILK\") { name active } }",
            json!({}),
        )
        .await;
    assert_eq!(
        milk["data"]["product"],
        json!({ "name": "Oat Milk", "active": false })
    );
}
