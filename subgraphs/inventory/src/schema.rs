//! The inventory subgraph's GraphQL surface: stock and price on `Product`
//! (an entity owned by catalog), the ledger, the admin's corrections and the
//! public `stockChanged` subscription.

use std::collections::HashMap;

use async_graphql::{
    Context, ID, Object, SimpleObject, Subscription as SubscriptionObject,
    dataloader::{DataLoader, Loader},
};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use kit::{
    ApiError, ApiResult,
    auth::{AuthExt, Role},
    db::PgPool,
    events::Relay,
    scalars::Date,
};
use rust_decimal::Decimal;

use crate::{
    events::StockChanged,
    feed, items, ledger,
    stock::{self, StockView},
};

/// What every resolver shares.
pub struct InventoryState {
    pub pool: PgPool,
    pub default_margin: Decimal,
    /// Woken after a commit that wrote events; its bus feeds `stockChanged`.
    pub relay: Relay,
    /// At most one `stockChanged` event per SKU per this (`STOCK_EVENT_INTERVAL_MS`).
    pub stock_event_interval: std::time::Duration,
}

/// Batches stock lookups of a request (entities, lists) into one query.
pub struct StockLoader(pub PgPool);

impl Loader<String> for StockLoader {
    type Value = StockView;
    type Error = ApiError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, StockView>, ApiError> {
        let mut conn = self.0.get().await?;
        Ok(stock::views(&mut conn, keys).await?)
    }
}

fn state<'a>(ctx: &'a Context<'_>) -> &'a InventoryState {
    ctx.data_unchecked::<InventoryState>()
}

/// A product as inventory knows it (catalog owns the rest).
///
/// Cache hints (`Cache-Control`, which the gateway's entity cache follows):
/// stock and price are public for a short while, and the gateway drops them
/// at once on `stock.changed`; the ADMIN fields are `no_cache`, which spoils
/// any answer they are part of (a field without a hint would not: async-graphql
/// leaves it out of the answer's `max-age`).
pub struct Product {
    sku: String,
    /// The price an event carried, answered instead of reading it again.
    known_price: Option<Option<Decimal>>,
}

impl Product {
    fn new(sku: String) -> Self {
        Self {
            sku,
            known_price: None,
        }
    }

    async fn view(&self, ctx: &Context<'_>) -> ApiResult<StockView> {
        let loader = ctx.data_unchecked::<DataLoader<StockLoader>>();
        Ok(loader
            .load_one(self.sku.clone())
            .await?
            .unwrap_or_else(|| StockView::empty(&self.sku)))
    }
}

#[Object]
impl Product {
    async fn sku(&self) -> &str {
        &self.sku
    }

    /// Units on hand, held by reservations, and free to order.
    #[graphql(cache_control(max_age = 10))]
    async fn stock(&self, ctx: &Context<'_>) -> ApiResult<Stock> {
        let view = self.view(ctx).await?;
        Ok(Stock {
            on_hand: view.on_hand,
            reserved: view.reserved,
            available: view.available(),
        })
    }

    /// The next unit's cost-plus price; null when none is available.
    #[graphql(cache_control(max_age = 10))]
    async fn unit_price(&self, ctx: &Context<'_>) -> ApiResult<Option<Decimal>> {
        if let Some(price) = self.known_price {
            return Ok(price);
        }
        Ok(self.view(ctx).await?.unit_price(state(ctx).default_margin))
    }

    /// ADMIN: the margin this product sells at (its own, else the default).
    #[graphql(cache_control(no_cache))]
    async fn margin(&self, ctx: &Context<'_>) -> ApiResult<Decimal> {
        ctx.auth().require_role(&[Role::Admin])?;
        let view = self.view(ctx).await?;
        Ok(view.margin.unwrap_or(state(ctx).default_margin))
    }

    /// ADMIN: deliveries of this product, newest first.
    #[graphql(cache_control(no_cache))]
    async fn batches(&self, ctx: &Context<'_>) -> ApiResult<Vec<Batch>> {
        ctx.auth().require_role(&[Role::Admin])?;
        let mut conn = state(ctx).pool.get().await?;
        let batches = stock::batches_of(&mut conn, &self.sku).await?;
        Ok(batches
            .into_iter()
            .map(|b| Batch {
                id: ID(b.id.to_string()),
                quantity: b.quantity,
                remaining: b.remaining,
                unit_cost: b.unit_cost,
                mfd_date: b.mfd_date.map(Date),
                expiry_date: b.expiry_date.map(Date),
                received_at: b.received_at,
                supplier: b.supplier_id,
                truck_id: b.truck_id,
            })
            .collect())
    }
}

/// Stock levels of one product.
#[derive(SimpleObject)]
pub struct Stock {
    pub on_hand: i32,
    pub reserved: i32,
    pub available: i32,
}

/// One delivery of a product.
#[derive(SimpleObject)]
pub struct Batch {
    pub id: ID,
    pub quantity: i32,
    pub remaining: i32,
    pub unit_cost: Decimal,
    pub mfd_date: Option<Date>,
    pub expiry_date: Option<Date>,
    pub received_at: DateTime<Utc>,
    pub supplier: Option<String>,
    pub truck_id: Option<String>,
}

/// One row of the stock ledger.
#[derive(SimpleObject)]
pub struct StockMovement {
    pub id: ID,
    /// RESTOCK, RESERVE, RELEASE, EXPIRE_RESERVATION, COMMIT, RETURN, ADJUSTMENT or EXPIRY.
    pub kind: String,
    pub on_hand_delta: i32,
    pub reserved_delta: i32,
    pub batch_id: Option<ID>,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub struct Query;

#[Object]
impl Query {
    /// ADMIN: the newest movements of a product's stock.
    async fn stock_movements(
        &self,
        ctx: &Context<'_>,
        sku: String,
        #[graphql(default = 50)] first: Option<i32>,
    ) -> ApiResult<Vec<StockMovement>> {
        ctx.auth().require_role(&[Role::Admin])?;
        let sku = items::normalize_sku(&sku)?;
        let first = kit::pagination::page_size(first, 50)?;
        let mut conn = state(ctx).pool.get().await?;
        Ok(ledger::history(&mut conn, &sku, first)
            .await?
            .into_iter()
            .map(|m| StockMovement {
                id: ID(m.id.to_string()),
                kind: m.kind,
                on_hand_delta: m.on_hand_delta,
                reserved_delta: m.reserved_delta,
                batch_id: m.batch_id.map(|b| ID(b.to_string())),
                reference: m.reference,
                created_at: m.created_at,
            })
            .collect())
    }

    /// Federation entity resolver: inventory's part of `Product` by `sku`.
    #[graphql(entity)]
    async fn find_product_by_sku(&self, sku: String) -> Product {
        Product::new(sku)
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// ADMIN: corrects on-hand stock (a count found more or fewer units).
    async fn adjust_stock(
        &self,
        ctx: &Context<'_>,
        sku: String,
        delta: i32,
        reason: String,
    ) -> ApiResult<Product> {
        ctx.auth().require_role(&[Role::Admin])?;
        let mut conn = state(ctx).pool.get().await?;
        stock::adjust(&mut conn, &sku, delta, &reason).await?;
        state(ctx).relay.wake();
        Ok(Product::new(items::normalize_sku(&sku)?))
    }

    /// ADMIN: sets a product's margin (0.25 = 25 %); null returns it to the default.
    async fn set_margin(
        &self,
        ctx: &Context<'_>,
        sku: String,
        margin: Option<Decimal>,
    ) -> ApiResult<Product> {
        ctx.auth().require_role(&[Role::Admin])?;
        let mut conn = state(ctx).pool.get().await?;
        items::set_margin(&mut conn, &sku, margin).await?;
        state(ctx).relay.wake();
        Ok(Product::new(items::normalize_sku(&sku)?))
    }
}

/// A change of a product's availability or price, as `stockChanged` pushes it.
pub struct StockChange(StockChanged);

#[Object]
impl StockChange {
    async fn sku(&self) -> &str {
        &self.0.sku
    }

    /// Units free to order after the change.
    async fn available(&self) -> i32 {
        self.0.available
    }

    /// The product, its price as of the change.
    async fn product(&self) -> Product {
        Product {
            sku: self.0.sku.clone(),
            known_price: Some(self.0.unit_price),
        }
    }
}

pub struct Subscription;

#[SubscriptionObject]
impl Subscription {
    /// Changes of the availability or price of `skus` (every product when
    /// omitted; at most 100) committed from now on: at most one per product
    /// per interval, the latest value last. Public, like availability.
    async fn stock_changed(
        &self,
        ctx: &Context<'_>,
        skus: Option<Vec<String>>,
    ) -> async_graphql::Result<impl Stream<Item = StockChange> + use<>> {
        let skus = feed::normalize_skus(skus.as_deref()).map_err(ApiError::from)?;
        let st = state(ctx);
        let changes = feed::follow(&st.pool, st.relay.bus(), skus, st.stock_event_interval)
            .await
            .map_err(ApiError::from)?;
        Ok(changes.map(StockChange))
    }
}

/// The inventory subgraph schema.
pub type InventorySchema = async_graphql::Schema<Query, Mutation, Subscription>;
