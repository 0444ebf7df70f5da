//! A GraphQL-over-HTTP request as the client sent it: its JSON fields, its
//! bearer token and the address it came from, and the bounds on its body
//! and its time.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::Value;

use crate::metrics::Outcome;

/// Largest request body accepted (larger ones get 413 before any parsing).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest a request may take end to end.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the metrics learn of a request.
pub struct Report {
    pub operation: Option<String>,
    pub outcome: Outcome,
}

/// A GraphQL-over-HTTP request.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlRequest {
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

/// The peer address of a connection, when the server records it.
pub fn peer_of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
