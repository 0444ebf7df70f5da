//! The gateway's settings from the environment. [`Config::from_env`] reads
//! every variable `grocery serve gateway` honours and lists every problem at
//! once; [`Config::read_dev`] reads the ones `grocery dev` honours beside its
//! own choices (introspection, GraphiQL, any localhost origin, its composed
//! supergraph and development keys). [`ENV`] declares them all for README's
//! table (`grocery env`).
//!
//! `variables` declares them, `parsing` reads each; the option types are the
//! stage folders'. `file` reads a configuration file (`--config`) into the
//! same variables, shaped by their declared keys (`shape`), and `schema`
//! describes that file as a JSON Schema. [`crate::launch`] turns a
//! [`Config`] into a running gateway.

pub mod file;
mod parsing;
mod schema;
mod shape;
mod variables;

use std::{net::SocketAddr, path::PathBuf};

use auth::{KeyRing, TokenSettings};
use settings::{ConfigError, Env};

use self::parsing::{
    cors_allow_headers, csrf_policy, duration, edge_options, entity_cache, limits, max_errors,
    metrics_addr, name_urls, rest_listen, rest_options, serving, subgraph_options,
    subgraph_timeouts, subscription_options,
};
pub use self::{file::ConfigFile, schema::json_schema, variables::ENV};
use crate::server::{GatewayOptions, Serving, cors::CorsPolicy};

/// The API's port unless `GATEWAY_PORT` or `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 4000;

/// The supergraph `serve` loads unless `SUPERGRAPH_PATH` or `--supergraph` says otherwise.
pub const DEFAULT_SUPERGRAPH: &str = "schema/supergraph.graphql";

/// The trusted-document manifests unless `PERSISTED_DIR` says otherwise.
pub const DEFAULT_PERSISTED_DIR: &str = "schema/persisted";

/// The REST route files unless `REST_DIR` says otherwise.
pub const DEFAULT_REST_DIR: &str = "schema/rest";

/// The REST routes' own port in `dev`, where the fleet's devices look.
pub const DEV_REST_PORT: u16 = 5050;

/// Where the supergraph comes from.
#[derive(Clone, Debug)]
pub enum Supergraph {
    /// A file, reloaded when it changes.
    File(PathBuf),
    /// Composed by the launcher (`dev`: of the subgraphs as they bound), served as it is.
    Composed(String),
}

/// What bearer tokens are verified with at the edge.
#[derive(Clone)]
pub enum Keys {
    /// The users subgraph's JWKS, fetched again when a token names an unknown key.
    Jwks(hyper::Uri),
    /// Fixed public keys (`JWT_PUBLIC_KEYS_FILE`, or the development keys).
    Ring(KeyRing),
}

/// Everything the gateway needs to run.
#[derive(Clone)]
pub struct Config {
    /// Where the API listens (`GATEWAY_HOST`/`GATEWAY_PORT`, else `HOST`/`PORT`).
    pub listen: SocketAddr,
    /// Serving threads, polling, admission and connection timeouts.
    pub serving: Serving,
    pub supergraph: Supergraph,
    /// The keys tokens are verified with at the edge; `None` (neither
    /// `JWKS_URL` nor `JWT_PUBLIC_KEYS_FILE` set) verifies nothing there and
    /// leaves `authorization` to the subgraphs, as sent.
    pub keys: Option<Keys>,
    /// Issuer, audience and the table of access cut-offs tokens are checked
    /// against (the launcher keeps it filled: the feed is subgraph plumbing).
    pub tokens: TokenSettings,
    /// A listener of its own for `/metrics`, if any.
    pub metrics: Option<SocketAddr>,
    /// A listener of its own for the REST routes (`REST_PORT`), if any.
    pub rest: Option<SocketAddr>,
    /// Everything else: the request pipeline, subgraphs and edge policies.
    pub options: GatewayOptions,
    /// Where its spans go (`OTEL_*`); [`crate::start`] starts the exporter.
    pub tracing: telemetry::otel::Config,
}

impl Config {
    /// `grocery serve gateway`'s settings from the process environment,
    /// listing every problem at once.
    pub fn from_env() -> Result<Self, ConfigError> {
        settings::from_env(Self::read)
    }

    /// `grocery serve gateway`'s settings, into `env`'s problems.
    pub fn read(env: &mut Env) -> Self {
        let mut config = Self::read_shared(env);
        config.supergraph = Supergraph::File(
            env.get("SUPERGRAPH_PATH")
                .unwrap_or_else(|| DEFAULT_SUPERGRAPH.into())
                .into(),
        );
        // The users subgraph's keys: from its JWKS URL (refetched when keys
        // rotate) or, failing that, from a PEM file. Neither: a gateway in
        // front of subgraphs that authenticate callers themselves. One that
        // is set but broken still means tokens are to be verified (and what
        // that needs besides is asked for too).
        config.keys = match env.get("JWKS_URL") {
            Some(url) => Some(match url.parse() {
                Ok(url) => Keys::Jwks(url),
                Err(_) => {
                    env.problem(format!("JWKS_URL={url:?} is not a URL"));
                    Keys::Ring(KeyRing::default())
                }
            }),
            None => env
                .get("JWT_PUBLIC_KEYS_FILE")
                .map(|_| Keys::Ring(KeyRing::verifying_from_env(env).unwrap_or_default())),
        };
        let (subgraph_timeout, subgraph_timeouts) = subgraph_timeouts(env);
        let options = &mut config.options;
        options.subgraph_timeout = subgraph_timeout;
        options.subgraph_timeouts = subgraph_timeouts;
        options.deduplicate_queries = env.parse_or("SUBGRAPH_DEDUPLICATION", true);
        options.deduplicate_requests = env.parse_or("REQUEST_DEDUPLICATION", false);
        options.subgraph_urls = name_urls(env, "SUBGRAPH_URLS", "http");
        options.subgraph_options = subgraph_options(env);
        options.subgraph_ready_urls = name_urls(env, "SUBGRAPH_READY_URLS", "http://");
        options.ready_cache = duration(
            env,
            "READY_CACHE",
            crate::subgraph::readiness::DEFAULT_CACHE,
            "a duration like 2s or 500ms",
        );
        // Off unless asked for: a production API does not publish its schema by default.
        options.introspection = env.parse_or("INTROSPECTION", false);
        // Off unless asked for, like introspection (the page is useless without it).
        options.graphiql = env.parse_or("GRAPHIQL", false);
        options.limits = limits(env);
        options.request_budget = env.parse_or(
            "REQUEST_MEMORY_BUDGET",
            crate::subgraph::DEFAULT_REQUEST_BUDGET,
        );
        options.cors = CorsPolicy::parse(
            &env.get("CORS_ORIGINS").unwrap_or_default(),
            env.parse_or("CORS_CREDENTIALS", false),
        )
        .allowing(cors_allow_headers(env).iter().map(String::as_str));
        options.subscriptions = subscription_options(env);
        config.rest = rest_listen(env, config.listen.ip(), None);
        config
    }

    /// `grocery dev`'s settings, into `env`'s problems: the serving, token,
    /// cut-off, persisted-document, rate-limit, CSRF, error and metrics
    /// settings as `serve` reads them, the rest as a laptop wants it. Tokens
    /// are verified with `keys`; the launcher sets the supergraph it composed.
    pub fn read_dev(env: &mut Env, keys: KeyRing) -> Self {
        let mut config = Self::read_shared(env);
        config.keys = Some(Keys::Ring(keys));
        let options = &mut config.options;
        options.introspection = true;
        options.graphiql = true;
        // On a laptop the API's port may serve them too, unless given a port of their own.
        options.metrics_on_api = config.metrics.is_none();
        // Any localhost origin, so a frontend dev server can call the API.
        // A frontend sending headers of its own needs them allowed in dev too.
        options.cors = CorsPolicy::parse("localhost", false)
            .allowing(cors_allow_headers(env).iter().map(String::as_str));
        config.rest = rest_listen(env, config.listen.ip(), Some(DEV_REST_PORT));
        config
    }

    /// What `serve` and `dev` both read; the supergraph and keys are left for them.
    fn read_shared(env: &mut Env) -> Self {
        let listen = settings::listen::addr(env, "gateway", DEFAULT_PORT);
        let serving = serving(env);
        let tokens = TokenSettings::from_env(env);
        let (persisted, rate_limits) = edge_options(env);
        let metrics = metrics_addr(env);
        let rest = rest_options(env, &persisted);
        Self {
            listen,
            serving,
            supergraph: Supergraph::Composed(String::new()),
            keys: None,
            tokens,
            metrics,
            rest: None,
            tracing: telemetry::otel::Config::read(env, "grocery-gateway"),
            options: GatewayOptions {
                rest,
                csrf: csrf_policy(env),
                max_errors: max_errors(env),
                persisted,
                rate_limits,
                entity_cache: entity_cache(env),
                // The public port serves the API only; metrics go to METRICS_ADDR.
                metrics_on_api: false,
                ..GatewayOptions::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{pipeline::limits::Limits, server::csrf::CsrfPolicy};

    /// An environment holding `vars` only.
    pub(super) fn env_of(vars: &[(&str, &str)]) -> Env {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Env::from_fn(move |name| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
    }

    /// What a `serve gateway` needs besides defaults: keys and the service token.
    const JWKS: (&str, &str) = ("JWKS_URL", "http://users:4001/.well-known/jwks.json");
    const TOKEN: (&str, &str) = ("INTERNAL_RPC_TOKEN", "t0ken");

    #[test]
    fn serve_reads_the_documented_defaults() {
        let mut env = env_of(&[JWKS, TOKEN]);
        let config = Config::read(&mut env);
        env.finish().expect("complete configuration");
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 4000)));
        assert!(
            matches!(&config.supergraph, Supergraph::File(p) if p == std::path::Path::new(DEFAULT_SUPERGRAPH))
        );
        assert!(matches!(&config.keys, Some(Keys::Jwks(url)) if url.host() == Some("users")));
        assert_eq!(config.metrics, None);
        let options = &config.options;
        assert_eq!(options.csrf, CsrfPolicy::default());
        assert!(options.csrf.enabled);
        assert_eq!(options.max_errors, crate::pipeline::DEFAULT_MAX_ERRORS);
        assert!(options.subgraph_ready_urls.is_empty() && options.subgraph_urls.is_empty());
        assert!(options.subgraph_options.is_empty());
        assert_eq!(
            options.ready_cache,
            crate::subgraph::readiness::DEFAULT_CACHE
        );
        assert_eq!(options.subgraph_timeout, Duration::from_secs(10));
        assert!(options.deduplicate_queries);
        assert!(!options.introspection && !options.graphiql && !options.metrics_on_api);
        assert!(!options.persisted.only && options.persisted.apq);
        assert_eq!(
            options.persisted.manifests.as_deref(),
            Some(std::path::Path::new(DEFAULT_PERSISTED_DIR))
        );
        assert_eq!(options.subscriptions.buffer, 64);
    }

    #[test]
    fn the_gateways_edge_settings_are_read_and_every_bad_one_listed() {
        let mut env = env_of(&[
            JWKS,
            TOKEN,
            ("CSRF_PREVENTION", "false"),
            ("CSRF_REQUIRED_HEADERS", "x-requested-by"),
            ("METRICS_ADDR", "127.0.0.1:9464"),
            ("MAX_ERRORS", "20"),
            ("SUBGRAPH_READY_URLS", "users=http://users:9000/healthz"),
            ("READY_CACHE", "500ms"),
            ("SUBGRAPH_TIMEOUTS", "inventory=2s"),
            ("PLAN_TIMEOUT", "1500ms"),
        ]);
        let config = Config::read(&mut env);
        env.finish().expect("complete configuration");
        let options = &config.options;
        assert!(!options.csrf.enabled);
        assert_eq!(
            options.csrf.header_names().collect::<Vec<_>>(),
            ["x-requested-by"]
        );
        assert_eq!(config.metrics, Some(([127, 0, 0, 1], 9464).into()));
        assert_eq!(options.max_errors, 20);
        assert_eq!(
            options.subgraph_ready_urls["users"],
            "http://users:9000/healthz"
        );
        assert_eq!(options.ready_cache, Duration::from_millis(500));
        assert_eq!(
            options.subgraph_timeouts["inventory"],
            Duration::from_secs(2)
        );
        assert_eq!(options.limits.max_plan_time, Duration::from_millis(1500));

        let mut env = env_of(&[
            ("CSRF_PREVENTION", "maybe"),
            ("CSRF_REQUIRED_HEADERS", "content-type"),
            ("METRICS_ADDR", "everywhere"),
            ("MAX_ERRORS", "0"),
            ("SUBGRAPH_URLS", "users"),
            ("SUBGRAPH_READY_URLS", "users"),
            ("READY_CACHE", "soon"),
            ("SUBGRAPH_TIMEOUT", "forever"),
            ("RATE_LIMIT_IP_HEADER", "x forwarded"),
            ("JWKS_URL", "http://exa mple"),
        ]);
        Config::read(&mut env);
        let problems = env.finish().unwrap_err().to_string();
        for problem in [
            "CSRF_PREVENTION",
            "CSRF_REQUIRED_HEADERS",
            "METRICS_ADDR",
            "MAX_ERRORS must be at least 1",
            "SUBGRAPH_URLS: \"users\"",
            "SUBGRAPH_READY_URLS: \"users\"",
            "READY_CACHE",
            "SUBGRAPH_TIMEOUT: \"forever\"",
            "RATE_LIMIT_IP_HEADER",
            "JWKS_URL",
        ] {
            assert!(problems.contains(problem), "{problem}: {problems}");
        }
    }

    #[test]
    fn serve_without_keys_verifies_nothing_at_the_edge_and_a_key_file_is_read() {
        let mut env = env_of(&[]);
        let config = Config::read(&mut env);
        env.finish()
            .expect("neither JWKS_URL nor JWT_PUBLIC_KEYS_FILE is required");
        assert!(config.keys.is_none());

        let mut env = env_of(&[("JWT_PUBLIC_KEYS_FILE", "/no/such/keys.pem")]);
        Config::read(&mut env);
        let problems = env.finish().unwrap_err().to_string();
        assert!(
            problems.contains("JWT_PUBLIC_KEYS_FILE=/no/such/keys.pem"),
            "{problems}"
        );
    }

    #[test]
    fn sse_reservations_are_bounded_as_configured() {
        let mut env = env_of(&[
            ("SSE_RESERVATIONS_PER_CLIENT", "4"),
            ("SSE_RESERVATION_TIMEOUT", "5s"),
        ]);
        let config = Config::read(&mut env);
        env.finish().expect("complete configuration");
        let subscriptions = &config.options.subscriptions;
        assert_eq!(subscriptions.reservations_per_client, 4);
        assert_eq!(subscriptions.reservation_lapse, Duration::from_secs(5));
        let mut env = env_of(&[("SSE_RESERVATION_TIMEOUT", "later")]);
        Config::read(&mut env);
        let problems = env.finish().unwrap_err().to_string();
        assert!(problems.contains("SSE_RESERVATION_TIMEOUT"), "{problems}");
    }

    #[tokio::test]
    async fn a_preflight_allows_the_headers_cors_allow_headers_names() {
        let mut env = env_of(&[
            JWKS,
            TOKEN,
            ("CORS_ORIGINS", "https://shop.example"),
            ("CORS_ALLOW_HEADERS", "x-tenant, X-Shop-Region,"),
        ]);
        let config = Config::read(&mut env);
        env.finish()
            .expect("header names are a complete configuration");
        let app = axum::Router::new()
            .route("/graphql", axum::routing::post(|| async {}))
            .layer(axum::middleware::from_fn_with_state(
                std::sync::Arc::new(config.options.cors),
                crate::server::cors::layer,
            ));
        // What a browser sends before a POST carrying the deployment's headers.
        let preflight = axum::http::Request::builder()
            .method("OPTIONS")
            .uri("/graphql")
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "apollographql-client-name,content-type,x-shop-region,x-tenant",
            )
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = tower::ServiceExt::oneshot(app, preflight).await.unwrap();
        assert_eq!(answer.status(), 204);
        let allowed: Vec<&str> = answer.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .split(", ")
            .collect();
        for asked in [
            "apollographql-client-name",
            "content-type",
            "x-shop-region",
            "x-tenant",
        ] {
            assert!(allowed.contains(&asked), "{asked} not in {allowed:?}");
        }

        let mut env = env_of(&[JWKS, TOKEN, ("CORS_ALLOW_HEADERS", "x-tenant, x tenant")]);
        Config::read(&mut env);
        let problems = env.finish().unwrap_err().to_string();
        assert!(
            problems.contains("CORS_ALLOW_HEADERS: \"x tenant\" is not a header name"),
            "{problems}"
        );
    }

    #[test]
    fn dev_keeps_its_own_choices_and_ignores_what_only_serve_reads() {
        let mut env = env_of(&[
            TOKEN,
            ("INTROSPECTION", "false"),
            ("CORS_ORIGINS", "https://shop.example"),
            ("MAX_DEPTH", "not read by dev"),
            ("MAX_ERRORS", "7"),
        ]);
        let config = Config::read_dev(&mut env, KeyRing::default());
        env.finish()
            .expect("dev reads neither INTROSPECTION nor MAX_DEPTH");
        let options = &config.options;
        assert!(options.introspection && options.graphiql && options.metrics_on_api);
        assert_eq!(
            options.cors.origins,
            crate::server::cors::Origins::Localhost
        );
        assert_eq!(options.limits.max_depth, Limits::default().max_depth);
        assert_eq!(options.max_errors, 7);
        assert!(matches!(config.keys, Some(Keys::Ring(_))));
    }
}
