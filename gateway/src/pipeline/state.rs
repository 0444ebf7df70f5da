//! What every request shares, and the supergraph it runs on: [`Pipeline`]
//! holds the [`Loaded`] supergraph (planner, subgraph registry,
//! introspection, readiness), replaced whole when the supergraph changes.

use std::sync::Arc;

use crate::{
    entity_cache::EntityCache,
    metrics::Metrics,
    pipeline::{
        auth::EdgeAuth,
        introspection::Introspection,
        limits::Limits,
        persisted::{Documents, PersistedOptions},
        planning::Supergraph,
        ratelimit::{Limiter, RateLimits},
    },
    subgraph::{Endpoint, SubgraphClient, Subgraphs},
};

/// What one supergraph brings: its planner, where its subgraphs are, and
/// its introspection answer. Replaced whole on reload; a request keeps the
/// one it started with.
pub struct Loaded {
    pub supergraph: Arc<Supergraph>,
    pub subgraphs: Subgraphs,
    /// Answers `__schema`/`__type`; `None` refuses them (introspection off).
    pub introspection: Option<Introspection>,
    /// The most errors one answer carries (see [`crate::pipeline::cap_errors`]).
    pub max_errors: usize,
    /// Whether its subgraphs are ready, for `/ready`.
    pub readiness: crate::subgraph::readiness::Readiness,
}

/// How the pipeline is set up beyond its supergraph and keys (the part of
/// [`crate::GatewayOptions`] a request's stages read).
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// How long a subgraph may take to answer.
    pub subgraph_timeout: std::time::Duration,
    /// Subgraphs that get another timeout than `subgraph_timeout`, by name.
    pub subgraph_timeouts: std::collections::HashMap<String, std::time::Duration>,
    /// Subgraph URLs that replace the supergraph's, by subgraph name.
    pub subgraph_urls: std::collections::HashMap<String, String>,
    /// How subgraphs are reached beyond their URLs (TLS, HTTP/2), by name.
    pub subgraph_options: std::collections::HashMap<String, crate::subgraph::SubgraphOptions>,
    /// Health URLs of subgraphs whose readiness is not at `/ready` beside
    /// their GraphQL path, by name.
    pub subgraph_ready_urls: std::collections::HashMap<String, String>,
    /// How long `/ready` reuses its subgraphs' answers.
    pub ready_cache: std::time::Duration,
    /// Whether identical subgraph queries in flight at once share one fetch.
    pub deduplicate_queries: bool,
    /// Whether identical client queries in flight at once share one
    /// execution and answer (see [`crate::pipeline::inbound`]).
    pub deduplicate_requests: bool,
    /// Whether `__schema`/`__type` are answered.
    pub introspection: bool,
    /// Document and variable limits.
    pub limits: Limits,
    /// The most errors one response carries.
    pub max_errors: usize,
    /// Automatic persisted queries and trusted-document manifests.
    pub persisted: PersistedOptions,
    /// Requests per user and per client address.
    pub rate_limits: RateLimits,
    /// Bytes of subgraph answers one request may hold.
    pub request_budget: usize,
    /// Spans of requests, plans and fetches (off unless traces are exported).
    pub tracer: telemetry::otel::Tracer,
    /// Whether and where entity fetches' answers are kept.
    pub entity_cache: crate::entity_cache::EntityCacheOptions,
}

/// What every request shares: the loaded supergraph (replaced whole on
/// reload), the subgraph connection pool, token verification, persisted
/// documents, rate limiters and metrics.
pub struct Pipeline {
    loaded: std::sync::RwLock<Arc<Loaded>>,
    pub options: PipelineOptions,
    /// One connection pool for every supergraph this gateway serves.
    client: SubgraphClient,
    /// Verifies bearer tokens at the edge; `None` lets every token through to subgraphs.
    pub verifier: Option<Arc<EdgeAuth>>,
    /// Counters for `/metrics`, kept across reloads.
    pub metrics: Arc<Metrics>,
    /// Client queries in flight, when identical ones share an answer.
    pub inbound: Option<Arc<crate::pipeline::inbound::Inbound>>,
    /// Trusted manifests and APQ documents.
    pub documents: Arc<Documents>,
    /// Rate limits per user and address.
    pub limiter: Arc<Limiter>,
    /// Partner usage and quotas, per client and trusted document.
    pub usage: Arc<crate::pipeline::usage::Usage>,
    /// The subgraphs this gateway answers itself, by their URL's authority
    /// (`gateway://usage`: [`crate::pipeline::usage::admin`]).
    locals: Locals,
    /// Entity fetches' answers, kept across reloads; the launcher drops
    /// what domain events say changed ([`EntityCache::invalidate`]).
    pub entity_cache: Arc<EntityCache>,
}

type Locals = std::collections::HashMap<String, Arc<dyn crate::subgraph::local::Local>>;

impl Pipeline {
    /// A pipeline over `sdl`, reaching subgraphs at the URLs it declares
    /// unless `options.subgraph_urls` names another for a subgraph.
    pub fn new(
        sdl: &str,
        verifier: Option<Arc<EdgeAuth>>,
        options: PipelineOptions,
    ) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let client = SubgraphClient::new(options.subgraph_timeout)
            .deduplicating(options.deduplicate_queries);
        let documents = Arc::new(Documents::new(&options.persisted)?);
        let usage = Arc::new(crate::pipeline::usage::Usage::new(documents.redis()));
        let admin = crate::pipeline::usage::admin::Admin::new(
            usage.clone(),
            documents.clone(),
            verifier.clone(),
            options.persisted.admin_roles.clone(),
        );
        let locals = Locals::from([(
            crate::pipeline::usage::admin::AUTHORITY.to_owned(),
            admin.local(),
        )]);
        let cached = &options.entity_cache;
        let redis = match (&cached.redis_url, cached.enabled) {
            (Some(url), true) => Some(crate::pipeline::replicas::connect(url)?),
            _ => None,
        };
        let entity_cache = Arc::new(EntityCache::new(cached, redis));
        let loaded = load(sdl, &options, &client, &metrics, &locals, &entity_cache)?;
        Ok(Self {
            entity_cache,
            loaded: std::sync::RwLock::new(Arc::new(loaded)),
            client,
            verifier,
            inbound: options
                .deduplicate_requests
                .then(|| Arc::new(crate::pipeline::inbound::Inbound::default())),
            metrics,
            usage,
            locals,
            documents,
            limiter: Arc::new(Limiter::new(options.rate_limits.clone())?),
            options,
        })
    }

    /// The supergraph serving new requests.
    pub fn current(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(loaded) => loaded.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the supergraph with `sdl`. Requests already running finish
    /// on the old one; if `sdl` does not load, the old one stays.
    pub fn reload(&self, sdl: &str) -> anyhow::Result<()> {
        let result = load(
            sdl,
            &self.options,
            &self.client,
            &self.metrics,
            &self.locals,
            &self.entity_cache,
        );
        self.metrics.reload(result.is_ok());
        let loaded = Arc::new(result?);
        match self.loaded.write() {
            Ok(mut current) => *current = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        Ok(())
    }
}

fn load(
    sdl: &str,
    options: &PipelineOptions,
    client: &SubgraphClient,
    metrics: &Arc<Metrics>,
    locals: &Locals,
    entity_cache: &Arc<EntityCache>,
) -> anyhow::Result<Loaded> {
    let supergraph = Arc::new(Supergraph::load(sdl)?.with_limits(options.limits));
    let overrides = &options.subgraph_urls;
    if let Some(unknown) = overrides
        .keys()
        .find(|name| !supergraph.subgraphs().contains_key(*name))
    {
        anyhow::bail!("SUBGRAPH_URLS names {unknown:?}, which the supergraph does not have");
    }
    if let Some(unknown) = options
        .subgraph_timeouts
        .keys()
        .find(|name| !supergraph.subgraphs().contains_key(*name))
    {
        anyhow::bail!("SUBGRAPH_TIMEOUTS names {unknown:?}, which the supergraph does not have");
    }
    for (name, each) in &options.subgraph_options {
        if !supergraph.subgraphs().contains_key(name) {
            let variable = each
                .fields()
                .next()
                .map_or("SUBGRAPH_HTTP2", |f| f.variable());
            anyhow::bail!("{variable} names {name:?}, which the supergraph does not have");
        }
    }
    let urls = supergraph
        .subgraphs()
        .iter()
        .map(|(name, declared)| {
            let url = overrides.get(name).unwrap_or(declared);
            let uri = url
                .parse()
                .map_err(|e| anyhow::anyhow!("subgraph {name} has an invalid URL {url:?}: {e}"))?;
            Ok((name.clone(), uri))
        })
        .collect::<anyhow::Result<std::collections::HashMap<_, _>>>()?;
    // Subgraphs answered in process: no connections, always ready.
    let mut local = Locals::new();
    for (name, url) in &urls {
        if crate::subgraph::local::is_local(url) {
            let at = url.authority().map_or("", |a| a.as_str());
            let answer = locals.get(at).ok_or_else(|| {
                anyhow::anyhow!("subgraph {name}'s URL {url} names nothing this gateway answers")
            })?;
            local.insert(name.clone(), answer.clone());
        }
    }
    let remote: std::collections::HashMap<_, _> = urls
        .iter()
        .filter(|(name, _)| !local.contains_key(*name))
        .map(|(name, url)| (name.clone(), url.clone()))
        .collect();
    let readiness = crate::subgraph::readiness::Readiness::new(
        &remote,
        &options.subgraph_ready_urls,
        options.ready_cache,
    )?;
    let endpoints = urls
        .into_iter()
        .map(|(name, url)| {
            let each = options
                .subgraph_options
                .get(&name)
                .cloned()
                .unwrap_or_default();
            let endpoint =
                Endpoint::new(url, &each).map_err(|e| anyhow::anyhow!("subgraph {name}: {e}"))?;
            Ok((name, endpoint))
        })
        .collect::<anyhow::Result<_>>()?;
    let subgraphs = Subgraphs::new(endpoints, client.clone(), metrics.clone())
        .with_timeouts(options.subgraph_timeouts.clone())
        .with_budget(options.request_budget)
        .with_tracer(options.tracer.clone())
        .with_local(local)
        .with_entity_cache(entity_cache.clone());
    let introspection = options
        .introspection
        .then(|| Introspection::new(supergraph.api_schema()));
    Ok(Loaded {
        supergraph,
        subgraphs,
        introspection,
        max_errors: options.max_errors,
        readiness,
    })
}
