//! Hostile input against the catalog port: NUL bytes in every kind of
//! string input (plain, list, JSON metadata keys and values), huge and
//! wrongly typed values; clean codes and nothing written.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn hostile_product_input_is_bad_user_input_and_nothing_is_written() {
    let app = TestApp::new().await;
    let refused = |resp: &serde_json::Value| {
        assert_eq!(code(resp), "BAD_USER_INPUT", "{resp:#}");
        resp["errors"][0]["extensions"]["field"].clone()
    };
    let cases = [
        (json!({ "sku": "PEAR", "name": "Pe\u{0}ars" }), "input.name"),
        (json!({ "sku": "PE\u{0}AR", "name": "Pears" }), "input.sku"),
        (
            json!({ "sku": "PEAR", "name": "Pears", "imageUrls": ["https://a.example/x.jpg", "https://a.example/\u{0}"] }),
            "input.imageUrls.1",
        ),
        (
            json!({ "sku": "PEAR", "name": "Pears", "metadata": { "origin": "N\u{0}Z" } }),
            "input.metadata.origin",
        ),
        (
            json!({ "sku": "PEAR", "name": "Pears", "metadata": { "ori\u{0}gin": "NZ" } }),
            "input.metadata",
        ),
    ];
    for (input, field) in cases {
        assert_eq!(refused(&app.create(input).await), field);
    }
    let search = app
        .gql(
            None,
            r#"{ products(search: "pe\u0000") { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(refused(&search), "search");
    let huge = app
        .create(json!({ "sku": "PEAR", "name": "P".repeat(300_000) }))
        .await;
    assert_eq!(code(&huge), "BAD_USER_INPUT", "{huge:#}");
    let wrong_type = app
        .create(json!({ "sku": "PEAR", "name": ["Pears"] }))
        .await;
    assert_eq!(code(&wrong_type), "BAD_USER_INPUT", "{wrong_type:#}");
    assert_eq!(app.count().await, 0);
    assert!(app.registry.calls().is_empty(), "inventory was never told");
}
