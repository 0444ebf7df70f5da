use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn create_normalises_input_and_registers_the_product_with_inventory() {
    let app = TestApp::new().await;
    let resp = app
        .create(json!({
            "sku": "  gala-1_b ",
            "name": "  Gala Apples ",
            "description": "  Crisp and sweet.  ",
            "upc": " 036000291452 ",
            "imageUrls": ["https://cdn.example.com/gala.jpg", "http://img.example.org/g2.png?s=1"],
            "category": " fruit ",
            "metadata": { "origin": "NZ", "organic": true },
        }))
        .await;
    assert_no_errors(&resp);
    let p = &resp["data"]["createProduct"];
    assert_eq!(p["sku"], "GALA-1_B");
    assert_eq!(p["name"], "Gala Apples");
    assert_eq!(p["description"], "Crisp and sweet.");
    assert_eq!(p["upc"], "036000291452");
    assert_eq!(
        p["imageUrls"],
        json!([
            "https://cdn.example.com/gala.jpg",
            "http://img.example.org/g2.png?s=1"
        ])
    );
    assert_eq!(p["category"], "fruit");
    assert_eq!(p["active"], true);
    assert_eq!(p["metadata"], json!({ "origin": "NZ", "organic": true }));
    assert!(
        p["createdAt"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .is_ok()
    );
    assert_eq!(p["createdAt"], p["updatedAt"]);
    assert_eq!(
        app.registry.calls(),
        [Call::Upsert("GALA-1_B".into(), true)]
    );
}

#[tokio::test]
async fn create_stores_blank_optionals_as_null_and_accepts_gtin_13() {
    let app = TestApp::new().await;
    let resp = app
        .create(json!({
            "sku": "EGGS", "name": "Eggs", "description": "  ", "upc": "4006381333931",
            "category": "   ", "active": false,
        }))
        .await;
    assert_no_errors(&resp);
    let p = &resp["data"]["createProduct"];
    assert_eq!(p["description"], Value::Null);
    assert_eq!(p["category"], Value::Null);
    assert_eq!(p["metadata"], Value::Null);
    assert_eq!(p["imageUrls"], json!([]));
    assert_eq!(p["upc"], "4006381333931");
    assert_eq!(p["active"], false);
    assert_eq!(app.registry.calls(), [Call::Upsert("EGGS".into(), false)]);

    let blank_upc = app
        .create(json!({ "sku": "EGGS2", "name": "Eggs 2", "upc": " " }))
        .await;
    assert_eq!(blank_upc["data"]["createProduct"]["upc"], Value::Null);
}

#[tokio::test]
async fn create_refuses_every_rule_violation_and_writes_nothing() {
    let app = TestApp::new().await;
    let url = |n: usize| format!("https://example.com/{}", "a".repeat(n));
    let cases = [
        (json!({ "sku": "", "name": "X" }), "sku"),
        (json!({ "sku": "A".repeat(33), "name": "X" }), "sku"),
        (json!({ "sku": "APPLE PIE", "name": "X" }), "sku"),
        (json!({ "sku": "APPLE.1", "name": "X" }), "sku"),
        (json!({ "sku": "straße", "name": "X" }), "sku"),
        (json!({ "sku": "A1", "name": "   " }), "name"),
        (json!({ "sku": "A1", "name": "n".repeat(201) }), "name"),
        (
            json!({ "sku": "A1", "name": "X", "description": "d".repeat(5001) }),
            "description",
        ),
        (
            json!({ "sku": "A1", "name": "X", "upc": "036000291453" }),
            "upc",
        ),
        (
            json!({ "sku": "A1", "name": "X", "upc": "03600029145" }),
            "upc",
        ),
        (
            json!({ "sku": "A1", "name": "X", "upc": "40063813339310" }),
            "upc",
        ),
        (
            json!({ "sku": "A1", "name": "X", "upc": "03600029145A" }),
            "upc",
        ),
        (
            json!({ "sku": "A1", "name": "X", "imageUrls": ["ftp://example.com/a.jpg"] }),
            "imageUrls",
        ),
        (
            json!({ "sku": "A1", "name": "X", "imageUrls": ["/a.jpg"] }),
            "imageUrls",
        ),
        (
            json!({ "sku": "A1", "name": "X", "imageUrls": ["https://example.com/a b.jpg"] }),
            "imageUrls",
        ),
        (
            json!({ "sku": "A1", "name": "X", "imageUrls": ["https://"] }),
            "imageUrls",
        ),
        (
            json!({ "sku": "A1", "name": "X", "imageUrls": [url(2049 - 20)] }),
            "imageUrls",
        ),
        (
            json!({ "sku": "A1", "name": "X", "imageUrls": vec![url(5); 21] }),
            "imageUrls",
        ),
        (
            json!({ "sku": "A1", "name": "X", "category": "c".repeat(101) }),
            "category",
        ),
        (
            json!({ "sku": "A1", "name": "X", "metadata": [1, 2] }),
            "metadata",
        ),
        (
            json!({ "sku": "A1", "name": "X", "metadata": "text" }),
            "metadata",
        ),
        (
            json!({ "sku": "A1", "name": "X", "metadata": { "blob": "x".repeat(16 * 1024) } }),
            "metadata",
        ),
    ];
    for (input, expected) in cases {
        let resp = app.create(input.clone()).await;
        assert_eq!(code(&resp), "BAD_USER_INPUT", "{input}");
        assert_eq!(field(&resp), expected, "{input}");
    }
    assert_eq!(app.count().await, 0);
    assert!(app.registry.calls().is_empty());

    // The limits themselves are allowed.
    let at_limits = app
        .create(json!({
            "sku": "A".repeat(32), "name": "n".repeat(200), "description": "d".repeat(5000),
            "category": "c".repeat(100), "imageUrls": vec![url(2048 - 20); 20],
        }))
        .await;
    assert_no_errors(&at_limits);
}

#[tokio::test]
async fn duplicate_sku_name_or_upc_is_a_conflict() {
    let app = TestApp::new().await;
    assert_no_errors(
        &app.create(json!({ "sku": "APPLE", "name": "Gala Apples", "upc": "036000291452" }))
            .await,
    );
    let cases = [
        json!({ "sku": "apple", "name": "Other" }),
        json!({ "sku": "APPLE2", "name": "gala APPLES " }),
        json!({ "sku": "APPLE3", "name": "Other", "upc": "036000291452" }),
    ];
    for input in cases {
        let resp = app.create(input.clone()).await;
        assert_eq!(code(&resp), "CONFLICT", "{input}");
    }
    assert_eq!(app.count().await, 1);
    assert_eq!(
        app.registry.calls().len(),
        1,
        "losers never reach inventory"
    );
}

async fn race(app: &TestApp, inputs: Vec<serde_json::Value>) -> (usize, usize) {
    let attempts = inputs.into_iter().map(|input| app.create(input));
    let results = futures::future::join_all(attempts).await;
    let won = results.iter().filter(|r| r.get("errors").is_none()).count();
    let conflicts = results
        .iter()
        .filter(|r| r.get("errors").is_some() && code(r) == "CONFLICT")
        .count();
    (won, conflicts)
}

#[tokio::test]
async fn concurrent_creates_of_one_sku_have_exactly_one_winner() {
    let app = TestApp::new().await;
    let inputs = (0..8)
        .map(|i| json!({ "sku": "PEAR", "name": format!("Pear {i}") }))
        .collect();
    assert_eq!(race(&app, inputs).await, (1, 7));
    assert_eq!(app.count().await, 1);
    assert_eq!(app.registry.calls(), [Call::Upsert("PEAR".into(), true)]);
}

#[tokio::test]
async fn concurrent_creates_of_one_name_in_different_cases_have_exactly_one_winner() {
    let app = TestApp::new().await;
    let inputs = (0..8)
        .map(|i| {
            let name = if i % 2 == 0 {
                "Conference Pears"
            } else {
                "CONFERENCE pears"
            };
            json!({ "sku": format!("PEAR-{i}"), "name": name })
        })
        .collect();
    assert_eq!(race(&app, inputs).await, (1, 7));
    assert_eq!(app.count().await, 1);
}

#[tokio::test]
async fn create_rolls_back_when_inventory_fails() {
    let app = TestApp::new().await;
    app.registry.fail_for("PEAR");
    let resp = app.create(json!({ "sku": "pear", "name": "Pears" })).await;
    assert_eq!(code(&resp), "INTERNAL_SERVER_ERROR");
    // Details go to the log, not to the client.
    assert_eq!(resp["errors"][0]["message"], "internal server error");
    assert_eq!(app.count().await, 0);
    assert_eq!(app.registry.calls(), [Call::Upsert("PEAR".into(), true)]);

    app.registry.recover("PEAR");
    assert_no_errors(&app.create(json!({ "sku": "pear", "name": "Pears" })).await);
    assert_eq!(app.count().await, 1);
}
