//! PostgreSQL access: a bb8 pool of diesel-async connections pinned to the
//! subgraph's own schema, and embedded migrations run under an advisory lock.
//!
//! Every subgraph owns one schema (`users`, `catalog`, …). Connections set
//! `search_path` to it on connect, so Diesel's unqualified table names and the
//! `__diesel_schema_migrations` bookkeeping table both live in that schema.

use std::time::Duration;

use diesel::{
    migration::{Migration, MigrationSource},
    pg::Pg,
};
use diesel_async::{
    AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use futures::FutureExt;

/// The variables [`DbConfig::from_env`] reads (and the tests' server).
pub const ENV: &[crate::config::Var] = &[
    crate::config::Var {
        file: &[],
        names: &["DATABASE_URL"],
        used_by: "all subgraphs, `migrate`, `seed`",
        default: "required unless `<NAME>_DATABASE_URL` (`dev`: private cluster)",
        meaning: "PostgreSQL URL; each subgraph uses its own schema in it",
    },
    crate::config::Var {
        file: &[],
        names: &["<NAME>_DATABASE_URL"],
        used_by: "one subgraph, `migrate`, `seed`",
        default: "`DATABASE_URL`",
        meaning: "e.g. `USERS_DATABASE_URL`: put that subgraph on its own server",
    },
    crate::config::Var {
        file: &[],
        names: &["DB_POOL_SIZE"],
        used_by: "all subgraphs, `migrate`, `seed`",
        default: "`16`",
        meaning: "connections per subgraph pool",
    },
    crate::config::Var {
        file: &[],
        names: &["TEST_DATABASE_URL"],
        used_by: "tests",
        default: "`postgres://postgres@127.0.0.1:5432/postgres`",
        meaning: "server the tests create their databases on",
    },
];

/// The pool every subgraph uses.
pub type PgPool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;
/// A connection checked out of [`PgPool`].
pub type PgConn<'a> = bb8::PooledConnection<'a, AsyncDieselConnectionManager<AsyncPgConnection>>;
/// Why a connection could not be checked out.
pub type PoolError = bb8::RunError<diesel_async::pooled_connection::PoolError>;

/// Where a subgraph's data lives.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// `postgres://…` URL of the database (not of the schema).
    pub url: String,
    /// The PostgreSQL schema the subgraph owns.
    pub schema: String,
    /// Upper bound on pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a connection before it is answered
    /// `SERVICE_UNAVAILABLE` (the database is down or every connection busy).
    pub connect_timeout: Duration,
    /// When set, every statement the pool runs is recorded here (tests, debugging).
    pub statement_log: Option<StatementLog>,
}

/// The SQL of every statement run by a pool's connections, in order.
#[derive(Clone, Debug, Default)]
pub struct StatementLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl StatementLog {
    /// Statements recorded so far.
    pub fn statements(&self) -> Vec<String> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        if let Ok(mut v) = self.0.lock() {
            v.clear();
        }
    }
}

impl diesel::connection::Instrumentation for StatementLog {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event
            && let Ok(mut v) = self.0.lock()
        {
            v.push(query.to_string());
        }
    }
}

/// What watches a connection's statements: the statement log, if any, and
/// the request's trace (see [`crate::trace`]).
struct Instruments {
    log: Option<StatementLog>,
    spans: crate::trace::SqlSpans,
}

impl diesel::connection::Instrumentation for Instruments {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        self.spans.observe(&event);
        if let Some(log) = &mut self.log {
            log.on_connection_event(event);
        }
    }
}

/// [`DbConfig::connect_timeout`] unless told otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl DbConfig {
    /// Reads `<NAME>_DATABASE_URL`, falling back to `DATABASE_URL`, and `DB_POOL_SIZE`.
    pub fn from_env(env: &mut crate::config::Env, schema: &str) -> Self {
        let own = format!("{}_DATABASE_URL", schema.to_uppercase());
        let url = env
            .get(&own)
            .or_else(|| env.get("DATABASE_URL"))
            .unwrap_or_else(|| {
                env.problem(format!("{own} or DATABASE_URL is required but not set"));
                String::new()
            });
        let max_connections = env.parse_or("DB_POOL_SIZE", 16);
        if max_connections == 0 {
            env.problem("DB_POOL_SIZE must be at least 1");
        }
        Self {
            url,
            schema: schema.to_owned(),
            max_connections,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_log: None,
        }
    }
}

fn check_schema_name(schema: &str) -> anyhow::Result<()> {
    // Interpolated into SQL below, so only plain identifiers are allowed.
    anyhow::ensure!(
        !schema.is_empty()
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
        "schema name {schema:?} must be a lower-case identifier"
    );
    Ok(())
}

/// A pool whose connections all use `cfg.schema` as `search_path`.
pub async fn pool(cfg: &DbConfig) -> anyhow::Result<PgPool> {
    check_schema_name(&cfg.schema)?;
    // UTC everywhere: CURRENT_DATE and now() must mean the same day on every server.
    let set_path = format!("SET search_path TO {}; SET TIME ZONE 'UTC'", cfg.schema);
    let log = cfg.statement_log.clone();
    let schema = cfg.schema.clone();
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    // A broken connection fails its next query and is discarded; verifying on
    // every checkout would cost a round trip per request.
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = Box::new(move |url| {
        let set_path = set_path.clone();
        let log = log.clone();
        let spans = crate::trace::SqlSpans::new(&schema);
        let url = url.to_owned();
        async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            conn.batch_execute(&set_path)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            conn.set_instrumentation(Instruments { log, spans });
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        &cfg.url,
        manager_config,
    );
    let pool = bb8::Pool::builder()
        .max_size(cfg.max_connections)
        .connection_timeout(cfg.connect_timeout)
        .build(manager)
        .await?;
    Ok(pool)
}

/// Creates the schema if needed and runs pending migrations, holding a
/// PostgreSQL advisory lock so several replicas starting together migrate once.
pub async fn migrate(
    cfg: &DbConfig,
    migrations: &'static EmbeddedMigrations,
) -> anyhow::Result<()> {
    check_schema_name(&cfg.schema)?;
    let mut conn = AsyncPgConnection::establish(&cfg.url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", redact(&cfg.url)))?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(advisory_key(&cfg.schema))
        .execute(&mut conn)
        .await?;
    conn.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {0}; SET search_path TO {0}",
        cfg.schema
    ))
    .await?;
    // The harness is synchronous; run it on a blocking thread that drives the
    // async connection through the wrapper. The session-level advisory lock is
    // released when the connection closes at the end of this function.
    let applied = tokio::task::spawn_blocking(move || {
        let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        wrapper
            .run_pending_migrations(Embedded(migrations))
            .map(|versions| versions.len())
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"))
    })
    .await??;
    tracing::info!(schema = %cfg.schema, applied, "migrations up to date");
    Ok(())
}

/// Lets a `&'static` embedded set be passed by value (it is neither `Copy` nor `Clone`).
struct Embedded(&'static EmbeddedMigrations);

impl MigrationSource<Pg> for Embedded {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        self.0.migrations()
    }
}

/// A stable 64-bit lock key per schema (FNV-1a), so different subgraphs migrate in parallel.
fn advisory_key(schema: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"grocery-migrate:".iter().chain(schema.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// Checks the database answers, for `/ready`.
pub async fn ping(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

/// The URL with any password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// `url` pointing at database `name` instead of the one it names.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{}", &base[..path_start], name);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `text` with LIKE's wildcards and escape character escaped, so that as (part
/// of) a LIKE/ILIKE pattern it matches itself only (default `\` escape).
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A LIKE/ILIKE pattern matching `needle` literally anywhere, for the default `\` escape.
pub fn contains_pattern(needle: &str) -> String {
    format!("%{}%", escape_like(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://app:secret@db:5432/grocery"),
            "postgres://app:***@db:5432/grocery"
        );
        assert_eq!(
            redact("postgres://app@db/grocery"),
            "postgres://app@db/grocery"
        );
    }

    #[test]
    fn swaps_database_keeping_query() {
        assert_eq!(
            with_database("postgres://u@h:1/postgres?host=/tmp", "t1"),
            "postgres://u@h:1/t1?host=/tmp"
        );
        assert_eq!(with_database("postgres://u@h", "t2"), "postgres://u@h/t2");
    }

    #[test]
    fn contains_pattern_escapes_wildcards_and_the_escape() {
        assert_eq!(contains_pattern("milk"), "%milk%");
        assert_eq!(contains_pattern(r"50%_off\"), r"%50\%\_off\\%");
        assert_eq!(escape_like(r"a\%b_"), r"a\\\%b\_");
    }

    #[test]
    fn schema_names_are_identifiers() {
        assert!(check_schema_name("users").is_ok());
        assert!(check_schema_name("users; DROP").is_err());
        assert_ne!(advisory_key("users"), advisory_key("orders"));
    }
}
