//! [`Gateway`]: everything a server serves, built from [`GatewayOptions`],
//! and [`watch`], which reloads it when the supergraph file changes.

use std::sync::Arc;

use crate::{
    pipeline::{Loaded, Pipeline, PipelineOptions, auth::EdgeAuth},
    server::{cors::CorsPolicy, csrf::CsrfPolicy},
    subscriptions::Subscriptions,
};

/// How a gateway is set up beyond its supergraph and keys.
#[derive(Clone, Debug)]
pub struct GatewayOptions {
    /// How long a subgraph may take to answer.
    pub subgraph_timeout: std::time::Duration,
    /// Subgraphs that get another timeout than `subgraph_timeout`, by name.
    pub subgraph_timeouts: std::collections::HashMap<String, std::time::Duration>,
    /// Subgraph URLs that replace the supergraph's, by subgraph name.
    pub subgraph_urls: std::collections::HashMap<String, String>,
    /// How subgraphs are reached beyond their URLs (TLS, HTTP/2), by name.
    pub subgraph_options: std::collections::HashMap<String, crate::subgraph::SubgraphOptions>,
    /// Health URLs of subgraphs whose readiness is not at `/ready` beside
    /// their GraphQL path, by name (see [`crate::subgraph::readiness`]).
    pub subgraph_ready_urls: std::collections::HashMap<String, String>,
    /// How long `/ready` reuses its subgraphs' answers.
    pub ready_cache: std::time::Duration,
    /// Whether identical subgraph queries in flight at once share one fetch
    /// (see [`crate::subgraph::SubgraphClient::deduplicating`]).
    pub deduplicate_queries: bool,
    /// Whether identical client queries in flight at once share one
    /// execution and answer (see [`crate::pipeline::inbound`]).
    pub deduplicate_requests: bool,
    /// Whether `__schema`/`__type` are answered.
    pub introspection: bool,
    /// Whether a browser's GET `/graphql` gets the GraphiQL page.
    pub graphiql: bool,
    /// Whether `/metrics` is served with the API (else only by
    /// [`crate::server::metrics_router`], on a listener of its own).
    pub metrics_on_api: bool,
    /// Depth, alias and root-field limits.
    pub limits: crate::pipeline::limits::Limits,
    /// The most errors one response carries, the last of them saying how
    /// many more were dropped (see [`crate::pipeline::cap_errors`]).
    pub max_errors: usize,
    /// Which browser origins may call.
    pub cors: crate::server::cors::CorsPolicy,
    /// Which requests must carry a mark only a script can add (see [`crate::server::csrf`]).
    pub csrf: crate::server::csrf::CsrfPolicy,
    /// Subscription limits, keep-alive and buffering.
    pub subscriptions: crate::subscriptions::SubscriptionOptions,
    /// Automatic persisted queries and trusted-document manifests.
    pub persisted: crate::pipeline::persisted::PersistedOptions,
    /// Requests per user and per client address (none by default).
    pub rate_limits: crate::pipeline::ratelimit::RateLimits,
    /// Bytes of subgraph answers one request may hold.
    pub request_budget: usize,
    /// REST route files, if the gateway serves any (see [`crate::rest`]).
    pub rest: Option<crate::rest::RestOptions>,
    /// Spans of requests, plans and fetches, exported over OTLP (off by default).
    pub tracer: telemetry::otel::Tracer,
    /// Whether and where entity fetches' answers are kept (see [`crate::entity_cache`]).
    pub entity_cache: crate::entity_cache::EntityCacheOptions,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            subgraph_timeout: std::time::Duration::from_secs(10),
            subgraph_timeouts: Default::default(),
            subgraph_urls: Default::default(),
            subgraph_options: Default::default(),
            subgraph_ready_urls: Default::default(),
            ready_cache: crate::subgraph::readiness::DEFAULT_CACHE,
            deduplicate_queries: true,
            deduplicate_requests: false,
            introspection: false,
            graphiql: false,
            metrics_on_api: false,
            limits: Default::default(),
            max_errors: crate::pipeline::DEFAULT_MAX_ERRORS,
            cors: Default::default(),
            csrf: Default::default(),
            subscriptions: Default::default(),
            persisted: Default::default(),
            rate_limits: Default::default(),
            request_budget: crate::subgraph::DEFAULT_REQUEST_BUDGET,
            rest: None,
            tracer: Default::default(),
            entity_cache: Default::default(),
        }
    }
}

/// What a gateway serves: the request pipeline, subscriptions over it, and
/// the browser policies of its routes.
pub struct Gateway {
    /// Every GraphQL request's stages and what they share.
    pub pipeline: Arc<Pipeline>,
    /// Open subscriptions and their shared upstreams.
    pub subscriptions: Arc<Subscriptions>,
    /// Browser origins allowed to call.
    pub cors: Arc<CorsPolicy>,
    /// Which requests must carry a mark only a script can add.
    pub csrf: CsrfPolicy,
    /// Whether a browser's GET `/graphql` gets the GraphiQL page.
    pub graphiql: bool,
    /// Whether `/metrics` is served with the API.
    pub metrics_on_api: bool,
    /// REST endpoints from route files, if configured.
    pub rest: Option<Arc<crate::rest::Rest>>,
}

impl Gateway {
    /// A gateway over `sdl`, reaching subgraphs at the URLs it declares
    /// unless `options.subgraph_urls` names another for a subgraph.
    pub fn new(
        sdl: &str,
        verifier: Option<Arc<EdgeAuth>>,
        options: &GatewayOptions,
    ) -> anyhow::Result<Self> {
        let o = options.clone();
        let pipeline = Arc::new(Pipeline::new(
            sdl,
            verifier,
            PipelineOptions {
                subgraph_timeout: o.subgraph_timeout,
                subgraph_timeouts: o.subgraph_timeouts,
                subgraph_urls: o.subgraph_urls,
                subgraph_options: o.subgraph_options,
                subgraph_ready_urls: o.subgraph_ready_urls,
                ready_cache: o.ready_cache,
                deduplicate_queries: o.deduplicate_queries,
                deduplicate_requests: o.deduplicate_requests,
                introspection: o.introspection,
                limits: o.limits,
                max_errors: o.max_errors,
                persisted: o.persisted,
                rate_limits: o.rate_limits,
                request_budget: o.request_budget,
                tracer: o.tracer.clone(),
                entity_cache: o.entity_cache,
            },
        )?);
        let rest = match o.rest {
            Some(options) => {
                let required = options.required;
                match load_rest(&pipeline, options) {
                    Ok(rest) => Some(Arc::new(rest)),
                    Err(err) if required => return Err(err),
                    Err(err) => {
                        tracing::warn!(
                            error = %format!("{err:#}"),
                            "the default REST route files do not fit this gateway; it serves no \
                             REST routes (set REST_DIR to require them, or REST_DIR=off)"
                        );
                        None
                    }
                }
            }
            None => None,
        };
        Ok(Self {
            rest,
            subscriptions: Arc::new(Subscriptions::new(pipeline.clone(), o.subscriptions)),
            pipeline,
            cors: Arc::new(o.cors.allowing(o.csrf.header_names())),
            csrf: o.csrf,
            graphiql: o.graphiql,
            metrics_on_api: o.metrics_on_api,
        })
    }

    /// The supergraph serving new requests.
    pub fn current(&self) -> Arc<Loaded> {
        self.pipeline.current()
    }

    /// Replaces the supergraph with `sdl` (see [`Pipeline::reload`]).
    /// The REST routes are checked again against the new supergraph; when
    /// they no longer fit it, that is logged and the previous routes serve.
    pub fn reload(&self, sdl: &str) -> anyhow::Result<()> {
        self.pipeline.reload(sdl)?;
        if let Some(rest) = &self.rest
            && let Err(err) = rest.reload(self.pipeline.current().supergraph.api_schema())
        {
            tracing::error!(
                error = %format!("{err:#}"),
                "the REST routes do not fit the new supergraph; the previous routes keep serving"
            );
        }
        Ok(())
    }
}

/// The REST routes of `options`, checked against `pipeline`'s supergraph and manifests.
fn load_rest(
    pipeline: &Pipeline,
    options: crate::rest::RestOptions,
) -> anyhow::Result<crate::rest::Rest> {
    // Routes run manifest documents by id: the pipeline must serve the very
    // manifests the routes were checked against.
    anyhow::ensure!(
        pipeline.options.persisted.manifests.as_ref() == Some(&options.manifests),
        "the REST routes of {} name documents of {}, which this gateway does not serve as \
         trusted documents (set PERSISTED_DIR to it)",
        options.dir.display(),
        options.manifests.display()
    );
    crate::rest::Rest::load(options, pipeline.current().supergraph.api_schema())
}

/// Reloads `gateway` whenever the file at `path` changes, checking every
/// `every`. A file that does not load is logged and the old supergraph keeps
/// serving; the next change is tried again. Runs until dropped.
pub async fn watch(gateway: Arc<Gateway>, path: std::path::PathBuf, every: std::time::Duration) {
    let stamp = |path: &std::path::Path| {
        std::fs::metadata(path)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut seen = stamp(&path);
    let mut last_text = std::fs::read_to_string(&path).ok();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = stamp(&path);
        if now == seen {
            continue;
        }
        seen = now;
        let Ok(text) = tokio::fs::read_to_string(&path).await else {
            tracing::warn!(path = %path.display(), "the supergraph file cannot be read; keeping the loaded one");
            continue;
        };
        if last_text.as_deref() == Some(text.as_str()) {
            continue;
        }
        last_text = Some(text.clone());
        let gw = gateway.clone();
        match tokio::task::spawn_blocking(move || gw.reload(&text)).await {
            Ok(Ok(())) => tracing::info!(path = %path.display(), "supergraph reloaded"),
            Ok(Err(err)) => tracing::error!(
                path = %path.display(),
                error = %format!("{err:#}"),
                "the new supergraph does not load; the previous one keeps serving"
            ),
            Err(err) => tracing::error!(%err, "supergraph reload panicked"),
        }
    }
}
