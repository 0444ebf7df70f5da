//! The HTTP face of a subgraph: `/graphql` (POST, GET, GraphiQL on browser GET,
//! subscriptions over `graphql-transport-ws` on a WebSocket upgrade), `/health`,
//! `/ready`, request ids and log lines (the telemetry crate's), bearer-token
//! verification and graceful shutdown. Subgraphs add their own routes by
//! merging into the returned router.
//!
//! GraphQL over HTTP as the spec asks: mutations only over POST (a GET
//! mutation is 405, as at the gateway), `application/json` unless the client
//! accepts `application/graphql-response+json`, and with that media type a
//! request refused before execution is a 400. Every operation first passes
//! kit's input rule ([`crate::input`]).

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Instant,
};

use async_graphql::{
    Data, Executor,
    http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource},
};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLWebSocket};
use axum::{
    Extension, Json, Router,
    extract::{FromRequestParts, Request, State, WebSocketUpgrade},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use telemetry::{TRACEPARENT, finish_logged, request_id};
use tracing::Instrument;

use crate::{
    auth::{Auth, TokenType, Verifier, init_token},
    db::{self, PgPool},
    input::Checked,
    metrics::{Outcome, RequestMetrics},
};

/// The request id of the current request: the caller's `x-request-id` or a new UUID.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

struct AppState<E> {
    component: &'static str,
    executor: E,
    verifier: Arc<Verifier>,
    pool: PgPool,
    metrics: RequestMetrics,
    documents: crate::documents::Documents,
}

/// `/graphql`, `/health`, `/ready` and `/metrics` of the subgraph `component`
/// (`orders`) for `executor`, verifying bearer tokens with `verifier`.
pub fn router<E: Executor>(
    component: &'static str,
    executor: E,
    verifier: Arc<Verifier>,
    pool: PgPool,
) -> Router {
    let state = Arc::new(AppState {
        component,
        executor: Checked(executor),
        verifier,
        pool,
        metrics: RequestMetrics::default(),
        documents: Default::default(),
    });
    Router::new()
        .route(
            "/graphql",
            get(graphql_get::<Checked<E>>).post(graphql_post::<Checked<E>>),
        )
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route("/ready", get(ready::<Checked<E>>))
        .route("/metrics", get(metrics::<Checked<E>>))
        .with_state(state)
        .layer(middleware::from_fn(limit_body))
        .layer(middleware::from_fn(request_context))
}

/// Prometheus text: this router's GraphQL requests, its component's event
/// consumers and the process's bus followers.
async fn metrics<E>(State(state): State<Arc<AppState<E>>>) -> Response {
    let mut text = String::new();
    state.metrics.render(&mut text);
    text.push_str(&crate::events::metrics_text(state.component));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Largest request body a subgraph reads. async-graphql's extractor reads the
/// body itself, past axum's default limit, so the cap is put on the body here.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

async fn limit_body(request: Request, next: Next) -> Response {
    let too_large = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|len| len > MAX_BODY_BYTES);
    if too_large {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    }
    let request = request
        .map(|body| axum::body::Body::new(http_body_util::Limited::new(body, MAX_BODY_BYTES)));
    next.run(request).await
}

/// A subgraph's federation SDL as served (what `schema/<name>.graphql` holds).
pub fn federation_sdl<Q, M, S>(schema: &async_graphql::Schema<Q, M, S>) -> String
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    schema.sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .federation()
            .compose_directive(),
    )
}

/// `listener` with `TCP_NODELAY` on every connection it accepts: an answer
/// goes out as soon as it is written. With Nagle's algorithm, a response
/// written in two parts waits for the peer's delayed ACK (40 ms on Linux);
/// a checkout, whose calls cross four such hops, took 56 ms instead of 10
/// at one customer.
pub fn immediate(listener: tokio::net::TcpListener) -> Immediate {
    axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

/// What [`immediate`] makes of a listener.
pub type Immediate = axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)>;

/// Serves `service` (a [`Router`], or any service like one) on `listener`
/// until `shutdown` resolves, then drains in-flight requests.
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    service: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: tower_service::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    // Peer addresses reach handlers that ask for them (`ConnectInfo`).
    axum::serve(
        immediate(listener),
        axum::ServiceExt::<Request>::into_make_service_with_connect_info::<std::net::SocketAddr>(
            service,
        ),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// What the connection says about who is calling, handed to resolvers as
/// request data for rules that count per client (login throttling): the TCP
/// peer, and the right-most `x-forwarded-for` entry (what the nearest proxy
/// appended; anything left of it is the client's own claim). Kit trusts
/// neither: the subgraph decides whose word counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientAddress {
    /// The connection's peer, when the server records it.
    pub peer: Option<IpAddr>,
    /// The address the nearest proxy says it served.
    pub forwarded: Option<IpAddr>,
}

impl ClientAddress {
    /// Reads the peer from `extensions` (`ConnectInfo`) and the forwarded address from `headers`.
    pub fn of(headers: &HeaderMap, extensions: &axum::http::Extensions) -> Self {
        let forwarded = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok());
        Self {
            peer: extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
            forwarded,
        }
    }
}

const X_FORWARDED_FOR: header::HeaderName = header::HeaderName::from_static("x-forwarded-for");

/// A POST must carry JSON and say so (the spec's SHOULD: a 4xx otherwise).
/// This also refuses what a browser sends cross-site without a preflight
/// (`text/plain`, form encodings): subgraphs take no such requests.
async fn graphql_post<E: Executor>(
    state: State<Arc<AppState<E>>>,
    request_id: Extension<RequestId>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    request: GraphQLRequest,
) -> Response {
    let started = Instant::now();
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        state.metrics.request(
            request.0.operation_name.as_deref(),
            Outcome::Refused,
            started.elapsed(),
        );
        return refused(
            &headers,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a POST must carry content-type: application/json",
        );
    }
    let mut request = request;
    request
        .0
        .data
        .insert(ClientAddress::of(&headers, &extensions));
    graphql(state, request_id, headers, request, started).await
}

/// Executes `request` (received at `started`) and counts it in the router's metrics.
async fn graphql<E: Executor>(
    State(state): State<Arc<AppState<E>>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    request: GraphQLRequest,
    started: Instant,
) -> Response {
    let token = bearer(&headers);
    let auth = authenticate(&state.verifier, token);
    let mut request = request.into_inner();
    state.documents.prepare(&mut request);
    if let (Auth::User(_), Some(token)) = (&auth, token) {
        request = request.data(crate::auth::BearerToken(token.into()));
    }
    let span = tracing::info_span!(
        "graphql",
        operation = request.operation_name.as_deref().unwrap_or(""),
        user = match &auth {
            Auth::User(c) => c.sub.to_string(),
            _ => String::new(),
        },
    );
    let request = request.data(auth).data(request_id);
    let operation = request.operation_name.clone();
    let mut response = crate::trace::operation(operation.as_deref(), &request.query)
        .run(state.executor.execute(request).instrument(span))
        .await;
    for error in &mut response.errors {
        add_missing_code(error);
    }
    state.metrics.request(
        operation.as_deref(),
        Outcome::of(&response),
        started.elapsed(),
    );
    crate::media::answer(response, &headers)
}

/// A refusal before any GraphQL ran, in the media type the client accepts.
fn refused(headers: &HeaderMap, status: StatusCode, message: &str) -> Response {
    let mut error = async_graphql::ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", "BAD_REQUEST");
    let mut response =
        crate::media::answer(async_graphql::Response::from_errors(vec![error]), headers);
    *response.status_mut() = status;
    response
}

/// Errors raised by async-graphql itself (parsing, validation, input coercion)
/// carry no code; every error we answer must have one, and none may carry
/// text that was not written for clients.
fn add_missing_code(error: &mut async_graphql::ServerError) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if has_code {
        return;
    }
    let message = error.message.as_str();
    let code = if message.starts_with("Failed to parse")
        || message.starts_with("Invalid value for argument")
        || message.starts_with("Invalid value for variable")
    {
        "BAD_USER_INPUT"
    } else if error.path.is_empty() {
        // Before execution: the document did not parse or did not validate.
        if message.contains("expected") && error.locations.is_empty() {
            "GRAPHQL_PARSE_FAILED"
        } else {
            "GRAPHQL_VALIDATION_FAILED"
        }
    } else {
        // Raised during execution without a code: nobody wrote it for a
        // client, so its text (perhaps a driver's) goes to the log only.
        tracing::error!(error = %message, "uncoded error during execution");
        error.message = "internal server error".to_owned();
        "INTERNAL_SERVER_ERROR"
    };
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

fn authenticate(verifier: &Verifier, token: Option<&str>) -> Auth {
    match token {
        None => Auth::Anonymous,
        Some(token) => match verifier.verify(token, TokenType::Access) {
            Ok(claims) => Auth::User(claims),
            Err(err) => Auth::Invalid(err),
        },
    }
}

async fn graphql_get<E: Executor>(
    state: State<Arc<AppState<E>>>,
    request_id: Extension<RequestId>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let started = Instant::now();
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return subscribe(&state, request).await;
    }
    let client = ClientAddress::of(&headers, request.extensions());
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        return Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response();
    }
    match <GraphQLRequest as axum::extract::FromRequest<()>>::from_request(request, &()).await {
        Ok(mut gql) => {
            if crate::media::is_mutation(&mut gql.0) {
                state.metrics.request(
                    gql.0.operation_name.as_deref(),
                    Outcome::Refused,
                    started.elapsed(),
                );
                let mut response = refused(
                    &headers,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "mutations are not allowed over GET",
                );
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
                return response;
            }
            gql.0.data.insert(client);
            graphql(state, request_id, headers, gql, started).await
        }
        Err(rejection) => {
            state
                .metrics
                .request(None, Outcome::Refused, started.elapsed());
            rejection.into_response()
        }
    }
}

/// A `graphql-transport-ws` (or legacy `graphql-ws`) connection. The caller
/// is authenticated at `connection_init` from the payload's `authorization`
/// (or `Authorization`, `headers.authorization`, `token`), else from the
/// upgrade request's header; a token that does not verify closes the socket.
async fn subscribe<E: Executor>(state: &AppState<E>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(protocol) => protocol,
        Err(rejection) => return rejection.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let header_token = bearer(&parts.headers).map(str::to_owned);
    let (executor, verifier) = (state.executor.clone(), state.verifier.clone());
    // Small buffers: a gateway holds one socket per client subscription
    // (tungstenite allocates the read buffer eagerly, 128 KiB by default).
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, executor, protocol)
                .on_connection_init(move |payload| async move {
                    let token = init_token(&payload).or(header_token);
                    match authenticate(&verifier, token.as_deref()) {
                        Auth::Invalid(err) => Err(async_graphql::Error::new(err.to_string())),
                        auth => {
                            let mut data = Data::default();
                            data.insert(auth);
                            Ok(data)
                        }
                    }
                })
                .serve()
        })
}

async fn ready<E: Executor>(State(state): State<Arc<AppState<E>>>) -> Response {
    match db::ping(&state.pool).await {
        Ok(()) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "not ready: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unavailable", "reason": "database" })),
            )
                .into_response()
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Assigns the request id, opens the request's tracing span and logs the outcome.
async fn request_context(mut request: Request, next: Next) -> Response {
    let id = request_id(request.headers());
    let traceparent = request
        .headers()
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        traceparent = %traceparent,
        method = %request.method(),
        path = %request.uri().path(),
    );
    request.extensions_mut().insert(RequestId(id.clone()));
    finish_logged(request, next, &id).instrument(span).await
}
