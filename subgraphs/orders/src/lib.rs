//! The orders subgraph: cart, checkout (preview → confirm), payments that
//! never double-charge, the guarded order lifecycle and live order status.
//!
//! It owns the `orders` PostgreSQL schema (`migrations/orders/`) and the
//! `Order @key(fields: "id")` entity, extends `User` with `orders` and `cart`,
//! and refers to catalog's `Product` from every line. Stock moves only
//! through inventory's gRPC stock API, keyed by the order id; every status
//! change is written with an outbox event that the relay publishes to the
//! event bus, which feeds the `orderStatusChanged` subscription.
//!
//! Read on: [`schema`] (GraphQL, thin) → [`checkout`], [`confirm`],
//! [`transitions`], [`failed_delivery`], [`expiry`], [`cart`] (the flows) → [`lifecycle`] (the one
//! place status changes) → [`payments`], [`stock`], [`names`], [`profiles`]
//! (the outside world, [`entities`]) → [`order`], [`listing`], [`lines`], [`money`], [`feed`] → [`db`].

pub mod cart;
pub mod checkout;
pub mod confirm;
pub mod db;
pub mod entities;
pub mod error;
pub mod expiry;
pub mod failed_delivery;
pub mod feed;
pub mod lifecycle;
pub mod lines;
pub mod listing;
pub mod money;
pub mod names;
pub mod order;
pub mod payments;
pub mod profiles;
pub mod schema;
pub mod shipping;
pub mod stock;
pub mod transitions;

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

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
    events::{Bus, Consumer, ConsumerOptions, Relay},
};
use rust_decimal::Decimal;

pub use crate::{
    money::Charges,
    payments::{PaymentProvider, TestProvider},
    stock::StockClient,
};
use crate::{
    names::ProductNames,
    profiles::Profiles,
    schema::{ItemsLoader, Mutation, OrdersSchema, PaymentLoader, Query, Subscription},
};

/// The component's name: in commands, variables (`ORDERS_PORT`) and logs.
pub const NAME: &str = "orders";

/// The PostgreSQL schema this subgraph owns (and the `source` of its events).
pub const DB_SCHEMA: &str = NAME;

/// The HTTP port it listens on unless `ORDERS_PORT` or `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 4004;

/// Migrations of the `orders` schema, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/orders");

/// Where inventory's stock API listens unless `INVENTORY_RPC_URL` says otherwise.
pub const DEFAULT_INVENTORY_RPC_URL: &str = "http://127.0.0.1:50051";
/// Where catalog answers entity lookups unless `CATALOG_URL` says otherwise.
pub const DEFAULT_CATALOG_URL: &str = "http://127.0.0.1:4002/graphql";
/// Where users answers entity lookups unless `USERS_URL` says otherwise.
pub const DEFAULT_USERS_URL: &str = "http://127.0.0.1:4001/graphql";

/// The variables only orders reads (it also reads inventory's
/// `RESERVATION_TTL_SECS` and `EXPIRY_SWEEP_SECS`).
pub const ENV: &[Var] = &[
    Var {
        file: &[],
        names: &["CATALOG_URL"],
        used_by: "orders",
        default: "`http://127.0.0.1:4002/graphql` (`dev`: the bound address)",
        meaning: "catalog's GraphQL, asked for product names when an order is confirmed",
    },
    Var {
        file: &[],
        names: &["USERS_URL"],
        used_by: "orders",
        default: "`http://127.0.0.1:4001/graphql` (`dev`: the bound address)",
        meaning: "users' GraphQL, asked (with the caller's token) for the customer's contact and \
                  addresses when `confirmOrder` leaves them out",
    },
    Var {
        file: &[],
        names: &["TAX_RATE"],
        used_by: "orders",
        default: "`0`",
        meaning: "tax on the subtotal (`0.08` = 8 %), rounded half-up to cents",
    },
    Var {
        file: &[],
        names: &["SHIPPING_FEE", "FREE_SHIPPING_FROM"],
        used_by: "orders",
        default: "`0.00`, none",
        meaning: "shipping per order, and the subtotal from which it is free",
    },
];

/// Everything the orders subgraph needs to run.
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
    /// Catalog's GraphQL endpoint, for product-name snapshots (`CATALOG_URL`).
    pub catalog_url: String,
    /// Users' GraphQL endpoint, for customer snapshots (`USERS_URL`).
    pub users_url: String,
    /// Where events go (`REDIS_URL`, `EVENT_STREAM`).
    pub events: kit::events::BusConfig,
    /// Tax and shipping (`TAX_RATE`, `SHIPPING_FEE`, `FREE_SHIPPING_FROM`).
    pub charges: Charges,
    /// How long previews hold stock (`RESERVATION_TTL_SECS`; inventory's default when unset).
    pub reservation_ttl: Option<Duration>,
    /// How often lapsed reservations are expired (`EXPIRY_SWEEP_SECS`, default 5).
    pub sweep_interval: Duration,
}

/// `name`'s http URL, `default` when unset.
fn http_url(env: &mut Env, name: &str, default: &str) -> String {
    let url = env.get(name).unwrap_or_else(|| default.into());
    if url.parse::<hyper::Uri>().is_err() || !url.starts_with("http") {
        env.problem(format!("{name}={url:?} is not an http URL"));
    }
    url
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
        let catalog_url = http_url(env, "CATALOG_URL", DEFAULT_CATALOG_URL);
        let users_url = http_url(env, "USERS_URL", DEFAULT_USERS_URL);
        let tax_rate: Decimal = env.parse_or("TAX_RATE", Decimal::ZERO);
        if tax_rate < Decimal::ZERO || tax_rate > Decimal::ONE {
            env.problem("TAX_RATE must be between 0 and 1 (0.08 = 8 %)");
        }
        let shipping_fee: Decimal = env.parse_or("SHIPPING_FEE", Decimal::ZERO);
        if shipping_fee < Decimal::ZERO {
            env.problem("SHIPPING_FEE must not be negative");
        }
        let free_shipping_from: Option<Decimal> = env.parse("FREE_SHIPPING_FROM");
        let ttl: Option<u64> = env.parse("RESERVATION_TTL_SECS");
        if ttl.is_some_and(|t| t == 0 || t > 86_400) {
            env.problem("RESERVATION_TTL_SECS must be between 1 and 86400");
        }
        Self {
            listen,
            db,
            keys,
            tokens,
            cutoffs,
            inventory_rpc_url,
            rpc_token: env.required("INTERNAL_RPC_TOKEN"),
            catalog_url,
            users_url,
            events: kit::events::BusConfig::from_env(env),
            charges: Charges {
                tax_rate,
                shipping_fee,
                free_shipping_from,
            },
            reservation_ttl: ttl.map(Duration::from_secs),
            sweep_interval: Duration::from_secs(env.parse_or("EXPIRY_SWEEP_SECS", 5).max(1)),
        }
    }
}

/// Failures a test can inject to prove that nothing leaks.
#[derive(Default)]
pub struct Faults {
    /// `previewOrder` fails after inventory reserved and before the order is written.
    pub fail_after_reserve: AtomicBool,
}

/// What every flow shares.
pub struct OrdersState {
    pub pool: PgPool,
    pub stock: StockClient,
    pub payments: Arc<dyn PaymentProvider>,
    pub names: ProductNames,
    pub profiles: Profiles,
    pub charges: Charges,
    pub reservation_ttl: Option<Duration>,
    /// Woken after every commit that wrote events; its bus feeds subscriptions.
    pub relay: Relay,
    pub faults: Arc<Faults>,
}

fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
        .enable_federation()
        .enable_subscription_in_federation()
        .limit_depth(32)
}

/// The executable schema over `state`.
pub fn build_schema(state: Arc<OrdersState>) -> OrdersSchema {
    builder()
        .data(DataLoader::new(
            ItemsLoader(state.pool.clone()),
            kit::trace::spawn,
        ))
        .data(DataLoader::new(
            PaymentLoader(state.pool.clone()),
            kit::trace::spawn,
        ))
        .data(state)
        .finish()
}

/// The federation SDL as served (`schema/orders.graphql`).
pub fn sdl() -> String {
    kit::server::federation_sdl(&builder().finish())
}

/// The running parts of the subgraph: its routes, and the relay and expiry
/// sweeper the caller runs beside them.
pub struct Orders {
    pub router: axum::Router,
    pub state: Arc<OrdersState>,
    pub sweep_interval: Duration,
}

impl Orders {
    /// Publishes outbox rows (woken on commit, polling every 250 ms for other replicas).
    pub async fn run_relay(state: Arc<OrdersState>) {
        state.relay.clone().run(Duration::from_millis(250)).await
    }

    /// Follows shipments (`shipment.status_changed`) until dropped.
    pub async fn run_shipments_consumer(state: Arc<OrdersState>) {
        let bus = state.relay.bus().clone();
        let handler = Arc::new(shipping::ShipmentsHandler::new(state.clone()));
        Consumer::new(handler, state.pool.clone(), bus, ConsumerOptions::default())
            .run()
            .await
    }

    /// Expires lapsed reservations every `interval`.
    pub async fn run_sweeper(state: Arc<OrdersState>, interval: Duration) {
        expiry::run(state, interval).await
    }
}

/// Migrates the schema, connects the bus and builds the subgraph with the
/// `test` payment provider; its relay, shipments consumer and expiry sweeper
/// run beside it.
pub async fn start(cfg: &Config) -> anyhow::Result<Started> {
    kit::db::migrate(&cfg.db, &MIGRATIONS).await?;
    let pool = kit::db::pool(&cfg.db).await?;
    let bus = cfg.events.connect().await?;
    let parts = build(cfg, pool, bus, Arc::new(TestProvider::default()))?;
    let (state, every) = (parts.state, parts.sweep_interval);
    Ok(Started::new(
        NAME,
        cfg.listen,
        parts.router,
        cfg.tokens.revocations.clone(),
        Feed::Remote(cfg.cutoffs.clone()),
    )
    .beside("event relay", Orders::run_relay(state.clone()))
    .beside(
        "shipment consumer",
        Orders::run_shipments_consumer(state.clone()),
    )
    .beside("expiry sweeper", Orders::run_sweeper(state, every)))
}

/// The subgraph over an existing, migrated pool, a bus and a payment provider.
pub fn build(
    cfg: &Config,
    pool: PgPool,
    bus: Bus,
    payments: Arc<dyn PaymentProvider>,
) -> anyhow::Result<Orders> {
    let verifier = Arc::new(Verifier::new(&cfg.keys, &cfg.tokens)?);
    let state = Arc::new(OrdersState {
        stock: StockClient::connect_lazy(&cfg.inventory_rpc_url, &cfg.rpc_token)?,
        names: ProductNames::new(&cfg.catalog_url)?,
        profiles: Profiles::new(&cfg.users_url)?,
        payments,
        charges: cfg.charges.clone(),
        reservation_ttl: cfg.reservation_ttl,
        relay: Relay::new(pool.clone(), bus, DB_SCHEMA),
        faults: Arc::new(Faults::default()),
        pool: pool.clone(),
    });
    let schema = build_schema(state.clone());
    Ok(Orders {
        router: kit::server::router(NAME, schema, verifier, pool),
        state,
        sweep_interval: cfg.sweep_interval,
    })
}
