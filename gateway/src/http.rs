//! The gateway's HTTP edge: GraphQL over HTTP on `/graphql` (POST, and GET
//! for queries), GraphiQL for browsers, `/health` and `/ready`.
//!
//! Each request: read the body → verify the bearer token (refused tokens never
//! reach a subgraph) → plan on the blocking pool (cached) → execute → project.
//! Responses are `application/graphql-response+json` when the client accepts
//! it, `application/json` otherwise.

use std::{net::IpAddr, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use hive_router_query_planner::ast::value::Value as PlannerValue;

use crate::{
    auth::EdgeAuth,
    execution::{self, Subgraphs},
    fetch::SubgraphClient,
    introspection::Introspection,
    metrics::{Metrics, Outcome},
    planning::{PlanError, Supergraph},
    projection,
};

static X_FORWARDED_FOR: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-forwarded-for");

/// How a gateway is set up beyond its supergraph and keys.
#[derive(Clone, Debug)]
pub struct GatewayOptions {
    /// How long a subgraph may take to answer.
    pub subgraph_timeout: std::time::Duration,
    /// Subgraphs that get another timeout than `subgraph_timeout`, by name.
    pub subgraph_timeouts: std::collections::HashMap<String, std::time::Duration>,
    /// Subgraph URLs that replace the supergraph's, by subgraph name.
    pub subgraph_urls: std::collections::HashMap<String, String>,
    /// Health URLs of subgraphs whose readiness is not at `/ready` beside
    /// their GraphQL path, by name (see [`crate::readiness`]).
    pub subgraph_ready_urls: std::collections::HashMap<String, String>,
    /// How long `/ready` reuses its subgraphs' answers.
    pub ready_cache: std::time::Duration,
    /// Whether identical subgraph queries in flight at once share one fetch
    /// (see [`SubgraphClient::deduplicating`]).
    pub deduplicate_queries: bool,
    /// Whether `__schema`/`__type` are answered.
    pub introspection: bool,
    /// Whether a browser's GET `/graphql` gets the GraphiQL page.
    pub graphiql: bool,
    /// Whether `/metrics` is served with the API (else only by
    /// [`metrics_router`], on a listener of its own).
    pub metrics_on_api: bool,
    /// Depth, alias and root-field limits.
    pub limits: crate::limits::Limits,
    /// The most errors one response carries, the last of them saying how
    /// many more were dropped (see [`cap_errors`]).
    pub max_errors: usize,
    /// Which browser origins may call.
    pub cors: crate::cors::CorsPolicy,
    /// Which requests must carry a mark only a script can add (see [`crate::csrf`]).
    pub csrf: crate::csrf::CsrfPolicy,
    /// Subscription limits, keep-alive and buffering.
    pub subscriptions: crate::subscriptions::SubscriptionOptions,
    /// Automatic persisted queries and trusted-document manifests.
    pub persisted: crate::persisted::PersistedOptions,
    /// Requests per user and per client address (none by default).
    pub rate_limits: crate::ratelimit::RateLimits,
    /// Bytes of subgraph answers one request may hold.
    pub request_budget: usize,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            subgraph_timeout: std::time::Duration::from_secs(10),
            subgraph_timeouts: Default::default(),
            subgraph_urls: Default::default(),
            subgraph_ready_urls: Default::default(),
            ready_cache: crate::readiness::DEFAULT_CACHE,
            deduplicate_queries: true,
            introspection: false,
            graphiql: false,
            metrics_on_api: false,
            limits: Default::default(),
            max_errors: DEFAULT_MAX_ERRORS,
            cors: Default::default(),
            csrf: Default::default(),
            subscriptions: Default::default(),
            persisted: Default::default(),
            rate_limits: Default::default(),
            request_budget: execution::DEFAULT_REQUEST_BUDGET,
        }
    }
}

/// What one supergraph brings: its planner, where its subgraphs are, and
/// its introspection answer. Replaced whole on reload; a request keeps the
/// one it started with.
pub struct Loaded {
    pub supergraph: Arc<Supergraph>,
    pub subgraphs: Subgraphs,
    /// Answers `__schema`/`__type`; `None` refuses them (introspection off).
    pub introspection: Option<Introspection>,
    /// The most errors one answer carries (see [`cap_errors`]).
    pub max_errors: usize,
    /// Whether its subgraphs are ready, for `/ready`.
    pub readiness: crate::readiness::Readiness,
}

/// Everything a request needs.
pub struct Gateway {
    loaded: std::sync::RwLock<Arc<Loaded>>,
    pub(crate) options: GatewayOptions,
    /// One connection pool for every supergraph this gateway serves.
    client: SubgraphClient,
    /// Verifies bearer tokens at the edge; `None` lets every token through to subgraphs.
    pub verifier: Option<Arc<EdgeAuth>>,
    /// Browser origins allowed to call.
    pub cors: Arc<crate::cors::CorsPolicy>,
    /// Counters for `/metrics`, kept across reloads.
    pub metrics: Arc<Metrics>,
    /// Open subscriptions, by user.
    pub subscriptions: Arc<crate::subscriptions::Registry>,
    /// Trusted manifests and APQ documents.
    pub documents: Arc<crate::persisted::Documents>,
    /// Rate limits per user and address.
    pub limiter: Arc<crate::ratelimit::Limiter>,
}

impl Gateway {
    /// A gateway over `sdl`, reaching subgraphs at the URLs it declares
    /// unless `options.subgraph_urls` names another for a subgraph.
    pub fn new(
        sdl: &str,
        verifier: Option<Arc<EdgeAuth>>,
        options: &GatewayOptions,
    ) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let client = SubgraphClient::new(options.subgraph_timeout)
            .deduplicating(options.deduplicate_queries);
        let loaded = load(sdl, options, &client, &metrics)?;
        Ok(Self {
            loaded: std::sync::RwLock::new(Arc::new(loaded)),
            options: options.clone(),
            client,
            verifier,
            cors: Arc::new(options.cors.clone().allowing(options.csrf.header_names())),
            metrics,
            subscriptions: Default::default(),
            documents: Arc::new(crate::persisted::Documents::new(&options.persisted)?),
            limiter: Arc::new(crate::ratelimit::Limiter::new(options.rate_limits.clone())?),
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
        let result = load(sdl, &self.options, &self.client, &self.metrics);
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
    options: &GatewayOptions,
    client: &SubgraphClient,
    metrics: &Arc<Metrics>,
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
    let readiness =
        crate::readiness::Readiness::new(&urls, &options.subgraph_ready_urls, options.ready_cache)?;
    let subgraphs = Subgraphs::new(urls, client.clone(), metrics.clone())
        .with_timeouts(options.subgraph_timeouts.clone())
        .with_budget(options.request_budget);
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

/// The gateway's HTTP service, as a router (tests, embedding): see [`edge`].
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new().fallback_service(edge(gateway))
}

/// The gateway's HTTP service: `POST /graphql` straight to its handler,
/// everything else (GET `/graphql`, preflights, `/health`, `/ready`,
/// `/metrics`) through an axum router.
///
/// POST `/graphql` is nearly all of a gateway's traffic, and the router's
/// way there (route lookup, two `from_fn` middlewares that each box their
/// future and clone the rest of the stack, extractors that copy the
/// headers) was about a tenth of the gateway's CPU for a small query. Its
/// own path does the same work, CORS and the request's id, trace and log
/// line included, with what the router path uses for them.
pub fn edge(gateway: Arc<Gateway>) -> Edge {
    Edge {
        rest: routes(gateway.clone()),
        gateway,
    }
}

/// See [`edge`].
#[derive(Clone)]
pub struct Edge {
    gateway: Arc<Gateway>,
    rest: Router,
}

impl Edge {
    /// The gateway it serves.
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }
}

impl tower_service::Service<axum::extract::Request> for Edge {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::Either<
        futures::future::BoxFuture<'static, Result<Response, Self::Error>>,
        axum::routing::future::RouteFuture<Self::Error>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        if request.method() == axum::http::Method::POST && request.uri().path() == "/graphql" {
            let gateway = self.gateway.clone();
            futures::future::Either::Left(Box::pin(async move {
                Ok(post_graphql_edge(gateway, request).await)
            }))
        } else {
            futures::future::Either::Right(self.rest.call(request))
        }
    }
}

/// POST `/graphql` from hyper: see [`serve_post`].
async fn post_graphql_edge(gw: Arc<Gateway>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = peer_of(&parts.extensions);
    serve_post(
        gw,
        peer,
        parts.headers,
        parts.uri.path(),
        PostBody::Unread(body),
    )
    .await
}

/// The body of a `POST /graphql`.
pub(crate) enum PostBody {
    /// Read already (by [`crate::lane`], within [`MAX_BODY_BYTES`]).
    Read(Bytes),
    /// Still to be read, up to [`MAX_BODY_BYTES`].
    Unread(axum::body::Body),
}

/// POST `/graphql` as the router's layers and [`post_graphql`] would serve
/// it: CORS outermost, then the request's id, span and log line, then the
/// body, read up to [`MAX_BODY_BYTES`].
pub(crate) async fn serve_post(
    gw: Arc<Gateway>,
    peer: Option<IpAddr>,
    mut headers: HeaderMap,
    path: &str,
    body: PostBody,
) -> Response {
    use tracing::Instrument;
    let _active = crate::spin::enter();
    let origin = crate::cors::allowed_origin(&gw.cors, &headers);
    let (id, span) = open_request(&mut headers, path);
    let started = std::time::Instant::now();
    let mut response = async {
        if let Some(refused) = refuse_post(&gw, &headers) {
            return refused;
        }
        let body = match body {
            PostBody::Read(bytes) => Ok(bytes),
            PostBody::Unread(body) => read_body(&headers, body).await,
        };
        match body {
            Ok(body) => post_graphql(gw.clone(), peer, headers, body).await,
            Err(refused) => refused,
        }
    }
    .instrument(span)
    .await;
    kit::server::log_finished(&mut response, &id, started);
    crate::cors::decorate(&gw.cors, origin.as_ref(), &mut response);
    response
}

/// A `POST /graphql` refused before its body is read: a request a browser
/// sends cross-site without a preflight (400, see [`crate::csrf`]), or a
/// body that is not declared JSON (415), as GraphQL over HTTP asks.
fn refuse_post(gw: &Gateway, headers: &HeaderMap) -> Option<Response> {
    if let Some(refused) = refuse_cross_site(gw, headers) {
        return Some(refused);
    }
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok());
    let json = media.is_some_and(|m| {
        matches!(
            m.essence_str(),
            "application/json" | "application/graphql-response+json"
        ) && m
            .get_param(mime::CHARSET)
            .is_none_or(|c| c.as_str().eq_ignore_ascii_case("utf-8"))
    });
    (!json).then(|| {
        with_media(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error_body(
                "the request body must be JSON: send content-type: application/json",
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            accepts_graphql_json(headers),
        )
    })
}

/// The refusal of an operation a browser could have sent from another
/// site without asking the CORS policy (see [`crate::csrf`]).
fn refuse_cross_site(gw: &Gateway, headers: &HeaderMap) -> Option<Response> {
    let message = gw.options.csrf.refusal(headers)?;
    Some(with_media(
        StatusCode::BAD_REQUEST,
        error_body(&message, crate::csrf::CODE),
        accepts_graphql_json(headers),
    ))
}

/// A request body of at most [`MAX_BODY_BYTES`]; a longer one (by its
/// `Content-Length`, before reading, or as it is read) is refused with 413.
async fn read_body(headers: &HeaderMap, body: axum::body::Body) -> Result<Bytes, Response> {
    use http_body_util::BodyExt;
    let too_large = || {
        malformed(
            headers,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(err) => Err(malformed(
            headers,
            StatusCode::BAD_REQUEST,
            &format!("the request body could not be read: {err}"),
        )),
    }
}

/// Every route but POST `/graphql`, with CORS and the request context.
fn routes(gateway: Arc<Gateway>) -> Router {
    let cors = gateway.cors.clone();
    let mut router = Router::new()
        // POST `/graphql` never gets here: see [`Edge`].
        .route("/graphql", get(get_entry))
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(ready));
    if gateway.options.metrics_on_api {
        router = router.route("/metrics", get(metrics));
    }
    router
        .with_state(gateway)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(request_context))
        .layer(axum::middleware::from_fn_with_state(
            cors,
            crate::cors::layer,
        ))
}

/// Ready when the supergraph is loaded (it is, once a gateway exists) and
/// every subgraph is ready (see [`crate::readiness`]); else 503 naming the
/// subgraphs that are not, without their addresses.
async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    let loaded = gw.current();
    let down = loaded.readiness.not_ready(&loaded.subgraphs).await;
    if down.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        let subgraphs: Map<String, Value> = down
            .into_iter()
            .map(|(name, why)| (name, Value::String(why)))
            .collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "subgraphs": subgraphs })),
        )
            .into_response()
    }
}

/// Largest request body accepted (larger ones get 413 before any parsing).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest a request may take end to end.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `/metrics` alone, for a listener of its own (an address the public does
/// not reach), with the request context of every route.
pub fn metrics_router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(gateway)
        .layer(axum::middleware::from_fn(request_context))
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let mut text = gw.metrics.render();
    text.push_str(&format!(
        "# HELP grocery_gateway_subscriptions Client subscriptions open (WebSocket and SSE).\n\
         # TYPE grocery_gateway_subscriptions gauge\n\
         grocery_gateway_subscriptions {}\n\
         # HELP grocery_gateway_upstream_subscriptions Subscriptions open on subgraphs (identical client subscriptions share one).\n\
         # TYPE grocery_gateway_upstream_subscriptions gauge\n\
         grocery_gateway_upstream_subscriptions {}\n\
         # HELP grocery_gateway_poll_seconds_total How long serving threads' polling windows lasted (GATEWAY_POLL_US): time they polled their sockets instead of sleeping, requests' own work in those windows included.\n\
         # TYPE grocery_gateway_poll_seconds_total counter\n\
         grocery_gateway_poll_seconds_total {:.6}\n",
        gw.subscriptions.open(),
        gw.subscriptions.upstream(),
        crate::spin::polled().as_secs_f64(),
    ));
    text.push_str(&gw.documents.render());
    text.push_str(&gw.limiter.render());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

/// Gives every request an id (the caller's `x-request-id` or a new one) and
/// a W3C `traceparent` for the gateway's own span (in the caller's trace, or
/// a new one): both go to every subgraph fetch and into the logs, and the id
/// comes back on the response.
async fn request_context(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument;
    let _active = crate::spin::enter();
    let path = request.uri().path().to_owned();
    let (id, span) = open_request(request.headers_mut(), &path);
    kit::server::finish_logged(request, next, &id)
        .instrument(span)
        .await
}

/// Gives a request its id (the incoming `x-request-id`, or a new one) and
/// the gateway's span in its trace, both written into `headers` for the
/// subgraph fetches; its id and its tracing span back.
fn open_request(headers: &mut HeaderMap, path: &str) -> (String, tracing::Span) {
    use kit::server::{TRACEPARENT, X_REQUEST_ID};
    let id = kit::server::request_id(headers);
    let trace = Traceparent::child_of(headers.get(&TRACEPARENT).and_then(|v| v.to_str().ok()));
    if let Ok(id_value) = HeaderValue::from_str(&id) {
        headers.insert(X_REQUEST_ID.clone(), id_value);
        headers.insert(TRACEPARENT.clone(), trace.header_value());
    }
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        trace_id = %trace.trace_id,
        traceparent = %trace,
        path = %path,
    );
    (id, span)
}

/// A W3C trace context: the trace a request belongs to and the gateway's span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traceparent {
    pub trace_id: String,
    pub span_id: String,
    pub flags: String,
}

impl Traceparent {
    /// A new span of the gateway: in the caller's trace when `incoming` is a
    /// valid version-00 `traceparent`, else in a new sampled trace.
    pub fn child_of(incoming: Option<&str>) -> Self {
        let span_id = random_hex(8);
        let parsed = incoming.and_then(|v| {
            let mut parts = v.trim().split('-');
            let (version, trace, parent, flags) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            let hex = |s: &str, n: usize| {
                s.len() == n
                    && s.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            };
            let valid = version == "00"
                && parts.next().is_none()
                && hex(trace, 32)
                && trace.bytes().any(|b| b != b'0')
                && hex(parent, 16)
                && parent.bytes().any(|b| b != b'0')
                && hex(flags, 2);
            valid.then(|| (trace.to_owned(), flags.to_owned()))
        });
        let (trace_id, flags) = parsed.unwrap_or_else(|| (random_hex(16), "01".into()));
        Self {
            trace_id,
            span_id,
            flags,
        }
    }

    /// As the `traceparent` header carries it (what [`Display`] writes).
    ///
    /// [`Display`]: std::fmt::Display
    pub fn header_value(&self) -> HeaderValue {
        let mut text = Vec::with_capacity(55);
        text.extend_from_slice(b"00-");
        text.extend_from_slice(self.trace_id.as_bytes());
        text.push(b'-');
        text.extend_from_slice(self.span_id.as_bytes());
        text.push(b'-');
        text.extend_from_slice(self.flags.as_bytes());
        // Hex digits and dashes (checked when read, or made here).
        HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).unwrap_or_else(|_| {
            HeaderValue::from_static("00-00000000000000000000000000000001-0000000000000001-01")
        })
    }
}

impl std::fmt::Display for Traceparent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

fn random_hex(bytes: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let raw: [u8; 16] = rand::random();
    let mut out = String::with_capacity(bytes * 2);
    for &b in raw.iter().take(bytes) {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    if out.bytes().all(|b| b == b'0') {
        out.replace_range(out.len() - 1.., "1");
    }
    out
}

/// Runs a request under [`REQUEST_TIMEOUT`] and counts it.
async fn bounded(
    gw: Arc<Gateway>,
    headers: HeaderMap,
    peer: Option<IpAddr>,
    request: GraphqlRequest,
    via_get: bool,
) -> Response {
    let started = std::time::Instant::now();
    let graphql_json = accepts_graphql_json(&headers);
    let mut report = Report {
        operation: request.operation_name.clone(),
        outcome: Outcome::Refused,
    };
    let response = match tokio::time::timeout(
        REQUEST_TIMEOUT,
        run(gw.clone(), headers, peer, request, via_get, &mut report),
    )
    .await
    {
        Ok(response) => response,
        Err(_) => {
            report.outcome = Outcome::Errors;
            respond_as(
                graphql_json,
                StatusCode::GATEWAY_TIMEOUT,
                error_body("the request took too long", "GATEWAY_TIMEOUT"),
            )
        }
    };
    gw.metrics.request(
        report.operation.as_deref(),
        report.outcome,
        started.elapsed(),
    );
    response
}

/// What the metrics learn of a request.
pub(crate) struct Report {
    pub operation: Option<String>,
    pub outcome: Outcome,
}

/// A GraphQL-over-HTTP request.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphqlRequest {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<Value>,
    /// `persistedQuery` (APQ and trusted documents) and anything else.
    #[serde(default)]
    pub extensions: Option<Value>,
    /// A trusted document's id (GraphQL over HTTP persisted documents).
    #[serde(default)]
    pub document_id: Option<String>,
}

fn error_body(message: &str, code: &str) -> Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

/// A GraphQL answer. With plain application/json, GraphQL errors (validation,
/// auth) travel as 200, the convention those clients expect; the newer media
/// type carries the 4xx.
fn respond(headers: &HeaderMap, status: StatusCode, body: Value) -> Response {
    respond_as(accepts_graphql_json(headers), status, body)
}

fn respond_as(graphql_json: bool, status: StatusCode, body: Value) -> Response {
    let status = if status.is_client_error() && !graphql_json {
        StatusCode::OK
    } else {
        status
    };
    with_media(status, body, graphql_json)
}

/// A request that is not GraphQL at all (bad JSON, no query, a mutation over
/// GET): its 4xx stands whatever the media type.
fn malformed(headers: &HeaderMap, status: StatusCode, message: &str) -> Response {
    with_media(
        status,
        error_body(message, "BAD_REQUEST"),
        accepts_graphql_json(headers),
    )
}

fn accepts_graphql_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/graphql-response+json"))
}

/// A response whose JSON body is already written.
fn with_media_bytes(status: StatusCode, body: Vec<u8>, graphql_json: bool) -> Response {
    let media = if graphql_json {
        "application/graphql-response+json"
    } else {
        "application/json"
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    response
}

fn with_media(status: StatusCode, body: Value, graphql_json: bool) -> Response {
    let media = if graphql_json {
        "application/graphql-response+json"
    } else {
        "application/json"
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    response
}

async fn post_graphql(
    gw: Arc<Gateway>,
    peer: Option<IpAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match serde_json::from_slice::<GraphqlRequest>(&body) {
        Ok(request) if !extensions_are_a_map(&request) => malformed(
            &headers,
            StatusCode::BAD_REQUEST,
            "extensions must be an object",
        ),
        Ok(request) => bounded(gw, headers, peer, request, false).await,
        Err(e) => malformed(
            &headers,
            StatusCode::BAD_REQUEST,
            &format!("invalid JSON body: {e}"),
        ),
    }
}

/// Whether `extensions` is absent, null or a map, as GraphQL over HTTP
/// requires (anything else is a malformed request, not an empty one).
fn extensions_are_a_map(request: &GraphqlRequest) -> bool {
    matches!(
        request.extensions,
        None | Some(Value::Null) | Some(Value::Object(_))
    )
}

/// GET `/graphql`: a WebSocket upgrade (subscriptions), GraphiQL for a
/// browser, or a GraphQL-over-HTTP query.
async fn get_entry(State(gw): State<Arc<Gateway>>, request: axum::extract::Request) -> Response {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return crate::subscriptions::websocket(gw, request).await;
    }
    let (parts, _) = request.into_parts();
    let peer = peer_of(&parts.extensions);
    match Query::<GetParams>::try_from_uri(&parts.uri) {
        Ok(params) => get_graphql(State(gw), parts.headers, peer, params).await,
        Err(rejection) => malformed(
            &parts.headers,
            StatusCode::BAD_REQUEST,
            &format!("invalid query string: {rejection}"),
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
    document_id: Option<String>,
}

async fn get_graphql(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    peer: Option<IpAddr>,
    Query(params): Query<GetParams>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html
        && gw.options.graphiql
        && params.query.is_none()
        && params.document_id.is_none()
        && params.extensions.is_none()
    {
        return Html(
            async_graphql::http::GraphiQLSource::build()
                .endpoint("/graphql")
                .finish(),
        )
        .into_response();
    }
    // GraphiQL's page is a navigation, not an operation; a query is one.
    if let Some(message) = gw.options.csrf.refusal_of_get(&headers) {
        return with_media(
            StatusCode::BAD_REQUEST,
            error_body(&message, crate::csrf::CODE),
            accepts_graphql_json(&headers),
        );
    }
    let variables = match params
        .variables
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
    {
        Ok(v) => v,
        Err(e) => {
            return malformed(
                &headers,
                StatusCode::BAD_REQUEST,
                &format!("invalid variables: {e}"),
            );
        }
    };
    let extensions = match params
        .extensions
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
    {
        Ok(v) => v,
        Err(e) => {
            return malformed(
                &headers,
                StatusCode::BAD_REQUEST,
                &format!("invalid extensions: {e}"),
            );
        }
    };
    let request = GraphqlRequest {
        query: params.query,
        operation_name: params.operation_name,
        variables,
        extensions,
        document_id: params.document_id,
    };
    if !extensions_are_a_map(&request) {
        return malformed(
            &headers,
            StatusCode::BAD_REQUEST,
            "extensions must be an object",
        );
    }
    bounded(gw, headers, peer, request, true).await
}

async fn run(
    gw: Arc<Gateway>,
    mut headers: HeaderMap,
    peer: Option<IpAddr>,
    request: GraphqlRequest,
    via_get: bool,
    report: &mut Report,
) -> Response {
    // Subgraphs hear of the client's address from the gateway alone, never
    // from what the client wrote (a trusted proxy's header is read only
    // when `RATE_LIMIT_IP_HEADER` names it).
    let client = gw.limiter.client_ip(&headers, peer);
    headers.remove(&X_FORWARDED_FOR);
    if let Some(ip) = client.and_then(|ip| HeaderValue::try_from(ip.to_string()).ok()) {
        headers.insert(X_FORWARDED_FOR.clone(), ip);
    }
    let ready = match prepare(&gw, &headers, peer, request, via_get, report).await {
        Ok(ready) => ready,
        Err(refusal) => {
            return refusal
                .capped(gw.options.max_errors)
                .into_response(&headers);
        }
    };
    if ready.is_subscription() {
        if crate::subscriptions::accepts_event_stream(&headers) {
            report.outcome = Outcome::Ok;
            return crate::subscriptions::event_stream(gw, ready, headers);
        }
        return malformed(
            &headers,
            StatusCode::NOT_ACCEPTABLE,
            "subscriptions are served over WebSocket (graphql-transport-ws) or with \
             Accept: text/event-stream",
        );
    }
    let answered = answer(&ready.loaded, &ready.prepared, &ready.variables, &headers).await;
    report.outcome = if answered.clean {
        Outcome::Ok
    } else {
        Outcome::Errors
    };
    let mut response = with_media_bytes(
        StatusCode::OK,
        answered.body,
        accepts_graphql_json(&headers),
    );
    if let Some(seconds) = answered.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// An operation ready to execute: planned against the supergraph it will
/// run on, with its variables coerced.
pub(crate) struct Ready {
    /// The caller, when a token was sent and the gateway verifies tokens.
    pub claims: Option<kit::auth::Claims>,
    pub loaded: Arc<Loaded>,
    pub prepared: crate::planning::Prepared,
    pub variables: Map<String, Value>,
}

impl Ready {
    pub fn is_subscription(&self) -> bool {
        matches!(
            self.prepared.operation.operation_kind,
            Some(hive_router_query_planner::state::supergraph_state::OperationKind::Subscription)
        )
    }
}

/// Why a request is answered before anything runs.
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub errors: Value,
    /// Not GraphQL at all (no query, bad variables, a mutation over GET), or
    /// rate limited: its 4xx stands whatever the media type.
    pub malformed: bool,
    /// When a rate-limited caller may try again (`Retry-After`).
    pub retry_after: Option<std::time::Duration>,
}

impl Refusal {
    fn malformed(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            errors: error_body(message, "BAD_REQUEST"),
            malformed: true,
            retry_after: None,
        }
    }

    fn graphql(status: StatusCode, message: &str, code: &str) -> Self {
        Self {
            status,
            errors: error_body(message, code),
            malformed: false,
            retry_after: None,
        }
    }

    fn plan(err: &PlanError) -> Self {
        let (status, errors) = plan_error_body(err);
        Self {
            status,
            errors,
            // A document over a limit is refused with 400 whatever the media
            // type, as the mainstream routers do: it is not a GraphQL error
            // the client can read a partial answer from.
            malformed: matches!(err, PlanError::Limit(_) | PlanError::TimedOut),
            retry_after: None,
        }
    }

    fn persisted(refused: crate::persisted::Refused) -> Self {
        let status = match refused.code {
            // APQ clients expect the miss in a 200 body, then retry with the document.
            "PERSISTED_QUERY_NOT_FOUND" | "PERSISTED_QUERY_NOT_SUPPORTED" => StatusCode::OK,
            "PERSISTED_QUERY_REQUIRED" => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::graphql(status, &refused.message, refused.code)
    }

    fn rate_limited(limited: crate::ratelimit::Limited, kind: crate::ratelimit::Kind) -> Self {
        let seconds = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let whom = match limited.scope {
            crate::ratelimit::Scope::User => "this user",
            crate::ratelimit::Scope::Ip => "this address",
        };
        let message = format!(
            "too many {}s from {whom}; retry in {seconds} s",
            kind.label()
        );
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            errors: json!({ "errors": [{
                "message": message,
                "extensions": { "code": "RATE_LIMITED", "retryAfter": seconds },
            }] }),
            malformed: true,
            retry_after: Some(std::time::Duration::from_secs(seconds)),
        }
    }

    /// This refusal with at most `max` errors (see [`cap_errors`]).
    pub fn capped(mut self, max: usize) -> Self {
        if let Some(Value::Array(errors)) = self.errors.get_mut("errors") {
            cap_errors(errors, max);
        }
        self
    }

    pub fn into_response(self, headers: &HeaderMap) -> Response {
        let mut response = if self.malformed {
            with_media(self.status, self.errors, accepts_graphql_json(headers))
        } else {
            respond(headers, self.status, self.errors)
        };
        if let Some(after) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
        response
    }
}

/// Every check before execution: a token that verifies, a document (sent,
/// persisted or trusted) the caller may run, sane variables, a plan,
/// variables that fit it, introspection allowed, the caller within its rate.
pub(crate) async fn prepare(
    gw: &Gateway,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    request: GraphqlRequest,
    via_get: bool,
    report: &mut Report,
) -> Result<Ready, Refusal> {
    let claims = match (&gw.verifier, bearer(headers)) {
        (Some(auth), Some(token)) => match auth.verify(token).await {
            Ok(claims) => Some(claims),
            // Revocations not loaded yet: nothing is wrong with the token.
            Err(err @ kit::auth::TokenError::CutoffsUnknown) => {
                return Err(Refusal::graphql(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &err.to_string(),
                    "SERVICE_UNAVAILABLE",
                ));
            }
            Err(err) => {
                return Err(Refusal::graphql(
                    StatusCode::UNAUTHORIZED,
                    &err.to_string(),
                    "UNAUTHENTICATED",
                ));
            }
        },
        _ => None,
    };
    let restricted = gw.documents.only()
        || claims
            .as_ref()
            .is_some_and(|c| c.role == kit::auth::Role::Partner);
    let resolution = gw
        .documents
        .resolve(
            request.query.as_deref(),
            request.document_id.as_deref(),
            request.extensions.as_ref(),
            crate::persisted::client_name(headers),
            restricted,
        )
        .await
        .map_err(Refusal::persisted)?;
    let Some(query) = resolution
        .query
        .or(request.query)
        .filter(|q| !q.trim().is_empty())
    else {
        return Err(Refusal::malformed(
            StatusCode::BAD_REQUEST,
            "the request has no query",
        ));
    };
    let given: Map<String, Value> = match request.variables {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(Refusal::malformed(
                StatusCode::BAD_REQUEST,
                "variables must be an object",
            ));
        }
    };
    let loaded = gw.current();
    loaded
        .supergraph
        .limits()
        .check_variables(&given)
        .map_err(|exceeded| Refusal::plan(&PlanError::Limit(exceeded)))?;
    let register = resolution.register.map(|hash| (hash, query.clone()));
    let prepared = plan(gw, &loaded, query, request.operation_name.clone())
        .await
        .map_err(|err| Refusal::plan(&err))?;
    if report.operation.is_none() {
        report.operation = prepared.operation.name.clone();
    }
    use hive_router_query_planner::state::supergraph_state::OperationKind;
    let kind = match prepared.operation.operation_kind {
        Some(OperationKind::Mutation) => crate::ratelimit::Kind::Mutation,
        Some(OperationKind::Subscription) => crate::ratelimit::Kind::Subscription,
        _ => crate::ratelimit::Kind::Query,
    };
    if via_get && kind == crate::ratelimit::Kind::Mutation {
        return Err(Refusal::malformed(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations are not allowed over GET",
        ));
    }
    let variables = loaded
        .supergraph
        .coerce_variables(&prepared, &given)
        .map_err(|err| Refusal::plan(&err))?;
    if !prepared.introspection.is_empty() && loaded.introspection.is_none() {
        return Err(Refusal::graphql(
            StatusCode::BAD_REQUEST,
            "introspection is disabled on this gateway",
            "GRAPHQL_VALIDATION_FAILED",
        ));
    }
    if gw.limiter.enabled() {
        let ip = gw.limiter.client_ip(headers, peer);
        gw.limiter
            .check(kind, claims.as_ref().map(|c| c.sub), ip)
            .await
            .map_err(|limited| Refusal::rate_limited(limited, kind))?;
    }
    // A document registers only once it planned: nothing invalid is kept.
    if let Some((hash, query)) = register {
        gw.documents.register(hash, &query).await;
    }
    Ok(Ready {
        claims,
        loaded,
        prepared,
        variables,
    })
}

/// The peer address of a connection, when the server records it.
pub(crate) fn peer_of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}

/// The plan of `query`: a repeat is a cache lookup; only new operations are
/// planned, on the blocking pool.
pub(crate) async fn plan(
    gw: &Gateway,
    loaded: &Loaded,
    query: String,
    operation_name: Option<String>,
) -> Result<crate::planning::Prepared, PlanError> {
    let cached = loaded.supergraph.cached(&query, operation_name.as_deref());
    gw.metrics.plan_cache(cached.is_some());
    if let Some(prepared) = cached {
        return Ok(prepared);
    }
    let supergraph = loaded.supergraph.clone();
    // Planning stops when the request is given up (the client left, the
    // request timed out): dropping this future cancels the token.
    let cancel = Arc::new(supergraph.plan_deadline());
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    tokio::task::spawn_blocking(move || {
        supergraph.plan_cancellable(&query, operation_name.as_deref(), &cancel)
    })
    .await
    .unwrap_or_else(|_| Err(PlanError::Planning("the planner panicked".into())))
}

/// Cancels planning when the request that waits for it is dropped.
struct CancelOnDrop(Arc<hive_router_query_planner::utils::cancellation::CancellationToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A query's or mutation's GraphQL response, written.
pub(crate) struct Answered {
    /// The response as JSON bytes.
    pub body: Vec<u8>,
    /// Whether it has no errors.
    pub clean: bool,
    /// The longest `retryAfter` of a subgraph's `RATE_LIMITED` error, in
    /// seconds (failed logins are throttled by the users subgraph): sent on
    /// as the answer's `Retry-After`.
    pub retry_after: Option<u64>,
}

/// Runs a planned query or mutation and writes its GraphQL response.
pub(crate) async fn answer(
    loaded: &Loaded,
    prepared: &crate::planning::Prepared,
    variables: &Map<String, Value>,
    headers: &HeaderMap,
) -> Answered {
    let _slot = crate::admission::slot().await;
    let mut result = execution::execute(
        &prepared.plan,
        &loaded.subgraphs,
        loaded.supergraph.shapes(),
        variables,
        headers,
    )
    .await;
    if let (Some(intro), crate::value::Value::Object(data)) =
        (&loaded.introspection, &mut result.data)
    {
        for field in prepared.introspection.iter() {
            let value = if field.name == "__schema" {
                intro.schema.clone()
            } else {
                let name = match field
                    .arguments
                    .as_ref()
                    .and_then(|a| a.get_argument("name"))
                {
                    Some(PlannerValue::String(name)) => Some(name.clone()),
                    Some(PlannerValue::Variable(var)) => variables
                        .get(var)
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    _ => None,
                };
                name.map_or(Value::Null, |n| intro.type_named(&n))
            };
            data.insert(
                field.alias.as_deref().unwrap_or(&field.name),
                crate::value::Value::from(value),
            );
        }
    }
    let retry_after = result
        .errors
        .iter()
        .filter(|e| e["extensions"]["code"] == "RATE_LIMITED")
        .filter_map(|e| e["extensions"]["retryAfter"].as_u64())
        .max();
    let (body, clean) = write_response(&result, prepared, loaded, variables);
    Answered {
        body,
        clean,
        retry_after,
    }
}

/// Writes the GraphQL response of `result` as JSON bytes, shaped by the
/// client's `operation`; `true` when it has no errors. The answer is written
/// straight to bytes: no second response tree.
pub(crate) fn write_response(
    result: &execution::Execution,
    prepared: &crate::planning::Prepared,
    loaded: &Loaded,
    variables: &Map<String, Value>,
) -> (Vec<u8>, bool) {
    use std::sync::atomic::Ordering::Relaxed;
    // The size of the last answer (bounded: one huge answer does not make
    // every later one reserve as much).
    let size = prepared.answer_size.load(Relaxed).clamp(1024, 8 << 20);
    let mut body = Vec::with_capacity(size + size / 16);
    body.extend_from_slice(b"{\"data\":");
    let shaping = projection::project_into(
        &result.data,
        &prepared.operation,
        loaded.supergraph.shapes(),
        variables,
        &mut body,
    );
    let shapes = loaded.supergraph.shapes();
    let prefix = shapes.alias_prefix();
    // Errors placed where the client asked nothing (a switched-off fragment
    // the planner fetched anyway) describe no part of the answer.
    let shown = result.errors.iter().filter(|e| {
        e.get("path").and_then(Value::as_array).is_none_or(|path| {
            projection::shows(&result.data, &prepared.operation, shapes, variables, path)
        })
    });
    // Subgraph errors carry the planner's response keys.
    let subgraphs: Vec<std::borrow::Cow<'_, Value>> = shown
        .map(|e| {
            if prefix.is_active() {
                let mut e = e.clone();
                prefix.restore(&mut e);
                std::borrow::Cow::Owned(e)
            } else {
                std::borrow::Cow::Borrowed(e)
            }
        })
        .collect();
    let clean = subgraphs.is_empty() && shaping.is_empty();
    if !clean {
        body.extend_from_slice(b",\"errors\":");
        let total = subgraphs.len() + shaping.len();
        let max = loaded.max_errors.max(1);
        let kept = if total > max { max - 1 } else { total };
        let summary = (total > max).then(|| dropped_errors(total - kept));
        let all: Vec<&Value> = subgraphs
            .iter()
            .map(AsRef::as_ref)
            .chain(&shaping)
            .take(kept)
            .chain(&summary)
            .collect();
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut body, &all);
    }
    body.push(b'}');
    prepared.answer_size.store(body.len(), Relaxed);
    (body, clean)
}

/// How many errors a response carries unless configured (`MAX_ERRORS`):
/// a client learns as much from the first hundred as from thousands, and a
/// document of repeated mistakes no longer buys an answer many times its size.
pub const DEFAULT_MAX_ERRORS: usize = 100;

/// Keeps at most `max` (at least one) of `errors`: past it, the first
/// `max - 1` and a last one that says how many were dropped.
pub fn cap_errors(errors: &mut Vec<Value>, max: usize) {
    let max = max.max(1);
    if errors.len() > max {
        let dropped = errors.len() - (max - 1);
        errors.truncate(max - 1);
        errors.push(dropped_errors(dropped));
    }
}

/// The error that stands for `dropped` errors left out of a response.
fn dropped_errors(dropped: usize) -> Value {
    json!({
        "message": format!("{dropped} more errors were left out of this response"),
        "extensions": { "code": "TOO_MANY_ERRORS", "dropped": dropped },
    })
}

fn plan_error_body(err: &PlanError) -> (StatusCode, Value) {
    let errors: Vec<Value> = match err {
        PlanError::Validation(errors) => errors
            .iter()
            .map(|e| {
                json!({
                    "message": e.message,
                    "locations": e.locations.iter().map(|l| json!({ "line": l.line, "column": l.column })).collect::<Vec<_>>(),
                    "extensions": { "code": err.code() },
                })
            })
            .collect(),
        other => vec![json!({ "message": other.to_string(), "extensions": { "code": other.code() } })],
    };
    let status = if matches!(err, PlanError::Planning(_)) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, json!({ "errors": errors }))
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
