//! Federation conformance: the gateway over small in-repo subgraphs written
//! with async-graphql 7 (federation on), one behaviour class at a time.
//!
//! Three little federations are served on 127.0.0.1:
//!
//! * the shop: `products` (owns Product, keys `upc` and `id`, and Shelf,
//!   composite key `aisle bay`), `reviews` (Product by `upc`, Review, User by
//!   `id`, `@provides`), `users` (User) and `inventory` (Product by `id`,
//!   `@requires`, `@override`, Shelf by its composite key);
//! * the library: `catalog` (an interface and a union over Book and Film)
//!   and `ratings` (fields on Book and Film);
//! * the jukebox: `media` (an entity interface Media, `@key` on the
//!   interface) and `plays` (Media as an `@interfaceObject`).
//!
//! Every test asserts the exact response; where it matters, the request
//! bodies each subgraph received show how the gateway fetched.
//!
//! What async-graphql 7 cannot express, and so is not covered here:
//! `@override(label: …)` (progressive override: `override_from` takes only
//! the subgraph name), and a `@requires` on a field whose argument is a
//! string (the `requires` text is written into the SDL unescaped, so quotes
//! break it); the required field with an argument uses an Int argument.
//!
//! async-graphql reports an error inside `_entities` without the list index
//! (`["_entities", "flaky"]`); the tests of re-pathed errors rely on the
//! gateway placing it anyway (see `execution::repath`).

mod support;

use std::sync::{Arc, Mutex};

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Enum, ID, InputObject, Interface, Object, Result,
    Schema, SimpleObject, Union,
};
use serde_json::{Value, json};
use support::Served;

// ---------------------------------------------------------------- the shop

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
enum Status {
    Active,
    Seasonal,
    /// Hidden from clients; product 3 still has it.
    #[graphql(inaccessible)]
    Retired,
}

struct Row {
    upc: &'static str,
    id: &'static str,
    name: &'static str,
    /// The stale price `products` still knows (inventory overrides the field).
    price: i32,
    weight: i32,
    status: Status,
    aisle: i32,
    bay: &'static str,
}

const ROWS: [Row; 3] = [
    Row {
        upc: "1",
        id: "p1",
        name: "Apple",
        price: 120,
        weight: 200,
        status: Status::Active,
        aisle: 1,
        bay: "A",
    },
    Row {
        upc: "2",
        id: "p2",
        name: "Bread",
        price: 250,
        weight: 500,
        status: Status::Seasonal,
        aisle: 1,
        bay: "A",
    },
    Row {
        upc: "3",
        id: "p3",
        name: "Cheese",
        price: 480,
        weight: 300,
        status: Status::Retired,
        aisle: 2,
        bay: "C",
    },
];

fn row_by_upc(upc: &str) -> Option<&'static Row> {
    ROWS.iter().find(|r| r.upc == upc)
}

fn row_by_id(id: &str) -> Option<&'static Row> {
    ROWS.iter().find(|r| r.id == id)
}

/// What the mutations of `products` and `users` append to, in the order they run.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn append(&self, x: String) -> String {
        let mut log = self.0.lock().unwrap();
        log.push(x);
        log.join(",")
    }
}

struct PProduct(&'static Row);

#[Object(name = "Product")]
impl PProduct {
    async fn upc(&self) -> &str {
        self.0.upc
    }

    async fn id(&self) -> ID {
        ID(self.0.id.into())
    }

    #[graphql(shareable)]
    async fn name(&self) -> &str {
        self.0.name
    }

    /// Overridden by inventory: a client never sees this value.
    async fn price(&self) -> i32 {
        self.0.price
    }

    async fn weight(&self) -> i32 {
        self.0.weight
    }

    /// The weight in grams times `factor` (1000 for milligrams).
    async fn weight_scaled(&self, factor: i32) -> i32 {
        self.0.weight * factor
    }

    async fn status(&self) -> Option<Status> {
        Some(self.0.status)
    }

    #[graphql(inaccessible)]
    async fn secret(&self) -> &str {
        "s3cret"
    }

    async fn shelf(&self) -> PShelf {
        PShelf {
            aisle: self.0.aisle,
            bay: self.0.bay.into(),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Shelf")]
struct PShelf {
    aisle: i32,
    bay: String,
}

#[derive(InputObject)]
struct Filter {
    upcs: Vec<String>,
    #[graphql(default = 1000)]
    max_price: i32,
}

struct PQuery;

#[Object(name = "Query")]
impl PQuery {
    async fn products(&self, first: Option<i32>) -> Vec<PProduct> {
        let n = first.map_or(ROWS.len(), |n| n.max(0) as usize);
        ROWS.iter().take(n).map(PProduct).collect()
    }

    async fn product(&self, upc: String) -> Option<PProduct> {
        row_by_upc(&upc).map(PProduct)
    }

    /// The products named by `filter.upcs`, in that order, at most `filter.maxPrice`.
    async fn search(&self, filter: Filter) -> Vec<PProduct> {
        filter
            .upcs
            .iter()
            .filter_map(|upc| row_by_upc(upc))
            .filter(|r| r.price <= filter.max_price)
            .map(PProduct)
            .collect()
    }

    async fn by_status(&self, status: Status) -> Vec<PProduct> {
        ROWS.iter()
            .filter(|r| r.status == status)
            .map(PProduct)
            .collect()
    }

    #[graphql(entity)]
    async fn product_by_upc(&self, upc: String) -> Option<PProduct> {
        row_by_upc(&upc).map(PProduct)
    }

    #[graphql(entity)]
    async fn product_by_id(&self, id: ID) -> Option<PProduct> {
        row_by_id(&id).map(PProduct)
    }

    #[graphql(entity)]
    async fn shelf_by_place(&self, aisle: i32, bay: String) -> PShelf {
        PShelf { aisle, bay }
    }
}

struct PMutation;

#[Object(name = "Mutation")]
impl PMutation {
    /// Appends `x` to the shared log; the log so far.
    async fn append_a(&self, ctx: &Context<'_>, x: String) -> String {
        ctx.data_unchecked::<Log>().append(x)
    }
}

struct IProduct {
    id: ID,
    weight: Option<i32>,
    weight_scaled: Option<i32>,
}

#[Object(name = "Product")]
impl IProduct {
    async fn id(&self) -> &ID {
        &self.id
    }

    #[graphql(override_from = "products")]
    async fn price(&self) -> i32 {
        match self.id.as_str() {
            "p1" => 99,
            "p2" => 199,
            _ => 399,
        }
    }

    async fn in_stock(&self) -> Option<bool> {
        Some(self.id.as_str() != "p2")
    }

    #[graphql(external)]
    async fn weight(&self) -> i32 {
        self.weight.unwrap_or_default()
    }

    #[graphql(requires = "weight")]
    async fn shipping_cost(&self) -> Option<i32> {
        self.weight.map(|w| w / 10)
    }

    #[graphql(external)]
    async fn weight_scaled(&self, factor: i32) -> i32 {
        let _ = factor;
        self.weight_scaled.unwrap_or_default()
    }

    /// Requires a field with an argument.
    #[graphql(requires = "weightScaled(factor: 1000)")]
    async fn label(&self) -> Option<String> {
        self.weight_scaled.map(|mg| format!("{mg} mg"))
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Shelf")]
struct IShelf {
    aisle: i32,
    bay: String,
    temperature: i32,
}

struct IQuery;

#[Object(name = "Query")]
impl IQuery {
    #[graphql(entity)]
    async fn product_by_id(
        &self,
        #[graphql(key)] id: ID,
        weight: Option<i32>,
        weight_scaled: Option<i32>,
    ) -> IProduct {
        IProduct {
            id,
            weight,
            weight_scaled,
        }
    }

    #[graphql(entity)]
    async fn shelf_by_place(&self, aisle: i32, bay: String) -> IShelf {
        IShelf {
            temperature: if aisle == 1 { 4 } else { 12 },
            aisle,
            bay,
        }
    }
}

struct ReviewRow {
    id: &'static str,
    upc: &'static str,
    author: &'static str,
    stars: i32,
    body: &'static str,
}

const REVIEWS: [ReviewRow; 3] = [
    ReviewRow {
        id: "r1",
        upc: "1",
        author: "u1",
        stars: 5,
        body: "Crisp",
    },
    ReviewRow {
        id: "r2",
        upc: "1",
        author: "u2",
        stars: 2,
        body: "Bruised",
    },
    ReviewRow {
        id: "r3",
        upc: "2",
        author: "u1",
        stars: 4,
        body: "Fresh",
    },
];

struct RProduct {
    upc: String,
    /// Known only where `Review.product` provides it.
    name: Option<&'static str>,
}

#[Object(name = "Product")]
impl RProduct {
    async fn upc(&self) -> &str {
        &self.upc
    }

    #[graphql(external)]
    async fn name(&self) -> &str {
        self.name.unwrap_or_default()
    }

    async fn reviews(&self, #[graphql(default)] min_stars: i32) -> Vec<Review> {
        REVIEWS
            .iter()
            .filter(|r| r.upc == self.upc && r.stars >= min_stars)
            .map(Review)
            .collect()
    }

    /// Fails for product 3: a non-null field that resolves to null.
    async fn review_count(&self) -> Result<i32> {
        if self.upc == "3" {
            return Err("no review count for 3".into());
        }
        Ok(REVIEWS.iter().filter(|r| r.upc == self.upc).count() as i32)
    }

    /// Fails for product 2: a nullable field with an error.
    async fn flaky(&self) -> Result<Option<String>> {
        if self.upc == "2" {
            return Err("flaky broke for 2".into());
        }
        Ok(Some(format!("fine {}", self.upc)))
    }
}

struct Review(&'static ReviewRow);

#[Object]
impl Review {
    async fn id(&self) -> ID {
        ID(self.0.id.into())
    }

    async fn body(&self) -> &str {
        self.0.body
    }

    async fn stars(&self) -> i32 {
        self.0.stars
    }

    async fn author(&self) -> RUser {
        RUser {
            id: ID(self.0.author.into()),
        }
    }

    #[graphql(provides = "name")]
    async fn product(&self) -> RProduct {
        RProduct {
            upc: self.0.upc.into(),
            name: row_by_upc(self.0.upc).map(|r| r.name),
        }
    }
}

struct RUser {
    id: ID,
}

#[Object(name = "User")]
impl RUser {
    async fn id(&self) -> &ID {
        &self.id
    }

    async fn reviews(&self) -> Vec<Review> {
        REVIEWS
            .iter()
            .filter(|r| r.author == self.id.as_str())
            .map(Review)
            .collect()
    }
}

struct RQuery;

#[Object(name = "Query")]
impl RQuery {
    async fn latest_reviews(&self) -> Vec<Review> {
        REVIEWS.iter().rev().map(Review).collect()
    }

    #[graphql(entity)]
    async fn product_by_upc(&self, upc: String) -> RProduct {
        RProduct { upc, name: None }
    }

    #[graphql(entity)]
    async fn user_by_id(&self, id: ID) -> RUser {
        RUser { id }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "User")]
struct UUser {
    id: ID,
    name: String,
}

fn user(id: &str) -> Option<UUser> {
    let name = match id {
        "u1" => "Ada",
        "u2" => "Bob",
        _ => return None,
    };
    Some(UUser {
        id: ID(id.into()),
        name: name.into(),
    })
}

struct UQuery;

#[Object(name = "Query")]
impl UQuery {
    async fn me(&self) -> Option<UUser> {
        user("u1")
    }

    #[graphql(entity)]
    async fn user_by_id(&self, id: ID) -> Option<UUser> {
        user(&id)
    }
}

struct UMutation;

#[Object(name = "Mutation")]
impl UMutation {
    /// Appends `x` to the shared log; the log so far.
    async fn append_b(&self, ctx: &Context<'_>, x: String) -> String {
        ctx.data_unchecked::<Log>().append(x)
    }
}

struct Shop {
    products: Served,
    reviews: Served,
    users: Served,
    inventory: Served,
    gw: Arc<gateway::Gateway>,
}

impl Shop {
    async fn new() -> Self {
        let log = Log::default();
        let products = support::serve(
            "products",
            Schema::build(PQuery, PMutation, EmptySubscription)
                .data(log.clone())
                .enable_federation()
                .finish(),
        )
        .await;
        let reviews = support::serve(
            "reviews",
            Schema::build(RQuery, EmptyMutation, EmptySubscription)
                .enable_federation()
                .finish(),
        )
        .await;
        let users = support::serve(
            "users",
            Schema::build(UQuery, UMutation, EmptySubscription)
                .data(log)
                .enable_federation()
                .finish(),
        )
        .await;
        let inventory = support::serve(
            "inventory",
            Schema::build(IQuery, EmptyMutation, EmptySubscription)
                .enable_federation()
                .finish(),
        )
        .await;
        let gw = support::gateway(&support::supergraph(&[
            &products, &reviews, &users, &inventory,
        ]));
        Self {
            products,
            reviews,
            users,
            inventory,
            gw,
        }
    }

    async fn post(&self, query: &str, variables: Value) -> Value {
        let (status, body, _) = support::post_with_status(&self.gw, query, variables, &[]).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    fn forget(&self) {
        for s in [&self.products, &self.reviews, &self.users, &self.inventory] {
            s.forget();
        }
    }

    /// How many requests each subgraph received: products, reviews, users, inventory.
    fn counts(&self) -> [usize; 4] {
        [&self.products, &self.reviews, &self.users, &self.inventory].map(|s| s.requests().len())
    }
}

/// The representations of each `_entities` request `served` received, in order.
fn entity_requests(served: &Served) -> Vec<Vec<Value>> {
    served
        .requests()
        .iter()
        .map(|body| {
            body["variables"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(name, _)| {
                    name.as_str() == "representations" || name.starts_with("__batch_reps")
                })
                .flat_map(|(_, reps)| reps.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .collect()
}

/// `response` with each error's `locations` removed: subgraph errors carry
/// positions in the subgraph's document, which clients never wrote.
fn without_locations(mut response: Value) -> Value {
    if let Some(errors) = response["errors"].as_array_mut() {
        for error in errors {
            if let Some(map) = error.as_object_mut() {
                map.remove("locations");
            }
        }
    }
    response
}

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

// ------------------------------------------------------------- the library

#[derive(SimpleObject, Clone)]
struct Book {
    id: ID,
    title: String,
    pages: i32,
}

#[derive(SimpleObject, Clone)]
struct Film {
    id: ID,
    title: String,
    minutes: i32,
}

#[derive(Interface, Clone)]
#[graphql(field(name = "id", ty = "&ID"), field(name = "title", ty = "&String"))]
enum Item {
    Book(Book),
    Film(Film),
}

#[derive(Union, Clone)]
enum Found {
    Book(Book),
    Film(Film),
}

fn library() -> Vec<Item> {
    let book = |id: &str, title: &str, pages| {
        Item::Book(Book {
            id: ID(id.into()),
            title: title.into(),
            pages,
        })
    };
    vec![
        book("b1", "Dune", 412),
        Item::Film(Film {
            id: ID("f1".into()),
            title: "Alien".into(),
            minutes: 117,
        }),
        book("b2", "Emma", 320),
    ]
}

struct CQuery;

#[Object(name = "Query")]
impl CQuery {
    async fn items(&self) -> Vec<Item> {
        library()
    }

    /// Books and films whose title contains `term`, ignoring case.
    async fn search(&self, term: String) -> Vec<Found> {
        library()
            .into_iter()
            .filter_map(|item| match item {
                Item::Book(b) if b.title.to_lowercase().contains(&term) => Some(Found::Book(b)),
                Item::Film(f) if f.title.to_lowercase().contains(&term) => Some(Found::Film(f)),
                _ => None,
            })
            .collect()
    }

    #[graphql(entity)]
    async fn book_by_id(&self, id: ID) -> Option<Book> {
        library().into_iter().find_map(|i| match i {
            Item::Book(b) if b.id == id => Some(b),
            _ => None,
        })
    }

    #[graphql(entity)]
    async fn film_by_id(&self, id: ID) -> Option<Film> {
        library().into_iter().find_map(|i| match i {
            Item::Film(f) if f.id == id => Some(f),
            _ => None,
        })
    }
}

#[derive(SimpleObject)]
struct Rating {
    stars: i32,
    votes: i32,
}

fn rating(id: &str) -> Rating {
    let (stars, votes) = match id {
        "b1" => (5, 10),
        "f1" => (4, 20),
        _ => (3, 30),
    };
    Rating { stars, votes }
}

struct RatedBook {
    id: ID,
}

#[Object(name = "Book")]
impl RatedBook {
    async fn id(&self) -> &ID {
        &self.id
    }

    async fn rating(&self) -> Rating {
        rating(&self.id)
    }
}

struct RatedFilm {
    id: ID,
}

#[Object(name = "Film")]
impl RatedFilm {
    async fn id(&self) -> &ID {
        &self.id
    }

    async fn rating(&self) -> Rating {
        rating(&self.id)
    }
}

struct RatingsQuery;

#[Object(name = "Query")]
impl RatingsQuery {
    #[graphql(entity)]
    async fn book_by_id(&self, id: ID) -> RatedBook {
        RatedBook { id }
    }

    #[graphql(entity)]
    async fn film_by_id(&self, id: ID) -> RatedFilm {
        RatedFilm { id }
    }
}

// 2. Interfaces and unions.

#[tokio::test]
async fn interfaces_and_unions_get_fields_from_other_subgraphs() {
    let catalog = support::serve(
        "catalog",
        Schema::build(CQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await;
    let ratings = support::serve(
        "ratings",
        Schema::build(RatingsQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await;
    let gw = support::gateway(&support::supergraph(&[&catalog, &ratings]));
    let query = r#"
      query Library {
        __typename
        items {
          __typename
          id
          ...ItemTitle
          ... on Book { pages rating { __typename stars } }
          ... on Film { minutes rating { votes } }
        }
        search(term: "e") {
          __typename
          ... on Item { id }
          ... on Book { title rating { stars } }
          ...FilmTitle
        }
      }
      fragment ItemTitle on Item { title }
      fragment FilmTitle on Film { title }
    "#;
    let (body, _) = support::post(&gw, query, json!({}), &[]).await;
    assert_eq!(
        body,
        json!({ "data": {
            "__typename": "Query",
            "items": [
                { "__typename": "Book", "id": "b1", "title": "Dune", "pages": 412, "rating": { "__typename": "Rating", "stars": 5 } },
                { "__typename": "Film", "id": "f1", "title": "Alien", "minutes": 117, "rating": { "votes": 20 } },
                { "__typename": "Book", "id": "b2", "title": "Emma", "pages": 320, "rating": { "__typename": "Rating", "stars": 3 } },
            ],
            "search": [
                { "__typename": "Book", "id": "b1", "title": "Dune", "rating": { "stars": 5 } },
                { "__typename": "Film", "id": "f1", "title": "Alien" },
                { "__typename": "Book", "id": "b2", "title": "Emma", "rating": { "stars": 3 } },
            ],
        } })
    );
    // Books and films from both root fields: each asked for once.
    let mut asked: Vec<Value> = entity_requests(&ratings).concat();
    asked.sort_by_key(Value::to_string);
    asked.dedup();
    assert_eq!(
        asked,
        [
            json!({ "__typename": "Book", "id": "b1" }),
            json!({ "__typename": "Book", "id": "b2" }),
            json!({ "__typename": "Film", "id": "f1" }),
        ]
    );
}

// ------------------------------------------------------------- the jukebox

#[derive(SimpleObject, Clone)]
struct Song {
    id: ID,
    title: String,
    artist: String,
}

#[derive(SimpleObject, Clone)]
struct Podcast {
    id: ID,
    title: String,
    host: String,
}

#[derive(Interface, Clone)]
#[graphql(field(name = "id", ty = "&ID"), field(name = "title", ty = "&String"))]
enum Media {
    Song(Song),
    Podcast(Podcast),
}

fn media() -> Vec<Media> {
    vec![
        Media::Podcast(Podcast {
            id: ID("c1".into()),
            title: "Talk".into(),
            host: "Bob".into(),
        }),
        Media::Song(Song {
            id: ID("s1".into()),
            title: "Blue".into(),
            artist: "Ann".into(),
        }),
    ]
}

fn media_by_id(id: &ID) -> Option<Media> {
    media().into_iter().find(|m| match m {
        Media::Song(s) => &s.id == id,
        Media::Podcast(p) => &p.id == id,
    })
}

struct MediaQuery;

#[Object(name = "Query")]
impl MediaQuery {
    async fn media(&self) -> Vec<Media> {
        media()
    }

    #[graphql(entity)]
    async fn media_by_id(&self, id: ID) -> Option<Media> {
        media_by_id(&id)
    }

    #[graphql(entity)]
    async fn song_by_id(&self, id: ID) -> Option<Song> {
        match media_by_id(&id) {
            Some(Media::Song(s)) => Some(s),
            _ => None,
        }
    }

    #[graphql(entity)]
    async fn podcast_by_id(&self, id: ID) -> Option<Podcast> {
        match media_by_id(&id) {
            Some(Media::Podcast(p)) => Some(p),
            _ => None,
        }
    }
}

/// `Media` as the plays subgraph sees it: an object standing for the interface.
#[derive(SimpleObject)]
#[graphql(name = "Media", interface_object)]
struct PlayedMedia {
    id: ID,
    plays: i32,
}

fn played(id: ID) -> PlayedMedia {
    let plays = match id.as_str() {
        "s1" => 100,
        _ => 7,
    };
    PlayedMedia { id, plays }
}

struct PlaysQuery;

#[Object(name = "Query")]
impl PlaysQuery {
    async fn most_played(&self) -> Vec<PlayedMedia> {
        vec![played(ID("s1".into())), played(ID("c1".into()))]
    }

    #[graphql(entity)]
    async fn media_by_id(&self, id: ID) -> PlayedMedia {
        played(id)
    }
}

// 3. @interfaceObject.

#[tokio::test]
async fn interface_objects_add_fields_to_every_implementation() {
    let media = support::serve(
        "media",
        Schema::build(MediaQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await;
    let plays = support::serve(
        "plays",
        Schema::build(PlaysQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await;
    let gw = support::gateway(&support::supergraph(&[&media, &plays]));

    // From the interface's subgraph to the interface object's.
    let (body, _) = support::post(
        &gw,
        "{ media { __typename id title plays ... on Song { artist } ... on Podcast { host } } }",
        json!({}),
        &[],
    )
    .await;
    assert_eq!(
        body,
        json!({ "data": { "media": [
            { "__typename": "Podcast", "id": "c1", "title": "Talk", "plays": 7, "host": "Bob" },
            { "__typename": "Song", "id": "s1", "title": "Blue", "plays": 100, "artist": "Ann" },
        ] } })
    );
    assert_eq!(
        entity_requests(&plays),
        [[
            json!({ "__typename": "Media", "id": "c1" }),
            json!({ "__typename": "Media", "id": "s1" }),
        ]],
        "the interface object is asked under the interface's name"
    );
    plays.forget();

    // From the interface object: the concrete type comes from the interface's subgraph.
    media.forget();
    let (body, _) = support::post(
        &gw,
        "{ mostPlayed { __typename id plays title ... on Podcast { host } } }",
        json!({}),
        &[],
    )
    .await;
    assert_eq!(
        body,
        json!({ "data": { "mostPlayed": [
            { "__typename": "Song", "id": "s1", "plays": 100, "title": "Blue" },
            { "__typename": "Podcast", "id": "c1", "plays": 7, "title": "Talk", "host": "Bob" },
        ] } })
    );
    assert_eq!(plays.requests().len(), 1);
    assert_eq!(
        entity_requests(&media),
        [[
            json!({ "__typename": "Media", "id": "s1" }),
            json!({ "__typename": "Media", "id": "c1" }),
        ]],
        "the interface's subgraph tells the concrete types, in one request"
    );

    // Fragments on a concrete type apply by the type the interface's subgraph told.
    let (body, _) = support::post(
        &gw,
        "{ mostPlayed { ... on Song { artist } plays } media { ... on Song { id } } }",
        json!({}),
        &[],
    )
    .await;
    assert_eq!(
        body,
        json!({ "data": {
            "mostPlayed": [{ "artist": "Ann", "plays": 100 }, { "plays": 7 }],
            "media": [{}, { "id": "s1" }],
        } })
    );
}
