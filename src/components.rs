//! The components the binary can run: how each is configured from the
//! environment, started, and served (HTTP, plus gRPC and a sweeper for
//! inventory) until told to stop.

use std::{future::Future, net::SocketAddr, pin::Pin};

use anyhow::Context;
use clap::ValueEnum;
use kit::{
    auth::{
        KeyRing, Revocations, TokenSettings,
        revocation_feed::{self, FeedConfig, Source},
    },
    config::Env,
    events::Bus,
};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

/// A runnable part of grocery.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Component {
    /// Accounts, sessions (dual JWT) and profiles.
    Users,
    /// Products.
    Catalog,
    /// Stock, batches, reservations, pricing; serves the internal stock API.
    Inventory,
    /// Cart, checkout, payments, order lifecycle and live order status.
    Orders,
    /// Truck restocks and shipments.
    Logistics,
}

impl Component {
    /// Every component, in start-up order (inventory's stock API first: catalog and orders call it).
    pub const ALL: [Component; 5] = [
        Component::Inventory,
        Component::Catalog,
        Component::Users,
        Component::Orders,
        Component::Logistics,
    ];

    /// The lower-case name used in commands, env variables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Component::Users => "users",
            Component::Catalog => "catalog",
            Component::Inventory => "inventory",
            Component::Orders => "orders",
            Component::Logistics => "logistics",
        }
    }

    /// The HTTP port a component listens on unless configured.
    pub fn default_port(self) -> u16 {
        match self {
            Component::Users => 4001,
            Component::Catalog => 4002,
            Component::Inventory => 4003,
            Component::Orders => 4004,
            Component::Logistics => 4005,
        }
    }

    /// The federation SDL of a subgraph.
    pub fn sdl(self) -> String {
        match self {
            Component::Users => users::sdl(),
            Component::Catalog => catalog::sdl(),
            Component::Inventory => inventory::sdl(),
            Component::Orders => orders::sdl(),
            Component::Logistics => logistics::sdl(),
        }
    }

    /// Its embedded migrations.
    pub fn migrations(self) -> &'static diesel_migrations::EmbeddedMigrations {
        match self {
            Component::Users => &users::MIGRATIONS,
            Component::Catalog => &catalog::MIGRATIONS,
            Component::Inventory => &inventory::MIGRATIONS,
            Component::Orders => &orders::MIGRATIONS,
            Component::Logistics => &logistics::MIGRATIONS,
        }
    }
}

/// What `grocery serve` can run: the gateway or one subgraph.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Servable {
    /// The federation gateway in front of every subgraph (port 4000).
    Gateway,
    /// Accounts, sessions (dual JWT) and profiles.
    Users,
    /// Products.
    Catalog,
    /// Stock, batches, reservations, pricing; serves the internal stock API.
    Inventory,
    /// Cart, checkout, payments, order lifecycle and live order status.
    Orders,
    /// Truck restocks and shipments.
    Logistics,
}

impl Servable {
    /// The subgraph this is, if it is one.
    pub fn component(self) -> Option<Component> {
        match self {
            Servable::Gateway => None,
            Servable::Users => Some(Component::Users),
            Servable::Catalog => Some(Component::Catalog),
            Servable::Inventory => Some(Component::Inventory),
            Servable::Orders => Some(Component::Orders),
            Servable::Logistics => Some(Component::Logistics),
        }
    }
}

/// How long the gateway waits for a subgraph.
pub const SUBGRAPH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How the gateway is served: `GATEWAY_THREADS` serving threads (default:
/// one per core), each polling for windows of at most `GATEWAY_POLL_US`
/// microseconds after a request starts, fetches or ends while nearly idle
/// (default 1000, at most 10 000; 0 turns it off) and executing at most `GATEWAY_EXECUTIONS`
/// operations at once (default 20; 0: no bound).
pub fn gateway_serving(env: &mut Env) -> gateway::server::Serving {
    let default = gateway::server::Serving::default();
    let threads = env.parse_or("GATEWAY_THREADS", default.threads);
    if threads == 0 {
        env.problem("GATEWAY_THREADS must be at least 1");
    }
    let poll = env.parse_or("GATEWAY_POLL_US", default.poll.as_micros() as u64);
    let max = gateway::server::threads::MAX_POLL.as_micros();
    if u128::from(poll) > max {
        env.problem(format!(
            "GATEWAY_POLL_US={poll} is more than {max} (that much spinning after every request)"
        ));
    }
    let mut timeout = |name: &str, default: std::time::Duration| match env.get(name) {
        None => default,
        Some(raw) => parse_timeout(&raw).unwrap_or_else(|| {
            env.problem(format!(
                "{name}: {raw:?} is not a timeout like 10s or 500ms"
            ));
            default
        }),
    };
    let timeouts = gateway::server::ConnectionTimeouts {
        head: timeout("HEAD_TIMEOUT", default.timeouts.head),
        idle: timeout("IDLE_TIMEOUT", default.timeouts.idle),
    };
    gateway::server::Serving {
        threads,
        poll: std::time::Duration::from_micros(poll),
        executions: env.parse_or("GATEWAY_EXECUTIONS", default.executions),
        timeouts,
    }
}

/// The gateway's listen address: `GATEWAY_HOST`/`GATEWAY_PORT` or `HOST`/`PORT`, default 127.0.0.1:4000.
pub fn gateway_addr(env: &mut Env) -> SocketAddr {
    let host = env
        .get("GATEWAY_HOST")
        .or_else(|| env.get("HOST"))
        .unwrap_or_else(|| "127.0.0.1".into());
    let port = if env.get("GATEWAY_PORT").is_some() {
        env.parse_or("GATEWAY_PORT", 4000)
    } else {
        env.parse_or("PORT", 4000)
    };
    match host.as_str() {
        "localhost" => SocketAddr::from(([127, 0, 0, 1], port)),
        other => match other
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
        {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => {
                env.problem(format!("HOST={host:?} is not an IP address"));
                SocketAddr::from(([127, 0, 0, 1], port))
            }
        },
    }
}

/// Serves `gateway` on `addr` as `serving` says (see [`gateway::server`])
/// in `tasks` until `stop`; returns its URL.
pub async fn spawn_gateway(
    gateway: std::sync::Arc<gateway::Gateway>,
    addr: SocketAddr,
    serving: gateway::server::Serving,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<String> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("the gateway cannot listen on {addr} (set GATEWAY_PORT)"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = gateway::edge(gateway);
    tasks.spawn(async move {
        gateway::server::serve(listener, router, serving, stop).await?;
        Ok(())
    });
    Ok(url)
}

/// `CSRF_PREVENTION` (default on) and `CSRF_REQUIRED_HEADERS` (the headers
/// any of which marks a request as a script's; see [`gateway::server::csrf`]).
pub fn csrf_policy(env: &mut Env) -> gateway::server::csrf::CsrfPolicy {
    let policy = match gateway::server::csrf::CsrfPolicy::with_headers(
        &env.get("CSRF_REQUIRED_HEADERS").unwrap_or_default(),
    ) {
        Ok(policy) => policy,
        Err(why) => {
            env.problem(format!("CSRF_REQUIRED_HEADERS: {why}"));
            Default::default()
        }
    };
    gateway::server::csrf::CsrfPolicy {
        enabled: env.parse_or("CSRF_PREVENTION", true),
        ..policy
    }
}

/// `MAX_ERRORS`: the most errors one response carries (at least 1).
pub fn max_errors(env: &mut Env) -> usize {
    let max = env.parse_or("MAX_ERRORS", gateway::pipeline::DEFAULT_MAX_ERRORS);
    if max == 0 {
        env.problem("MAX_ERRORS must be at least 1");
    }
    max
}

/// `METRICS_ADDR`: where `/metrics` gets a listener of its own (an address
/// Prometheus reaches and the public does not), if set.
pub fn metrics_addr(env: &mut Env) -> Option<SocketAddr> {
    let raw = env.get("METRICS_ADDR")?;
    match raw.trim().parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            env.problem(format!(
                "METRICS_ADDR={raw:?} is not an address like 127.0.0.1:9464"
            ));
            None
        }
    }
}

/// Serves `/metrics` of `gateway` alone on `addr` in `tasks` until `stop`;
/// its URL.
pub async fn spawn_metrics(
    gateway: std::sync::Arc<gateway::Gateway>,
    addr: SocketAddr,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<String> {
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("the gateway's metrics cannot listen on {addr} (set METRICS_ADDR)")
    })?;
    let url = format!("http://{}/metrics", listener.local_addr()?);
    let router = gateway::metrics_router(gateway);
    tasks.spawn(async move {
        kit::server::serve(listener, router, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await?;
        Ok(())
    });
    Ok(url)
}

/// `SUBGRAPH_URLS="users=http://users:4001/graphql,catalog=…"`: where subgraphs
/// really are when that differs from the URLs in the supergraph.
fn subgraph_urls(env: &mut Env) -> std::collections::HashMap<String, String> {
    let mut urls = std::collections::HashMap::new();
    let raw = env.get("SUBGRAPH_URLS").unwrap_or_default();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((name, url)) if !name.trim().is_empty() && url.trim().starts_with("http") => {
                urls.insert(name.trim().to_owned(), url.trim().to_owned());
            }
            _ => env.problem(format!("SUBGRAPH_URLS: {pair:?} is not name=http://…")),
        }
    }
    urls
}

/// `SUBGRAPH_READY_URLS="users=http://users:4001/ready,…"`: health URLs of
/// subgraphs whose readiness is not at `/ready` beside their GraphQL path.
fn subgraph_ready_urls(env: &mut Env) -> std::collections::HashMap<String, String> {
    let mut urls = std::collections::HashMap::new();
    let raw = env.get("SUBGRAPH_READY_URLS").unwrap_or_default();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((name, url)) if !name.trim().is_empty() && url.trim().starts_with("http://") => {
                urls.insert(name.trim().to_owned(), url.trim().to_owned());
            }
            _ => env.problem(format!(
                "SUBGRAPH_READY_URLS: {pair:?} is not name=http://…"
            )),
        }
    }
    urls
}

/// `READY_CACHE=2s`: how long `/ready` reuses its subgraphs' answers.
fn ready_cache(env: &mut Env) -> std::time::Duration {
    let default = gateway::subgraph::readiness::DEFAULT_CACHE;
    match env.get("READY_CACHE") {
        None => default,
        Some(raw) => parse_timeout(&raw).unwrap_or_else(|| {
            env.problem(format!(
                "READY_CACHE: {raw:?} is not a duration like 2s or 500ms"
            ));
            default
        }),
    }
}

/// `250ms`, `2s` or `1.5s`: a timeout as people write it.
fn parse_timeout(raw: &str) -> Option<std::time::Duration> {
    let raw = raw.trim();
    let (number, scale) = match raw.strip_suffix("ms") {
        Some(ms) => (ms, 0.001),
        None => (raw.strip_suffix('s')?, 1.0),
    };
    let seconds = number.trim().parse::<f64>().ok()? * scale;
    (seconds > 0.0 && seconds <= 3600.0).then(|| std::time::Duration::from_secs_f64(seconds))
}

/// `SUBGRAPH_TIMEOUT=10s` for every subgraph, and
/// `SUBGRAPH_TIMEOUTS="inventory=2s,orders=1500ms"` for the ones that differ.
fn subgraph_timeouts(
    env: &mut Env,
) -> (
    std::time::Duration,
    std::collections::HashMap<String, std::time::Duration>,
) {
    let default = match env.get("SUBGRAPH_TIMEOUT") {
        None => SUBGRAPH_TIMEOUT,
        Some(raw) => parse_timeout(&raw).unwrap_or_else(|| {
            env.problem(format!(
                "SUBGRAPH_TIMEOUT: {raw:?} is not a timeout like 10s or 500ms (up to 3600s)"
            ));
            SUBGRAPH_TIMEOUT
        }),
    };
    let mut each = std::collections::HashMap::new();
    let raw = env.get("SUBGRAPH_TIMEOUTS").unwrap_or_default();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair
            .split_once('=')
            .and_then(|(name, t)| Some((name.trim(), parse_timeout(t)?)))
        {
            Some((name, timeout)) if !name.is_empty() => {
                each.insert(name.to_owned(), timeout);
            }
            _ => env.problem(format!(
                "SUBGRAPH_TIMEOUTS: {pair:?} is not name=timeout (like inventory=2s)"
            )),
        }
    }
    (default, each)
}

/// `SUBSCRIPTIONS_PER_CONNECTION`, `SUBSCRIPTIONS_PER_USER` and
/// `SUBSCRIPTION_BUFFER` (messages queued for a client before it counts as
/// not reading), over the gateway's defaults.
pub fn subscription_options(env: &mut Env) -> gateway::subscriptions::SubscriptionOptions {
    let defaults = gateway::subscriptions::SubscriptionOptions::default();
    gateway::subscriptions::SubscriptionOptions {
        per_connection: env.parse_or("SUBSCRIPTIONS_PER_CONNECTION", defaults.per_connection),
        per_user: env.parse_or("SUBSCRIPTIONS_PER_USER", defaults.per_user),
        buffer: env.parse_or("SUBSCRIPTION_BUFFER", defaults.buffer).max(1),
        ..defaults
    }
}

/// Persisted documents and rate limits of the gateway's edge:
/// `PERSISTED_DIR` (trusted-document manifests, default `schema/persisted`),
/// `PERSISTED_ONLY`, `PERSISTED_ONLY_ROLES` (see [`persisted_only_roles`]),
/// `APQ`, `RATE_LIMITS` (see [`gateway::pipeline::ratelimit::RateLimits::parse`]),
/// `RATE_LIMIT_IP_HEADER`; APQ documents and rate buckets are shared through
/// `REDIS_URL` when it is set.
pub fn edge_options(
    env: &mut Env,
    persisted_only: bool,
) -> (
    gateway::pipeline::persisted::PersistedOptions,
    gateway::pipeline::ratelimit::RateLimits,
) {
    let redis_url = env.get("REDIS_URL");
    let defaults = gateway::pipeline::persisted::PersistedOptions::default();
    let persisted = gateway::pipeline::persisted::PersistedOptions {
        manifests: Some(
            env.get("PERSISTED_DIR")
                .unwrap_or_else(|| "schema/persisted".into())
                .into(),
        ),
        only: persisted_only || env.parse_or("PERSISTED_ONLY", false),
        only_roles: persisted_only_roles(env),
        apq: env.parse_or("APQ", defaults.apq),
        redis_url: redis_url.clone(),
        ..defaults
    };
    let mut rate_limits = match gateway::pipeline::ratelimit::RateLimits::parse(
        &env.get("RATE_LIMITS").unwrap_or_default(),
    ) {
        Ok(limits) => limits,
        Err(why) => {
            env.problem(format!("RATE_LIMITS: {why}"));
            Default::default()
        }
    };
    if let Some(header) = env.get("RATE_LIMIT_IP_HEADER") {
        match axum::http::HeaderName::try_from(header.trim().to_ascii_lowercase()) {
            Ok(name) => rate_limits.ip_header = Some(name),
            Err(_) => env.problem(format!(
                "RATE_LIMIT_IP_HEADER: {header:?} is not a header name"
            )),
        }
    }
    rate_limits.redis_url = redis_url;
    (persisted, rate_limits)
}

/// The roles whose tokens run only manifest documents: `PERSISTED_ONLY_ROLES`,
/// a comma-separated list of role names, `off` for none; default `PARTNER`
/// (integrations). The gateway knows no roles: this is where grocery's are named.
pub fn persisted_only_roles(env: &mut Env) -> Vec<kit::auth::RoleName> {
    let Some(raw) = env.get("PERSISTED_ONLY_ROLES") else {
        return vec![kit::auth::Role::Partner.into()];
    };
    if raw.trim() == "off" {
        return Vec::new();
    }
    let mut roles = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.parse() {
            Ok(role) => roles.push(role),
            Err(err) => env.problem(format!("PERSISTED_ONLY_ROLES: {err}")),
        }
    }
    roles
}

/// How often the supergraph file and the manifests are checked for changes.
const SUPERGRAPH_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// `grocery serve gateway`: the supergraph from `SUPERGRAPH_PATH` (reloaded
/// when the file changes), tokens checked with the users subgraph's public
/// keys (`JWKS_URL` or `JWT_PUBLIC_KEYS_FILE`).
pub async fn serve_gateway(
    supergraph: Option<std::path::PathBuf>,
    persisted_only: bool,
) -> anyhow::Result<()> {
    let mut env = Env::new();
    let addr = gateway_addr(&mut env);
    let serving = gateway_serving(&mut env);
    let from_env = env.get("SUPERGRAPH_PATH");
    let path = match supergraph {
        Some(flag) => flag.display().to_string(),
        None => from_env.unwrap_or_else(|| "schema/supergraph.graphql".into()),
    };
    // The users subgraph's keys: from its JWKS URL (refetched when keys
    // rotate) or, failing that, from a PEM file.
    let jwks_url = env.get("JWKS_URL");
    let keys = match jwks_url {
        Some(_) => KeyRing::default(),
        None => KeyRing::verifying_from_env_or(&mut env, None),
    };
    let mut tokens = kit::auth::TokenSettings::from_env(&mut env);
    let cutoffs = Revocations::new();
    tokens.revocations = Some(cutoffs.clone());
    let feed = FeedConfig::from_env(&mut env);
    let defaults = gateway::pipeline::limits::Limits::default();
    let (subgraph_timeout, subgraph_timeouts) = subgraph_timeouts(&mut env);
    let (persisted, rate_limits) = edge_options(&mut env, persisted_only);
    let metrics_addr = metrics_addr(&mut env);
    let options = gateway::GatewayOptions {
        subgraph_timeout,
        deduplicate_queries: env.parse_or("SUBGRAPH_DEDUPLICATION", true),
        subgraph_timeouts,
        subgraph_urls: subgraph_urls(&mut env),
        subgraph_ready_urls: subgraph_ready_urls(&mut env),
        ready_cache: ready_cache(&mut env),
        // Off unless asked for: a production API does not publish its schema by default.
        introspection: env.parse_or("INTROSPECTION", false),
        // Off unless asked for, like introspection (the page is useless without it).
        graphiql: env.parse_or("GRAPHIQL", false),
        // The public port serves the API only; metrics go to METRICS_ADDR.
        metrics_on_api: false,
        limits: gateway::pipeline::limits::Limits {
            max_tokens: env.parse_or("MAX_TOKENS", defaults.max_tokens),
            max_depth: env.parse_or("MAX_DEPTH", defaults.max_depth),
            max_fields: env.parse_or("MAX_FIELDS", defaults.max_fields),
            max_aliases: env.parse_or("MAX_ALIASES", defaults.max_aliases),
            max_root_fields: env.parse_or("MAX_ROOT_FIELDS", defaults.max_root_fields),
            max_directives: env.parse_or("MAX_DIRECTIVES", defaults.max_directives),
            max_variable_values: env.parse_or("MAX_VARIABLE_VALUES", defaults.max_variable_values),
            max_variable_depth: env.parse_or("MAX_VARIABLE_DEPTH", defaults.max_variable_depth),
            max_plan_time: match env.get("PLAN_TIMEOUT") {
                None => defaults.max_plan_time,
                Some(raw) => parse_timeout(&raw).unwrap_or_else(|| {
                    env.problem(format!(
                        "PLAN_TIMEOUT: {raw:?} is not a timeout like 2s or 500ms"
                    ));
                    defaults.max_plan_time
                }),
            },
        },
        request_budget: env.parse_or(
            "REQUEST_MEMORY_BUDGET",
            gateway::subgraph::DEFAULT_REQUEST_BUDGET,
        ),
        cors: gateway::server::cors::CorsPolicy::parse(
            &env.get("CORS_ORIGINS").unwrap_or_default(),
            env.parse_or("CORS_CREDENTIALS", false),
        ),
        csrf: csrf_policy(&mut env),
        max_errors: max_errors(&mut env),
        subscriptions: subscription_options(&mut env),
        persisted,
        rate_limits,
    };
    env.finish()?;
    let sdl =
        std::fs::read_to_string(&path).with_context(|| format!("reading the supergraph {path}"))?;
    let verifier = std::sync::Arc::new(match jwks_url {
        Some(url) => {
            gateway::pipeline::auth::EdgeAuth::Jwks(Box::new(gateway::pipeline::auth::Jwks::new(
                url.parse()
                    .with_context(|| format!("JWKS_URL={url} is not a URL"))?,
                tokens,
                std::time::Duration::from_secs(30),
            )))
        }
        None => gateway::pipeline::auth::EdgeAuth::Keys(std::sync::Arc::new(
            kit::auth::Verifier::new(&keys, &tokens)?,
        )),
    });
    let gateway = std::sync::Arc::new(gateway::Gateway::new(&sdl, Some(verifier), &options)?);
    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    if let Some(metrics) = metrics_addr {
        let url = spawn_metrics(gateway.clone(), metrics, &mut tasks, stop.clone()).await?;
        tracing::info!(%url, "gateway metrics listening");
    }
    follow_cutoffs(
        cutoffs.clone(),
        CutoffFeed::Remote(feed),
        &mut tasks,
        stop.clone(),
    )
    .await?;
    await_cutoffs(&[cutoffs], CUTOFF_PATIENCE).await;
    let url = spawn_gateway(gateway.clone(), addr, serving, &mut tasks, stop).await?;
    tracing::info!(%url, supergraph = %path, "gateway listening");
    // Edits of the supergraph file are picked up without a restart.
    let manifests = tokio::spawn(gateway::pipeline::persisted::watch(
        gateway.pipeline.documents.clone(),
        SUPERGRAPH_POLL,
    ));
    let watcher = tokio::spawn(gateway::watch(gateway, path.into(), SUPERGRAPH_POLL));
    tokio::select! {
        () = crate::shutdown_signal() => {}
        Some(ended) = tasks.join_next() => {
            ended??;
            anyhow::bail!("the gateway stopped unexpectedly");
        }
    }
    watcher.abort();
    manifests.abort();
    let _ = stop_tx.send(true);
    while let Some(ended) = tasks.join_next().await {
        ended??;
    }
    Ok(())
}

/// How long `serve` waits for the access cut-offs before it listens anyway
/// (access tokens are then answered `SERVICE_UNAVAILABLE` until they load).
pub const CUTOFF_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a process's access cut-offs come from.
pub enum CutoffFeed {
    /// The users subgraph's own table, and its bus.
    Local(Box<(Bus, Source)>),
    /// The users subgraph's list over HTTP, and the bus the settings name.
    Remote(FeedConfig),
}

/// Keeps `table` filled in `tasks` until `stop` (see [`revocation_feed`]).
pub async fn follow_cutoffs(
    table: Revocations,
    feed: CutoffFeed,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let follow: Task = match feed {
        CutoffFeed::Local(local) => Box::pin(async move {
            let (bus, source) = *local;
            revocation_feed::follow(table, bus, source).await;
            Ok(())
        }),
        CutoffFeed::Remote(config) => {
            let follow = revocation_feed::connect(table, &config).await?;
            Box::pin(async move {
                follow.await;
                Ok(())
            })
        }
    };
    tasks.spawn(async move {
        tokio::select! {
            ended = follow => {
                ended?;
                anyhow::bail!("the access cut-off feed ended unexpectedly");
            }
            _ = stop.wait_for(|s| *s) => {}
        }
        Ok(())
    });
    Ok(())
}

/// Waits until every table is loaded, or `patience` ran out (then says so).
pub async fn await_cutoffs(tables: &[Revocations], patience: std::time::Duration) -> bool {
    let loaded = async {
        for table in tables {
            table.primed().await;
        }
    };
    match tokio::time::timeout(patience, loaded).await {
        Ok(_) => true,
        Err(_) => {
            tracing::warn!(
                "the access cut-offs are not loaded yet (is the users subgraph up?); \
                 access tokens are refused with SERVICE_UNAVAILABLE until they are"
            );
            false
        }
    }
}

/// `<NAME>_HOST`/`<NAME>_PORT` (or `HOST`/`PORT`), default 127.0.0.1 and the component's port.
pub fn listen_addr(env: &mut Env, component: Component) -> SocketAddr {
    let upper = component.name().to_uppercase();
    let host = env
        .get(&format!("{upper}_HOST"))
        .or_else(|| env.get("HOST"))
        .unwrap_or_else(|| "127.0.0.1".into());
    let port_var = format!("{upper}_PORT");
    let port = if env.get(&port_var).is_some() {
        env.parse_or(&port_var, component.default_port())
    } else {
        env.parse_or("PORT", component.default_port())
    };
    let ip = match host.as_str() {
        "localhost" => Ok(std::net::IpAddr::from([127, 0, 0, 1])),
        other => other.trim_matches(|c| c == '[' || c == ']').parse(),
    };
    match ip {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => {
            env.problem(format!("HOST={host:?} is not an IP address"));
            SocketAddr::from(([127, 0, 0, 1], port))
        }
    }
}

/// A component's configuration, read from the environment.
pub enum Config {
    Users(users::UsersConfig),
    Catalog(catalog::CatalogConfig),
    Inventory(inventory::InventoryConfig),
    Orders(orders::OrdersConfig),
    Logistics(logistics::LogisticsConfig),
}

impl Config {
    /// Reads `component`'s settings; `dev_keys` stand in for configured keys.
    /// Its verifiers check a table of access cut-offs of its own, which the
    /// launcher keeps filled ([`follow_cutoffs`]).
    pub fn read(component: Component, env: &mut Env, dev_keys: Option<KeyRing>) -> Self {
        let mut config = Self::read_settings(component, env, dev_keys);
        config.tokens_mut().revocations = Some(Revocations::new());
        config
    }

    /// The access cut-offs this component's verifiers check.
    pub fn revocations(&self) -> Revocations {
        match self {
            Config::Users(cfg) => &cfg.tokens,
            Config::Catalog(cfg) => &cfg.tokens,
            Config::Inventory(cfg) => &cfg.tokens,
            Config::Orders(cfg) => &cfg.tokens,
            Config::Logistics(cfg) => &cfg.tokens,
        }
        .revocations
        .clone()
        .unwrap_or_default()
    }

    fn tokens_mut(&mut self) -> &mut TokenSettings {
        match self {
            Config::Users(cfg) => &mut cfg.tokens,
            Config::Catalog(cfg) => &mut cfg.tokens,
            Config::Inventory(cfg) => &mut cfg.tokens,
            Config::Orders(cfg) => &mut cfg.tokens,
            Config::Logistics(cfg) => &mut cfg.tokens,
        }
    }

    fn read_settings(component: Component, env: &mut Env, dev_keys: Option<KeyRing>) -> Self {
        match component {
            Component::Users => Config::Users(users::UsersConfig::from_env(env, dev_keys)),
            Component::Catalog => Config::Catalog(catalog::CatalogConfig::from_env(env, dev_keys)),
            Component::Inventory => {
                Config::Inventory(inventory::InventoryConfig::from_env(env, dev_keys))
            }
            Component::Orders => Config::Orders(orders::OrdersConfig::from_env(env, dev_keys)),
            Component::Logistics => {
                Config::Logistics(logistics::LogisticsConfig::from_env(env, dev_keys))
            }
        }
    }
}

type Task = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
/// A task that runs beside a component's HTTP server, named for errors.
type Extra = (
    &'static str,
    Box<dyn FnOnce(watch::Receiver<bool>) -> Task + Send>,
);

/// A task that runs until stopped and never fails on its own.
fn until_stopped(what: &'static str, run: impl Future<Output = ()> + Send + 'static) -> Extra {
    (
        what,
        Box::new(move |mut stop| {
            Box::pin(async move {
                tokio::select! {
                    () = run => {},
                    _ = stop.wait_for(|s| *s) => {},
                }
                Ok(())
            })
        }),
    )
}

/// A started component: its routes and whatever else must run beside them.
pub struct Started {
    pub component: Component,
    pub router: axum::Router,
    /// For inventory: where the stock API listens, once bound.
    pub rpc_addr: Option<SocketAddr>,
    /// For users: its bus and its own list of access changes, which fill
    /// its cut-offs without asking itself over HTTP.
    pub access_changes: Option<(Bus, Source)>,
    extra: Vec<Extra>,
}

/// Migrates and builds a component; inventory also binds its stock API.
pub async fn start(config: &Config) -> anyhow::Result<Started> {
    Ok(match config {
        Config::Users(cfg) => {
            let parts = users::start(cfg).await?;
            let notes = parts.notifications;
            Started {
                component: Component::Users,
                router: parts.router,
                rpc_addr: None,
                access_changes: Some((parts.bus.clone(), parts.access_changes)),
                extra: vec![
                    until_stopped("event relay", users::Users::run_relay(parts.relay)),
                    until_stopped(
                        "notifications consumer",
                        users::Users::run_notifications_consumer(notes.clone(), parts.bus),
                    ),
                    until_stopped(
                        "mailer",
                        users::Users::run_mailer(notes, parts.mailer_interval),
                    ),
                ],
            }
        }
        Config::Catalog(cfg) => Started {
            component: Component::Catalog,
            router: catalog::router(cfg).await?,
            rpc_addr: None,
            access_changes: None,
            extra: Vec::new(),
        },
        Config::Inventory(cfg) => {
            let parts = inventory::start(cfg).await?;
            let listener = TcpListener::bind(cfg.rpc_addr).await.with_context(|| {
                format!(
                    "inventory's stock API cannot listen on {} (set INVENTORY_RPC_ADDR)",
                    cfg.rpc_addr
                )
            })?;
            let rpc_addr = listener.local_addr()?;
            let (rpc, pool, every) = (parts.rpc, parts.pool, cfg.sweep_interval);
            let serve_rpc: Box<dyn FnOnce(watch::Receiver<bool>) -> Task + Send> =
                Box::new(move |mut stop| {
                    Box::pin(async move {
                        inventory::rpc::serve(listener, rpc, async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await
                    })
                });
            Started {
                component: Component::Inventory,
                router: parts.router,
                rpc_addr: Some(rpc_addr),
                access_changes: None,
                extra: vec![
                    ("stock API", serve_rpc),
                    until_stopped("sweeper", inventory::expiry::run_sweeper(pool, every)),
                ],
            }
        }
        Config::Orders(cfg) => {
            let parts = orders::start(cfg).await?;
            let (state, every) = (parts.state, parts.sweep_interval);
            Started {
                component: Component::Orders,
                router: parts.router,
                rpc_addr: None,
                access_changes: None,
                extra: vec![
                    until_stopped("event relay", orders::Orders::run_relay(state.clone())),
                    until_stopped(
                        "shipment consumer",
                        orders::Orders::run_shipments_consumer(state.clone()),
                    ),
                    until_stopped("expiry sweeper", orders::Orders::run_sweeper(state, every)),
                ],
            }
        }
        Config::Logistics(cfg) => {
            let parts = logistics::start(cfg).await?;
            let (state, every) = (parts.state, parts.reconcile_interval);
            Started {
                component: Component::Logistics,
                router: parts.router,
                rpc_addr: None,
                access_changes: None,
                extra: vec![
                    until_stopped(
                        "event relay",
                        logistics::Logistics::run_relay(state.clone()),
                    ),
                    until_stopped(
                        "orders consumer",
                        logistics::Logistics::run_orders_consumer(state.clone()),
                    ),
                    until_stopped(
                        "restock reconciler",
                        logistics::Logistics::run_reconciler(state, every),
                    ),
                ],
            }
        }
    })
}

impl Started {
    /// Binds `addr` and runs everything in `tasks` until `stop` turns true; returns the HTTP URL.
    pub async fn spawn(
        self,
        addr: SocketAddr,
        tasks: &mut JoinSet<anyhow::Result<()>>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<String> {
        let name = self.component.name();
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!(
                "{name} cannot listen on {addr} (set {}_PORT)",
                name.to_uppercase()
            )
        })?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut all: Vec<(&'static str, Task)> = self
            .extra
            .into_iter()
            .map(|(what, task)| (what, task(stop.clone())))
            .collect();
        let mut http_stop = stop.clone();
        let router = self.router;
        all.push((
            "HTTP server",
            Box::pin(async move {
                kit::server::serve(listener, router, async move {
                    let _ = http_stop.wait_for(|s| *s).await;
                })
                .await?;
                Ok(())
            }),
        ));
        for (what, task) in all {
            let stop = stop.clone();
            // A task that ends before it is told to is a failure, whatever it returned.
            tasks.spawn(async move {
                task.await
                    .with_context(|| format!("{name} {what} failed"))?;
                anyhow::ensure!(*stop.borrow(), "{name} {what} ended unexpectedly");
                Ok(())
            });
        }
        Ok(url)
    }
}

/// `grocery serve <component>`: migrate, then serve until SIGTERM/Ctrl-C.
pub async fn serve(component: Component) -> anyhow::Result<()> {
    let mut env = Env::new();
    let addr = listen_addr(&mut env, component);
    let config = Config::read(component, &mut env, None);
    // Users fills its cut-offs from its own table; the others ask it.
    let feed = (component != Component::Users).then(|| FeedConfig::from_env(&mut env));
    env.finish()?;
    let mut started = start(&config).await?;
    if let Some(rpc) = started.rpc_addr {
        tracing::info!(component = component.name(), %rpc, "stock API listening");
    }
    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let table = config.revocations();
    let cutoffs = match (started.access_changes.take(), &feed) {
        (Some(local), _) => CutoffFeed::Local(Box::new(local)),
        (None, Some(feed)) => CutoffFeed::Remote(feed.clone()),
        (None, None) => anyhow::bail!("{} has no source of access cut-offs", component.name()),
    };
    follow_cutoffs(table.clone(), cutoffs, &mut tasks, stop.clone()).await?;
    await_cutoffs(&[table], CUTOFF_PATIENCE).await;
    let url = started.spawn(addr, &mut tasks, stop).await?;
    tracing::info!(component = component.name(), %url, "listening");
    tokio::select! {
        () = crate::shutdown_signal() => {}
        Some(ended) = tasks.join_next() => {
            ended??;
            anyhow::bail!("{} stopped unexpectedly", component.name());
        }
    }
    let _ = stop_tx.send(true);
    while let Some(ended) = tasks.join_next().await {
        ended??;
    }
    tracing::info!(component = component.name(), "stopped");
    Ok(())
}

/// The supergraph of the committed subgraph SDLs in `dir`, each subgraph
/// reached at its default local URL (`http://127.0.0.1:<port>/graphql`).
pub fn supergraph(dir: &std::path::Path) -> anyhow::Result<String> {
    let subgraphs = Component::ALL
        .iter()
        .map(|c| {
            let path = dir.join(format!("{}.graphql", c.name()));
            Ok(gateway::SubgraphSource {
                name: c.name().to_owned(),
                url: format!("http://127.0.0.1:{}/graphql", c.default_port()),
                sdl: std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(gateway::compose(&subgraphs)?)
}

/// `grocery compose`: writes `dir/supergraph.graphql`.
pub fn compose(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join("supergraph.graphql");
    std::fs::write(&path, supergraph(dir)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{
        csrf_policy, gateway_serving, max_errors, metrics_addr, parse_timeout, ready_cache,
        subgraph_ready_urls,
    };

    fn env_of(vars: &[(&str, &str)]) -> kit::config::Env {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        kit::config::Env::from_fn(move |name| {
            vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn the_gateways_edge_settings_are_read_and_every_bad_one_listed() {
        let mut env = env_of(&[]);
        let csrf = csrf_policy(&mut env);
        assert_eq!(csrf, gateway::server::csrf::CsrfPolicy::default());
        assert!(csrf.enabled);
        assert_eq!(metrics_addr(&mut env), None);
        assert_eq!(max_errors(&mut env), gateway::pipeline::DEFAULT_MAX_ERRORS);
        assert!(subgraph_ready_urls(&mut env).is_empty());
        assert_eq!(
            ready_cache(&mut env),
            gateway::subgraph::readiness::DEFAULT_CACHE
        );
        assert!(env.finish().is_ok());

        let mut env = env_of(&[
            ("CSRF_PREVENTION", "false"),
            ("CSRF_REQUIRED_HEADERS", "x-requested-by"),
            ("METRICS_ADDR", "127.0.0.1:9464"),
            ("MAX_ERRORS", "20"),
            ("SUBGRAPH_READY_URLS", "users=http://users:9000/healthz"),
            ("READY_CACHE", "500ms"),
        ]);
        let csrf = csrf_policy(&mut env);
        assert!(!csrf.enabled);
        assert_eq!(csrf.header_names().collect::<Vec<_>>(), ["x-requested-by"]);
        assert_eq!(metrics_addr(&mut env), Some(([127, 0, 0, 1], 9464).into()));
        assert_eq!(max_errors(&mut env), 20);
        assert_eq!(
            subgraph_ready_urls(&mut env)["users"],
            "http://users:9000/healthz"
        );
        assert_eq!(ready_cache(&mut env), Duration::from_millis(500));
        assert!(env.finish().is_ok());

        let mut env = env_of(&[
            ("CSRF_PREVENTION", "maybe"),
            ("CSRF_REQUIRED_HEADERS", "content-type"),
            ("METRICS_ADDR", "everywhere"),
            ("MAX_ERRORS", "0"),
            ("SUBGRAPH_READY_URLS", "users"),
            ("READY_CACHE", "soon"),
        ]);
        csrf_policy(&mut env);
        metrics_addr(&mut env);
        max_errors(&mut env);
        subgraph_ready_urls(&mut env);
        ready_cache(&mut env);
        let problems = env.finish().unwrap_err().to_string();
        for problem in [
            "CSRF_PREVENTION",
            "CSRF_REQUIRED_HEADERS",
            "METRICS_ADDR",
            "MAX_ERRORS must be at least 1",
            "SUBGRAPH_READY_URLS",
            "READY_CACHE",
        ] {
            assert!(problems.contains(problem), "{problem}: {problems}");
        }
    }

    #[test]
    fn persisted_only_roles_default_to_partners_and_every_bad_name_is_listed() {
        let names = |env: &mut kit::config::Env| -> Vec<String> {
            super::persisted_only_roles(env)
                .into_iter()
                .map(String::from)
                .collect()
        };
        let mut env = env_of(&[]);
        assert_eq!(names(&mut env), ["PARTNER"]);
        let mut env = env_of(&[("PERSISTED_ONLY_ROLES", " PARTNER, TRUCK ,")]);
        assert_eq!(names(&mut env), ["PARTNER", "TRUCK"]);
        let mut env = env_of(&[("PERSISTED_ONLY_ROLES", "off")]);
        assert!(names(&mut env).is_empty());
        assert!(env.finish().is_ok());

        let mut env = env_of(&[("PERSISTED_ONLY_ROLES", "partner,PARTNER,TRUCK-2")]);
        assert_eq!(names(&mut env), ["PARTNER"]);
        let problems = env.finish().unwrap_err().0;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("\"partner\""), "{problems:?}");
        assert!(problems[1].contains("\"TRUCK-2\""), "{problems:?}");
    }

    #[test]
    fn timeouts_read_as_people_write_them() {
        assert_eq!(parse_timeout("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout(" 1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("0.25s"), Some(Duration::from_millis(250)));
        for bad in ["", "2", "s", "0s", "-1s", "2h", "4000s", "fast"] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_gateway_is_served_as_its_environment_says() {
        let mut env = env_of(&[]);
        let serving = gateway_serving(&mut env);
        assert!(env.finish().is_ok());
        assert_eq!(serving.threads, gateway::server::threads::default_threads());
        assert_eq!(serving.poll, gateway::server::threads::DEFAULT_POLL);
        assert_eq!(
            serving.executions,
            gateway::server::threads::DEFAULT_EXECUTIONS
        );

        let mut env = env_of(&[
            ("GATEWAY_THREADS", "3"),
            ("GATEWAY_POLL_US", "0"),
            ("GATEWAY_EXECUTIONS", "0"),
        ]);
        let serving = gateway_serving(&mut env);
        assert!(env.finish().is_ok());
        assert_eq!(
            (serving.threads, serving.poll, serving.executions),
            (3, Duration::ZERO, 0)
        );

        for (threads, poll, problem) in [
            ("0", "soon", "GATEWAY_POLL_US=\"soon\" is not valid"),
            ("0", "20000", "GATEWAY_POLL_US=20000 is more than 10000"),
        ] {
            let mut env = env_of(&[("GATEWAY_THREADS", threads), ("GATEWAY_POLL_US", poll)]);
            gateway_serving(&mut env);
            let problems = env.finish().unwrap_err().to_string();
            assert!(
                problems.contains("GATEWAY_THREADS must be at least 1")
                    && problems.contains(problem),
                "{problems}"
            );
        }
    }
}
