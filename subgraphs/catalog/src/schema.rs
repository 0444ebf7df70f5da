//! The catalog subgraph's GraphQL surface. Resolvers are thin: they check who
//! is calling, translate GraphQL input into domain values and call
//! [`products`] or [`listing`].

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Context, EmptySubscription, InputObject, Json, MaybeUndefined, Object, SimpleObject,
    connection::{Connection, Edge, EmptyFields},
    dataloader::{DataLoader, Loader},
};
use chrono::{DateTime, Utc};
use kit::{
    ApiError, ApiResult,
    auth::{AuthExt, Role},
    db::PgPool,
    pagination::{decode_cursor, encode_cursor, page_size},
};
use serde_json::Value;

use crate::{
    db,
    listing::{self, ProductFilter},
    products::{self, Deletion, NewProduct, ProductUpdate},
    registry::StockRegistry,
    sku::Sku,
};

/// Shared by every resolver: the pool and the link to inventory.
pub struct CatalogState {
    pub pool: PgPool,
    pub registry: Arc<dyn StockRegistry>,
}

/// Batches product lookups (entity references, `product`) into one query.
pub struct ProductLoader(pub PgPool);

impl Loader<Sku> for ProductLoader {
    type Value = db::Product;
    type Error = ApiError;

    async fn load(&self, keys: &[Sku]) -> Result<HashMap<Sku, db::Product>, ApiError> {
        let found = products::find_many(&self.0, keys).await?;
        Ok(found
            .into_iter()
            .map(|p| (Sku::stored(p.sku.clone()), p))
            .collect())
    }
}

fn state<'a>(ctx: &'a Context<'_>) -> &'a CatalogState {
    ctx.data_unchecked::<CatalogState>()
}

async fn load_product(ctx: &Context<'_>, sku: Sku) -> ApiResult<Option<Product>> {
    let loader = ctx.data_unchecked::<DataLoader<ProductLoader>>();
    Ok(loader.load_one(sku).await?.map(Product))
}

fn require_admin(ctx: &Context<'_>) -> ApiResult<()> {
    ctx.auth().require_role(&[Role::Admin]).map(|_| ())
}

/// Something the grocery sells, or once sold.
///
/// Public for 60 s (the gateway's entity cache keeps answers about it that
/// long, and drops them at once on `product.updated`). A field that depends
/// on who asks must say `cache_control(no_cache)`.
pub struct Product(db::Product);

#[Object(cache_control(max_age = 60))]
impl Product {
    /// Stock-keeping unit, upper case; the key across subgraphs.
    async fn sku(&self) -> &str {
        &self.0.sku
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// GTIN-12 (UPC-A) or GTIN-13 barcode.
    async fn upc(&self) -> Option<&str> {
        self.0.upc.as_deref()
    }

    async fn image_urls(&self) -> &[String] {
        &self.0.image_urls
    }

    async fn category(&self) -> Option<&str> {
        self.0.category.as_deref()
    }

    /// False once retired: no longer listed or sold, still shown in order history.
    async fn active(&self) -> bool {
        self.0.active
    }

    /// Free-form attributes (a JSON object).
    async fn metadata(&self) -> Option<Json<Value>> {
        self.0.metadata.clone().map(Json)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A new product.
#[derive(InputObject)]
pub struct CreateProductInput {
    /// 1–32 letters, digits, `_` or `-`; stored upper case.
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    /// GTIN-12 or GTIN-13 with a correct check digit.
    pub upc: Option<String>,
    #[graphql(default)]
    pub image_urls: Vec<String>,
    pub category: Option<String>,
    #[graphql(default = true)]
    pub active: bool,
    /// A JSON object of at most 16 KiB.
    pub metadata: Option<Json<Value>>,
}

impl From<CreateProductInput> for NewProduct {
    fn from(input: CreateProductInput) -> Self {
        Self {
            sku: input.sku,
            name: input.name,
            description: input.description,
            upc: input.upc,
            image_urls: input.image_urls,
            category: input.category,
            active: input.active,
            metadata: input.metadata.map(|m| m.0),
        }
    }
}

/// Product changes: an omitted field is kept, an explicit null clears it
/// (`name` and `active` cannot be cleared; a null `imageUrls` removes every image).
#[derive(InputObject, Default)]
pub struct UpdateProductInput {
    pub name: MaybeUndefined<String>,
    pub description: MaybeUndefined<String>,
    pub upc: MaybeUndefined<String>,
    pub image_urls: MaybeUndefined<Vec<String>>,
    pub category: MaybeUndefined<String>,
    pub active: MaybeUndefined<bool>,
    pub metadata: MaybeUndefined<Json<Value>>,
}

impl From<UpdateProductInput> for ProductUpdate {
    fn from(input: UpdateProductInput) -> Self {
        Self {
            name: input.name.into(),
            description: input.description.into(),
            upc: input.upc.into(),
            image_urls: input.image_urls.into(),
            category: input.category.into(),
            active: input.active.into(),
            metadata: input.metadata.map_value(|m| m.0).into(),
        }
    }
}

/// The outcome of `deleteProduct`.
#[derive(SimpleObject)]
pub struct ProductDeletion {
    pub sku: String,
    /// True when the product is gone; false when it had stock history and was deactivated.
    pub deleted: bool,
    /// The deactivated product when it was not deleted.
    pub product: Option<Product>,
}

impl From<Deletion> for ProductDeletion {
    fn from(deletion: Deletion) -> Self {
        match deletion {
            Deletion::Deleted(sku) => Self {
                sku: sku.into(),
                deleted: true,
                product: None,
            },
            Deletion::Deactivated(product) => Self {
                sku: product.sku.clone(),
                deleted: false,
                product: Some(Product(*product)),
            },
        }
    }
}

/// Extra fields of the `products` connection.
#[derive(SimpleObject)]
pub struct ProductConnectionFields {
    /// Products matching the filter, on every page.
    pub total_count: i64,
}

/// A page of products in SKU order.
pub type ProductConnection = Connection<String, Product, ProductConnectionFields, EmptyFields>;

/// Product reads: open to everyone, inactive products for admins.
pub struct Query;

#[Object]
impl Query {
    /// One product by SKU (any case), including deactivated ones.
    async fn product(&self, ctx: &Context<'_>, sku: String) -> ApiResult<Option<Product>> {
        load_product(ctx, Sku::parse(&sku)?).await
    }

    /// Products in SKU order; deactivated ones only for ADMIN with `includeInactive`.
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
        category: Option<String>,
        #[graphql(default_with = "Some(false)")] include_inactive: Option<bool>,
    ) -> ApiResult<ProductConnection> {
        let include_inactive = include_inactive.unwrap_or(false);
        if include_inactive {
            require_admin(ctx)?;
        }
        let first = page_size(first, 20)?;
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let filter = ProductFilter {
            search,
            category,
            include_inactive,
        };
        let page = listing::list(&state(ctx).pool, &filter, first, after.as_deref()).await?;
        let mut connection = ProductConnection::with_additional_fields(
            after.is_some(),
            page.has_next_page,
            ProductConnectionFields {
                total_count: page.total_count,
            },
        );
        connection.edges.extend(
            page.items
                .into_iter()
                .map(|p| Edge::new(encode_cursor(&p.sku), Product(p))),
        );
        Ok(connection)
    }

    /// Federation entity resolver: `Product` by `sku`, batched per request.
    #[graphql(entity)]
    async fn find_product_by_sku(
        &self,
        ctx: &Context<'_>,
        sku: String,
    ) -> ApiResult<Option<Product>> {
        match Sku::parse(&sku) {
            Ok(sku) => load_product(ctx, sku).await,
            Err(_) => Ok(None),
        }
    }
}

/// Catalog changes: ADMIN only.
pub struct Mutation;

#[Object]
impl Mutation {
    /// ADMIN: adds a product and makes it stockable in inventory.
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        input: CreateProductInput,
    ) -> ApiResult<Product> {
        require_admin(ctx)?;
        let st = state(ctx);
        Ok(Product(
            products::create(&st.pool, st.registry.as_ref(), input.into()).await?,
        ))
    }

    /// ADMIN: changes a product; toggling `active` tells inventory.
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        sku: String,
        input: UpdateProductInput,
    ) -> ApiResult<Product> {
        require_admin(ctx)?;
        let st = state(ctx);
        Ok(Product(
            products::update(&st.pool, st.registry.as_ref(), &sku, input.into()).await?,
        ))
    }

    /// ADMIN: deletes a product without stock history, deactivates one with history.
    async fn delete_product(&self, ctx: &Context<'_>, sku: String) -> ApiResult<ProductDeletion> {
        require_admin(ctx)?;
        let st = state(ctx);
        Ok(products::delete(&st.pool, st.registry.as_ref(), &sku)
            .await?
            .into())
    }
}

/// The catalog subgraph schema.
pub type CatalogSchema = async_graphql::Schema<Query, Mutation, EmptySubscription>;
