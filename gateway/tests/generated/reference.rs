//! The reference: one async-graphql schema, no federation, serving the same
//! API over the same [`dataset`](super::dataset) as the four stubs. What it
//! answers is what the gateway must answer.

use async_graphql::{
    EmptyMutation, EmptySubscription, ID, Interface, Object, Result, Schema, Union,
};

use super::dataset::{self, BundleRow, ProductRow, ReviewRow, UserRow};
use super::stubs::{Category, ProductFilter};

/// The reference schema.
pub type Reference = Schema<Query, EmptyMutation, EmptySubscription>;

/// Builds the reference schema.
pub fn schema() -> Reference {
    Schema::build(Query, EmptyMutation, EmptySubscription).finish()
}

struct Product(&'static ProductRow);

#[Object]
impl Product {
    async fn sku(&self) -> &str {
        self.0.sku
    }
    async fn name(&self) -> &str {
        self.0.name
    }
    async fn price(&self) -> Option<i32> {
        self.0.price
    }
    async fn category(&self) -> Category {
        self.0.category.into()
    }
    async fn tags(&self) -> Vec<&str> {
        self.0.tags.to_vec()
    }
    async fn description(&self) -> Option<&str> {
        self.0.description
    }
    async fn weight(&self) -> i32 {
        self.0.weight
    }
    async fn stock(&self) -> i32 {
        dataset::stock(self.0.sku)
    }
    async fn warehouses(&self) -> Option<Vec<Option<&str>>> {
        dataset::warehouses(self.0.sku)
    }
    async fn restock_date(&self) -> Result<Option<&str>> {
        Ok(dataset::restock_date(self.0.sku)?)
    }
    async fn shipping_estimate(&self) -> Option<i32> {
        dataset::shipping_estimate(self.0.weight)
    }
    async fn reviews(&self, #[graphql(default = 0)] min_rating: i32) -> Vec<Review> {
        dataset::product_reviews(self.0.sku, min_rating)
            .into_iter()
            .map(Review)
            .collect()
    }
    async fn average_rating(&self) -> Option<f64> {
        dataset::average_rating(self.0.sku)
    }
    async fn review_count(&self) -> Result<i32> {
        Ok(dataset::review_count(self.0.sku)?)
    }
}

struct Bundle(&'static BundleRow);

#[Object]
impl Bundle {
    async fn id(&self) -> ID {
        ID(self.0.id.into())
    }
    async fn name(&self) -> &str {
        self.0.name
    }
    async fn price(&self) -> Option<i32> {
        self.0.price
    }
    async fn products(&self) -> Vec<Product> {
        self.0
            .skus
            .iter()
            .filter_map(|s| dataset::product(s))
            .map(Product)
            .collect()
    }
}

#[derive(Interface)]
#[graphql(
    field(name = "name", ty = "&str"),
    field(name = "price", ty = "Option<i32>")
)]
enum Sellable {
    Product(Product),
    Bundle(Bundle),
}

#[derive(Union)]
enum Listing {
    Product(Product),
    Bundle(Bundle),
}

struct User(&'static UserRow);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.into())
    }
    async fn name(&self) -> &str {
        self.0.name
    }
    async fn email(&self) -> Option<&str> {
        self.0.email
    }
    async fn friends(&self, first: Option<i32>) -> Vec<User> {
        dataset::friends(self.0, first)
            .into_iter()
            .map(User)
            .collect()
    }
    async fn favorite(&self) -> Option<Product> {
        self.0.favorite.and_then(dataset::product).map(Product)
    }
    async fn reviews(&self) -> Vec<Review> {
        dataset::user_reviews(self.0.id)
            .into_iter()
            .map(Review)
            .collect()
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
    async fn rating(&self) -> i32 {
        self.0.rating
    }
    async fn author(&self) -> Result<User> {
        Ok(User(dataset::user(self.0.author).ok_or("no such user")?))
    }
    async fn product(&self) -> Result<Product> {
        Ok(Product(
            dataset::product(self.0.sku).ok_or("no such product")?,
        ))
    }
    async fn flagged(&self) -> Result<Option<bool>> {
        Ok(dataset::flagged(self.0)?)
    }
    async fn verified(&self) -> Result<bool> {
        Ok(dataset::verified(self.0)?)
    }
}

/// The reference's root.
pub struct Query;

#[Object]
impl Query {
    async fn product(&self, sku: String) -> Option<Product> {
        dataset::product(&sku).map(Product)
    }
    async fn products(
        &self,
        #[graphql(default = 10)] first: i32,
        filter: Option<ProductFilter>,
    ) -> Option<Vec<Product>> {
        Some(
            dataset::products(first, &filter.into())
                .into_iter()
                .map(Product)
                .collect(),
        )
    }
    async fn bundle(&self, id: ID) -> Option<Bundle> {
        dataset::bundle(&id).map(Bundle)
    }
    async fn sellables(&self) -> Vec<Sellable> {
        let products = dataset::PRODUCTS
            .iter()
            .map(|p| Sellable::Product(Product(p)));
        products
            .chain(dataset::BUNDLES.iter().map(|b| Sellable::Bundle(Bundle(b))))
            .collect()
    }
    async fn listings(&self, category: Option<Category>) -> Vec<Option<Listing>> {
        dataset::listings(category.map(Into::into))
            .into_iter()
            .map(|slot| match slot {
                dataset::Listing::Product(p) => Some(Listing::Product(Product(p))),
                dataset::Listing::Bundle(b) => Some(Listing::Bundle(Bundle(b))),
                dataset::Listing::Hole => None,
            })
            .collect()
    }
    async fn user(&self, id: ID) -> Option<User> {
        dataset::user(&id).map(User)
    }
    async fn users(&self, ids: Vec<ID>) -> Vec<Option<User>> {
        ids.iter().map(|id| dataset::user(id).map(User)).collect()
    }
    async fn review(&self, id: ID) -> Option<Review> {
        dataset::review(&id).map(Review)
    }
    async fn top_reviews(&self, #[graphql(default = 3)] first: i32) -> Option<Vec<Review>> {
        Some(
            dataset::top_reviews(first)
                .into_iter()
                .map(Review)
                .collect(),
        )
    }
}
