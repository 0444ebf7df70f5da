//! Nulls, errors, a subgraph down and mutations in order, over the shop
//! (section 8).

use crate::*;

// 8. Nulls, errors, a subgraph down, mutations.

#[tokio::test]
async fn a_null_in_a_non_null_field_nulls_the_nearest_nullable_parent() {
    let shop = Shop::new().await;
    // reviewCount is Int! and fails for product 3; `product` is nullable.
    let body = shop
        .post(
            r#"{ product(upc: "3") { upc reviewCount } other: product(upc: "1") { upc reviewCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        without_locations(body),
        json!({
            "data": { "product": null, "other": { "upc": "1", "reviewCount": 2 } },
            "errors": [{
                "message": "no review count for 3",
                "path": ["product", "reviewCount"],
                "extensions": { "serviceName": "reviews" },
            }],
        })
    );
    // In `[Product!]!` at the root there is no nullable parent short of data.
    let body = shop
        .post("{ products { upc reviewCount } }", json!({}))
        .await;
    assert_eq!(
        without_locations(body),
        json!({
            "data": null,
            "errors": [{
                "message": "no review count for 3",
                "path": ["products", 2, "reviewCount"],
                "extensions": { "serviceName": "reviews" },
            }],
        })
    );
}

#[tokio::test]
async fn entity_field_errors_are_repathed_to_the_clients_path() {
    let shop = Shop::new().await;
    // flaky fails for product 2. reviews (an async-graphql subgraph) reports
    // it at ["_entities", "flaky"], without the index, and leaves the field
    // out of that entity: the gateway still finds whose it is.
    let body = shop
        .post(
            "{ items: products { upc flaky reviews { stars } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        without_locations(body),
        json!({
            "data": { "items": [
                { "upc": "1", "flaky": "fine 1", "reviews": [{ "stars": 5 }, { "stars": 2 }] },
                { "upc": "2", "flaky": null, "reviews": [{ "stars": 4 }] },
                { "upc": "3", "flaky": "fine 3", "reviews": [] },
            ] },
            "errors": [{
                "message": "flaky broke for 2",
                "path": ["items", 1, "flaky"],
                "extensions": { "serviceName": "reviews" },
            }],
        })
    );
    // Through a nested entity: the path runs through the client's aliases and indexes.
    let body = shop
        .post(
            r#"{ latestReviews { about: product { upc flaky } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        without_locations(body),
        json!({
            "data": { "latestReviews": [
                { "about": { "upc": "2", "flaky": null } },
                { "about": { "upc": "1", "flaky": "fine 1" } },
                { "about": { "upc": "1", "flaky": "fine 1" } },
            ] },
            "errors": [{
                "message": "flaky broke for 2",
                "path": ["latestReviews", 0, "about", "flaky"],
                "extensions": { "serviceName": "reviews" },
            }],
        })
    );
}

#[tokio::test]
async fn a_subgraph_that_is_down_leaves_partial_data_and_errors_never_a_500() {
    let shop = Shop::new().await;
    let sdl = support::supergraph(&[&shop.products, &shop.reviews, &shop.users, &shop.inventory]);
    let sdl = sdl
        .replace(&shop.inventory.url, &support::unreachable_url())
        .replace(&shop.users.url, &support::unreachable_url());
    let gw = support::gateway(&sdl);
    let (status, body, _) = support::post_with_status(
        &gw,
        "{ me { name } products { upc name inStock } }",
        json!({}),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    // The message tells why (the OS's words): checked, then set aside.
    let mut body = body;
    for error in body["errors"].as_array_mut().unwrap() {
        let message = error["message"].as_str().unwrap();
        let service = error["extensions"]["serviceName"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("subgraph {service} failed: subgraph unreachable")),
            "{message}"
        );
        error["message"] = json!("…");
    }
    // Parallel fetches: their errors in a fixed order.
    body["errors"]
        .as_array_mut()
        .unwrap()
        .sort_by_key(|e| e["extensions"]["serviceName"].to_string());
    let down = |service: &str, path: Option<Value>, affected: Option<&str>| {
        let mut e = json!({ "message": "…", "extensions": { "code": "SUBGRAPH_ERROR", "serviceName": service } });
        if let Some(path) = path {
            e["path"] = path;
        }
        if let Some(affected) = affected {
            e["extensions"]["affectedPath"] = json!(affected);
        }
        e
    };
    // One error per failed fetch, however many objects it was to fill: the
    // three products' entity fetch is one, at the plan's path to them; the
    // root fetch of `me` is at `me`.
    assert_eq!(
        body,
        json!({
            "data": {
                "me": null,
                "products": [
                    { "upc": "1", "name": "Apple", "inStock": null },
                    { "upc": "2", "name": "Bread", "inStock": null },
                    { "upc": "3", "name": "Cheese", "inStock": null },
                ],
            },
            "errors": [
                down("inventory", None, Some("products.@")),
                down("users", Some(json!(["me"])), None),
            ],
        })
    );

    // An entity fetch for one object: its error has that object's path.
    let (status, body, _) = support::post_with_status(
        &gw,
        r#"{ product(upc: "2") { name inStock } }"#,
        json!({}),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let mut body = body;
    body["errors"][0]["message"] = json!("…");
    assert_eq!(
        body,
        json!({
            "data": { "product": { "name": "Bread", "inStock": null } },
            "errors": [down("inventory", Some(json!(["product"])), Some("product"))],
        })
    );
}

#[tokio::test]
async fn mutations_run_in_order_across_subgraphs() {
    let shop = Shop::new().await;
    let body = shop
        .post(
            r#"mutation { first: appendA(x: "1") second: appendB(x: "2") third: appendA(x: "3") }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        body,
        json!({ "data": { "first": "1", "second": "1,2", "third": "1,2,3" } })
    );
    // One request per root field: the gateway waited for each before the next.
    assert_eq!(shop.counts(), [2, 0, 1, 0]);
}
