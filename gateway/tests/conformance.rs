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

/// The tests, one behaviour class per file, over the federations below.
mod conformance {
    mod entities;
    mod failures;
    mod jukebox;
    mod library;
    mod operations;
}

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
