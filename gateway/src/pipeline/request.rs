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
#[derive(Default)]
pub struct Report {
    pub operation: Option<String>,
    pub outcome: Outcome,
    /// Its client and trusted document, when it named a client.
    pub usage: Option<crate::pipeline::usage::Tally>,
}

impl Report {
    /// A request named `operation`, refused until it is known to be otherwise.
    pub fn new(operation: Option<String>) -> Self {
        Self {
            operation,
            outcome: Outcome::Refused,
            usage: None,
        }
    }

    /// Tells the metrics and partner usage how the request ended, `took` after it started.
    pub async fn finish(&self, pipeline: &crate::pipeline::Pipeline, took: std::time::Duration) {
        pipeline
            .metrics
            .request(self.operation.as_deref(), self.outcome, took);
        if let Some(tally) = &self.usage {
            pipeline.usage.finish(tally, self.outcome, took).await;
        }
    }
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

static X_FORWARDED_FOR: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-forwarded-for");

/// Tells subgraphs the client's address from the gateway alone, never from
/// what the client wrote (a trusted proxy's header is read only when
/// `RATE_LIMIT_IP_HEADER` names it).
pub fn forward_client(
    limiter: &crate::pipeline::ratelimit::Limiter,
    headers: &mut HeaderMap,
    peer: Option<IpAddr>,
) {
    let client = limiter.client_ip(headers, peer);
    headers.remove(&X_FORWARDED_FOR);
    if let Some(ip) = client.and_then(|ip| axum::http::HeaderValue::try_from(ip.to_string()).ok()) {
        headers.insert(X_FORWARDED_FOR.clone(), ip);
    }
}
