//! Products: creation, changes, retirement and lookup by SKU.
//!
//! Every write checks all of its input before touching the database, then
//! runs in one transaction together with the [`StockRegistry`] call that
//! tells inventory: a refused call rolls the catalog change back. The two are
//! not atomic (a call that times out after inventory applied it, or a catalog
//! commit failing after it), so every update re-sends the product's state —
//! the call is idempotent — and any later write of a product heals drift.
//! Uniqueness of SKUs, names (case-insensitive) and UPCs is the database's
//! job (unique indexes); their violations become `CONFLICT`s here, so two
//! concurrent creates can never both win.
//!
//! Every write of a product also writes a `product.updated` event (key and
//! payload: the SKU) to the outbox in its transaction, for those who keep
//! copies of products (the gateway's entity cache); a relay publishes them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kit::{
    change::Change,
    db::PgPool,
    error::is_unique_violation,
    events::{NewEvent, outbox},
};
use serde_json::Value;

use crate::{
    db::{Product, schema::products},
    error::CatalogError,
    registry::StockRegistry,
    rules,
    sku::Sku,
};

/// What `create` needs; normalised and checked there.
#[derive(Clone, Debug)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub upc: Option<String>,
    pub image_urls: Vec<String>,
    pub category: Option<String>,
    pub active: bool,
    pub metadata: Option<Value>,
}

/// Changes to a product; `Keep` fields are left alone.
#[derive(Clone, Debug, Default)]
pub struct ProductUpdate {
    pub name: Change<String>,
    pub description: Change<String>,
    pub upc: Change<String>,
    /// `Clear` removes every image.
    pub image_urls: Change<Vec<String>>,
    pub category: Change<String>,
    pub active: Change<bool>,
    pub metadata: Change<Value>,
}

/// What `delete` did.
#[derive(Clone, Debug)]
pub enum Deletion {
    /// The product had no stock history and is gone everywhere.
    Deleted(Sku),
    /// Inventory remembers stock of it, so it was deactivated instead.
    Deactivated(Box<Product>),
}

#[derive(Insertable)]
#[diesel(table_name = products)]
struct ProductRow {
    sku: String,
    name: String,
    description: Option<String>,
    upc: Option<String>,
    image_urls: Vec<String>,
    category: Option<String>,
    active: bool,
    metadata: Option<Value>,
}

#[derive(AsChangeset)]
#[diesel(table_name = products)]
struct ProductChangeset {
    name: Option<String>,
    description: Option<Option<String>>,
    upc: Option<Option<String>>,
    image_urls: Option<Vec<String>>,
    category: Option<Option<String>>,
    active: Option<bool>,
    metadata: Option<Option<Value>>,
    updated_at: DateTime<Utc>,
}

fn optional<T>(
    raw: Option<String>,
    rule: impl FnOnce(&str) -> Result<Option<T>, CatalogError>,
) -> Result<Option<T>, CatalogError> {
    Ok(raw.as_deref().map(rule).transpose()?.flatten())
}

/// The column value for a nullable field: `None` keeps, `Some(None)` clears.
fn nullable<T>(
    change: Change<T>,
    rule: impl FnOnce(T) -> Result<Option<T>, CatalogError>,
) -> Result<Option<Option<T>>, CatalogError> {
    Ok(match change {
        Change::Keep => None,
        Change::Clear => Some(None),
        Change::Set(v) => Some(rule(v)?),
    })
}

/// The column value for a required field; clearing it is refused.
fn required<T, U>(
    change: Change<T>,
    field: &'static str,
    rule: impl FnOnce(T) -> Result<U, CatalogError>,
) -> Result<Option<U>, CatalogError> {
    match change {
        Change::Keep => Ok(None),
        Change::Clear => Err(CatalogError::invalid(
            field,
            format!("{field} cannot be null"),
        )),
        Change::Set(v) => rule(v).map(Some),
    }
}

fn conflict(
    err: diesel::result::Error,
    sku: &str,
    name: Option<&str>,
    upc: Option<&str>,
) -> CatalogError {
    if is_unique_violation(&err, "products_pkey") {
        CatalogError::SkuTaken(sku.to_owned())
    } else if is_unique_violation(&err, "products_name_key") {
        CatalogError::NameTaken(name.unwrap_or_default().to_owned())
    } else if is_unique_violation(&err, "products_upc_key") {
        CatalogError::UpcTaken(upc.unwrap_or_default().to_owned())
    } else {
        CatalogError::Database(err)
    }
}

/// The topic of a change of a product's fields (created, changed, deactivated, deleted).
pub const PRODUCT_UPDATED: &str = "product.updated";

/// Writes the `product.updated` event of `sku` in the caller's transaction.
async fn updated(conn: &mut AsyncPgConnection, sku: &str) -> QueryResult<()> {
    outbox::append(
        conn,
        &[NewEvent {
            topic: PRODUCT_UPDATED,
            key: sku.to_owned(),
            payload: serde_json::json!({ "sku": sku }),
        }],
    )
    .await
}

/// Creates a product and registers it with inventory; `CONFLICT` on a taken SKU, name or UPC.
pub async fn create(
    pool: &PgPool,
    registry: &dyn StockRegistry,
    new: NewProduct,
) -> Result<Product, CatalogError> {
    let row = ProductRow {
        sku: Sku::parse(&new.sku)?.into(),
        name: rules::name(&new.name)?,
        description: optional(new.description, rules::description)?,
        upc: optional(new.upc, rules::upc)?,
        image_urls: rules::image_urls(new.image_urls)?,
        category: optional(new.category, rules::category)?,
        active: new.active,
        metadata: new.metadata.map(rules::metadata).transpose()?,
    };
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        let product = diesel::insert_into(products::table)
            .values(&row)
            .returning(Product::as_returning())
            .get_result(conn)
            .await
            .map_err(|e| conflict(e, &row.sku, Some(&row.name), row.upc.as_deref()))?;
        updated(conn, &product.sku).await?;
        registry
            .upsert(&product.sku, product.active)
            .await
            .map_err(CatalogError::Registry)?;
        Ok(product)
    })
    .await
}

/// Creates the product unless its SKU exists (demo seeding); true when created.
/// An existing product is registered with inventory again, which is idempotent.
pub async fn ensure(
    pool: &PgPool,
    registry: &dyn StockRegistry,
    new: NewProduct,
) -> Result<bool, CatalogError> {
    match create(pool, registry, new).await {
        Ok(_) => Ok(true),
        Err(CatalogError::SkuTaken(sku)) => {
            let existing = find(pool, &Sku::parse(&sku)?)
                .await?
                .ok_or(CatalogError::NotFound(sku))?;
            registry
                .upsert(&existing.sku, existing.active)
                .await
                .map_err(CatalogError::Registry)?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Applies `update` to the product `sku`; inventory hears of it when `active` changes.
pub async fn update(
    pool: &PgPool,
    registry: &dyn StockRegistry,
    sku: &str,
    update: ProductUpdate,
) -> Result<Product, CatalogError> {
    let sku = Sku::parse(sku)?;
    let changes = ProductChangeset {
        name: required(update.name, "name", |n| rules::name(&n))?,
        description: nullable(update.description, |d| rules::description(&d))?,
        upc: nullable(update.upc, |u| rules::upc(&u))?,
        image_urls: match update.image_urls {
            Change::Keep => None,
            Change::Clear => Some(Vec::new()),
            Change::Set(urls) => Some(rules::image_urls(urls)?),
        },
        category: nullable(update.category, |c| rules::category(&c))?,
        active: required(update.active, "active", Ok)?,
        metadata: nullable(update.metadata, |m| rules::metadata(m).map(Some))?,
        updated_at: Utc::now(),
    };
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        // Locks the row: concurrent updates of one product apply in turn.
        products::table
            .find(sku.as_str())
            .select(products::active)
            .for_update()
            .first::<bool>(conn)
            .await
            .optional()?
            .ok_or_else(|| CatalogError::NotFound(sku.to_string()))?;
        let product = diesel::update(products::table.find(sku.as_str()))
            .set(&changes)
            .returning(Product::as_returning())
            .get_result(conn)
            .await
            .map_err(|e| {
                let upc = changes.upc.as_ref().and_then(Option::as_deref);
                conflict(e, sku.as_str(), changes.name.as_deref(), upc)
            })?;
        updated(conn, &product.sku).await?;
        // Always re-sent (idempotent), not only when `active` flips: it heals drift.
        registry
            .upsert(&product.sku, product.active)
            .await
            .map_err(CatalogError::Registry)?;
        Ok(product)
    })
    .await
}

/// Retires `sku` in inventory, then deletes it (no stock history) or deactivates it.
pub async fn delete(
    pool: &PgPool,
    registry: &dyn StockRegistry,
    sku: &str,
) -> Result<Deletion, CatalogError> {
    let sku = Sku::parse(sku)?;
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        // Locked so a concurrent update cannot re-activate it in between.
        products::table
            .find(sku.as_str())
            .select(products::sku)
            .for_update()
            .first::<String>(conn)
            .await
            .optional()?
            .ok_or_else(|| CatalogError::NotFound(sku.to_string()))?;
        let forgotten = registry
            .retire(sku.as_str())
            .await
            .map_err(CatalogError::Registry)?;
        if forgotten {
            diesel::delete(products::table.find(sku.as_str()))
                .execute(conn)
                .await?;
            updated(conn, sku.as_str()).await?;
            return Ok(Deletion::Deleted(sku));
        }
        let product = diesel::update(products::table.find(sku.as_str()))
            .set((
                products::active.eq(false),
                products::updated_at.eq(Utc::now()),
            ))
            .returning(Product::as_returning())
            .get_result(conn)
            .await?;
        updated(conn, &product.sku).await?;
        Ok(Deletion::Deactivated(Box::new(product)))
    })
    .await
}

/// One product by SKU, active or not.
pub async fn find(pool: &PgPool, sku: &Sku) -> Result<Option<Product>, CatalogError> {
    let mut conn = pool.get().await?;
    Ok(products::table
        .find(sku.as_str())
        .select(Product::as_select())
        .first(&mut conn)
        .await
        .optional()?)
}

/// Many products by SKU in one query (entity batches, data loaders), active or not.
pub async fn find_many(pool: &PgPool, skus: &[Sku]) -> Result<Vec<Product>, CatalogError> {
    let skus: Vec<&str> = skus.iter().map(Sku::as_str).collect();
    let mut conn = pool.get().await?;
    Ok(products::table
        .filter(products::sku.eq_any(skus))
        .select(Product::as_select())
        .load(&mut conn)
        .await?)
}
