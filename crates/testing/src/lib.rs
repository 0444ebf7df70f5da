//! Test support every component's tests share, with no database in it: a
//! client that calls an axum router in-process ([`TestClient`]), assertions
//! on GraphQL responses ([`assert_no_errors`], [`code`]), access tokens
//! ([`access_token`]), a `redis-server` of a test's own that can be stopped
//! and started again ([`RedisServer`]), and the federation SDL of a subgraph
//! schema served in-process ([`federation_sdl`]).
//!
//! The gateway's tests use it directly; kit's `testing` feature re-exports all
//! of it beside kit's Postgres template-database harness, so subgraph tests
//! find everything under `kit::testing`. It uses the auth crate only: no
//! diesel, no pool, no gRPC.

mod client;
mod eventually;
mod redis_server;

pub use client::{TestClient, assert_no_errors, code};
pub use eventually::{DEADLINE, eventually, eventually_within, wait_until};
pub use redis_server::RedisServer;

/// An access token for user `sub` with `role`, signed by `ring` (components
/// that do not log people in get their callers this way in tests), valid for
/// ten minutes, with the default issuer and audience.
pub fn access_token(
    ring: &auth::KeyRing,
    sub: uuid::Uuid,
    role: impl Into<auth::RoleName>,
) -> String {
    let settings = auth::TokenSettings::default();
    let now = chrono::Utc::now().timestamp();
    ring.sign(&auth::Claims {
        iss: settings.issuer,
        aud: settings.audience,
        sub,
        role: role.into(),
        exp: now + 600,
        iat: now,
        token_type: auth::TokenType::Access,
        jti: uuid::Uuid::new_v4(),
        fam: None,
        access_epoch: 0,
    })
    .expect("sign test token")
}

/// A subgraph's federation SDL as kit's server exports it (what
/// `schema/<name>.graphql` holds), for subgraphs a test serves itself.
pub fn federation_sdl<Q, M, S>(schema: &async_graphql::Schema<Q, M, S>) -> String
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    schema.sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .federation()
            .compose_directive(),
    )
}
