//! Operations over the shop: aliases, fragments, directives and
//! variables (section 7).

use crate::*;

// 7. Operations: aliases, fragments, directives, variables.

const OPERATION: &str = r#"
query Ops($upcs: [String!]!, $filter: Filter!, $withShelf: Boolean!, $skipName: Boolean = false, $min: Int = 4) {
  picked: search(filter: $filter) { ...Basics }
  listed: search(filter: { upcs: $upcs }) { upc }
  apple: product(upc: "1") {
    __typename
    good: reviews(minStars: $min) { body }
    all: reviews { body stars }
    ... on Product @include(if: $withShelf) { shelf { aisle } }
    name @skip(if: $skipName)
    ... @skip(if: $skipName) { id }
  }
}
fragment Basics on Product { upc title: name }
"#;

#[tokio::test]
async fn aliases_fragments_directives_and_variables() {
    let shop = Shop::new().await;
    let variables = json!({
        "upcs": ["3", "1"],
        "filter": { "upcs": ["1", "2", "3"], "maxPrice": 300 },
        "withShelf": false,
    });
    let body = shop.post(OPERATION, variables).await;
    assert_eq!(
        body,
        json!({ "data": {
            "picked": [{ "upc": "1", "title": "Apple" }, { "upc": "2", "title": "Bread" }],
            "listed": [{ "upc": "3" }, { "upc": "1" }],
            "apple": {
                "__typename": "Product",
                "good": [{ "body": "Crisp" }],
                "all": [{ "body": "Crisp", "stars": 5 }, { "body": "Bruised", "stars": 2 }],
                "name": "Apple",
                "id": "p1",
            },
        } })
    );
    // The input object reached the subgraph whole, its default filled in
    // where the client left it out.
    let sent: Vec<Value> = shop
        .products
        .requests()
        .iter()
        .map(|b| b["variables"].clone())
        .collect();
    assert!(
        sent.iter().any(|v| v
            .as_object()
            .unwrap()
            .values()
            .any(|v| *v == json!({ "upcs": ["1", "2", "3"], "maxPrice": 300 }))),
        "{sent:?}"
    );

    // The other way round: defaults overridden, the skipped parts skipped.
    let variables = json!({
        "upcs": "2",
        "filter": { "upcs": ["3"] },
        "withShelf": true,
        "skipName": true,
        "min": 1,
    });
    let body = shop.post(OPERATION, variables).await;
    assert_eq!(
        body,
        json!({ "data": {
            "picked": [{ "upc": "3", "title": "Cheese" }],
            "listed": [{ "upc": "2" }],
            "apple": {
                "__typename": "Product",
                "good": [{ "body": "Crisp" }, { "body": "Bruised" }],
                "all": [{ "body": "Crisp", "stars": 5 }, { "body": "Bruised", "stars": 2 }],
                "shelf": { "aisle": 1 },
            },
        } })
    );
}

#[tokio::test]
async fn root_fields_switched_off_by_variables_are_never_fetched() {
    let shop = Shop::new().await;
    let query = "query($reviews: Boolean!, $withMe: Boolean = false) {
        products(first: 1) { upc }
        latestReviews @include(if: $reviews) { stars }
        me @include(if: $withMe) { name }
    }";
    // `$withMe` left out: its default switches `me` off.
    let body = shop.post(query, json!({ "reviews": false })).await;
    assert_eq!(body, json!({ "data": { "products": [{ "upc": "1" }] } }));
    assert_eq!(
        shop.counts(),
        [1, 0, 0, 0],
        "only the products fetch was sent"
    );

    // Switched on, the same plan (cached) fetches all three.
    shop.forget();
    let body = shop
        .post(query, json!({ "reviews": true, "withMe": true }))
        .await;
    assert_eq!(body["data"]["me"], json!({ "name": "Ada" }));
    assert_eq!(
        body["data"]["latestReviews"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(shop.counts(), [1, 1, 1, 0]);

    // A mutation field switched off is not run.
    shop.forget();
    let body = shop
        .post(
            r#"mutation($on: Boolean!) { appendA(x: "never") @include(if: $on) }"#,
            json!({ "on": false }),
        )
        .await;
    assert_eq!(body, json!({ "data": {} }));
    assert_eq!(shop.counts(), [0, 0, 0, 0]);

    // Everything off: an empty answer, no subgraph asked.
    shop.forget();
    let body = shop
        .post(
            "query($on: Boolean!) { me @include(if: $on) { name } ... @include(if: $on) { latestReviews { stars } } }",
            json!({ "on": false }),
        )
        .await;
    assert_eq!(body, json!({ "data": {} }));
    assert_eq!(shop.counts(), [0, 0, 0, 0]);

    // The root type's name is the gateway's own to answer (a health check's
    // query), alone or beside switched-off fields.
    let body = shop
        .post(
            "query($on: Boolean!) { __typename kind: __typename me @include(if: $on) { name } }",
            json!({ "on": false }),
        )
        .await;
    assert_eq!(
        body,
        json!({ "data": { "__typename": "Query", "kind": "Query" } })
    );
    let body = shop.post("mutation { __typename }", json!({})).await;
    assert_eq!(body, json!({ "data": { "__typename": "Mutation" } }));
    assert_eq!(shop.counts(), [0, 0, 0, 0]);
}

#[tokio::test]
async fn bad_variables_are_refused_with_no_subgraph_called() {
    let shop = Shop::new().await;
    let query = "query($filter: Filter!, $n: Int) { search(filter: $filter) { upc } products(first: $n) { upc } }";
    for (variables, message) in [
        (
            json!({}),
            "Variable \"$filter\" of required type \"Filter!\" was not provided.",
        ),
        (
            json!({ "filter": { "upcs": ["1"], "maxPrice": "cheap" } }),
            "Variable \"$filter\" got invalid value {\"upcs\":[\"1\"],\"maxPrice\":\"cheap\"}; at \"maxPrice\": Int cannot represent non-integer value: \"cheap\"",
        ),
        (
            json!({ "filter": { "upcs": ["1"], "colour": "red" } }),
            "Variable \"$filter\" got invalid value {\"upcs\":[\"1\"],\"colour\":\"red\"}; Field \"colour\" is not defined by type \"Filter\".",
        ),
        (
            json!({ "filter": { "upcs": [null] } }),
            "Variable \"$filter\" got invalid value {\"upcs\":[null]}; at \"upcs\": at index 0: expected non-nullable type \"String!\" not to be null.",
        ),
        (
            json!({ "filter": { "upcs": [] }, "n": "two" }),
            "Variable \"$n\" got invalid value \"two\"; Int cannot represent non-integer value: \"two\"",
        ),
    ] {
        let body = shop.post(query, variables.clone()).await;
        assert_eq!(
            body,
            json!({ "errors": [{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }] }),
            "{variables}"
        );
    }
    assert_eq!(shop.counts(), [0, 0, 0, 0]);
}
