//! The gateway's HTTP edge: GraphQL over HTTP on `/graphql` (POST, and GET
//! for queries), GraphiQL for browsers, `/health` and `/ready`.
//!
//! Each request: read the body → verify the bearer token (refused tokens never
//! reach a subgraph) → plan on the blocking pool (cached) → execute → project.
//! Responses are `application/graphql-response+json` when the client accepts
//! it, `application/json` otherwise.

use std::sync::Arc;

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
    introspection::Introspection,
    planning::{PlanError, Supergraph},
    projection,
};

/// How a gateway is set up beyond its supergraph and keys.
#[derive(Clone, Debug)]
pub struct GatewayOptions {
    /// How long a subgraph may take to answer.
    pub subgraph_timeout: std::time::Duration,
    /// Subgraph URLs that replace the supergraph's, by subgraph name.
    pub subgraph_urls: std::collections::HashMap<String, String>,
    /// Whether `__schema`/`__type` are answered.
    pub introspection: bool,
    /// Depth, alias and root-field limits.
    pub limits: crate::limits::Limits,
    /// Which browser origins may call.
    pub cors: crate::cors::CorsPolicy,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            subgraph_timeout: std::time::Duration::from_secs(10),
            subgraph_urls: Default::default(),
            introspection: false,
            limits: Default::default(),
            cors: Default::default(),
        }
    }
}

/// Everything a request needs.
pub struct Gateway {
    pub supergraph: Arc<Supergraph>,
    pub subgraphs: Subgraphs,
    /// Verifies bearer tokens at the edge; `None` lets every token through to subgraphs.
    pub verifier: Option<Arc<EdgeAuth>>,
    /// Answers `__schema`/`__type`; `None` refuses them (introspection off).
    pub introspection: Option<Introspection>,
    /// Browser origins allowed to call.
    pub cors: Arc<crate::cors::CorsPolicy>,
}

impl Gateway {
    /// A gateway over `sdl`, reaching subgraphs at the URLs it declares
    /// unless `overrides` names another for a subgraph.
    pub fn new(
        sdl: &str,
        verifier: Option<Arc<EdgeAuth>>,
        options: &GatewayOptions,
    ) -> anyhow::Result<Self> {
        let GatewayOptions {
            subgraph_timeout: timeout,
            subgraph_urls: overrides,
            introspection,
            limits,
            cors,
        } = options;
        let supergraph = Arc::new(Supergraph::load(sdl)?.with_limits(*limits));
        if let Some(unknown) = overrides
            .keys()
            .find(|name| !supergraph.subgraphs().contains_key(*name))
        {
            anyhow::bail!("SUBGRAPH_URLS names {unknown:?}, which the supergraph does not have");
        }
        let urls = supergraph
            .subgraphs()
            .iter()
            .map(|(name, declared)| {
                let url = overrides.get(name).unwrap_or(declared);
                let uri = url.parse().map_err(|e| {
                    anyhow::anyhow!("subgraph {name} has an invalid URL {url:?}: {e}")
                })?;
                Ok((name.clone(), uri))
            })
            .collect::<anyhow::Result<_>>()?;
        let subgraphs = Subgraphs::new(urls, crate::fetch::SubgraphClient::new(*timeout));
        let introspection = introspection.then(|| Introspection::new(supergraph.api_schema()));
        Ok(Self {
            supergraph,
            subgraphs,
            verifier,
            introspection,
            cors: Arc::new(cors.clone()),
        })
    }
}

/// The gateway's routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let cors = gateway.cors.clone();
    Router::new()
        .route("/graphql", get(get_graphql).post(post_graphql))
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
        .with_state(gateway)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            cors,
            crate::cors::layer,
        ))
}

/// Ready when the supergraph is loaded (it is, once a gateway exists) and
/// every subgraph answers `{ __typename }` within two seconds.
async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    let down = gw
        .subgraphs
        .unreachable(std::time::Duration::from_secs(2))
        .await;
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

/// Runs a request under [`REQUEST_TIMEOUT`].
async fn bounded(
    gw: Arc<Gateway>,
    headers: HeaderMap,
    request: GraphqlRequest,
    via_get: bool,
) -> Response {
    let reply_headers = headers.clone();
    match tokio::time::timeout(REQUEST_TIMEOUT, run(gw, headers, request, via_get)).await {
        Ok(response) => response,
        Err(_) => respond(
            &reply_headers,
            StatusCode::GATEWAY_TIMEOUT,
            error_body("the request took too long", "GATEWAY_TIMEOUT"),
        ),
    }
}

/// A GraphQL-over-HTTP request.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GraphqlRequest {
    query: Option<String>,
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<Value>,
}

fn error_body(message: &str, code: &str) -> Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

/// A GraphQL answer. With plain application/json, GraphQL errors (validation,
/// auth) travel as 200, the convention those clients expect; the newer media
/// type carries the 4xx.
fn respond(headers: &HeaderMap, status: StatusCode, body: Value) -> Response {
    let graphql_json = accepts_graphql_json(headers);
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

async fn post_graphql(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    match serde_json::from_slice::<GraphqlRequest>(&body) {
        Ok(request) => bounded(gw, headers, request, false).await,
        Err(e) => malformed(
            &headers,
            StatusCode::BAD_REQUEST,
            &format!("invalid JSON body: {e}"),
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
}

async fn get_graphql(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && params.query.is_none() {
        return Html(
            async_graphql::http::GraphiQLSource::build()
                .endpoint("/graphql")
                .finish(),
        )
        .into_response();
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
    let request = GraphqlRequest {
        query: params.query,
        operation_name: params.operation_name,
        variables,
    };
    bounded(gw, headers, request, true).await
}

async fn run(
    gw: Arc<Gateway>,
    mut headers: HeaderMap,
    request: GraphqlRequest,
    via_get: bool,
) -> Response {
    let Some(query) = request.query.filter(|q| !q.trim().is_empty()) else {
        return malformed(
            &headers,
            StatusCode::BAD_REQUEST,
            "the request has no query",
        );
    };
    let variables: Map<String, Value> = match request.variables {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return malformed(
                &headers,
                StatusCode::BAD_REQUEST,
                "variables must be an object",
            );
        }
    };
    if let (Some(auth), Some(token)) = (&gw.verifier, bearer(&headers))
        && let Err(err) = auth.verify(token).await
    {
        return respond(
            &headers,
            StatusCode::UNAUTHORIZED,
            error_body(&err.to_string(), "UNAUTHENTICATED"),
        );
    }
    if !headers.contains_key("x-request-id")
        && let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
    {
        headers.insert("x-request-id", id);
    }
    // A repeat is a cache lookup; only new operations are planned, on the blocking pool.
    let planned = match gw
        .supergraph
        .cached(&query, request.operation_name.as_deref())
    {
        Some(prepared) => Ok(Ok(prepared)),
        None => {
            let supergraph = gw.supergraph.clone();
            let operation_name = request.operation_name.clone();
            tokio::task::spawn_blocking(move || supergraph.plan(&query, operation_name.as_deref()))
                .await
        }
    };
    let prepared = match planned {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(err)) => return plan_error(&headers, &err),
        Err(_) => {
            return respond(
                &headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                error_body("planning failed", "INTERNAL_SERVER_ERROR"),
            );
        }
    };
    let is_mutation = matches!(
        prepared.operation.operation_kind,
        Some(hive_router_query_planner::state::supergraph_state::OperationKind::Mutation)
    );
    if via_get && is_mutation {
        return malformed(
            &headers,
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations are not allowed over GET",
        );
    }
    if !prepared.introspection.is_empty() && gw.introspection.is_none() {
        return respond(
            &headers,
            StatusCode::BAD_REQUEST,
            error_body(
                "introspection is disabled on this gateway",
                "GRAPHQL_VALIDATION_FAILED",
            ),
        );
    }
    let mut result = execution::execute(&prepared.plan, &gw.subgraphs, &variables, &headers).await;
    if let (Some(intro), Value::Object(data)) = (&gw.introspection, &mut result.data) {
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
                field.alias.clone().unwrap_or_else(|| field.name.clone()),
                value,
            );
        }
    }
    let data = projection::project(
        &result.data,
        &prepared.operation,
        gw.supergraph.shapes(),
        &variables,
    );
    let mut body = json!({ "data": data });
    if !result.errors.is_empty() {
        body["errors"] = Value::Array(result.errors);
    }
    let mut response = respond(&headers, StatusCode::OK, body);
    if let Some(id) = headers.get("x-request-id") {
        response.headers_mut().insert("x-request-id", id.clone());
    }
    response
}

fn plan_error(headers: &HeaderMap, err: &PlanError) -> Response {
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
    respond(headers, status, json!({ "errors": errors }))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
