//! The users subgraph: accounts, sessions (dual JWT), profiles and notifications.
//!
//! It owns the `users` PostgreSQL schema (`migrations/users/`), signs every
//! token in the system and publishes its public keys at
//! `/.well-known/jwks.json`. `User @key(fields: "id")` is its entity. It owns
//! contact details, so it also turns order and shipment events into
//! notifications and e-mails them ([`notifications`]).
//!
//! Every change to what an account may do is an access change ([`access`]):
//! published as a `user.access_changed` event through the outbox, and listed
//! at `GET /internal/access-changes` (service token required) for processes
//! that start, so every process refuses the tokens it revoked.
//!
//! Read on: [`schema`] (GraphQL, thin) → [`accounts`], [`sessions`],
//! [`access`] and [`notifications`] (rules and SQL) → [`profile`] and [`password`] (value
//! rules), [`throttle`] (failed-login counters) → [`db`] (tables).

pub mod access;
pub mod accounts;
pub mod db;
pub mod error;
pub mod notifications;
pub mod password;
pub mod profile;
pub mod schema;
pub mod sessions;
pub mod throttle;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use async_graphql::{EmptySubscription, Schema, dataloader::DataLoader};
use axum::{
    Json, Router,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use kit::{
    auth::{
        KeyRing, Role, TokenSettings,
        revocation_feed::{AccessChangeList, Feed, LIST_PATH, Source},
    },
    component::Started,
    config::{ConfigError, Env, Var},
    db::{DbConfig, PgPool},
    events::{Bus, Consumer, ConsumerOptions, Relay},
    rpc::ServiceToken,
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

/// The component's name: in commands, variables (`USERS_PORT`) and logs.
pub const NAME: &str = "users";

/// The PostgreSQL schema this subgraph owns.
pub const DB_SCHEMA: &str = NAME;

/// The HTTP port it listens on unless `USERS_PORT` or `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 4001;

/// Migrations of the `users` schema, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/users");

/// The variables only users reads ([`MailConfig::from_env`],
/// [`ThrottleConfig::from_env`]; its keys are `kit::auth`'s).
pub const ENV: &[Var] = &[
    Var {
        file: &[],
        names: &["SMTP_URL", "SMTP_FROM"],
        used_by: "users",
        default: "none (notifications only stored), `grocery@localhost`",
        meaning: "`smtp://[user:pass@]host[:port]` that notification e-mails go through",
    },
    Var {
        file: &[],
        names: &["MAILER_POLL_SECS"],
        used_by: "users",
        default: "`5`",
        meaning: "how often due e-mails are looked for (new ones are sent at once)",
    },
    Var {
        file: &[],
        names: &["TRUSTED_PROXIES"],
        used_by: "users",
        default: "loopback and private networks",
        meaning: "peers (addresses or CIDR blocks, `none`) whose `x-forwarded-for` (right-most \
                  entry) names the client a failed login counts against; any other peer is \
                  itself the client",
    },
];

/// Everything the users subgraph needs to run.
#[derive(Clone)]
pub struct Config {
    /// Where its HTTP server listens.
    pub listen: SocketAddr,
    pub db: DbConfig,
    pub keys: KeyRing,
    pub tokens: TokenSettings,
    /// Where events go and come from (`REDIS_URL`, `EVENT_STREAM`).
    pub events: kit::events::BusConfig,
    /// The service credential other processes present to list recent access
    /// changes (`INTERNAL_RPC_TOKEN`).
    pub rpc_token: String,
    /// Notification e-mail: `SMTP_URL` (optional, e.g. `smtp://127.0.0.1:2525`;
    /// unset = notifications are only stored), `SMTP_FROM` (default
    /// `grocery@localhost`), `MAILER_POLL_SECS` (default 5).
    pub mail: MailConfig,
    /// Failed-login throttling; `TRUSTED_PROXIES` says whose forwarded client address counts.
    pub throttle: ThrottleConfig,
}

impl Config {
    /// Reads the process environment, listing every problem at once.
    pub fn from_env() -> Result<Self, ConfigError> {
        kit::config::from_env(|env| Self::read(env, None))
    }

    /// Reads the listen address, database, key, token, bus, mail and
    /// throttling settings into `env`'s problems; `keys` stands in when no
    /// `JWT_PRIVATE_KEY*` is configured (development keys).
    pub fn read(env: &mut Env, keys: Option<KeyRing>) -> Self {
        let listen = kit::config::listen::addr(env, NAME, DEFAULT_PORT);
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
            listen,
            db,
            keys,
            tokens,
            events: kit::events::BusConfig::from_env(env),
            rpc_token: env.required("INTERNAL_RPC_TOKEN"),
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

/// The executable schema over `pool`, signing with `issuer`, its events
/// relayed by `relay`, throttling logins by `throttle`.
pub fn build_schema(
    pool: PgPool,
    issuer: Arc<TokenIssuer>,
    relay: Relay,
    throttle: ThrottleConfig,
) -> UsersSchema {
    builder()
        .data(DataLoader::new(UserLoader(pool.clone()), kit::trace::spawn))
        .data(UsersState {
            pool,
            issuer,
            relay,
            throttle,
        })
        .finish()
}

/// The federation SDL as served (`schema/users.graphql`).
pub fn sdl() -> String {
    kit::server::federation_sdl(&builder().finish())
}

/// The running parts of the subgraph: its routes, and the notifications
/// consumer, mailer and outbox relay the caller runs beside them.
pub struct Users {
    pub router: Router,
    pub notifications: Arc<Notifications>,
    /// Where the consumer reads events.
    pub bus: Bus,
    /// Publishes `user.access_changed` events.
    pub relay: Relay,
    /// Where the process's access cut-offs are loaded from: this subgraph's table.
    pub access_changes: Source,
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

    /// Publishes committed outbox rows, woken after each access change and
    /// every 250 ms in any case, until dropped.
    pub async fn run_relay(relay: Relay) {
        relay.run(Duration::from_millis(250)).await
    }

    /// E-mails pending notifications, woken by new ones and every `interval`,
    /// until dropped. Without SMTP it waits forever (there is nothing to send).
    pub async fn run_mailer(notifications: Arc<Notifications>, interval: Duration) {
        notifications::mailer::run(notifications, interval).await
    }
}

/// Migrates the schema, connects the bus and builds the subgraph; its relay,
/// notifications consumer and mailer run beside it, and its own table of
/// access changes fills the process's cut-offs.
pub async fn start(cfg: &Config) -> anyhow::Result<Started> {
    kit::db::migrate(&cfg.db, &MIGRATIONS).await?;
    let pool = kit::db::pool(&cfg.db).await?;
    let bus = cfg.events.connect().await?;
    let parts = build(cfg, pool, bus)?;
    let notes = parts.notifications;
    Ok(Started::new(
        NAME,
        cfg.listen,
        parts.router,
        cfg.tokens.revocations.clone(),
        Feed::Local(Box::new((parts.bus.clone(), parts.access_changes))),
    )
    .beside("event relay", Users::run_relay(parts.relay))
    .beside(
        "notifications consumer",
        Users::run_notifications_consumer(notes.clone(), parts.bus),
    )
    .beside("mailer", Users::run_mailer(notes, parts.mailer_interval)))
}

/// The subgraph over an existing, migrated pool and a bus.
pub fn build(cfg: &Config, pool: PgPool, bus: Bus) -> anyhow::Result<Users> {
    let relay = Relay::new(pool.clone(), bus.clone(), DB_SCHEMA);
    let (list_pool, ttl) = (pool.clone(), cfg.tokens.access_ttl);
    Ok(Users {
        router: router_with_pool(cfg, pool.clone(), relay.clone())?,
        notifications: Arc::new(Notifications::new(pool, &cfg.mail)?),
        bus,
        relay,
        access_changes: Source::Local(Box::new(move || {
            let pool = list_pool.clone();
            Box::pin(async move { Ok(access::recent(&pool, ttl).await?) })
        })),
        mailer_interval: cfg.mail.poll_interval,
    })
}

/// The subgraph's routes over an existing pool (already migrated); access
/// changes are published by `relay`.
pub fn router_with_pool(cfg: &Config, pool: PgPool, relay: Relay) -> anyhow::Result<Router> {
    password::warm_up();
    let issuer = Arc::new(TokenIssuer::new(cfg.keys.clone(), cfg.tokens.clone())?);
    let verifier = issuer.verifier();
    let jwks = cfg.keys.jwks();
    let list = AccessChanges {
        pool: pool.clone(),
        access_ttl: cfg.tokens.access_ttl,
        service: ServiceToken::new(&cfg.rpc_token)?,
    };
    let schema = build_schema(pool.clone(), issuer, relay, cfg.throttle.clone());
    Ok(kit::server::router(NAME, schema, verifier, pool)
        .route(
            "/.well-known/jwks.json",
            get(move || async move { Json(jwks) }),
        )
        .route(
            LIST_PATH,
            get(move |headers: HeaderMap| async move { list.answer(&headers).await }),
        ))
}

/// `GET /internal/access-changes`: every access change whose cut-off still
/// matters, for processes that start. Only for holders of the service token:
/// it tells who was demoted or deactivated.
#[derive(Clone)]
struct AccessChanges {
    pool: PgPool,
    access_ttl: Duration,
    service: ServiceToken,
}

impl AccessChanges {
    async fn answer(&self, headers: &HeaderMap) -> Response {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !self.service.accepts(presented) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({ "error": "a service credential is required" })),
            )
                .into_response();
        }
        match access::recent(&self.pool, self.access_ttl).await {
            Ok(changes) => Json(AccessChangeList { changes }).into_response(),
            Err(err) => {
                tracing::warn!(error = %err, "listing access changes failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({ "error": "try again" })),
                )
                    .into_response()
            }
        }
    }
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
