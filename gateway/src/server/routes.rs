//! The gateway's HTTP edge: GraphQL over HTTP on `/graphql` (POST, and GET
//! for queries), GraphiQL for browsers (see [`crate::server::graphiql`]),
//! `/health` and `/ready`.
//!
//! Each request: read the body → verify the bearer token (refused tokens never
//! reach a subgraph) → plan on the blocking pool (cached) → execute → project.
//! Responses are `application/graphql-response+json` when the client accepts
//! it, `application/json` otherwise, and an event stream when it prefers one
//! (GraphQL over SSE, [`crate::subscriptions::sse`]); PUT and DELETE, and a
//! GET or POST naming a reserved stream, are SSE's single-connection mode
//! ([`crate::subscriptions::reservations`]).

use std::{net::IpAddr, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{
    metrics::Outcome,
    pipeline::{
        GraphqlRequest, MAX_BODY_BYTES, REQUEST_TIMEOUT, Report, answer,
        inbound::{self, Shared, Turn},
        peer_of, prepare,
        response::{
            accepts_graphql_json, error_body, malformed, respond_as, with_media, with_media_bytes,
        },
    },
    server::gateway::Gateway,
    subscriptions::{reservations, reserved_operations},
};

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
    let (mut parts, body) = request.into_parts();
    reservations::token_param_to_header(&mut parts.headers, parts.uri.query());
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
pub enum PostBody {
    /// Read already (by [`crate::server::http1`], within [`MAX_BODY_BYTES`]).
    Read(Bytes),
    /// Still to be read, up to [`MAX_BODY_BYTES`].
    Unread(axum::body::Body),
}

/// POST `/graphql` as the router's layers and `post_graphql` would serve
/// it: CORS outermost, then the request's id, span and log line, then the
/// body, read up to [`MAX_BODY_BYTES`].
pub async fn serve_post(
    gw: Arc<Gateway>,
    peer: Option<IpAddr>,
    mut headers: HeaderMap,
    path: &str,
    body: PostBody,
) -> Response {
    use tracing::Instrument;
    let _active = crate::busy_poll::enter();
    let origin = crate::server::cors::allowed_origin(&gw.cors, &headers);
    let streamed = crate::subscriptions::prefers_event_stream(&headers)
        && !reservations::names_a_stream(&headers, None);
    let (id, span, mut trace) = open_request(&gw, &mut headers, "POST", path);
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
    if streamed {
        response = crate::subscriptions::as_event_stream(response).await;
    }
    close_request(&mut trace, &response);
    telemetry::log_finished(&mut response, &id, started);
    crate::server::cors::decorate(&gw.cors, origin.as_ref(), &mut response);
    response
}

/// A `POST /graphql` refused before its body is read: a request a browser
/// sends cross-site without a preflight (400, see [`crate::server::csrf`]), or a
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
/// site without asking the CORS policy (see [`crate::server::csrf`]).
fn refuse_cross_site(gw: &Gateway, headers: &HeaderMap) -> Option<Response> {
    let message = gw.csrf.refusal(headers)?;
    Some(with_media(
        StatusCode::BAD_REQUEST,
        error_body(&message, crate::server::csrf::CODE),
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
        .route(
            "/graphql",
            get(get_entry).put(put_graphql).delete(delete_graphql),
        )
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(ready));
    if gateway.metrics_on_api {
        router = router.route("/metrics", get(metrics));
    }
    if gateway.graphiql {
        use crate::server::graphiql;
        router = router.route(graphiql::ASSETS_ROUTE, get(graphiql::serve_asset));
    }
    // Last: every path no route took is tried as a REST route.
    if gateway.rest.is_some() {
        router = with_rest(router);
    }
    router
        .with_state(gateway.clone())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            gateway,
            request_context,
        ))
        .layer(axum::middleware::from_fn_with_state(
            cors,
            crate::server::cors::layer,
        ))
}

/// `router` with the REST endpoints of route files: their OpenAPI document
/// and its page, and every other path tried as a route.
fn with_rest(router: Router<Arc<Gateway>>) -> Router<Arc<Gateway>> {
    use crate::rest::openapi::{DOCS_PATH, OPENAPI_PATH};
    router
        .route(OPENAPI_PATH, get(openapi))
        .route(DOCS_PATH, get(openapi_page))
        .fallback(rest)
}

/// The REST endpoints alone, for a listener of their own (`REST_PORT`):
/// the routes, their OpenAPI document and page, and `/health`, with the
/// request context and CORS of every route.
pub fn rest_router(gateway: Arc<Gateway>) -> Router {
    let cors = gateway.cors.clone();
    with_rest(Router::new().route("/health", get(|| async { Json(json!({ "status": "ok" })) })))
        .with_state(gateway.clone())
        .layer(axum::middleware::from_fn_with_state(
            gateway,
            request_context,
        ))
        .layer(axum::middleware::from_fn_with_state(
            cors,
            crate::server::cors::layer,
        ))
}

async fn rest(State(gw): State<Arc<Gateway>>, request: axum::extract::Request) -> Response {
    match &gw.rest {
        Some(rest) => crate::rest::serve(&gw.pipeline, rest, request).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn openapi(State(gw): State<Arc<Gateway>>) -> Response {
    match &gw.rest {
        Some(rest) => Json(crate::rest::openapi::document(&rest.table())).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn openapi_page(State(gw): State<Arc<Gateway>>) -> Response {
    match &gw.rest {
        Some(rest) => axum::response::Html(crate::rest::openapi::page(
            &crate::rest::openapi::document(&rest.table()),
        ))
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Ready when the supergraph is loaded (it is, once a gateway exists) and
/// every subgraph is ready (see [`crate::subgraph::readiness`]); else 503 naming the
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

/// `/metrics` alone, for a listener of its own (an address the public does
/// not reach), with the request context of every route.
pub fn metrics_router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(gateway.clone())
        .layer(axum::middleware::from_fn_with_state(
            gateway,
            request_context,
        ))
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let mut text = gw.pipeline.metrics.render();
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
        crate::busy_poll::polled().as_secs_f64(),
    ));
    text.push_str(&gw.pipeline.documents.render());
    if let Some(rest) = &gw.rest {
        text.push_str(&rest.render());
    }
    text.push_str(&gw.pipeline.limiter.render());
    text.push_str(&gw.pipeline.usage.render());
    text.push_str(&gw.pipeline.entity_cache.render());
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
    State(gw): State<Arc<Gateway>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument;
    let _active = crate::busy_poll::enter();
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let (id, span, mut trace) = open_request(&gw, request.headers_mut(), method.as_str(), &path);
    let response = telemetry::finish_logged(request, next, &id)
        .instrument(span)
        .await;
    close_request(&mut trace, &response);
    response
}

/// Gives a request its id (the incoming `x-request-id`, or a new one) and
/// the gateway's span in its trace, both written into `headers` for the
/// subgraph fetches; its id, its tracing span and its exported span back.
fn open_request(
    gw: &Gateway,
    headers: &mut HeaderMap,
    method: &str,
    path: &str,
) -> (String, tracing::Span, telemetry::otel::Span) {
    use telemetry::{TRACEPARENT, Traceparent, X_REQUEST_ID, otel::Kind};
    let id = telemetry::request_id(headers);
    let incoming = headers.get(&TRACEPARENT).and_then(|v| v.to_str().ok());
    let mut exported = match path {
        // Probes and scrapes every few seconds would bury the traces that matter.
        "/health" | "/ready" | "/metrics" => telemetry::otel::Span::off(),
        _ => gw
            .pipeline
            .options
            .tracer
            .open("request", Kind::Server, incoming),
    };
    let trace = match exported.context() {
        Some(context) => context.traceparent(),
        None => Traceparent::child_of(incoming),
    };
    exported.rename(format_args!("{method} {path}"));
    exported.set("http.request.method", method);
    exported.set("url.path", path);
    exported.set("request.id", id.as_str());
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
    (id, span, exported)
}

/// Ends a request's exported span with how it was answered.
fn close_request(span: &mut telemetry::otel::Span, response: &Response) {
    let status = response.status();
    span.set("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.fail(|| status.to_string());
    }
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
    let mut report = Report::new(request.operation_name.clone());
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
    report.finish(&gw.pipeline, started.elapsed()).await;
    response
}

async fn post_graphql(
    gw: Arc<Gateway>,
    peer: Option<IpAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if reservations::names_a_stream(&headers, None) {
        let subs = &gw.subscriptions;
        return reserved_operations::operation(subs, headers, peer, body).await;
    }
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
        return crate::subscriptions::websocket(gw.subscriptions.clone(), request).await;
    }
    let (parts, _) = request.into_parts();
    if reservations::names_a_stream(&parts.headers, parts.uri.query()) {
        return reservations::open(&gw.subscriptions, &parts.headers, parts.uri.query());
    }
    let streamed = crate::subscriptions::prefers_event_stream(&parts.headers);
    let peer = peer_of(&parts.extensions);
    let response = match Query::<GetParams>::try_from_uri(&parts.uri) {
        Ok(params) => get_graphql(State(gw), parts.headers, peer, params).await,
        Err(rejection) => malformed(
            &parts.headers,
            StatusCode::BAD_REQUEST,
            &format!("invalid query string: {rejection}"),
        ),
    };
    if streamed {
        return crate::subscriptions::as_event_stream(response).await;
    }
    response
}

/// PUT `/graphql`: reserves an SSE stream (single-connection mode).
async fn put_graphql(State(gw): State<Arc<Gateway>>, request: axum::extract::Request) -> Response {
    let peer = peer_of(request.extensions());
    reservations::reserve(&gw.subscriptions, request.headers(), peer).await
}

/// DELETE `/graphql?operationId=`: stops an operation of a reserved SSE stream.
async fn delete_graphql(
    State(gw): State<Arc<Gateway>>,
    request: axum::extract::Request,
) -> Response {
    let query = request.uri().query();
    reserved_operations::stop(&gw.subscriptions, request.headers(), query)
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
        && gw.graphiql
        && params.query.is_none()
        && params.document_id.is_none()
        && params.extensions.is_none()
    {
        return crate::server::graphiql::page(&headers);
    }
    // GraphiQL's page is a navigation, not an operation; a query is one.
    if let Some(message) = gw.csrf.refusal_of_get(&headers) {
        return with_media(
            StatusCode::BAD_REQUEST,
            error_body(&message, crate::server::csrf::CODE),
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
    crate::pipeline::request::forward_client(&gw.pipeline.limiter, &mut headers, peer);
    let document = gw
        .pipeline
        .inbound
        .as_ref()
        .map(|_| inbound::document(&request));
    let ready = match prepare(&gw.pipeline, &headers, peer, request, via_get, report).await {
        Ok(ready) => ready,
        Err(refusal) => {
            return refusal
                .capped(gw.pipeline.options.max_errors)
                .into_response(&headers);
        }
    };
    if ready.is_subscription() {
        if crate::subscriptions::accepts_event_stream(&headers) {
            report.outcome = Outcome::Ok;
            return crate::subscriptions::event_stream(gw.subscriptions.clone(), ready, headers);
        }
        return malformed(
            &headers,
            StatusCode::NOT_ACCEPTABLE,
            "subscriptions are served over WebSocket (graphql-transport-ws) or with \
             Accept: text/event-stream",
        );
    }
    let caller = ready.caller();
    let run = || {
        answer(
            &ready.loaded,
            &ready.prepared,
            &ready.variables,
            &headers,
            caller.as_deref(),
        )
    };
    let sharing = gw.pipeline.inbound.as_ref().zip(document);
    let answered: Shared = match sharing.filter(|_| ready.is_query()) {
        None => run().await.into(),
        Some((inbound, document)) => {
            match inbound.turn(inbound::key(&document, &ready, &ready.variables, &headers)) {
                Turn::Lead(lead) => {
                    let answered = Shared::from(run().await);
                    lead.publish(&answered);
                    answered
                }
                Turn::Follow(follower) => match follower.answer().await {
                    Some(answered) => {
                        gw.pipeline.metrics.request_deduplicated();
                        answered
                    }
                    // The leader's client left before it answered: run.
                    None => run().await.into(),
                },
            }
        }
    };
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
    if let Some(quota) = &ready.quota {
        quota.write(response.headers_mut());
    }
    response
}
