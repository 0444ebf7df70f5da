//! The users subgraph: accounts, sessions (dual JWT), profiles and notifications.
//!
//! It owns the `users` PostgreSQL schema (`migrations/users/`), signs every
//! token in the system and publishes its public keys at
//! `/.well-known/jwks.json`. `User @key(fields: "id")` is its entity. It owns
//! contact details, so it also turns order and shipment events into
//! notifications and e-mails them ([`notifications`]).
//!
//! Read on: [`schema`] (GraphQL, thin) → [`accounts`], [`sessions`] and
//! [`notifications`] (rules and SQL) → [`profile`] and [`password`] (value
//! rules), [`throttle`] (failed-login counters) → [`db`] (tables).

pub mod accounts;
pub mod db;
pub mod error;
pub mod notifications;
pub mod password;
pub mod profile;
pub mod schema;
pub mod sessions;
pub mod throttle;

use std::{sync::Arc, time::Duration};

use async_graphql::{EmptySubscription, Schema, dataloader::DataLoader};
use axum::{Json, Router, routing::get};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use kit::{
    auth::{KeyRing, Role, TokenSettings},
    config::Env,
    db::{DbConfig, PgPool},
    events::{Bus, Consumer, ConsumerOptions},
};

pub use crate::notifications::{
    MailConfig, Notifications, events::NotificationsHandler, mailer::deliver_due,
};
use crate::{
    accounts::NewAccount,
    schema::{Mutation, Query, UserLoader, UsersSchema, UsersState},
    sessions::TokenIssuer,
    throttle::ThrottleConfig,
};

/// The PostgreSQL schema this subgraph owns.
pub const DB_SCHEMA: &str = "users";

/// Migrations of the `users` schema, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/users");

/// Everything the users subgraph needs to run.
#[derive(Clone)]
pub struct UsersConfig {
    pub db: DbConfig,
    pub keys: KeyRing,
    pub tokens: TokenSettings,
    /// Redis for the event bus the notifications consumer reads (`REDIS_URL`);
    /// Where events go (`REDIS_URL`, `EVENT_STREAM`).
    pub events: kit::events::BusConfig,
    /// Notification e-mail: `SMTP_URL` (optional, e.g. `smtp://127.0.0.1:2525`;
    /// unset = notifications are only stored), `SMTP_FROM` (default
    /// `grocery@localhost`), `MAILER_POLL_SECS` (default 5).
    pub mail: MailConfig,
    /// Failed-login throttling; `TRUSTED_PROXIES` says whose forwarded client address counts.
    pub throttle: ThrottleConfig,
}

impl UsersConfig {
    /// Reads the database, key and token settings; `keys` stands in when no
    /// `JWT_PRIVATE_KEY*` is configured (development keys).
    pub fn from_env(env: &mut Env, keys: Option<KeyRing>) -> Self {
        let db = DbConfig::from_env(env, DB_SCHEMA);
        let tokens = TokenSettings::from_env(env);
        let keys = match (KeyRing::from_env(env), keys) {
            (Some(ring), _) | (None, Some(ring)) => ring,
            (None, None) => {
                env.problem("JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE is required (the users subgraph signs tokens)");
                KeyRing::default()
            }
        };
        Self {
            db,
            keys,
            tokens,
            events: kit::events::BusConfig::from_env(env),
            mail: MailConfig::from_env(env),
            throttle: ThrottleConfig::from_env(env),
        }
    }
}

fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription)
        .enable_federation()
        .limit_depth(32)
}

/// The executable schema over `pool`, signing with `issuer`, throttling logins by `throttle`.
pub fn build_schema(
    pool: PgPool,
    issuer: Arc<TokenIssuer>,
    throttle: ThrottleConfig,
) -> UsersSchema {
    builder()
        .data(DataLoader::new(UserLoader(pool.clone()), tokio::spawn))
        .data(UsersState {
            pool,
            issuer,
            throttle,
        })
        .finish()
}

/// The federation SDL as served (`schema/users.graphql`).
pub fn sdl() -> String {
    kit::server::federation_sdl(&builder().finish())
}

/// The running parts of the subgraph: its routes, and the notifications
/// consumer and mailer the caller runs beside them.
pub struct Users {
    pub router: Router,
    pub notifications: Arc<Notifications>,
    /// Where the consumer reads events.
    pub bus: Bus,
    /// How often the mailer polls besides being woken (`MAILER_POLL_SECS`).
    pub mailer_interval: Duration,
}

impl Users {
    /// Turns `order.status_changed` and `shipment.status_changed` events into
    /// notifications (consumer group `users.notifications`) until dropped.
    pub async fn run_notifications_consumer(notifications: Arc<Notifications>, bus: Bus) {
        let pool = notifications.pool.clone();
        let handler = Arc::new(NotificationsHandler::new(notifications));
        Consumer::new(handler, pool, bus, ConsumerOptions::default())
            .run()
            .await
    }

    /// E-mails pending notifications, woken by new ones and every `interval`,
    /// until dropped. Without SMTP it waits forever (there is nothing to send).
    pub async fn run_mailer(notifications: Arc<Notifications>, interval: Duration) {
        notifications::mailer::run(notifications, interval).await
    }
}

/// Migrates the schema, connects the bus and builds the subgraph with its
/// notification tasks.
pub async fn start(cfg: &UsersConfig) -> anyhow::Result<Users> {
    kit::db::migrate(&cfg.db, &MIGRATIONS).await?;
    let pool = kit::db::pool(&cfg.db).await?;
    let bus = cfg.events.connect().await?;
    build(cfg, pool, bus)
}

/// The subgraph over an existing, migrated pool and a bus.
pub fn build(cfg: &UsersConfig, pool: PgPool, bus: Bus) -> anyhow::Result<Users> {
    Ok(Users {
        router: router_with_pool(cfg, pool.clone())?,
        notifications: Arc::new(Notifications::new(pool, &cfg.mail)?),
        bus,
        mailer_interval: cfg.mail.poll_interval,
    })
}

/// Migrates the schema and returns the subgraph's HTTP routes only
/// ([`start`] also gives the notification tasks).
pub async fn router(cfg: &UsersConfig) -> anyhow::Result<Router> {
    kit::db::migrate(&cfg.db, &MIGRATIONS).await?;
    let pool = kit::db::pool(&cfg.db).await?;
    router_with_pool(cfg, pool)
}

/// The subgraph's routes over an existing pool (already migrated).
pub fn router_with_pool(cfg: &UsersConfig, pool: PgPool) -> anyhow::Result<Router> {
    password::warm_up();
    let issuer = Arc::new(TokenIssuer::new(cfg.keys.clone(), cfg.tokens.clone())?);
    let verifier = issuer.verifier();
    let jwks = cfg.keys.jwks();
    let schema = build_schema(pool.clone(), issuer, cfg.throttle.clone());
    Ok(kit::server::router(schema, verifier, pool).route(
        "/.well-known/jwks.json",
        get(move || async move { Json(jwks) }),
    ))
}

/// Creates the demo accounts `admin` (ADMIN), `truck-1` (TRUCK) and
/// `partner-1` (PARTNER: runs the `partner` client's persisted documents) if missing.
pub async fn seed_demo(db: &DbConfig, password: &str) -> anyhow::Result<()> {
    let pool = kit::db::pool(&DbConfig {
        max_connections: 2,
        ..db.clone()
    })
    .await?;
    for (device_id, role) in [
        ("admin", Role::Admin),
        ("truck-1", Role::Truck),
        ("partner-1", Role::Partner),
    ] {
        let created = accounts::ensure(
            &pool,
            NewAccount {
                device_id: device_id.into(),
                password: password.into(),
                email: None,
                phone: None,
                role,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("seeding {device_id}: {e}"))?;
        if created {
            tracing::info!(device_id, role = role.as_str(), "seeded demo account");
        }
    }
    Ok(())
}
