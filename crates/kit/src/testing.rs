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

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::EmbeddedMigrations;

use crate::db::{self, DbConfig, PgPool};

mod eventually;
pub mod leaks;
mod subgraph;

pub use eventually::{DEADLINE, eventually, eventually_within, wait_until};
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

/// Calls a subgraph's router in-process, the way HTTP clients would.
pub struct TestClient {
    router: axum::Router,
}

impl TestClient {
    pub fn new(router: axum::Router) -> Self {
        Self { router }
    }

    /// Any request; answers the status and the body parsed as JSON (or as a string).
    pub async fn http(
        &self,
        request: axum::http::Request<axum::body::Body>,
    ) -> (u16, serde_json::Value) {
        let (status, _, body) = self.exchange(request).await;
        (status, body)
    }

    /// Any request; answers the status, the headers and the body parsed as JSON (or as a string).
    pub async fn exchange(
        &self,
        request: axum::http::Request<axum::body::Body>,
    ) -> (u16, axum::http::HeaderMap, serde_json::Value) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router answers");
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, parts.headers, body)
    }

    /// A GraphQL POST, with a bearer token when given.
    pub async fn gql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let mut request =
            axum::http::Request::post("/graphql").header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
        self.http(request.body(axum::body::Body::from(body)).expect("request"))
            .await
            .1
    }
}

/// An access token for user `sub` with `role`, signed by `ring` (subgraphs
/// that do not log people in get their callers this way in tests).
pub fn access_token(
    ring: &crate::auth::KeyRing,
    sub: uuid::Uuid,
    role: crate::auth::Role,
) -> String {
    let settings = crate::auth::TokenSettings::default();
    let now = chrono::Utc::now().timestamp();
    ring.sign(&crate::auth::Claims {
        iss: settings.issuer,
        aud: settings.audience,
        sub,
        role,
        exp: now + 600,
        iat: now,
        token_type: crate::auth::TokenType::Access,
        jti: uuid::Uuid::new_v4(),
        fam: None,
        access_epoch: 0,
    })
    .expect("sign test token")
}

/// Fails the test when the response carries errors.
#[track_caller]
pub fn assert_no_errors(resp: &serde_json::Value) {
    assert!(resp.get("errors").is_none(), "unexpected errors: {resp:#}");
}

/// The `extensions.code` of the first error.
#[track_caller]
pub fn code(resp: &serde_json::Value) -> &str {
    resp["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code: {resp:#}"))
}

/// A redis-server of the test's own on a free loopback port, persisting to an
/// append-only file so a restart ([`RedisServer::stop`], then
/// [`RedisServer::spawn`]) keeps its streams, as a production Redis would.
pub struct RedisServer {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("grocery-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self {
            port,
            dir,
            child: None,
        };
        redis.spawn();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) the server on its port and directory; returns when it accepts connections.
    pub fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server must be installed (apt-get install redis-server; .ci/run does it)",
            );
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills the server (abruptly, as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
