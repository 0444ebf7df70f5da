//! `grocery migrate`: brings each subgraph's schema up to the migrations this
//! binary embeds, or, with `--wait`, waits until something else has. The
//! waiting half is what a Kubernetes init container runs, so that a subgraph
//! starts only once the migrations Job has brought its schema to the version
//! its image expects, and never applies a migration itself.

use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::{
    QueryableByName,
    migration::MigrationSource,
    pg::Pg,
    sql_types::{Nullable, Text},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kit::{config::Env, db::DbConfig};

use crate::components::Subgraph;

/// How often `--wait` looks again.
const POLL: Duration = Duration::from_secs(2);
/// How often `--wait` says what it is still waiting for.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// `grocery migrate [component] [--wait]`.
pub async fn run(only: Option<Subgraph>, wait: bool) -> anyhow::Result<()> {
    let mut env = Env::new();
    let targets: Vec<_> = only.map_or(Subgraph::ALL.to_vec(), |c| vec![c]);
    let configs: Vec<_> = targets
        .iter()
        .map(|c| (*c, DbConfig::from_env(&mut env, c.name())))
        .collect();
    env.finish()?;
    for (component, db) in configs {
        if wait {
            wait_until_applied(component, &db).await;
        } else {
            kit::db::migrate(&db, component.migrations()).await?;
        }
    }
    Ok(())
}

/// Returns once every migration `component` embeds is recorded in its schema.
/// An unreachable server or a schema not created yet is waited out too: the
/// Job that migrates may start after this.
async fn wait_until_applied(component: Subgraph, db: &DbConfig) {
    let mut reported: Option<Instant> = None;
    loop {
        let outcome = pending(component, db).await;
        if matches!(&outcome, Ok(pending) if pending.is_empty()) {
            tracing::info!(schema = %db.schema, "migrations are applied");
            return;
        }
        if reported.is_none_or(|at| at.elapsed() >= REPORT_EVERY) {
            match outcome {
                Ok(pending) => tracing::info!(
                    schema = %db.schema,
                    pending = %pending.join(" "),
                    "waiting for the migrations to be applied (`grocery migrate`)"
                ),
                Err(err) => tracing::info!(
                    schema = %db.schema,
                    error = %format!("{err:#}"),
                    "waiting for the database"
                ),
            }
            reported = Some(Instant::now());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The versions `component` embeds that its schema has not recorded as
/// applied: all of them while the schema or its migrations table is missing.
async fn pending(component: Subgraph, db: &DbConfig) -> anyhow::Result<Vec<String>> {
    #[derive(QueryableByName)]
    struct Relation {
        #[diesel(sql_type = Nullable<Text>)]
        name: Option<String>,
    }
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let embedded: Vec<String> = MigrationSource::<Pg>::migrations(component.migrations())
        .map_err(|e| anyhow::anyhow!("reading the embedded migrations: {e}"))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let mut conn = AsyncPgConnection::establish(&db.url)
        .await
        .with_context(|| format!("connecting to {}", kit::db::redact(&db.url)))?;
    // `schema` is the component's name, a plain identifier (see DbConfig).
    let table = format!("{}.__diesel_schema_migrations", db.schema);
    let relation = diesel::sql_query("SELECT to_regclass($1)::text AS name")
        .bind::<Text, _>(&table)
        .get_result::<Relation>(&mut conn)
        .await?;
    if relation.name.is_none() {
        return Ok(embedded);
    }
    let applied: Vec<String> = diesel::sql_query(format!("SELECT version FROM {table}"))
        .load::<Version>(&mut conn)
        .await?
        .into_iter()
        .map(|v| v.version)
        .collect();
    Ok(embedded
        .into_iter()
        .filter(|v| !applied.contains(v))
        .collect())
}
