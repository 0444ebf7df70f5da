use serde_json::{Value, json};

use crate::support::*;

fn update_query() -> String {
    format!(
        "mutation($s: String!, $i: UpdateProductInput!) {{ updateProduct(sku: $s, input: $i) {{ {FIELDS} }} }}"
    )
}

async fn update(app: &TestApp, sku: &str, input: Value) -> Value {
    app.gql(
        Some(&app.admin),
        &update_query(),
        json!({ "s": sku, "i": input }),
    )
    .await
}

async fn full_product(app: &TestApp) -> Value {
    let resp = app
        .create(json!({
            "sku": "APPLE", "name": "Gala Apples", "description": "Crisp.",
            "upc": "036000291452", "imageUrls": ["https://cdn.example.com/a.jpg"],
            "category": "fruit", "metadata": { "origin": "NZ" },
        }))
        .await;
    assert_no_errors(&resp);
    app.registry.clear_calls();
    resp["data"]["createProduct"].clone()
}

#[tokio::test]
async fn omitted_fields_are_kept_and_null_clears() {
    let app = TestApp::new().await;
    let before = full_product(&app).await;

    let renamed = update(&app, "apple", json!({ "name": "  Royal Gala " })).await;
    assert_no_errors(&renamed);
    let after = &renamed["data"]["updateProduct"];
    assert_eq!(after["name"], "Royal Gala");
    for kept in [
        "sku",
        "description",
        "upc",
        "imageUrls",
        "category",
        "active",
        "metadata",
        "createdAt",
    ] {
        assert_eq!(after[kept], before[kept], "{kept} is kept");
    }
    assert_ne!(after["updatedAt"], before["updatedAt"]);

    let cleared = update(
        &app,
        "APPLE",
        json!({ "description": null, "upc": null, "imageUrls": null, "category": null, "metadata": null }),
    )
    .await;
    assert_no_errors(&cleared);
    let after = &cleared["data"]["updateProduct"];
    assert_eq!(after["description"], Value::Null);
    assert_eq!(after["upc"], Value::Null);
    assert_eq!(after["imageUrls"], json!([]));
    assert_eq!(after["category"], Value::Null);
    assert_eq!(after["metadata"], Value::Null);
    assert_eq!(after["name"], "Royal Gala");

    let set = update(
        &app,
        "APPLE",
        json!({ "upc": "4006381333931", "category": " Fruit ", "imageUrls": ["https://x.example/b.png"],
                "metadata": { "organic": true }, "description": "Sweet." }),
    )
    .await;
    assert_no_errors(&set);
    let after = &set["data"]["updateProduct"];
    assert_eq!(after["upc"], "4006381333931");
    assert_eq!(after["category"], "Fruit");
    assert_eq!(after["imageUrls"], json!(["https://x.example/b.png"]));
    assert_eq!(after["metadata"], json!({ "organic": true }));
    assert_eq!(after["description"], "Sweet.");
    let blank = update(&app, "APPLE", json!({ "category": "  " })).await;
    assert_eq!(blank["data"]["updateProduct"]["category"], Value::Null);
    let calls = app.registry.calls();
    assert!(
        !calls.is_empty()
            && calls
                .iter()
                .all(|c| *c == Call::Upsert("APPLE".into(), true)),
        "every update re-sends the product's state to inventory: {calls:?}"
    );
}

#[tokio::test]
async fn update_refuses_bad_input_and_changes_nothing() {
    let app = TestApp::new().await;
    let before = full_product(&app).await;
    let cases = [
        (json!({ "name": null }), "name"),
        (json!({ "name": " " }), "name"),
        (json!({ "active": null }), "active"),
        (json!({ "upc": "036000291453" }), "upc"),
        (json!({ "description": "d".repeat(5001) }), "description"),
        (json!({ "category": "c".repeat(101) }), "category"),
        (
            json!({ "imageUrls": ["mailto:a@example.com"] }),
            "imageUrls",
        ),
        (json!({ "metadata": [] }), "metadata"),
        // One bad field spoils the whole update.
        (json!({ "name": "Fine Name", "upc": "123" }), "upc"),
    ];
    for (input, expected) in cases {
        let resp = update(&app, "APPLE", input.clone()).await;
        assert_eq!(code(&resp), "BAD_USER_INPUT", "{input}");
        assert_eq!(field(&resp), expected, "{input}");
    }
    let resp = update(&app, "no such sku!", json!({ "name": "X" })).await;
    assert_eq!(field(&resp), "sku");
    let now = app
        .gql(
            None,
            &format!("{{ product(sku: \"APPLE\") {{ {FIELDS} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(now["data"]["product"], before);
}

#[tokio::test]
async fn update_of_an_unknown_sku_is_not_found() {
    let app = TestApp::new().await;
    let resp = update(&app, "KIWI", json!({ "active": false })).await;
    assert_eq!(code(&resp), "NOT_FOUND");
    assert!(app.registry.calls().is_empty());
}

#[tokio::test]
async fn renaming_onto_a_taken_name_or_upc_is_a_conflict() {
    let app = TestApp::new().await;
    full_product(&app).await;
    app.product("PEAR", "Pears").await;
    let name = update(&app, "PEAR", json!({ "name": "GALA apples" })).await;
    assert_eq!(code(&name), "CONFLICT");
    let upc = update(&app, "PEAR", json!({ "upc": "036000291452" })).await;
    assert_eq!(code(&upc), "CONFLICT");
    // Changing the case of one's own name is fine.
    let own = update(&app, "APPLE", json!({ "name": "GALA APPLES" })).await;
    assert_eq!(own["data"]["updateProduct"]["name"], "GALA APPLES");
}

#[tokio::test]
async fn toggling_active_tells_inventory_and_rolls_back_if_it_fails() {
    let app = TestApp::new().await;
    full_product(&app).await;

    let off = update(&app, "APPLE", json!({ "active": false })).await;
    assert_eq!(off["data"]["updateProduct"]["active"], false);
    assert_eq!(app.registry.calls(), [Call::Upsert("APPLE".into(), false)]);

    // Setting the value it already has is not a change.
    app.registry.clear_calls();
    assert_no_errors(&update(&app, "APPLE", json!({ "active": false, "name": "Apples" })).await);
    assert_eq!(
        app.registry.calls(),
        [Call::Upsert("APPLE".into(), false)],
        "re-sent, idempotent"
    );

    app.registry.fail_for("APPLE");
    let failed = update(
        &app,
        "APPLE",
        json!({ "active": true, "name": "Lost rename" }),
    )
    .await;
    assert_eq!(code(&failed), "INTERNAL_SERVER_ERROR");
    let now = app
        .gql(
            None,
            "{ product(sku: \"APPLE\") { name active } }",
            json!({}),
        )
        .await;
    assert_eq!(
        now["data"]["product"],
        json!({ "name": "Apples", "active": false })
    );

    app.registry.recover("APPLE");
    app.registry.clear_calls();
    let on = update(&app, "APPLE", json!({ "active": true })).await;
    assert_eq!(on["data"]["updateProduct"]["active"], true);
    assert_eq!(app.registry.calls(), [Call::Upsert("APPLE".into(), true)]);
}
