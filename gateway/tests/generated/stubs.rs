//! The federation under test: four async-graphql subgraphs over the shared
//! [`dataset`](super::dataset), served on 127.0.0.1 and composed by the
//! gateway's own composer.
//!
//! * `products` owns Product (key `sku`), Bundle, the Sellable interface and
//!   the Listing union;
//! * `accounts` owns User (key `id`) and references Product (`favorite`);
//! * `reviews` owns Review, adds fields to Product and User, and provides
//!   `Product.name` on `Review.product`;
//! * `inventory` adds fields to Product, one of them requiring `weight`.

use async_graphql::{
    EmptyMutation, EmptySubscription, Enum, ID, InputObject, Interface, Object, Result, Schema,
    SimpleObject, Union,
};

use super::dataset::{self, BundleRow, ProductRow, ReviewRow, UserRow};
use crate::support::{self, Served};

/// The `Category` enum, as every schema spells it.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "dataset::Category")]
pub enum Category {
    Fruit,
    Dairy,
    Bakery,
}

/// The `ProductFilter` input, as every schema spells it.
#[derive(InputObject)]
pub struct ProductFilter {
    pub category: Option<Category>,
    pub min_price: Option<i32>,
    pub tags: Option<Vec<String>>,
}

impl From<Option<ProductFilter>> for dataset::Filter {
    fn from(filter: Option<ProductFilter>) -> Self {
        filter.map_or_else(Self::default, |f| Self {
            category: f.category.map(Into::into),
            min_price: f.min_price,
            tags: f.tags,
        })
    }
}

// ------------------------------------------------------------- products

struct PProduct(&'static ProductRow);

#[Object(name = "Product")]
impl PProduct {
    async fn sku(&self) -> &str {
        self.0.sku
    }
    #[graphql(shareable)]
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
}

struct PBundle(&'static BundleRow);

#[Object(name = "Bundle")]
impl PBundle {
    async fn id(&self) -> ID {
        ID(self.0.id.into())
    }
    async fn name(&self) -> &str {
        self.0.name
    }
    async fn price(&self) -> Option<i32> {
        self.0.price
    }
    async fn products(&self) -> Vec<PProduct> {
        self.0
            .skus
            .iter()
            .filter_map(|s| dataset::product(s))
            .map(PProduct)
            .collect()
    }
}

#[derive(Interface)]
#[graphql(
    name = "Sellable",
    field(name = "name", ty = "&str"),
    field(name = "price", ty = "Option<i32>")
)]
enum PSellable {
    Product(PProduct),
    Bundle(PBundle),
}

#[derive(Union)]
#[graphql(name = "Listing")]
enum PListing {
    Product(PProduct),
    Bundle(PBundle),
}

struct ProductsQuery;

#[Object(name = "Query")]
impl ProductsQuery {
    async fn product(&self, sku: String) -> Option<PProduct> {
        dataset::product(&sku).map(PProduct)
    }
    async fn products(
        &self,
        #[graphql(default = 10)] first: i32,
        filter: Option<ProductFilter>,
    ) -> Option<Vec<PProduct>> {
        Some(
            dataset::products(first, &filter.into())
                .into_iter()
                .map(PProduct)
                .collect(),
        )
    }
    async fn bundle(&self, id: ID) -> Option<PBundle> {
        dataset::bundle(&id).map(PBundle)
    }
    async fn sellables(&self) -> Vec<PSellable> {
        let products = dataset::PRODUCTS
            .iter()
            .map(|p| PSellable::Product(PProduct(p)));
        products
            .chain(
                dataset::BUNDLES
                    .iter()
                    .map(|b| PSellable::Bundle(PBundle(b))),
            )
            .collect()
    }
    async fn listings(&self, category: Option<Category>) -> Vec<Option<PListing>> {
        dataset::listings(category.map(Into::into))
            .into_iter()
            .map(|slot| match slot {
                dataset::Listing::Product(p) => Some(PListing::Product(PProduct(p))),
                dataset::Listing::Bundle(b) => Some(PListing::Bundle(PBundle(b))),
                dataset::Listing::Hole => None,
            })
            .collect()
    }
    #[graphql(entity)]
    async fn product_by_sku(&self, sku: String) -> Option<PProduct> {
        dataset::product(&sku).map(PProduct)
    }
}

// ------------------------------------------------------------- accounts

struct AUser(&'static UserRow);

/// A product known only by its key: the owner resolves the rest.
#[derive(SimpleObject)]
#[graphql(name = "Product", unresolvable = "sku")]
struct ProductKey {
    sku: String,
}

#[Object(name = "User")]
impl AUser {
    async fn id(&self) -> ID {
        ID(self.0.id.into())
    }
    async fn name(&self) -> &str {
        self.0.name
    }
    async fn email(&self) -> Option<&str> {
        self.0.email
    }
    async fn friends(&self, first: Option<i32>) -> Vec<AUser> {
        dataset::friends(self.0, first)
            .into_iter()
            .map(AUser)
            .collect()
    }
    async fn favorite(&self) -> Option<ProductKey> {
        self.0.favorite.map(|sku| ProductKey { sku: sku.into() })
    }
}

struct AccountsQuery;

#[Object(name = "Query")]
impl AccountsQuery {
    async fn user(&self, id: ID) -> Option<AUser> {
        dataset::user(&id).map(AUser)
    }
    async fn users(&self, ids: Vec<ID>) -> Vec<Option<AUser>> {
        ids.iter().map(|id| dataset::user(id).map(AUser)).collect()
    }
    #[graphql(entity)]
    async fn user_by_id(&self, id: ID) -> Option<AUser> {
        dataset::user(&id).map(AUser)
    }
}

// -------------------------------------------------------------- reviews

struct RReview(&'static ReviewRow);

#[Object(name = "Review")]
impl RReview {
    async fn id(&self) -> ID {
        ID(self.0.id.into())
    }
    async fn body(&self) -> &str {
        self.0.body
    }
    async fn rating(&self) -> i32 {
        self.0.rating
    }
    async fn author(&self) -> RUser {
        RUser {
            id: ID(self.0.author.into()),
        }
    }
    #[graphql(provides = "name")]
    async fn product(&self) -> RProduct {
        RProduct {
            sku: self.0.sku.into(),
            provided: true,
        }
    }
    async fn flagged(&self) -> Result<Option<bool>> {
        Ok(dataset::flagged(self.0)?)
    }
    async fn verified(&self) -> Result<bool> {
        Ok(dataset::verified(self.0)?)
    }
}

struct RProduct {
    sku: String,
    /// Whether `name` is this subgraph's to give (under `Review.product`).
    provided: bool,
}

#[Object(name = "Product")]
impl RProduct {
    async fn sku(&self) -> &str {
        &self.sku
    }
    #[graphql(external)]
    async fn name(&self) -> &str {
        let product = dataset::product(&self.sku).filter(|_| self.provided);
        product.map_or("", |p| p.name)
    }
    async fn reviews(&self, #[graphql(default = 0)] min_rating: i32) -> Vec<RReview> {
        dataset::product_reviews(&self.sku, min_rating)
            .into_iter()
            .map(RReview)
            .collect()
    }
    async fn average_rating(&self) -> Option<f64> {
        dataset::average_rating(&self.sku)
    }
    async fn review_count(&self) -> Result<i32> {
        Ok(dataset::review_count(&self.sku)?)
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
    async fn reviews(&self) -> Vec<RReview> {
        dataset::user_reviews(&self.id)
            .into_iter()
            .map(RReview)
            .collect()
    }
}

struct ReviewsQuery;

#[Object(name = "Query")]
impl ReviewsQuery {
    async fn review(&self, id: ID) -> Option<RReview> {
        dataset::review(&id).map(RReview)
    }
    async fn top_reviews(&self, #[graphql(default = 3)] first: i32) -> Option<Vec<RReview>> {
        Some(
            dataset::top_reviews(first)
                .into_iter()
                .map(RReview)
                .collect(),
        )
    }
    #[graphql(entity)]
    async fn product_by_sku(&self, sku: String) -> RProduct {
        RProduct {
            sku,
            provided: false,
        }
    }
    #[graphql(entity)]
    async fn user_by_id(&self, id: ID) -> RUser {
        RUser { id }
    }
}

// ------------------------------------------------------------ inventory

struct IProduct {
    sku: String,
    weight: Option<i32>,
}

#[Object(name = "Product")]
impl IProduct {
    async fn sku(&self) -> &str {
        &self.sku
    }
    async fn stock(&self) -> i32 {
        dataset::stock(&self.sku)
    }
    async fn warehouses(&self) -> Option<Vec<Option<&str>>> {
        dataset::warehouses(&self.sku)
    }
    async fn restock_date(&self) -> Result<Option<&str>> {
        Ok(dataset::restock_date(&self.sku)?)
    }
    #[graphql(external)]
    async fn weight(&self) -> i32 {
        self.weight.unwrap_or_default()
    }
    #[graphql(requires = "weight")]
    async fn shipping_estimate(&self) -> Option<i32> {
        self.weight.and_then(dataset::shipping_estimate)
    }
}

struct InventoryQuery;

#[Object(name = "Query")]
impl InventoryQuery {
    #[graphql(entity)]
    async fn product_by_sku(&self, #[graphql(key)] sku: String, weight: Option<i32>) -> IProduct {
        IProduct { sku, weight }
    }
}

/// The four subgraphs, served.
pub struct Federation {
    pub subgraphs: [Served; 4],
}

impl Federation {
    /// Serves the four subgraphs on free 127.0.0.1 ports.
    pub async fn serve() -> Self {
        fn federated<Q: async_graphql::ObjectType + 'static>(
            query: Q,
        ) -> Schema<Q, EmptyMutation, EmptySubscription> {
            Schema::build(query, EmptyMutation, EmptySubscription)
                .enable_federation()
                .finish()
        }
        Self {
            subgraphs: [
                support::serve("products", federated(ProductsQuery)).await,
                support::serve("accounts", federated(AccountsQuery)).await,
                support::serve("reviews", federated(ReviewsQuery)).await,
                support::serve("inventory", federated(InventoryQuery)).await,
            ],
        }
    }

    /// The supergraph the gateway composes from them.
    pub fn supergraph(&self) -> String {
        let [a, b, c, d] = &self.subgraphs;
        support::supergraph(&[a, b, c, d])
    }

    /// Requests the subgraphs received so far, all together.
    pub fn requests(&self) -> usize {
        self.subgraphs
            .iter()
            .map(|s| s.bodies.lock().unwrap().len())
            .sum()
    }
}
