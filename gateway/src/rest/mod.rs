//! REST endpoints declared in route files, each one a trusted document of
//! the supergraph run through the normal pipeline.
//!
//! A route file (`<dir>/<api>.yaml`, format in README "REST endpoints") maps
//! a method and a path (with `{parameters}`) to a document of a
//! trusted-document manifest, says where each of its variables comes from
//! (body fields with renames and alternatives, path, query string, headers,
//! the bearer token), how the GraphQL answer becomes the REST one (picks,
//! constants, enum renames, a list turned into a map, decimals written as
//! numbers, RFC 3339 timestamps), the success status, and which HTTP status
//! each `extensions.code` gets.
//!
//! - [`routes`]: route files read and checked against their manifest's
//!   documents and the API schema (an unknown document or variable, or a
//!   shape the document cannot give, refuses the file naming its line);
//! - [`input`]: a request's variables from its body, path, query and headers;
//! - [`output`]: the REST answer shaped from the GraphQL one, and errors;
//! - [`serve`]: one REST request through [`crate::pipeline`];
//! - [`openapi`]: the OpenAPI 3.1 document of the routes, and its docs page.
//!
//! Uses [`crate::pipeline`] and the leaf modules; the server mounts it.

pub mod input;
pub mod openapi;
pub mod output;
pub mod routes;
pub mod serve;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

pub use routes::{Api, Route, Table};
pub use serve::serve;

use crate::metrics::Histogram;

/// Where REST route files come from.
#[derive(Clone, Debug)]
pub struct RestOptions {
    /// The directory of route files (`*.yaml`), reloaded when it changes.
    pub dir: PathBuf,
    /// The trusted-document manifests the routes name documents of.
    pub manifests: PathBuf,
    /// Whether routes that do not load stop the gateway (`REST_DIR` set);
    /// else (the default directory) the gateway serves no REST routes and
    /// says why: a gateway over another supergraph has no use for ours.
    pub required: bool,
}

/// The REST routes a gateway serves, replaced whole when their files change.
pub struct Rest {
    pub options: RestOptions,
    table: RwLock<Arc<Table>>,
    metrics: Mutex<RestMetrics>,
}

impl Rest {
    /// Loads every route file of `options.dir`, checked against the
    /// manifests and `schema`; the first problem refuses them all.
    pub fn load(
        options: RestOptions,
        schema: &graphql_tools::parser::schema::Document<'static, String>,
    ) -> anyhow::Result<Self> {
        let table = Table::load(&options.dir, &options.manifests, schema)?;
        Ok(Self {
            options,
            table: RwLock::new(Arc::new(table)),
            metrics: Mutex::default(),
        })
    }

    /// The routes serving new requests.
    pub fn table(&self) -> Arc<Table> {
        match self.table.read() {
            Ok(table) => table.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the route files again; when they do not load, the old ones stay.
    pub fn reload(
        &self,
        schema: &graphql_tools::parser::schema::Document<'static, String>,
    ) -> anyhow::Result<()> {
        let table = Arc::new(Table::load(
            &self.options.dir,
            &self.options.manifests,
            schema,
        )?);
        match self.table.write() {
            Ok(mut current) => *current = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
        Ok(())
    }

    /// Counts one answered REST request of `route` (its label, or `unknown`).
    pub fn observe(&self, route: &str, status: u16, took: Duration) {
        let mut metrics = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        *metrics
            .requests
            .entry((route.to_owned(), status))
            .or_default() += 1;
        metrics
            .durations
            .entry(route.to_owned())
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// The REST series for `/metrics`.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let metrics = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::from(
            "# HELP grocery_gateway_rest_requests_total REST requests answered, by route and HTTP status.\n\
             # TYPE grocery_gateway_rest_requests_total counter\n",
        );
        let mut requests: Vec<_> = metrics.requests.iter().collect();
        requests.sort();
        for ((route, status), n) in requests {
            let _ = writeln!(
                out,
                "grocery_gateway_rest_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP grocery_gateway_rest_request_duration_seconds REST requests' time, by route.\n\
             # TYPE grocery_gateway_rest_request_duration_seconds histogram\n",
        );
        let mut durations: Vec<_> = metrics.durations.iter().collect();
        durations.sort_by(|a, b| a.0.cmp(b.0));
        for (route, histogram) in durations {
            histogram.write(
                &mut out,
                "grocery_gateway_rest_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        out
    }
}

#[derive(Default)]
struct RestMetrics {
    requests: std::collections::HashMap<(String, u16), u64>,
    durations: std::collections::HashMap<String, Histogram>,
}

/// Reloads `rest`'s route files (checked against the supergraph `schema`
/// gives) whenever a file of their directory or of the manifests' changes,
/// checking every `every`. Broken files are logged and the previous routes
/// keep serving. Runs until dropped.
pub async fn watch(
    rest: Arc<Rest>,
    schema: impl Fn() -> Arc<crate::pipeline::Loaded> + Send + 'static,
    every: Duration,
) {
    let dirs = [rest.options.dir.clone(), rest.options.manifests.clone()];
    let mut seen = stamp(&dirs);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = stamp(&dirs);
        if now == seen {
            continue;
        }
        seen = now;
        let loaded = schema();
        let rest = rest.clone();
        let dir = rest.options.dir.clone();
        match tokio::task::spawn_blocking(move || rest.reload(loaded.supergraph.api_schema())).await
        {
            Ok(Ok(())) => tracing::info!(dir = %dir.display(), "REST route files reloaded"),
            Ok(Err(err)) => tracing::error!(
                dir = %dir.display(),
                error = %format!("{err:#}"),
                "a REST route file does not load; the previous routes keep serving"
            ),
            Err(err) => tracing::error!(%err, "REST route reload panicked"),
        }
    }
}

/// What the files of `dirs` look like now: path, modification time, size.
fn stamp(dirs: &[PathBuf]) -> Vec<(PathBuf, Option<std::time::SystemTime>, u64)> {
    let mut seen: Vec<_> = dirs
        .iter()
        .flat_map(|dir: &PathBuf| std::fs::read_dir(Path::new(dir)).into_iter().flatten())
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.modified().ok(), meta.len()))
        })
        .collect();
    seen.sort();
    seen
}
