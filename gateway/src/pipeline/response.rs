//! GraphQL responses as HTTP: the media type the client accepts, and the
//! status a GraphQL error travels with under it.

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

pub fn error_body(message: &str, code: &str) -> Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

/// A GraphQL answer. With plain application/json, GraphQL errors (validation,
/// auth) travel as 200, the convention those clients expect; the newer media
/// type carries the 4xx.
pub fn respond(headers: &HeaderMap, status: StatusCode, body: Value) -> Response {
    respond_as(accepts_graphql_json(headers), status, body)
}

pub fn respond_as(graphql_json: bool, status: StatusCode, body: Value) -> Response {
    let status = if status.is_client_error() && !graphql_json {
        StatusCode::OK
    } else {
        status
    };
    with_media(status, body, graphql_json)
}

/// A request that is not GraphQL at all (bad JSON, no query, a mutation over
/// GET): its 4xx stands whatever the media type.
pub fn malformed(headers: &HeaderMap, status: StatusCode, message: &str) -> Response {
    with_media(
        status,
        error_body(message, "BAD_REQUEST"),
        accepts_graphql_json(headers),
    )
}

pub fn accepts_graphql_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/graphql-response+json"))
}

/// A response whose JSON body is already written.
pub fn with_media_bytes(
    status: StatusCode,
    body: impl Into<bytes::Bytes>,
    graphql_json: bool,
) -> Response {
    let media = if graphql_json {
        "application/graphql-response+json"
    } else {
        "application/json"
    };
    let mut response = (status, body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    response
}

pub fn with_media(status: StatusCode, body: Value, graphql_json: bool) -> Response {
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
