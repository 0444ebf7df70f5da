//! The inventory subgraph: stock, perishable batches, reservations that never
//! oversell, cost-plus pricing, and the internal stock API.
//!
//! It owns the `inventory` PostgreSQL schema (`migrations/inventory/`),
//! extends `Product` with `stock` and `unitPrice`, and serves the gRPC stock
//! API (`schema/proto/inventory.proto`) that orders, logistics and catalog
//! call. A sweeper expires reservations and writes off expired batches.
//! Every change of a SKU's availability or price writes a `stock.changed`
//! event to its outbox ([`events`]); a relay publishes them to the bus, which
//! feeds the public `stockChanged` subscription ([`feed`]).
//!
//! Read on: [`schema`] and [`rpc`] (the two faces, thin) → [`reservations`],
//! [`allocation`], [`restock`], [`stock`], [`expiry`], [`feed`] (rules and SQL) →
//! [`items`], [`ledger`], [`pricing`], [`events`] (shared building blocks) → [`db`].

pub mod allocation;
pub mod db;
pub mod error;
pub mod events;
pub mod expiry;
pub mod feed;
pub mod items;
pub mod ledger;
pub mod pricing;
pub mod reservations;
pub mod restock;
pub mod rpc;
pub mod schema;
pub mod stock;

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use async_graphql::{Schema, dataloader::DataLoader};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use kit::{
    auth::{
        KeyRing, TokenSettings, Verifier,
        revocation_feed::{Feed, FeedConfig},
    },
    component::Started,
    config::{ConfigError, Env, Var},
    db::{DbConfig, PgPool},
    events::{Bus, BusConfig, Relay},
};
use rust_decimal::Decimal;

use crate::{
    restock::{Delivery, RestockItem},
    rpc::RpcSettings,
    schema::{InventorySchema, InventoryState, Mutation, Query, StockLoader, Subscription},
};

/// The component's name: in commands, variables (`INVENTORY_PORT`) and logs.
pub const NAME: &str = "inventory";

/// The PostgreSQL schema this subgraph owns.
pub const DB_SCHEMA: &str = NAME;

/// The HTTP port it listens on unless `INVENTORY_PORT` or `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 4003;

/// Migrations of the `inventory` schema, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/inventory");

/// The variables of inventory and of its stock API's clients.
pub const ENV: &[Var] = &[
    Var {
        file: &[],
        names: &["INVENTORY_RPC_ADDR"],
        used_by: "inventory",
        default: "`127.0.0.1:50051`",
        meaning: "where the stock API listens (never exposed through the gateway)",
    },
    Var {
        file: &[],
        names: &["INVENTORY_RPC_URL"],
        used_by: "catalog, orders, logistics, `seed`",
        default: "`http://127.0.0.1:50051` (`dev`: the bound address)",
        meaning: "where they reach the stock API",
    },
    Var {
        file: &[],
        names: &["RESERVATION_TTL_SECS"],
        used_by: "inventory, orders",
        default: "`900`",
        meaning: "how long a reservation holds stock (≤ 24 h); orders passes it on when set",
    },
    Var {
        file: &[],
        names: &["DEFAULT_MARGIN"],
        used_by: "inventory",
        default: "`0.25`",
        meaning: "margin of products without their own (0.25 = 25 %)",
    },
    Var {
        file: &[],
        names: &["EXPIRY_SWEEP_SECS"],
        used_by: "inventory, orders",
        default: "`5`",
        meaning: "how often lapsed reservations and expired batches (inventory) and lapsed \
                  orders (orders) are swept",
    },
    Var {
        file: &[],
        names: &["STOCK_EVENT_INTERVAL_MS"],
        used_by: "inventory",
        default: "`50`",
        meaning: "`stockChanged` sends at most one event per product per this many ms (1 to \
                  60000): the first change of a quiet product at once, the latest of a burst \
                  when the interval has passed",
    },
];

/// Everything the inventory subgraph needs to run.
#[derive(Clone)]
pub struct Config {
    /// Where its HTTP server listens.
    pub listen: SocketAddr,
    pub db: DbConfig,
    pub keys: KeyRing,
    pub tokens: TokenSettings,
    /// Where the access cut-offs its tokens are checked against come from.
    pub cutoffs: FeedConfig,
    /// Where the stock API listens (`INVENTORY_RPC_ADDR`, default 127.0.0.1:50051).
    pub rpc_addr: SocketAddr,
    /// The service credential callers must present (`INTERNAL_RPC_TOKEN`).
    pub rpc_token: String,
    /// How long a reservation holds stock (`RESERVATION_TTL_SECS`, default 900).
    pub reservation_ttl: Duration,
    /// Margin of products without their own (`DEFAULT_MARGIN`, default 0.25).
    pub default_margin: Decimal,
    /// How often the sweeper runs (`EXPIRY_SWEEP_SECS`, default 5).
    pub sweep_interval: Duration,
    /// Where `stock.changed` events go (`REDIS_URL`, `EVENT_STREAM`).
    pub events: BusConfig,
    /// At most one `stockChanged` event per SKU per this (`STOCK_EVENT_INTERVAL_MS`, default 50 ms: a
    /// burst's last change reaches clients within about that, well inside the 100 ms goal).
    pub stock_event_interval: Duration,
}

impl Config {
    /// Reads the process environment, listing every problem at once.
    pub fn from_env() -> Result<Self, ConfigError> {
        kit::config::from_env(|env| Self::read(env, None))
    }

    /// Reads the configuration into `env`'s problems; `keys` stands in when
    /// no `JWT_PUBLIC_KEYS_FILE` is set (dev).
    pub fn read(env: &mut Env, keys: Option<KeyRing>) -> Self {
        let listen = kit::config::listen::addr(env, NAME, DEFAULT_PORT);
        let db = DbConfig::from_env(env, DB_SCHEMA);
        let tokens = TokenSettings::from_env(env);
        let keys = KeyRing::verifying_from_env_or(env, keys);
        let cutoffs = FeedConfig::from_env(env);
        let default_margin: Decimal = env.parse_or("DEFAULT_MARGIN", Decimal::new(25, 2));
        if default_margin < Decimal::ZERO || default_margin > Decimal::TEN {
            env.problem("DEFAULT_MARGIN must be between 0 and 10 (0.25 = 25 %)");
        }
        let ttl: u64 = env.parse_or("RESERVATION_TTL_SECS", 900);
        if ttl == 0 {
            env.problem("RESERVATION_TTL_SECS must be at least 1");
        }
        let stock_event_ms: u64 = env.parse_or("STOCK_EVENT_INTERVAL_MS", 50);
        if !(1..=60_000).contains(&stock_event_ms) {
            env.problem("STOCK_EVENT_INTERVAL_MS must be between 1 and 60000");
        }
        Self {
            listen,
            db,
            keys,
            tokens,
            cutoffs,
            rpc_addr: env.parse_or(
                "INVENTORY_RPC_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 50051)),
            ),
            rpc_token: env.required("INTERNAL_RPC_TOKEN"),
            reservation_ttl: Duration::from_secs(ttl),
            default_margin,
            sweep_interval: Duration::from_secs(env.parse_or("EXPIRY_SWEEP_SECS", 5).max(1)),
            events: BusConfig::from_env(env),
            stock_event_interval: Duration::from_millis(stock_event_ms),
        }
    }

    fn rpc_settings(&self) -> RpcSettings {
        RpcSettings {
            default_ttl: self.reservation_ttl,
            default_margin: self.default_margin,
        }
    }
}

fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
        .enable_federation()
        .enable_subscription_in_federation()
        .limit_depth(32)
}

/// The executable schema over `state`.
pub fn build_schema(state: InventoryState) -> InventorySchema {
    builder()
        .data(DataLoader::new(
            StockLoader(state.pool.clone()),
            kit::trace::spawn,
        ))
        .data(state)
        .finish()
}

/// The federation SDL as served (`schema/inventory.graphql`).
pub fn sdl() -> String {
    kit::server::federation_sdl(&builder().finish())
}

/// The running parts of the subgraph: its HTTP routes, its stock API, its
/// pool, and the relay of its outbox (the caller runs it: [`Inventory::run_relay`]).
pub struct Inventory {
    pub router: axum::Router,
    pub rpc: rpc::StockServiceChecked,
    pub pool: PgPool,
    pub relay: Relay,
}

impl Inventory {
    /// Publishes outbox rows (woken on commit, polling every 250 ms for other replicas).
    pub async fn run_relay(relay: Relay) {
        relay.run(Duration::from_millis(250)).await
    }
}

/// Migrates the schema, connects the bus, builds the subgraph and binds its
/// stock API, which serves beside the HTTP routes with the sweeper and the relay.
pub async fn start(cfg: &Config) -> anyhow::Result<Started> {
    kit::db::migrate(&cfg.db, &MIGRATIONS).await?;
    let pool = kit::db::pool(&cfg.db).await?;
    events::set_default_margin(&mut *pool.get().await?, cfg.default_margin).await?;
    let bus = cfg.events.connect().await?;
    let parts = build_on(cfg, pool, bus)?;
    let listener = tokio::net::TcpListener::bind(cfg.rpc_addr)
        .await
        .with_context(|| {
            format!(
                "inventory's stock API cannot listen on {} (set INVENTORY_RPC_ADDR)",
                cfg.rpc_addr
            )
        })?;
    let rpc_addr = listener.local_addr()?;
    let (rpc, pool, relay, every) = (parts.rpc, parts.pool, parts.relay, cfg.sweep_interval);
    let mut started = Started::new(
        NAME,
        cfg.listen,
        parts.router,
        cfg.tokens.revocations.clone(),
        Feed::Remote(cfg.cutoffs.clone()),
    )
    .beside_until("stock API", move |mut stop| {
        Box::pin(async move {
            rpc::serve(listener, rpc, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        })
    })
    .beside("event relay", Inventory::run_relay(relay.clone()))
    .beside("sweeper", expiry::run_sweeper(pool, every, relay));
    started.rpc_addr = Some(rpc_addr);
    Ok(started)
}

/// The subgraph's parts over an existing, migrated pool, its events on a bus of their own.
pub fn build(cfg: &Config, pool: PgPool) -> anyhow::Result<Inventory> {
    build_on(cfg, pool, Bus::in_process())
}

/// The subgraph's parts over an existing, migrated pool and a bus.
pub fn build_on(cfg: &Config, pool: PgPool, bus: Bus) -> anyhow::Result<Inventory> {
    let verifier = std::sync::Arc::new(Verifier::new(&cfg.keys, &cfg.tokens)?);
    let relay = Relay::new(pool.clone(), bus, DB_SCHEMA);
    let schema = build_schema(InventoryState {
        pool: pool.clone(),
        default_margin: cfg.default_margin,
        relay: relay.clone(),
        stock_event_interval: cfg.stock_event_interval,
    });
    Ok(Inventory {
        router: kit::server::router(NAME, schema, verifier, pool.clone()),
        rpc: rpc::service(
            pool.clone(),
            cfg.rpc_settings(),
            &cfg.rpc_token,
            relay.clone(),
        ),
        pool,
        relay,
    })
}

/// Demo stock for `dev`: one fresh batch of every demo product (idempotent).
pub async fn seed_demo(pool: &PgPool) -> anyhow::Result<()> {
    let today = chrono::Utc::now().date_naive();
    let demo: [(&str, i32, &str, i64); 10] = [
        ("APPLE", 200, "0.30", 21),
        ("BANANA", 150, "0.18", 7),
        ("MILK", 80, "0.85", 10),
        ("EGGS", 60, "2.10", 28),
        ("BREAD", 40, "1.20", 4),
        ("CHEESE", 50, "3.40", 60),
        ("YOGURT", 90, "0.55", 14),
        ("TOMATO", 120, "0.25", 9),
        ("CARROT", 160, "0.12", 30),
        ("COFFEE", 70, "4.80", 365),
    ];
    let mut conn = pool.get().await?;
    for (sku, quantity, cost, shelf_days) in demo {
        items::upsert(&mut conn, sku, true).await?;
        let delivery = Delivery {
            transaction_id: format!("demo-seed-{sku}"),
            truck_id: "truck-1".into(),
            supplier_id: "demo-farm".into(),
            items: vec![RestockItem {
                sku: sku.into(),
                quantity,
                unit_cost: cost.parse()?,
                mfd_date: Some(today - chrono::Duration::days(1)),
                expiry_date: Some(today + chrono::Duration::days(shelf_days)),
            }],
        };
        restock::restock(&mut conn, &delivery)
            .await
            .map_err(|e| anyhow::anyhow!("seeding stock of {sku}: {e}"))?;
    }
    Ok(())
}
