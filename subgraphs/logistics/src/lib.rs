//! The logistics subgraph: truck restocks (through inventory's stock API) and
//! shipments, which follow paid orders and drive them to DELIVERED.
//!
//! It owns the `logistics` PostgreSQL schema (`migrations/logistics/`) and
//! the `Shipment @key(fields: "id")` entity, and adds `shipment` to orders'
//! `Order`. A shipment is made by the `logistics.shipments` consumer when an
//! order becomes CONFIRMED ([`events`]); trucks move it ([`shipments`]) and
//! every move is a `shipment.status_changed` event in the outbox, which orders
//! consumes. A restock is recorded before inventory is asked to take it
//! ([`restock`]), so one inventory could not take is retried by the
//! [`reconciler`] instead of being lost.
//!
//! Read on: [`schema`] (GraphQL, thin) → [`restock`], [`reconciler`],
//! [`shipments`], [`events`] (the flows) → [`delivery`] (what a valid
//! delivery is), [`inventory`] (the stock API) → [`error`], [`db`].

pub mod db;
pub mod delivery;
pub mod error;
pub mod events;
pub mod inventory;
pub mod reconciler;
pub mod restock;
pub mod schema;
pub mod shipments;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use async_graphql::Schema;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use kit::{
    auth::{
        KeyRing, TokenSettings, Verifier,
        revocation_feed::{Feed, FeedConfig},
    },
    component::Started,
    config::{ConfigError, Env, Var},
    db::{DbConfig, PgPool},
    events::{Bus, Consumer, ConsumerOptions, Relay},
};

use crate::schema::{LogisticsSchema, Mutation, Query};
pub use crate::{inventory::StockClient, reconciler::RetryPolicy};

/// The component's name: in commands, variables (`LOGISTICS_PORT`) and logs.
pub const NAME: &str = "logistics";

/// The PostgreSQL schema this subgraph owns (and the `source` of its events).
pub const DB_SCHEMA: &str = NAME;

/// The HTTP port it listens on unless `LOGISTICS_PORT` or `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 4005;

/// Migrations of the `logistics` schema, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/logistics");

/// Where inventory's stock API listens unless `INVENTORY_RPC_URL` says otherwise.
pub const DEFAULT_INVENTORY_RPC_URL: &str = "http://127.0.0.1:50051";
/// The carrier of new shipments unless `SHIPPING_CARRIER` says otherwise.
pub const DEFAULT_CARRIER: &str = "grocery-fleet";
/// Attempts at a restock before it is FAILED unless `RESTOCK_MAX_ATTEMPTS` says otherwise.
pub const DEFAULT_RESTOCK_ATTEMPTS: i32 = 10;

/// The variables only logistics reads.
pub const ENV: &[Var] = &[
    Var {
        file: &[],
        names: &["SHIPPING_CARRIER"],
        used_by: "logistics",
        default: "`grocery-fleet`",
        meaning: "the carrier new shipments get",
    },
    Var {
        file: &[],
        names: &["RESTOCK_RETRY_SECS"],
        used_by: "logistics",
        default: "`5`",
        meaning: "how often restocks that inventory could not take yet are retried (also the \
                  first backoff, doubling per attempt up to 5 min)",
    },
    Var {
        file: &[],
        names: &["RESTOCK_MAX_ATTEMPTS"],
        used_by: "logistics",
        default: "`10`",
        meaning: "attempts before such a restock is `FAILED` (listed by `restocks(status: FAILED)`)",
    },
];

/// Everything the logistics subgraph needs to run.
#[derive(Clone)]
pub struct Config {
    /// Where its HTTP server listens.
    pub listen: SocketAddr,
    pub db: DbConfig,
    pub keys: KeyRing,
    pub tokens: TokenSettings,
    /// Where the access cut-offs its tokens are checked against come from.
    pub cutoffs: FeedConfig,
    /// Inventory's gRPC endpoint (`INVENTORY_RPC_URL`).
    pub inventory_rpc_url: String,
    /// The service credential for inventory (`INTERNAL_RPC_TOKEN`).
    pub rpc_token: String,
    /// Where events go (`REDIS_URL`, `EVENT_STREAM`).
    pub events: kit::events::BusConfig,
    /// The carrier new shipments get (`SHIPPING_CARRIER`).
    pub carrier: String,
    /// How often pending restocks are retried (`RESTOCK_RETRY_SECS`, default 5);
    /// also the first backoff, which doubles with every failed attempt.
    pub reconcile_interval: Duration,
    /// Attempts before a restock inventory never took is FAILED (`RESTOCK_MAX_ATTEMPTS`, default 10).
    pub restock_max_attempts: i32,
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
        let inventory_rpc_url = env
            .get("INVENTORY_RPC_URL")
            .unwrap_or_else(|| DEFAULT_INVENTORY_RPC_URL.into());
        if tonic::transport::Endpoint::from_shared(inventory_rpc_url.clone()).is_err() {
            env.problem(format!(
                "INVENTORY_RPC_URL={inventory_rpc_url:?} is not a valid URL"
            ));
        }
        let carrier = env
            .get("SHIPPING_CARRIER")
            .unwrap_or_else(|| DEFAULT_CARRIER.into());
        if carrier.trim().is_empty() || carrier.chars().count() > 100 {
            env.problem("SHIPPING_CARRIER must be 1 to 100 characters");
        }
        let restock_max_attempts = env.parse_or("RESTOCK_MAX_ATTEMPTS", DEFAULT_RESTOCK_ATTEMPTS);
        if !(1..=1000).contains(&restock_max_attempts) {
            env.problem("RESTOCK_MAX_ATTEMPTS must be between 1 and 1000");
        }
        Self {
            listen,
            db,
            keys,
            tokens,
            cutoffs,
            inventory_rpc_url,
            rpc_token: env.required("INTERNAL_RPC_TOKEN"),
            events: kit::events::BusConfig::from_env(env),
            carrier: carrier.trim().to_owned(),
            reconcile_interval: Duration::from_secs(env.parse_or("RESTOCK_RETRY_SECS", 5).max(1)),
            restock_max_attempts,
        }
    }
}

/// What every flow shares.
pub struct LogisticsState {
    pub pool: PgPool,
    pub stock: StockClient,
    /// Woken after every commit that wrote events.
    pub relay: Relay,
    pub carrier: String,
    /// When restocks inventory did not take are tried again.
    pub retry: RetryPolicy,
}

fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, async_graphql::EmptySubscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        async_graphql::EmptySubscription,
    )
    .enable_federation()
}

/// The executable schema over `state`.
pub fn build_schema(state: Arc<LogisticsState>) -> LogisticsSchema {
    builder()
        .data(async_graphql::dataloader::DataLoader::new(
            schema::ShipmentsByOrder(state.pool.clone()),
            kit::trace::spawn,
        ))
        .data(async_graphql::dataloader::DataLoader::new(
            schema::AllShipmentsByOrder(state.pool.clone()),
            tokio::spawn,
        ))
        .data(state)
        .finish()
}

/// The federation SDL as served (`schema/logistics.graphql`).
pub fn sdl() -> String {
    kit::server::federation_sdl(&builder().finish())
}

/// The running parts of the subgraph: its routes, and the tasks the caller
/// runs beside them.
pub struct Logistics {
    pub router: axum::Router,
    pub state: Arc<LogisticsState>,
    pub reconcile_interval: Duration,
}

impl Logistics {
    /// Publishes outbox rows (woken on commit, polling every 250 ms for other replicas).
    pub async fn run_relay(state: Arc<LogisticsState>) {
        state.relay.clone().run(Duration::from_millis(250)).await
    }

    /// Retries pending restocks every `interval` until dropped.
    pub async fn run_reconciler(state: Arc<LogisticsState>, interval: Duration) {
        reconciler::run(state, interval).await
    }

    /// Makes and cancels shipments as orders change (`order.status_changed`), until dropped.
    pub async fn run_orders_consumer(state: Arc<LogisticsState>) {
        let bus = state.relay.bus().clone();
        let handler = Arc::new(events::ShipmentsHandler::new(state.clone()));
        Consumer::new(handler, state.pool.clone(), bus, ConsumerOptions::default())
            .run()
            .await
    }
}

/// Migrates the schema, connects the bus and builds the subgraph; its relay,
/// orders consumer and restock reconciler run beside it.
pub async fn start(cfg: &Config) -> anyhow::Result<Started> {
    kit::db::migrate(&cfg.db, &MIGRATIONS).await?;
    let pool = kit::db::pool(&cfg.db).await?;
    let bus = cfg.events.connect().await?;
    let parts = build(cfg, pool, bus)?;
    let (state, every) = (parts.state, parts.reconcile_interval);
    Ok(Started::new(
        NAME,
        cfg.listen,
        parts.router,
        cfg.tokens.revocations.clone(),
        Feed::Remote(cfg.cutoffs.clone()),
    )
    .beside("event relay", Logistics::run_relay(state.clone()))
    .beside(
        "orders consumer",
        Logistics::run_orders_consumer(state.clone()),
    )
    .beside(
        "restock reconciler",
        Logistics::run_reconciler(state, every),
    ))
}

/// The subgraph over an existing, migrated pool and a bus.
pub fn build(cfg: &Config, pool: PgPool, bus: Bus) -> anyhow::Result<Logistics> {
    let verifier = Arc::new(Verifier::new(&cfg.keys, &cfg.tokens)?);
    let state = Arc::new(LogisticsState {
        stock: StockClient::connect_lazy(&cfg.inventory_rpc_url, &cfg.rpc_token)?,
        relay: Relay::new(pool.clone(), bus, DB_SCHEMA),
        carrier: cfg.carrier.clone(),
        retry: RetryPolicy {
            first_backoff: cfg.reconcile_interval,
            max_attempts: cfg.restock_max_attempts,
        },
        pool: pool.clone(),
    });
    let schema = build_schema(state.clone());
    Ok(Logistics {
        router: kit::server::router(NAME, schema, verifier, pool),
        state,
        reconcile_interval: cfg.reconcile_interval,
    })
}
