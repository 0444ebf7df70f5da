//! Real-PostgreSQL test databases, one per test, cloned from a migrated template.
//!
//! The template is built once per migration set (its name carries a hash of
//! the migration files), under an advisory lock, so any number of test
//! processes share it; each test then gets `CREATE DATABASE … TEMPLATE`, which
//! costs milliseconds, and drops it when the [`TestDatabase`] is dropped.
//! What a killed run leaves behind, the next one drops ([`leaks`]).
//!
//! The server comes from `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it is unreachable the
//! test fails with instructions; it never skips.
//!
//! What needs no database (the in-process client, response assertions,
//! tokens, a Redis server) is the testing crate's, re-exported here so a
//! subgraph's tests find everything under `kit::testing`.

use std::path::Path;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::EmbeddedMigrations;

use crate::db::{self, DbConfig, PgPool};

/// What tests share beyond the database (the testing crate's): a client that
/// calls a router in-process, response assertions, access tokens, a Redis
/// server of a test's own, the federation SDL of an in-process subgraph.
pub use ::testing::{
    RedisServer, TestClient, access_token, assert_no_errors, code, federation_sdl,
};

pub mod leaks;
mod subgraph;

pub use ::testing::{DEADLINE, eventually, eventually_within, wait_until};
pub use subgraph::{
    KEYS, SubgraphDb, message, migrations_dir, redis_url, scalar, serve, text, token, user,
};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database of its own for one test; dropped with this value.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// Configuration pointing at the test database and the subgraph's schema.
    pub config: DbConfig,
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

async fn connect_admin(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url).await.unwrap_or_else(|e| {
        panic!(
            "tests need PostgreSQL at {} ({e}).\n\
             Fix: run `bash .ci/run` once (installs and starts PostgreSQL and Redis), \
             or start your server and set TEST_DATABASE_URL=postgres://USER@HOST:PORT/postgres",
            db::redact(url)
        )
    })
}

/// A hash of every file under `dir`, so an edited migration builds a new template.
fn fingerprint(dir: &Path) -> String {
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read migrations at {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in files {
        let bytes = std::fs::read(&file).expect("readable migration file");
        let name = file
            .strip_prefix(dir)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        for byte in name.bytes().chain(bytes) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

impl TestDatabase {
    /// A fresh database whose `schema` is migrated with `migrations` (read from `dir` for the hash).
    pub async fn new(schema: &str, migrations: &'static EmbeddedMigrations, dir: &Path) -> Self {
        let admin_url = admin_url();
        let template = format!("grocery_template_{schema}_{}", fingerprint(dir));
        let mut admin = connect_admin(&admin_url).await;
        leaks::sweep_once(&mut admin).await;
        ensure_template(&mut admin, &admin_url, &template, schema, migrations).await;
        let name = leaks::database_name(std::process::id(), std::time::SystemTime::now());
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .await
            .expect("create test database from template");
        let config = DbConfig {
            url: db::with_database(&admin_url, &name),
            schema: schema.to_owned(),
            max_connections: 8,
            connect_timeout: db::DEFAULT_CONNECT_TIMEOUT,
            statement_log: None,
        };
        Self {
            admin_url,
            name,
            config,
        }
    }

    /// A blank database (no schema, no migrations) for testing migrations themselves.
    pub async fn empty(schema: &str) -> Self {
        let admin_url = admin_url();
        let mut admin = connect_admin(&admin_url).await;
        leaks::sweep_once(&mut admin).await;
        let name = leaks::database_name(std::process::id(), std::time::SystemTime::now());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create blank test database");
        let config = DbConfig {
            url: db::with_database(&admin_url, &name),
            schema: schema.to_owned(),
            max_connections: 4,
            connect_timeout: db::DEFAULT_CONNECT_TIMEOUT,
            statement_log: None,
        };
        Self {
            admin_url,
            name,
            config,
        }
    }

    /// A pool on the test database.
    pub async fn pool(&self) -> PgPool {
        db::pool(&self.config).await.expect("pool on test database")
    }
}

async fn ensure_template(
    admin: &mut AsyncPgConnection,
    admin_url: &str,
    template: &str,
    schema: &str,
    migrations: &'static EmbeddedMigrations,
) {
    diesel::sql_query("SELECT pg_advisory_lock(4242001)")
        .execute(admin)
        .await
        .expect("template lock");
    let exists = diesel::sql_query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(template)
        .execute(admin)
        .await
        .expect("look up template")
        > 0;
    if !exists {
        // Built under a temporary name and renamed when complete, so a test
        // process killed mid-migration never leaves a half-built template.
        let building = format!("{template}_wip");
        // Separate statements: a multi-statement batch is one implicit transaction.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .await
            .expect("drop stale template database");
        admin
            .batch_execute(&format!("CREATE DATABASE {building}"))
            .await
            .expect("create template database");
        let cfg = DbConfig {
            url: db::with_database(admin_url, &building),
            schema: schema.to_owned(),
            max_connections: 1,
            connect_timeout: db::DEFAULT_CONNECT_TIMEOUT,
            statement_log: None,
        };
        db::migrate(&cfg, migrations)
            .await
            .expect("migrate template database");
        admin
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .await
            .expect("publish template database");
        // Marked as a template so any role with CREATEDB may clone it, not only its owner.
        admin
            .batch_execute(&format!("ALTER DATABASE {template} IS_TEMPLATE true"))
            .await
            .expect("mark template database");
    }
    diesel::sql_query("SELECT pg_advisory_unlock(4242001)")
        .execute(admin)
        .await
        .expect("template unlock");
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a thread with its own.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async move {
                    let mut admin = connect_admin(&url).await;
                    admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    struct Query;

    #[async_graphql::Object]
    impl Query {
        async fn hello(&self) -> &str {
            "hello"
        }
    }

    #[test]
    fn tests_export_the_sdl_a_subgraph_serves() {
        let schema = async_graphql::Schema::build(
            Query,
            async_graphql::EmptyMutation,
            async_graphql::EmptySubscription,
        )
        .enable_federation()
        .finish();
        let served = crate::server::federation_sdl(&schema);
        assert!(served.contains("@link"), "{served}");
        assert_eq!(super::federation_sdl(&schema), served);
    }
}
