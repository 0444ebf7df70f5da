//! `product.updated`: every change of a product writes its event to the
//! outbox in the change's transaction; a refused change writes none.

use diesel::sql_types;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::support::*;

#[derive(diesel::QueryableByName)]
struct Outboxed {
    #[diesel(sql_type = sql_types::Text)]
    topic: String,
    #[diesel(sql_type = sql_types::Text)]
    key: String,
    #[diesel(sql_type = sql_types::Jsonb)]
    payload: Value,
}

/// (topic, key, payload) of every event written so far, oldest first.
async fn events(app: &TestApp) -> Vec<(String, String, Value)> {
    let mut conn = app.pool.get().await.unwrap();
    let rows: Vec<Outboxed> =
        diesel::sql_query("SELECT topic, key, payload FROM outbox ORDER BY id")
            .load(&mut conn)
            .await
            .unwrap();
    rows.into_iter()
        .map(|r| (r.topic, r.key, r.payload))
        .collect()
}

fn updated(sku: &str) -> (String, String, Value) {
    ("product.updated".into(), sku.into(), json!({ "sku": sku }))
}

#[tokio::test]
async fn every_change_of_a_product_writes_product_updated_and_a_refused_one_none() {
    let app = TestApp::new().await;
    app.product("APPLE", "Gala Apples").await;
    assert_eq!(events(&app).await, [updated("APPLE")]);

    let update = "mutation($s: String!, $i: UpdateProductInput!) { updateProduct(sku: $s, input: $i) { sku } }";
    let renamed = app
        .gql(
            Some(&app.admin),
            update,
            json!({ "s": "apple", "i": { "name": "Royal Gala" } }),
        )
        .await;
    assert_no_errors(&renamed);
    assert_eq!(events(&app).await, [updated("APPLE"), updated("APPLE")]);

    // Refused by inventory: the change and its event roll back together.
    app.registry.fail_for("APPLE");
    let refused = app
        .gql(
            Some(&app.admin),
            update,
            json!({ "s": "APPLE", "i": { "name": "Fuji" } }),
        )
        .await;
    assert!(refused["errors"].is_array(), "{refused}");
    assert_eq!(events(&app).await.len(), 2);
    app.registry.recover("APPLE");

    let deleted = app
        .gql(
            Some(&app.admin),
            "mutation($s: String!) { deleteProduct(sku: $s) { sku } }",
            json!({ "s": "APPLE" }),
        )
        .await;
    assert_no_errors(&deleted);
    assert_eq!(
        events(&app).await,
        [updated("APPLE"), updated("APPLE"), updated("APPLE")]
    );
}
