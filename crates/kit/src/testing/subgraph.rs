//! What the API tests of every subgraph set up alike: one signing key and
//! callers' tokens, a migrated database of the subgraph's own whose pool
//! records its statements, numbers and texts read back with SQL, the message
//! of a reply's first error, and routers served on loopback.
//!
//! A subgraph's `tests/api/support.rs` builds its app from these and keeps
//! only what is its own: its configuration, its domain's fixtures and the
//! stand-ins for its neighbours.

use std::{path::PathBuf, sync::LazyLock};

use diesel::sql_types;
use diesel_async::RunQueryDsl;
use diesel_migrations::EmbeddedMigrations;
use serde_json::Value;
use uuid::Uuid;

use super::{TestDatabase, access_token};
use crate::{
    auth::{KeyRing, Role, SigningKey},
    db::{DbConfig, PgPool, StatementLog},
};

/// One key for the whole test process: RSA generation is the slow part.
pub static KEYS: LazyLock<KeyRing> =
    LazyLock::new(|| KeyRing::with_signing_key(SigningKey::generate().expect("key").0));

/// An access token for a new user with `role`, signed by [`KEYS`].
pub fn token(role: Role) -> String {
    user(role).1
}

/// A new user with `role`: its id and an access token signed by [`KEYS`].
pub fn user(role: Role) -> (Uuid, String) {
    let id = Uuid::new_v4();
    (id, access_token(&KEYS, id, role))
}

/// The folder of the migrations of the subgraph whose schema is `schema`.
pub fn migrations_dir(schema: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(schema)
}

/// A subgraph's database for one test, migrated, with a pool whose every
/// statement is recorded (unless [`SubgraphDb::unlogged`]); dropped with
/// this value.
pub struct SubgraphDb {
    /// Where the pool connects, with the statement log attached.
    pub config: DbConfig,
    /// A pool on it, as the subgraph would have.
    pub pool: PgPool,
    /// Every statement the pool ran (none when unlogged).
    pub log: StatementLog,
    _database: TestDatabase,
}

impl SubgraphDb {
    /// The database of the subgraph with `schema` and `migrations`, pooled as a subgraph would be by default.
    pub async fn new(schema: &str, migrations: &'static EmbeddedMigrations) -> Self {
        Self::with_connections(schema, migrations, 8).await
    }

    /// [`SubgraphDb::new`] with a pool of `max_connections` (contention tests need more).
    pub async fn with_connections(
        schema: &str,
        migrations: &'static EmbeddedMigrations,
        max_connections: u32,
    ) -> Self {
        Self::pooled(schema, migrations, max_connections, true).await
    }

    /// [`SubgraphDb::with_connections`] recording no statement: `log` stays
    /// empty. For benches and long runs, where the log would format every
    /// statement with its binds and keep it (a few per cent of a checkout's
    /// CPU, and memory that only grows).
    pub async fn unlogged(
        schema: &str,
        migrations: &'static EmbeddedMigrations,
        max_connections: u32,
    ) -> Self {
        Self::pooled(schema, migrations, max_connections, false).await
    }

    async fn pooled(
        schema: &str,
        migrations: &'static EmbeddedMigrations,
        max_connections: u32,
        logged: bool,
    ) -> Self {
        let database = TestDatabase::new(schema, migrations, &migrations_dir(schema)).await;
        let log = StatementLog::default();
        let config = DbConfig {
            statement_log: logged.then(|| log.clone()),
            max_connections,
            ..database.config.clone()
        };
        let pool = crate::db::pool(&config)
            .await
            .expect("pool on test database");
        Self {
            config,
            pool,
            log,
            _database: database,
        }
    }

    /// The `bigint` that the SQL expression `sql` evaluates to (a subquery included).
    pub async fn scalar(&self, sql: &str) -> i64 {
        scalar(&self.pool, sql).await
    }

    /// The text that `sql` selects as `v`.
    pub async fn text(&self, sql: &str) -> String {
        text(&self.pool, sql).await
    }
}

/// The `bigint` that the SQL expression `sql` evaluates to on `pool`
/// (`count(*) FROM orders`, `SELECT attempts FROM restock_orders`).
pub async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = sql_types::BigInt)]
        n: i64,
    }
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query(format!("SELECT ({sql})::int8 AS n"))
        .get_result::<Row>(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// The text that `sql` selects as `v` on `pool`.
pub async fn text(pool: &PgPool, sql: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = sql_types::Text)]
        v: String,
    }
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query(sql)
        .get_result::<Row>(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .v
}

/// The message of a reply's first error (empty when it has none).
pub fn message(resp: &Value) -> &str {
    resp["errors"][0]["message"].as_str().unwrap_or_default()
}

/// Serves `router` on a free loopback port until the test's runtime ends; answers `http://addr`.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let url = format!("http://{}", listener.local_addr().expect("bound address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// The Redis the tests use: `REDIS_URL`, by default the local server.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}
