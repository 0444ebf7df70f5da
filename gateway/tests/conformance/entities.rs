//! The shop's entities: keys, batching, `@requires`/`@provides`,
//! `@shareable`/`@override` and `@inaccessible` (sections 1, 4, 5 and 6).

use crate::*;

// 1. Entities across subgraphs.

#[tokio::test]
async fn entities_resolve_by_single_composite_and_alternative_keys() {
    let shop = Shop::new().await;
    let body = shop
        .post(
            "{ products { upc inStock shelf { aisle bay temperature } reviews { stars } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body,
        json!({ "data": { "products": [
            { "upc": "1", "inStock": true, "shelf": { "aisle": 1, "bay": "A", "temperature": 4 }, "reviews": [{ "stars": 5 }, { "stars": 2 }] },
            { "upc": "2", "inStock": false, "shelf": { "aisle": 1, "bay": "A", "temperature": 4 }, "reviews": [{ "stars": 4 }] },
            { "upc": "3", "inStock": true, "shelf": { "aisle": 2, "bay": "C", "temperature": 12 }, "reviews": [] },
        ] } })
    );
    // reviews knows Product by `upc`, inventory by `id`: both keys are used.
    assert_eq!(
        entity_requests(&shop.reviews),
        [[
            json!({ "__typename": "Product", "upc": "1" }),
            json!({ "__typename": "Product", "upc": "2" }),
            json!({ "__typename": "Product", "upc": "3" }),
        ]]
    );
    // inventory: Shelves by their composite key (the shelf products 1 and 2
    // share sent once) and Products by `id`, in one request.
    assert_eq!(
        entity_requests(&shop.inventory),
        [[
            json!({ "__typename": "Shelf", "aisle": 1, "bay": "A" }),
            json!({ "__typename": "Shelf", "aisle": 2, "bay": "C" }),
            json!({ "__typename": "Product", "id": "p1" }),
            json!({ "__typename": "Product", "id": "p2" }),
            json!({ "__typename": "Product", "id": "p3" }),
        ]]
    );
    assert_eq!(shop.counts(), [1, 1, 0, 1]);

    // An entity reached by its other key: starting from `id` is as good as `upc`.
    shop.forget();
    let body = shop
        .post(
            r#"{ product(upc: "2") { id name inStock reviewCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        body,
        json!({ "data": { "product": { "id": "p2", "name": "Bread", "inStock": false, "reviewCount": 1 } } })
    );
    assert_eq!(
        entity_requests(&shop.inventory),
        [[json!({ "__typename": "Product", "id": "p2" })]]
    );
}

#[tokio::test]
async fn entity_fetches_are_batched_once_per_subgraph_and_step_and_deduplicated() {
    let shop = Shop::new().await;
    let body = shop
        .post(
            "{ products { name reviews { body author { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body,
        json!({ "data": { "products": [
            { "name": "Apple", "reviews": [
                { "body": "Crisp", "author": { "name": "Ada" } },
                { "body": "Bruised", "author": { "name": "Bob" } },
            ] },
            { "name": "Bread", "reviews": [{ "body": "Fresh", "author": { "name": "Ada" } }] },
            { "name": "Cheese", "reviews": [] },
        ] } })
    );
    // products → reviews → users: one request each.
    assert_eq!(shop.counts(), [1, 1, 1, 0]);
    assert_eq!(
        entity_requests(&shop.reviews),
        [[
            json!({ "__typename": "Product", "upc": "1" }),
            json!({ "__typename": "Product", "upc": "2" }),
            json!({ "__typename": "Product", "upc": "3" }),
        ]]
    );
    // Ada wrote two of the three reviews: she is asked for once.
    assert_eq!(
        entity_requests(&shop.users),
        [[
            json!({ "__typename": "User", "id": "u1" }),
            json!({ "__typename": "User", "id": "u2" }),
        ]]
    );

    // The same product under two aliases: one representation.
    shop.forget();
    let body = shop
        .post(
            r#"{ a: product(upc: "1") { reviewCount } b: product(upc: "1") { reviewCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        body,
        json!({ "data": { "a": { "reviewCount": 2 }, "b": { "reviewCount": 2 } } })
    );
    assert_eq!(
        entity_requests(&shop.reviews),
        [[json!({ "__typename": "Product", "upc": "1" })]]
    );
}

// 4. @requires and @provides.

#[tokio::test]
async fn requires_sends_the_required_fields_with_the_representation() {
    let shop = Shop::new().await;
    let body = shop
        .post("{ products { upc shippingCost label } }", json!({}))
        .await;
    assert_eq!(
        body,
        json!({ "data": { "products": [
            { "upc": "1", "shippingCost": 20, "label": "200000 mg" },
            { "upc": "2", "shippingCost": 50, "label": "500000 mg" },
            { "upc": "3", "shippingCost": 30, "label": "300000 mg" },
        ] } })
    );
    assert_eq!(shop.counts(), [1, 0, 0, 1]);
    assert_eq!(
        entity_requests(&shop.inventory),
        [[
            json!({ "__typename": "Product", "id": "p1", "weight": 200, "weightScaled": 200000 }),
            json!({ "__typename": "Product", "id": "p2", "weight": 500, "weightScaled": 500000 }),
            json!({ "__typename": "Product", "id": "p3", "weight": 300, "weightScaled": 300000 }),
        ]]
    );
}

#[tokio::test]
async fn provides_spares_the_owner_a_fetch() {
    let shop = Shop::new().await;
    let body = shop
        .post("{ latestReviews { body product { upc name } } }", json!({}))
        .await;
    assert_eq!(
        body,
        json!({ "data": { "latestReviews": [
            { "body": "Fresh", "product": { "upc": "2", "name": "Bread" } },
            { "body": "Bruised", "product": { "upc": "1", "name": "Apple" } },
            { "body": "Crisp", "product": { "upc": "1", "name": "Apple" } },
        ] } })
    );
    assert_eq!(
        shop.counts(),
        [0, 1, 0, 0],
        "name is provided by reviews: products is not asked"
    );

    // What is not provided comes from its owner, each product once.
    shop.forget();
    let body = shop
        .post("{ latestReviews { product { name weight } } }", json!({}))
        .await;
    assert_eq!(
        body,
        json!({ "data": { "latestReviews": [
            { "product": { "name": "Bread", "weight": 500 } },
            { "product": { "name": "Apple", "weight": 200 } },
            { "product": { "name": "Apple", "weight": 200 } },
        ] } })
    );
    assert_eq!(shop.counts(), [1, 1, 0, 0]);
    assert_eq!(
        entity_requests(&shop.products),
        [[
            json!({ "__typename": "Product", "upc": "2" }),
            json!({ "__typename": "Product", "upc": "1" }),
        ]]
    );
}

// 5. @shareable and @override.

#[tokio::test]
async fn overridden_fields_come_from_the_new_owner_and_shareable_ones_from_one() {
    let shop = Shop::new().await;
    let body = shop
        .post("{ products { upc name price } }", json!({}))
        .await;
    assert_eq!(
        body,
        json!({ "data": { "products": [
            { "upc": "1", "name": "Apple", "price": 99 },
            { "upc": "2", "name": "Bread", "price": 199 },
            { "upc": "3", "name": "Cheese", "price": 399 },
        ] } })
    );
    assert_eq!(shop.counts(), [1, 0, 0, 1]);
    let sent = shop.products.requests()[0]["query"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !sent.contains("price"),
        "products is not asked for price: {sent}"
    );
}

// 6. @inaccessible.

#[tokio::test]
async fn inaccessible_fields_and_enum_values_are_hidden() {
    let shop = Shop::new().await;
    let body = shop.post("{ products { upc secret } }", json!({})).await;
    assert_eq!(
        body,
        json!({ "errors": [{
            "message": "Cannot query field \"secret\" on type \"Product\".",
            "locations": [{ "line": 1, "column": 18 }],
            "extensions": { "code": "GRAPHQL_VALIDATION_FAILED" },
        }] })
    );
    let body = shop
        .post("{ byStatus(status: RETIRED) { upc } }", json!({}))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{body}"
    );
    assert_eq!(body.get("data"), None, "{body}");
    let body = shop
        .post(
            "query($s: Status!) { byStatus(status: $s) { upc } }",
            json!({ "s": "RETIRED" }),
        )
        .await;
    assert_eq!(
        body,
        json!({ "errors": [{
            "message": "Variable \"$s\" got invalid value \"RETIRED\"; Value \"RETIRED\" does not exist in \"Status\" enum.",
            "extensions": { "code": "BAD_USER_INPUT" },
        }] })
    );
    assert_eq!(shop.counts(), [0, 0, 0, 0], "refused before any fetch");

    // A hidden value coming from a subgraph: null, with an error at its path.
    let body = shop.post("{ products { upc status } }", json!({})).await;
    assert_eq!(
        body,
        json!({
            "data": { "products": [
                { "upc": "1", "status": "ACTIVE" },
                { "upc": "2", "status": "SEASONAL" },
                { "upc": "3", "status": null },
            ] },
            "errors": [{
                "message": "Enum \"Status\" cannot represent value: \"RETIRED\"",
                "path": ["products", 2, "status"],
                "extensions": { "code": "INTERNAL_SERVER_ERROR" },
            }],
        })
    );
    let body = shop
        .post(
            r#"{ __type(name: "Status") { enumValues { name } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        body,
        json!({ "data": { "__type": { "enumValues": [{ "name": "ACTIVE" }, { "name": "SEASONAL" }] } } })
    );
}
