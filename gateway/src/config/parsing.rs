//! How each of the gateway's settings is read: durations as people write
//! them, `name=value` lists, limits, serving threads, edge policies. Each
//! reader takes its variables' defaults from the option types and records
//! what it cannot read in `env`.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use settings::Env;

use crate::{
    pipeline::{limits::Limits, persisted::PersistedOptions, ratelimit::RateLimits},
    server::{ConnectionTimeouts, GatewayOptions, Serving, csrf::CsrfPolicy, threads},
    subgraph::{SubgraphOptions, options::Field},
    subscriptions::SubscriptionOptions,
};

use super::DEFAULT_PERSISTED_DIR;

/// `250ms`, `2s` or `1.5s`: a timeout as people write it (up to an hour).
pub(super) fn parse_timeout(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (number, scale) = match raw.strip_suffix("ms") {
        Some(ms) => (ms, 0.001),
        None => (raw.strip_suffix('s')?, 1.0),
    };
    let seconds = number.trim().parse::<f64>().ok()? * scale;
    (seconds > 0.0 && seconds <= 3600.0).then(|| Duration::from_secs_f64(seconds))
}

/// The duration in `name`, `default` when unset; `example` says what one looks like.
pub(super) fn duration(env: &mut Env, name: &str, default: Duration, example: &str) -> Duration {
    match env.get(name) {
        None => default,
        Some(raw) => parse_timeout(&raw).unwrap_or_else(|| {
            env.problem(format!("{name}: {raw:?} is not {example}"));
            default
        }),
    }
}

/// `GATEWAY_THREADS` serving threads (default: one per core), each polling
/// for windows of at most `GATEWAY_POLL_US` microseconds after a request
/// starts, fetches or ends while nearly idle (default 1000, at most 10 000; 0
/// turns it off) and executing at most `GATEWAY_EXECUTIONS` operations at
/// once (default 20; 0: no bound); `HEAD_TIMEOUT`, `IDLE_TIMEOUT`.
pub(super) fn serving(env: &mut Env) -> Serving {
    let default = Serving::default();
    let threads = env.parse_or("GATEWAY_THREADS", default.threads);
    if threads == 0 {
        env.problem("GATEWAY_THREADS must be at least 1");
    }
    let poll = env.parse_or("GATEWAY_POLL_US", default.poll.as_micros() as u64);
    let max = threads::MAX_POLL.as_micros();
    if u128::from(poll) > max {
        env.problem(format!(
            "GATEWAY_POLL_US={poll} is more than {max} (that much spinning after every request)"
        ));
    }
    let timeout = "a timeout like 10s or 500ms";
    let timeouts = ConnectionTimeouts {
        head: duration(env, "HEAD_TIMEOUT", default.timeouts.head, timeout),
        idle: duration(env, "IDLE_TIMEOUT", default.timeouts.idle, timeout),
    };
    Serving {
        threads,
        poll: Duration::from_micros(poll),
        executions: env.parse_or("GATEWAY_EXECUTIONS", default.executions),
        timeouts,
    }
}

/// `CSRF_PREVENTION` (default on) and `CSRF_REQUIRED_HEADERS` (the headers
/// any of which marks a request as a script's; see [`crate::server::csrf`]).
pub(super) fn csrf_policy(env: &mut Env) -> CsrfPolicy {
    let policy =
        match CsrfPolicy::with_headers(&env.get("CSRF_REQUIRED_HEADERS").unwrap_or_default()) {
            Ok(policy) => policy,
            Err(why) => {
                env.problem(format!("CSRF_REQUIRED_HEADERS: {why}"));
                Default::default()
            }
        };
    CsrfPolicy {
        enabled: env.parse_or("CSRF_PREVENTION", true),
        ..policy
    }
}

/// `CORS_ALLOW_HEADERS`: request headers a deployment's browser clients send
/// beyond the ones every preflight allows (see [`crate::server::cors`]).
pub(super) fn cors_allow_headers(env: &mut Env) -> Vec<String> {
    let raw = env.get("CORS_ALLOW_HEADERS").unwrap_or_default();
    let mut names = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match axum::http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(_) => names.push(name.to_ascii_lowercase()),
            Err(_) => env.problem(format!("CORS_ALLOW_HEADERS: {name:?} is not a header name")),
        }
    }
    names
}

/// `MAX_ERRORS`: the most errors one response carries (at least 1).
pub(super) fn max_errors(env: &mut Env) -> usize {
    let max = env.parse_or("MAX_ERRORS", crate::pipeline::DEFAULT_MAX_ERRORS);
    if max == 0 {
        env.problem("MAX_ERRORS must be at least 1");
    }
    max
}

/// `METRICS_ADDR`: where `/metrics` gets a listener of its own (an address
/// Prometheus reaches and the public does not), if set.
pub(super) fn metrics_addr(env: &mut Env) -> Option<SocketAddr> {
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

/// `name=url,…` in the variable `var`, each URL starting with `scheme`:
/// `SUBGRAPH_URLS` (where subgraphs really are when that differs from the
/// supergraph) and `SUBGRAPH_READY_URLS` (health URLs of subgraphs whose
/// readiness is not at `/ready` beside their GraphQL path).
pub(super) fn name_urls(env: &mut Env, var: &str, scheme: &str) -> HashMap<String, String> {
    let mut urls = HashMap::new();
    let raw = env.get(var).unwrap_or_default();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((name, url)) if !name.trim().is_empty() && url.trim().starts_with(scheme) => {
                urls.insert(name.trim().to_owned(), url.trim().to_owned());
            }
            _ => env.problem(format!("{var}: {pair:?} is not name=http://…")),
        }
    }
    urls
}

/// How subgraphs are reached beyond their URLs: `SUBGRAPH_CA_FILES`,
/// `SUBGRAPH_CLIENT_CERTS`, `SUBGRAPH_CLIENT_KEYS` (`name=path,…`) and
/// `SUBGRAPH_HTTP2` (`name,…`). Every file named is read and checked now
/// (PEM, a key that is its certificate's), each problem naming its variable.
pub(super) fn subgraph_options(env: &mut Env) -> HashMap<String, SubgraphOptions> {
    let mut options: HashMap<String, SubgraphOptions> = HashMap::new();
    for field in [Field::CaFile, Field::ClientCert, Field::ClientKey] {
        let var = field.variable();
        let raw = env.get(var).unwrap_or_default();
        for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, path)) = pair
                .split_once('=')
                .map(|(name, path)| (name.trim(), path.trim()))
                .filter(|(name, path)| !name.is_empty() && !path.is_empty())
            else {
                env.problem(format!("{var}: {pair:?} is not name=path"));
                continue;
            };
            let each = options.entry(name.to_owned()).or_default();
            let slot = match field {
                Field::CaFile => &mut each.ca_file,
                Field::ClientCert => &mut each.client_cert,
                _ => &mut each.client_key,
            };
            *slot = Some(path.into());
        }
    }
    let raw = env.get(Field::Http2.variable()).unwrap_or_default();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        options.entry(name.to_owned()).or_default().http2 = true;
    }
    if let Some(raw) = env.get(Field::Headers.variable()) {
        static_headers(env, &raw, &mut options);
    }
    for (name, each) in &options {
        if each.sets_tls()
            && let Err(e) = crate::subgraph::tls::client_config(each)
        {
            env.problem(format!(
                "{}: subgraph {name}: {}",
                e.field.variable(),
                e.reason
            ));
        }
    }
    options
}

/// `SUBGRAPH_HEADERS`: `{"subgraph": {"header": "value"}}`, each header
/// checked by [`crate::subgraph::options::static_header`].
fn static_headers(env: &mut Env, raw: &str, options: &mut HashMap<String, SubgraphOptions>) {
    use std::collections::BTreeMap;
    let var = Field::Headers.variable();
    let parsed: BTreeMap<String, BTreeMap<String, String>> = match serde_json::from_str(raw) {
        Ok(parsed) => parsed,
        Err(err) => {
            env.problem(format!(
                "{var}: not a JSON object of subgraph names to {{\"header\": \"value\"}}: {err}"
            ));
            return;
        }
    };
    for (name, headers) in parsed {
        if headers.len() > crate::subgraph::options::MAX_STATIC_HEADERS {
            env.problem(format!(
                "{var}: subgraph {name}: more than {} headers",
                crate::subgraph::options::MAX_STATIC_HEADERS
            ));
            continue;
        }
        for (header, value) in headers {
            match crate::subgraph::options::static_header(&header, &value) {
                Ok(pair) => options.entry(name.clone()).or_default().headers.push(pair),
                Err(why) => env.problem(format!("{var}: subgraph {name}: {why}")),
            }
        }
    }
}

/// `SUBGRAPH_TIMEOUT=10s` for every subgraph, and
/// `SUBGRAPH_TIMEOUTS="inventory=2s,orders=1500ms"` for the ones that differ.
pub(super) fn subgraph_timeouts(env: &mut Env) -> (Duration, HashMap<String, Duration>) {
    let default = duration(
        env,
        "SUBGRAPH_TIMEOUT",
        GatewayOptions::default().subgraph_timeout,
        "a timeout like 10s or 500ms (up to 3600s)",
    );
    let mut each = HashMap::new();
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

/// The document and variables limits (`MAX_*`) and `PLAN_TIMEOUT`.
pub(super) fn limits(env: &mut Env) -> Limits {
    let defaults = Limits::default();
    Limits {
        max_tokens: env.parse_or("MAX_TOKENS", defaults.max_tokens),
        max_depth: env.parse_or("MAX_DEPTH", defaults.max_depth),
        max_fields: env.parse_or("MAX_FIELDS", defaults.max_fields),
        max_aliases: env.parse_or("MAX_ALIASES", defaults.max_aliases),
        max_root_fields: env.parse_or("MAX_ROOT_FIELDS", defaults.max_root_fields),
        max_directives: env.parse_or("MAX_DIRECTIVES", defaults.max_directives),
        max_variable_values: env.parse_or("MAX_VARIABLE_VALUES", defaults.max_variable_values),
        max_variable_depth: env.parse_or("MAX_VARIABLE_DEPTH", defaults.max_variable_depth),
        max_plan_time: duration(
            env,
            "PLAN_TIMEOUT",
            defaults.max_plan_time,
            "a timeout like 2s or 500ms",
        ),
    }
}

/// `SUBSCRIPTIONS_PER_CONNECTION`, `SUBSCRIPTIONS_PER_USER`,
/// `SUBSCRIPTION_BUFFER` (messages queued for a client before it counts as
/// not reading) and SSE's `SSE_RESERVATIONS_PER_CLIENT` and
/// `SSE_RESERVATION_TIMEOUT`, over the defaults.
pub(super) fn subscription_options(env: &mut Env) -> SubscriptionOptions {
    let defaults = SubscriptionOptions::default();
    SubscriptionOptions {
        per_connection: env.parse_or("SUBSCRIPTIONS_PER_CONNECTION", defaults.per_connection),
        per_user: env.parse_or("SUBSCRIPTIONS_PER_USER", defaults.per_user),
        buffer: env.parse_or("SUBSCRIPTION_BUFFER", defaults.buffer).max(1),
        reservations_per_client: env.parse_or(
            "SSE_RESERVATIONS_PER_CLIENT",
            defaults.reservations_per_client,
        ),
        reservation_lapse: duration(
            env,
            "SSE_RESERVATION_TIMEOUT",
            defaults.reservation_lapse,
            "a duration like 30s",
        ),
        ..defaults
    }
}

/// Persisted documents and rate limits: `PERSISTED_DIR` (trusted-document
/// manifests), `PERSISTED_ONLY`, `APQ`, `RATE_LIMITS` (see
/// [`RateLimits::parse`]), `RATE_LIMIT_IP_HEADER`; APQ documents and rate
/// buckets are shared through `REDIS_URL` when it is set.
pub(super) fn edge_options(env: &mut Env) -> (PersistedOptions, RateLimits) {
    let redis_url = env.get("REDIS_URL");
    let defaults = PersistedOptions::default();
    let persisted = PersistedOptions {
        manifests: Some(
            env.get("PERSISTED_DIR")
                .unwrap_or_else(|| DEFAULT_PERSISTED_DIR.into())
                .into(),
        ),
        only: env.parse_or("PERSISTED_ONLY", false),
        only_roles: persisted_only_roles(env),
        admin_roles: role_list(env, "USAGE_ADMIN_ROLES", DEFAULT_USAGE_ADMIN_ROLES),
        apq: env.parse_or("APQ", defaults.apq),
        redis_url: redis_url.clone(),
        ..defaults
    };
    let mut rate_limits = match RateLimits::parse(&env.get("RATE_LIMITS").unwrap_or_default()) {
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

/// The entity cache: `ENTITY_CACHE` (`on`/`off`, or `true`/`false`),
/// `ENTITY_CACHE_SIZE` entities in memory, `ENTITY_CACHE_MAX_TTL`, shared
/// through `REDIS_URL` when it is set.
pub(super) fn entity_cache(env: &mut Env) -> crate::entity_cache::EntityCacheOptions {
    use crate::entity_cache::{DEFAULT_ENTITIES, DEFAULT_MAX_TTL, EntityCacheOptions};
    let enabled = match env.get("ENTITY_CACHE").as_deref().map(str::trim) {
        None => EntityCacheOptions::default().enabled,
        Some("on" | "true") => true,
        Some("off" | "false") => false,
        Some(other) => {
            env.problem(format!("ENTITY_CACHE={other:?} is not on or off"));
            false
        }
    };
    let entities = env.parse_or("ENTITY_CACHE_SIZE", DEFAULT_ENTITIES);
    if entities == 0 {
        env.problem("ENTITY_CACHE_SIZE must be at least 1 (ENTITY_CACHE=off turns the cache off)");
    }
    let max_ttl = duration(
        env,
        "ENTITY_CACHE_MAX_TTL",
        DEFAULT_MAX_TTL,
        "a duration like 300s or 5m",
    );
    if max_ttl < Duration::from_secs(1) {
        env.problem("ENTITY_CACHE_MAX_TTL must be at least 1s");
    }
    EntityCacheOptions {
        enabled,
        entities,
        max_ttl,
        redis_url: env.get("REDIS_URL"),
    }
}

/// The roles whose tokens run only manifest documents: `PERSISTED_ONLY_ROLES`,
/// a comma-separated list of role names, `off` for none. The gateway knows
/// no roles: the default is the name grocery's tokens give integrations,
/// and a deployment over another supergraph names its own.
pub(super) fn persisted_only_roles(env: &mut Env) -> Vec<auth::RoleName> {
    role_list(env, "PERSISTED_ONLY_ROLES", DEFAULT_PERSISTED_ONLY_ROLES)
}

/// The role names of `variable` (default `default`): comma-separated, `off`
/// for none.
fn role_list(env: &mut Env, variable: &str, default: &str) -> Vec<auth::RoleName> {
    let raw = env.get(variable).unwrap_or_else(|| default.into());
    if raw.trim() == "off" {
        return Vec::new();
    }
    let mut roles = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.parse() {
            Ok(role) => roles.push(role),
            Err(err) => env.problem(format!("{variable}: {err}")),
        }
    }
    roles
}

/// See [`persisted_only_roles`].
const DEFAULT_PERSISTED_ONLY_ROLES: &str = "PARTNER";

/// The roles whose tokens may read partner usage and set quotas
/// (`USAGE_ADMIN_ROLES`): as with [`persisted_only_roles`], the name
/// grocery's tokens give administrators.
const DEFAULT_USAGE_ADMIN_ROLES: &str = "ADMIN";

/// `REST_DIR`: the REST route files (default `schema/rest`; `off`: none),
/// checked against the manifests of `persisted`.
pub(super) fn rest_options(
    env: &mut Env,
    persisted: &PersistedOptions,
) -> Option<crate::rest::RestOptions> {
    let set = env.get("REST_DIR");
    let required = set.is_some();
    let dir = set.unwrap_or_else(|| super::DEFAULT_REST_DIR.into());
    if dir.trim().eq_ignore_ascii_case("off") {
        return None;
    }
    let manifests = persisted.manifests.clone()?;
    Some(crate::rest::RestOptions {
        dir: dir.into(),
        manifests,
        required,
    })
}

/// `REST_PORT` on `host`: the REST routes' own listener (`0`: none), else `default`'s.
pub(super) fn rest_listen(
    env: &mut Env,
    host: std::net::IpAddr,
    default: Option<u16>,
) -> Option<SocketAddr> {
    let port = match env.get("REST_PORT") {
        None => default?,
        Some(raw) => match raw.trim().parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                env.problem(format!("REST_PORT={raw:?} is not a port (0 turns it off)"));
                return None;
            }
        },
    };
    (port != 0).then_some(SocketAddr::new(host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_only_roles_default_to_partners_and_every_bad_name_is_listed() {
        let names = |env: &mut Env| -> Vec<String> {
            persisted_only_roles(env)
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
    use crate::config::tests::env_of;

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
        let serving = super::serving(&mut env);
        assert!(env.finish().is_ok());
        assert_eq!(serving.threads, threads::default_threads());
        assert_eq!(serving.poll, threads::DEFAULT_POLL);
        assert_eq!(serving.executions, threads::DEFAULT_EXECUTIONS);

        let mut env = env_of(&[
            ("GATEWAY_THREADS", "3"),
            ("GATEWAY_POLL_US", "0"),
            ("GATEWAY_EXECUTIONS", "0"),
        ]);
        let serving = super::serving(&mut env);
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
            super::serving(&mut env);
            let problems = env.finish().unwrap_err().to_string();
            assert!(
                problems.contains("GATEWAY_THREADS must be at least 1")
                    && problems.contains(problem),
                "{problems}"
            );
        }
    }
}
