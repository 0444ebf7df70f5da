//! The users subgraph: accounts, sessions (dual JWT) and profiles.
//!
//! It owns the `users` PostgreSQL schema (`migrations/users/`), signs every
//! token in the system and publishes its public keys at
//! `/.well-known/jwks.json`. `User @key(fields: "id")` is its entity.
//!
//! Read on: [`schema`] (GraphQL, thin) → [`accounts`] and [`sessions`] (rules
//! and SQL) → [`profile`] and [`password`] (value rules) → [`db`] (tables).

pub mod accounts;
pub mod db;
pub mod error;
pub mod password;
pub mod profile;
pub mod schema;
pub mod sessions;

use std::sync::Arc;

use async_graphql::{EmptySubscription, Schema, dataloader::DataLoader};
use axum::{Json, Router, routing::get};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use kit::{
    auth::{KeyRing, Role, TokenSettings},
    config::Env,
    db::{DbConfig, PgPool},
};

use crate::{
    accounts::NewAccount,
    schema::{Mutation, Query, UserLoader, UsersSchema, UsersState},
    sessions::TokenIssuer,
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
        Self { db, keys, tokens }
    }
}

fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription)
        .enable_federation()
        .limit_depth(32)
}

/// The executable schema over `pool`, signing with `issuer`.
pub fn build_schema(pool: PgPool, issuer: Arc<TokenIssuer>) -> UsersSchema {
    builder()
        .data(DataLoader::new(UserLoader(pool.clone()), tokio::spawn))
        .data(UsersState { pool, issuer })
        .finish()
}

/// The federation SDL as served (`schema/users.graphql`).
pub fn sdl() -> String {
    kit::server::federation_sdl(&builder().finish())
}

/// Migrates the schema and returns the subgraph's HTTP routes.
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
    let schema = build_schema(pool.clone(), issuer);
    Ok(kit::server::router(schema, verifier, pool).route(
        "/.well-known/jwks.json",
        get(move || async move { Json(jwks) }),
    ))
}

/// Creates the demo accounts `admin` (ADMIN) and `truck-1` (TRUCK) if missing.
pub async fn seed_demo(db: &DbConfig, password: &str) -> anyhow::Result<()> {
    let pool = kit::db::pool(&DbConfig {
        max_connections: 2,
        ..db.clone()
    })
    .await?;
    for (device_id, role) in [("admin", Role::Admin), ("truck-1", Role::Truck)] {
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
