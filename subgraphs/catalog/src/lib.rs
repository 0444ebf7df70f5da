//! The catalog subgraph: products.
//!
//! It owns the `catalog` PostgreSQL schema (`migrations/catalog/`) and the
//! `Product @key(fields: "sku")` entity, and tells inventory about every
//! product through a [`StockRegistry`] (gRPC in production). Every change of
//! a product writes a `product.updated` event to its outbox, which a relay
//! publishes to the event bus.
//!
//! Read on: [`schema`] (GraphQL, thin) → [`products`] and [`listing`] (rules
//! and SQL) → [`sku`], [`gtin`] and [`rules`] (value rules) → [`registry`]
//! (the link to inventory) → [`db`] (tables).

pub mod db;
pub mod demo;
pub mod error;
pub mod gtin;
pub mod listing;
pub mod products;
pub mod registry;
pub mod rules;
pub mod schema;
pub mod sku;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use async_graphql::{EmptySubscription, Schema, dataloader::DataLoader};
use axum::Router;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use kit::{
    auth::{
        KeyRing, TokenSettings, Verifier,
        revocation_feed::{Feed, FeedConfig},
    },
    component::Started,
    config::{ConfigError, Env, Var},
    db::{DbConfig, PgPool},
    events::{BusConfig, Relay},
};

pub use crate::registry::{GrpcStockRegistry, StockRegistry};
use crate::{
    error::CatalogError,
    schema::{CatalogSchema, CatalogState, Mutation, ProductLoader, Query},
};

/// The component's name: in commands, variables (`CATALOG_PORT`) and logs.
pub const NAME: &str = "catalog";

/// The PostgreSQL schema this subgraph owns.
pub const DB_SCHEMA: &str = NAME;

/// The HTTP port it listens on unless `CATALOG_PORT` or `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 4002;

/// Migrations of the `catalog` schema, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/catalog");

/// Where inventory's internal RPC listens unless `INVENTORY_RPC_URL` says otherwise.
pub const DEFAULT_INVENTORY_RPC_URL: &str = "http://127.0.0.1:50051";

/// The variables only catalog reads: none; the database, keys, tokens and the
/// stock API's address are every subgraph's (`kit`, inventory's).
pub const ENV: &[Var] = &[];

/// Everything the catalog subgraph needs to run.
#[derive(Clone)]
pub struct Config {
    /// Where its HTTP server listens.
    pub listen: SocketAddr,
    pub db: DbConfig,
    /// Public keys that verify bearer tokens (the users subgraph signs).
    pub keys: KeyRing,
    pub tokens: TokenSettings,
    /// Where the access cut-offs its tokens are checked against come from.
    pub cutoffs: FeedConfig,
    /// Inventory's gRPC endpoint.
    pub inventory_rpc_url: String,
    /// Sent as `authorization: Bearer …` on every call to inventory.
    pub rpc_token: String,
    /// Where `product.updated` events go (`REDIS_URL`, `EVENT_STREAM`).
    pub events: BusConfig,
}

impl Config {
    /// Reads the process environment, listing every problem at once.
    pub fn from_env() -> Result<Self, ConfigError> {
        kit::config::from_env(|env| Self::read(env, None))
    }

    /// Reads the listen address, database, key, token and inventory settings
    /// into `env`'s problems; `keys` stands in when no `JWT_PUBLIC_KEYS_FILE`
    /// is configured (development keys).
    pub fn read(env: &mut Env, keys: Option<KeyRing>) -> Self {
        let listen = kit::config::listen::addr(env, NAME, DEFAULT_PORT);
        let db = DbConfig::from_env(env, DB_SCHEMA);
        let tokens = TokenSettings::from_env(env);
        let keys = KeyRing::verifying_from_env_or(env, keys);
        let cutoffs = FeedConfig::from_env(env);
        let inventory_rpc_url = env
            .get("INVENTORY_RPC_URL")
            .unwrap_or_else(|| DEFAULT_INVENTORY_RPC_URL.into());
        if tonic::transport::Endpoint::from_shared(inventory_rpc_url.clone()).is_err() {
            env.problem(format!(
                "INVENTORY_RPC_URL={inventory_rpc_url:?} is not a valid URL"
            ));
        }
        let rpc_token = env.required("INTERNAL_RPC_TOKEN");
        Self {
            listen,
            db,
            keys,
            tokens,
            cutoffs,
            inventory_rpc_url,
            rpc_token,
            events: BusConfig::from_env(env),
        }
    }
}

fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription)
        .enable_federation()
        .limit_depth(32)
}

/// The executable schema over `pool`, telling inventory through `registry`.
pub fn build_schema(pool: PgPool, registry: Arc<dyn StockRegistry>) -> CatalogSchema {
    builder()
        .data(DataLoader::new(
            ProductLoader(pool.clone()),
            kit::trace::spawn,
        ))
        .data(CatalogState { pool, registry })
        .finish()
}

/// The federation SDL as served (`schema/catalog.graphql`).
pub fn sdl() -> String {
    kit::server::federation_sdl(&builder().finish())
}

/// Migrates the schema and builds the subgraph, calling inventory over gRPC;
/// the relay of its outbox runs beside it.
pub async fn start(cfg: &Config) -> anyhow::Result<Started> {
    kit::db::migrate(&cfg.db, &MIGRATIONS).await?;
    let pool = kit::db::pool(&cfg.db).await?;
    let relay = Relay::new(pool.clone(), cfg.events.connect().await?, DB_SCHEMA);
    let registry = GrpcStockRegistry::connect_lazy(&cfg.inventory_rpc_url, &cfg.rpc_token)?;
    let router = router_with(cfg, pool, Arc::new(registry))?;
    // Product changes are rare admin writes: the relay's poll is soon enough.
    Ok(Started::new(
        NAME,
        cfg.listen,
        router,
        cfg.tokens.revocations.clone(),
        Feed::Remote(cfg.cutoffs.clone()),
    )
    .beside("event relay", relay.run(Duration::from_millis(250))))
}

/// The subgraph's routes over an existing (migrated) pool and any registry (tests).
pub fn router_with(
    cfg: &Config,
    pool: PgPool,
    registry: Arc<dyn StockRegistry>,
) -> anyhow::Result<Router> {
    let verifier = Arc::new(Verifier::new(&cfg.keys, &cfg.tokens)?);
    let schema = build_schema(pool.clone(), registry);
    Ok(kit::server::router(NAME, schema, verifier, pool))
}

/// Creates the demo catalog (APPLE, BANANA, MILK, …) where missing and
/// registers every demo product with inventory; safe to run on every start.
pub async fn seed_demo(db: &DbConfig, registry: &dyn StockRegistry) -> anyhow::Result<()> {
    let pool = kit::db::pool(&DbConfig {
        max_connections: 2,
        ..db.clone()
    })
    .await?;
    for product in demo::catalog() {
        let sku = product.sku.clone();
        match products::ensure(&pool, registry, product).await {
            Ok(true) => tracing::info!(sku, "seeded demo product"),
            Ok(false) => {}
            // Someone took the demo name or barcode for another SKU: theirs wins.
            Err(e @ (CatalogError::NameTaken(_) | CatalogError::UpcTaken(_))) => {
                tracing::warn!(sku, error = %e, "demo product skipped");
            }
            Err(e) => return Err(anyhow::anyhow!("seeding {sku}: {e}")),
        }
    }
    Ok(())
}
