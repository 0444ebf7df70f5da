use serde_json::json;

use crate::support::*;

const ENTITIES: &str =
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { sku name active } } }";

#[tokio::test]
async fn an_entity_batch_of_many_products_is_one_sql_query() {
    let app = TestApp::new().await;
    let mut reps = Vec::new();
    for i in 0..25 {
        let sku = format!("SKU-{i:02}");
        app.product(&sku, &format!("Product {i}")).await;
        reps.push(json!({ "__typename": "Product", "sku": sku }));
    }
    let retired = app
        .gql(
            Some(&app.admin),
            "mutation { updateProduct(sku: \"SKU-03\", input: { active: false }) { active } }",
            json!({}),
        )
        .await;
    assert_no_errors(&retired);
    // Unknown and malformed SKUs resolve to null without failing the batch.
    reps.push(json!({ "__typename": "Product", "sku": "NOPE" }));
    reps.push(json!({ "__typename": "Product", "sku": "not a sku" }));
    app.log.clear();
    let resp = app.gql(None, ENTITIES, json!({ "r": reps })).await;
    assert_no_errors(&resp);
    let entities = resp["data"]["_entities"].as_array().unwrap();
    assert_eq!(entities.len(), 27);
    assert_eq!(entities[0]["name"], "Product 0");
    assert_eq!(entities[24]["sku"], "SKU-24");
    // Order history still resolves retired products.
    assert_eq!(
        entities[3],
        json!({ "sku": "SKU-03", "name": "Product 3", "active": false })
    );
    assert!(entities[25].is_null() && entities[26].is_null());
    let statements = app.log.statements();
    let selects: Vec<_> = statements
        .iter()
        .filter(|s| s.contains("FROM \"products\""))
        .collect();
    assert_eq!(selects.len(), 1, "one batched query, got {statements:#?}");
}

#[tokio::test]
async fn entity_references_are_case_insensitive() {
    let app = TestApp::new().await;
    app.product("APPLE", "Gala Apples").await;
    let resp = app
        .gql(
            None,
            ENTITIES,
            json!({ "r": [{ "__typename": "Product", "sku": "apple" }] }),
        )
        .await;
    assert_eq!(resp["data"]["_entities"][0]["sku"], "APPLE");
}

#[tokio::test]
async fn the_subgraph_publishes_product_as_a_federation_entity() {
    let app = TestApp::new().await;
    let resp = app.gql(None, "{ _service { sdl } }", json!({})).await;
    let sdl = resp["data"]["_service"]["sdl"].as_str().unwrap();
    assert!(sdl.contains("type Product @key(fields: \"sku\")"), "{sdl}");
    assert!(sdl.contains("specs.apollo.dev/federation/v2"), "{sdl}");
    assert_eq!(catalog::sdl(), sdl, "sdl() is what the subgraph serves");
}
