use serde_json::{Value, json};

use crate::support::*;

const PRODUCTS: &str = "query($first: Int, $after: String, $search: String, $category: String, $all: Boolean) {
    products(first: $first, after: $after, search: $search, category: $category, includeInactive: $all) {
        totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { sku } } } }";

fn skus(resp: &Value) -> Vec<String> {
    assert_no_errors(resp);
    resp["data"]["products"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["sku"].as_str().unwrap().to_owned())
        .collect()
}

async fn deactivate(app: &TestApp, sku: &str) {
    let resp = app
        .gql(
            Some(&app.admin),
            "mutation($s: String!) { updateProduct(sku: $s, input: { active: false }) { active } }",
            json!({ "s": sku }),
        )
        .await;
    assert_no_errors(&resp);
}

#[tokio::test]
async fn products_page_through_the_catalog_in_sku_order() {
    let app = TestApp::new().await;
    for sku in ["MILK", "APPLE", "EGGS", "BREAD", "CHEESE"] {
        app.product(sku, &format!("{sku} name")).await;
    }
    let page1 = app.gql(None, PRODUCTS, json!({ "first": 2 })).await;
    assert_eq!(skus(&page1), ["APPLE", "BREAD"]);
    let products = &page1["data"]["products"];
    assert_eq!(products["totalCount"], 5);
    assert_eq!(products["pageInfo"]["hasNextPage"], true);
    assert_eq!(products["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(
        products["edges"][1]["cursor"],
        kit::pagination::encode_cursor("BREAD")
    );
    assert_eq!(
        products["pageInfo"]["endCursor"],
        products["edges"][1]["cursor"]
    );

    let after = products["pageInfo"]["endCursor"].clone();
    let page2 = app
        .gql(None, PRODUCTS, json!({ "first": 2, "after": after }))
        .await;
    assert_eq!(skus(&page2), ["CHEESE", "EGGS"]);
    assert_eq!(page2["data"]["products"]["totalCount"], 5);
    assert_eq!(page2["data"]["products"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(
        page2["data"]["products"]["pageInfo"]["hasPreviousPage"],
        true
    );

    let after = page2["data"]["products"]["pageInfo"]["endCursor"].clone();
    let page3 = app
        .gql(None, PRODUCTS, json!({ "first": 2, "after": after }))
        .await;
    assert_eq!(skus(&page3), ["MILK"]);
    assert_eq!(page3["data"]["products"]["pageInfo"]["hasNextPage"], false);

    let everything = app.gql(None, PRODUCTS, json!({})).await;
    assert_eq!(skus(&everything).len(), 5, "first defaults to 20");
    let none = app.gql(None, PRODUCTS, json!({ "first": 0 })).await;
    assert_eq!(skus(&none), Vec::<String>::new());
    assert_eq!(none["data"]["products"]["pageInfo"]["hasNextPage"], true);
}

#[tokio::test]
async fn products_refuses_bad_page_arguments() {
    let app = TestApp::new().await;
    for vars in [
        json!({ "first": 101 }),
        json!({ "first": -1 }),
        json!({ "after": "!!" }),
    ] {
        let resp = app.gql(None, PRODUCTS, vars.clone()).await;
        assert_eq!(code(&resp), "BAD_USER_INPUT", "{vars}");
    }
}

#[tokio::test]
async fn search_matches_names_case_insensitively_with_literal_wildcards() {
    let app = TestApp::new().await;
    app.product("JUICE-100", "100% Orange Juice").await;
    app.product("JUICE-APPLE", "Cloudy Apple juice").await;
    app.product("TEA-SNAKE", "Snake_Case Tea").await;
    app.product("TEA-PLAIN", "SnakeXCase Tea").await;
    app.product("BACKSLASH", r"Back\slash Beans").await;

    let search = |term: &str| app.gql(None, PRODUCTS, json!({ "search": term }));
    assert_eq!(skus(&search("JUICE").await), ["JUICE-100", "JUICE-APPLE"]);
    assert_eq!(skus(&search("  apple ju ").await), ["JUICE-APPLE"]);
    assert_eq!(skus(&search("%").await), ["JUICE-100"]);
    assert_eq!(skus(&search("0% o").await), ["JUICE-100"]);
    assert_eq!(skus(&search("e_c").await), ["TEA-SNAKE"]);
    assert_eq!(skus(&search(r"k\s").await), ["BACKSLASH"]);
    assert_eq!(skus(&search("tea").await), ["TEA-PLAIN", "TEA-SNAKE"]);
    let nothing = search("pineapple").await;
    assert_eq!(skus(&nothing), Vec::<String>::new());
    assert_eq!(nothing["data"]["products"]["totalCount"], 0);
    // A blank search is no filter.
    assert_eq!(skus(&search("  ").await).len(), 5);
}

#[tokio::test]
async fn category_filter_is_exact_and_ignores_case() {
    let app = TestApp::new().await;
    for (sku, category) in [
        ("APPLE", "fruit"),
        ("PEAR", "Fruit"),
        ("FIG", "fruits"),
        ("MILK", "dairy"),
    ] {
        assert_no_errors(
            &app.create(json!({ "sku": sku, "name": sku, "category": category }))
                .await,
        );
    }
    let fruit = app
        .gql(None, PRODUCTS, json!({ "category": " FRUIT " }))
        .await;
    assert_eq!(skus(&fruit), ["APPLE", "PEAR"]);
    assert_eq!(fruit["data"]["products"]["totalCount"], 2);
    let both = app
        .gql(
            None,
            PRODUCTS,
            json!({ "category": "fruit", "search": "PE" }),
        )
        .await;
    assert_eq!(skus(&both), ["PEAR"]);
}

#[tokio::test]
async fn inactive_products_are_listed_only_for_admins_who_ask() {
    let app = TestApp::new().await;
    for sku in ["APPLE", "BANANA", "CHERRY"] {
        app.product(sku, sku).await;
    }
    deactivate(&app, "BANANA").await;

    let shoppers = app.gql(Some(&app.customer), PRODUCTS, json!({})).await;
    assert_eq!(skus(&shoppers), ["APPLE", "CHERRY"]);
    assert_eq!(shoppers["data"]["products"]["totalCount"], 2);
    let admin_default = app.gql(Some(&app.admin), PRODUCTS, json!({})).await;
    assert_eq!(skus(&admin_default), ["APPLE", "CHERRY"]);
    let admin_all = app
        .gql(Some(&app.admin), PRODUCTS, json!({ "all": true }))
        .await;
    assert_eq!(skus(&admin_all), ["APPLE", "BANANA", "CHERRY"]);
    assert_eq!(admin_all["data"]["products"]["totalCount"], 3);

    let customer = app
        .gql(Some(&app.customer), PRODUCTS, json!({ "all": true }))
        .await;
    assert_eq!(code(&customer), "FORBIDDEN");
    let anonymous = app.gql(None, PRODUCTS, json!({ "all": true })).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    let explicit_false = app.gql(None, PRODUCTS, json!({ "all": false })).await;
    assert_eq!(skus(&explicit_false), ["APPLE", "CHERRY"]);
}

#[tokio::test]
async fn product_looks_up_any_case_and_shows_inactive_products() {
    let app = TestApp::new().await;
    app.product("APPLE", "Gala Apples").await;
    app.product("BANANA", "Bananas").await;
    deactivate(&app, "BANANA").await;
    let query = "query($s: String!) { product(sku: $s) { sku name active } }";

    let apple = app.gql(None, query, json!({ "s": " apple " })).await;
    assert_eq!(
        apple["data"]["product"],
        json!({ "sku": "APPLE", "name": "Gala Apples", "active": true })
    );
    let banana = app
        .gql(Some(&app.customer), query, json!({ "s": "Banana" }))
        .await;
    assert_eq!(banana["data"]["product"]["active"], false);
    let missing = app.gql(None, query, json!({ "s": "KIWI" })).await;
    assert_no_errors(&missing);
    assert_eq!(missing["data"]["product"], Value::Null);
    let malformed = app.gql(None, query, json!({ "s": "not a sku" })).await;
    assert_eq!(code(&malformed), "BAD_USER_INPUT");
    assert_eq!(field(&malformed), "sku");
}
