//! Talking to subgraphs: GraphQL over HTTP POST with a deadline per request,
//! on the HTTP/1.1 lane's keep-alive connections ([`crate::subgraph::pool`])
//! to a plain `http://` subgraph, on hyper's ([`crate::subgraph::connector`])
//! to one over TLS or HTTP/2.
//!
//! Subgraphs answer `application/json` or `application/graphql-response+json`
//! (async-graphql ≥ 7.0.17 always sends the latter); both are read, and with
//! the latter a non-2xx status may still carry a GraphQL body worth keeping.
//! Anything else is a [`FetchError`] the executor turns into a subgraph error.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use hyper::{
    Uri,
    header::{HeaderMap, HeaderName, HeaderValue},
};
use serde_json::Value as Json;

use crate::{
    subgraph::{connector::Outgoing, endpoint::Endpoint, error::FetchError},
    value::Value,
};

/// Headers passed from the client's request to every subgraph.
pub static FORWARDED_HEADERS: [HeaderName; 4] = [
    hyper::header::AUTHORIZATION,
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("traceparent"),
    // The client's address as the gateway judged it (see `http::run`):
    // the users subgraph throttles failed logins by it.
    HeaderName::from_static("x-forwarded-for"),
];

/// One GraphQL request to a subgraph.
#[derive(Debug)]
pub struct SubgraphRequest<'a> {
    pub query: &'a str,
    pub operation_name: Option<&'a str>,
    pub variables: Value,
    /// Sent as they are (see [`FORWARDED_HEADERS`]).
    pub headers: HeaderMap,
    /// A query: identical ones in flight at once may share one exchange
    /// (see [`SubgraphClient::deduplicating`]). Never set for a mutation.
    pub shareable: bool,
    /// A query: sending it twice does nothing twice, so it is sent again
    /// when a pooled connection turns out to have been closed by the
    /// subgraph (see [`crate::subgraph::pool::exchange`]).
    pub idempotent: bool,
}

/// A subgraph's GraphQL response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubgraphResponse {
    pub data: Value,
    pub errors: Vec<Json>,
    /// The size of the answer's body as it arrived: what a request's
    /// memory budget is charged.
    pub bytes: usize,
    /// Its `Cache-Control` header: how long the entity cache may keep it.
    pub cache_control: Option<HeaderValue>,
}

/// The HTTP client for subgraphs.
///
/// The keep-alive connections are pooled per thread ([`crate::subgraph::pool`]),
/// so a request served by one of the gateway's single-threaded runtimes (see
/// [`crate::server::threads`]) fetches over connections of its own thread.
#[derive(Clone)]
pub struct SubgraphClient {
    timeout: Duration,
    inflight: Option<Arc<Inflight>>,
    /// Where fetches answered by another's exchange are counted.
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// One exchange with a subgraph, read: parsed once however many wait on it.
type Running = futures::future::BoxFuture<'static, Result<Arc<SubgraphResponse>, FetchError>>;

/// An exchange any number of requests wait on.
type Exchange = futures::future::Shared<Running>;

/// What makes two subgraph requests the same: where they go, the static
/// headers they carry there (two subgraphs may share a URL and differ by
/// them), whose token they carry, and the exact body. Request ids and trace
/// context are left out: a shared exchange carries the first request's.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    url: Uri,
    headers: Arc<[(HeaderName, HeaderValue)]>,
    authorization: Option<HeaderValue>,
    body: Bytes,
}

/// The shareable exchanges in flight, held weakly: when every request
/// waiting on one is gone, it is cancelled, never answered later to a newcomer.
#[derive(Default)]
struct Inflight(std::sync::Mutex<Exchanges>);

#[derive(Default)]
struct Exchanges {
    /// Each with the number it was started as: a cancelled exchange leaving
    /// late never takes out the one started in its place.
    by_key: rustc_hash::FxHashMap<Key, (u64, futures::future::WeakShared<Running>)>,
    started: u64,
}

impl SubgraphClient {
    /// A client whose requests fail after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            inflight: None,
            metrics: None,
        }
    }

    /// The same client (sharing its exchanges in flight), counting each
    /// fetch another's exchange answers in `metrics`, under its endpoint's name.
    pub fn counting(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The same client, sending a shareable request that is identical to
    /// one in flight (same subgraph, static headers, token and body) not
    /// again but waiting for that one's answer, read once, as Hive Router
    /// and Apollo Router's `deduplicate_query` do. Under load, concurrent
    /// clients asking the same thing then cost the subgraph one request:
    /// on the federation bench's fixture (release, 2 cores shared by
    /// subgraphs, gateway and load) 50 connections cost the subgraphs 0.57
    /// requests per client request instead of 7 (92% of fetches merged) and
    /// 0.19 ms of their CPU instead of 1.96; 8 connections 1.82 (74%), 2
    /// connections 4.07 (42%).
    pub fn deduplicating(mut self, on: bool) -> Self {
        self.inflight = on.then(Default::default);
        self
    }

    /// How long a subgraph may take unless told otherwise.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `request` to the subgraph at `to`, within the client's timeout.
    pub async fn fetch(
        &self,
        to: &Endpoint,
        request: SubgraphRequest<'_>,
    ) -> Result<SubgraphResponse, FetchError> {
        self.fetch_within(to, request, self.timeout).await
    }

    /// Sends `request` to the subgraph at `to`; fails after `timeout`.
    pub async fn fetch_within(
        &self,
        to: &Endpoint,
        request: SubgraphRequest<'_>,
        timeout: Duration,
    ) -> Result<SubgraphResponse, FetchError> {
        let shared = self.fetch_shared_within(to, request, timeout).await?;
        // The last request to take a shared answer (or the only one) takes it without a copy.
        Ok(Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone()))
    }

    /// [`Self::fetch_within`], answering what other requests may share: an
    /// executor merges from a shared answer by reference, copying into its
    /// own response only what lands there, and takes it whole when it is
    /// the only holder ([`Arc::get_mut`]).
    pub async fn fetch_shared_within(
        &self,
        to: &Endpoint,
        request: SubgraphRequest<'_>,
        timeout: Duration,
    ) -> Result<Arc<SubgraphResponse>, FetchError> {
        let url = to.url();
        let mut body = Vec::with_capacity(request.query.len() + 256);
        let shareable = request.shareable;
        body.extend_from_slice(b"{\"query\":");
        crate::value::write_str(&mut body, request.query);
        if let Some(name) = request.operation_name {
            body.extend_from_slice(b",\"operationName\":");
            crate::value::write_str(&mut body, name);
        }
        body.extend_from_slice(b",\"variables\":");
        request.variables.write_json(&mut body);
        body.push(b'}');
        let body = Bytes::from(body);
        // The client's forwarded headers, then the subgraph's static ones
        // (never the same names: `options::static_header` refuses those).
        let forwarded = FORWARDED_HEADERS
            .iter()
            .filter_map(|name| Some((name, request.headers.get(name)?)))
            .chain(to.headers().iter().map(|(name, value)| (name, value)));
        let authorization = request.headers.get(hyper::header::AUTHORIZATION).cloned();
        let idempotent = request.idempotent;
        let wire_body = body.clone();
        let exchange = match to.connector() {
            // The HTTP/1.1 lane: the request written here, all but its body.
            None => {
                let head = Bytes::from(crate::subgraph::pool::post_head(
                    url,
                    body.len(),
                    forwarded.map(|(name, value)| (name.as_str(), value)),
                )?);
                let target = url.clone();
                futures::future::Either::Left(async move {
                    let answer =
                        crate::subgraph::pool::exchange(&target, head, wire_body, idempotent);
                    tokio::time::timeout(timeout, answer)
                        .await
                        .map_err(|_| FetchError::Timeout(timeout))?
                })
            }
            // hyper's connections, boxed: the lane's exchange stays as small as it was.
            Some(connector) => {
                let (connector, headers) = (connector.clone(), post_headers(forwarded));
                let path = url.path_and_query().map_or("/", |p| p.as_str()).to_owned();
                futures::future::Either::Right(Box::pin(async move {
                    let outgoing = Outgoing {
                        method: hyper::Method::POST,
                        path: &path,
                        headers: &headers,
                        body: wire_body,
                    };
                    let answer = connector.exchange(outgoing, idempotent);
                    tokio::time::timeout(timeout, answer)
                        .await
                        .map_err(|_| FetchError::Timeout(timeout))?
                }))
            }
        };
        // The representations are in the body now: not held while waiting.
        drop(request);
        let read = async move {
            let answer = exchange.await?;
            let mut response = parse(answer.status, answer.content_type.as_ref(), &answer.body)?;
            response.cache_control = answer.cache_control;
            Ok(response)
        };
        match (&self.inflight, shareable) {
            (Some(inflight), true) => {
                let key = Key {
                    url: url.clone(),
                    headers: to.shared_headers().clone(),
                    authorization,
                    body,
                };
                let (answer, joined) = inflight.join(key, async move { read.await.map(Arc::new) });
                if let (true, Some(metrics)) = (joined, &self.metrics) {
                    metrics.fetch_deduplicated(to.name());
                }
                answer.await
            }
            _ => read.await.map(Arc::new),
        }
    }
}

/// The headers of a POST to a subgraph through hyper: the lane's
/// [`crate::subgraph::pool::post_head`] says the same.
fn post_headers<'h>(
    forwarded: impl Iterator<Item = (&'h HeaderName, &'h HeaderValue)>,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(8);
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        hyper::header::ACCEPT,
        HeaderValue::from_static("application/graphql-response+json, application/json;q=0.9"),
    );
    for (name, value) in forwarded {
        headers.insert(name.clone(), value.clone());
    }
    headers
}

/// Takes an exchange out of [`Inflight`] when it ends.
struct Leave {
    inflight: Arc<Inflight>,
    key: Key,
    started: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let mut exchanges = self
            .inflight
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if exchanges
            .by_key
            .get(&self.key)
            .is_some_and(|(started, _)| *started == self.started)
        {
            exchanges.by_key.remove(&self.key);
        }
    }
}

impl Inflight {
    /// The exchange in flight for `key`, and `true` (the caller sends
    /// nothing), or `exchange`, started now and shared with whoever asks
    /// the same meanwhile, and `false`.
    fn join(
        self: &Arc<Self>,
        key: Key,
        exchange: impl std::future::Future<Output = Result<Arc<SubgraphResponse>, FetchError>>
        + Send
        + 'static,
    ) -> (Exchange, bool) {
        use futures::FutureExt;
        let mut exchanges = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(running) = exchanges
            .by_key
            .get(&key)
            .and_then(|(_, weak)| weak.upgrade())
        {
            return (running, true);
        }
        exchanges.started += 1;
        let leave = Leave {
            inflight: self.clone(),
            key: key.clone(),
            started: exchanges.started,
        };
        let running: Exchange = async move {
            // Answered or cancelled, it leaves the map: a request
            // from then on is a new one.
            let _leave = leave;
            exchange.await
        }
        .boxed()
        .shared();
        if let Some(weak) = running.downgrade() {
            let number = exchanges.started;
            exchanges.by_key.insert(key, (number, weak));
        }
        (running, false)
    }
}

fn parse(
    status: u16,
    content_type: Option<&HeaderValue>,
    bytes: &[u8],
) -> Result<SubgraphResponse, FetchError> {
    let media = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let graphql_response = media == "application/graphql-response+json";
    if !graphql_response && media != "application/json" {
        return Err(if (200..300).contains(&status) {
            FetchError::MediaType(if media.is_empty() {
                "no content type".into()
            } else {
                media
            })
        } else {
            FetchError::Status {
                status,
                body: snippet(bytes),
            }
        });
    }
    // With application/json only a 2xx is a GraphQL answer; with
    // graphql-response+json a 4xx/5xx may carry one too.
    if !(200..300).contains(&status) && !graphql_response {
        return Err(FetchError::Status {
            status,
            body: snippet(bytes),
        });
    }
    let envelope =
        crate::value::read::envelope(bytes).map_err(|e| FetchError::Body(e.to_string()))?;
    if envelope.data.is_none() && envelope.errors.is_none() {
        return Err(if (200..300).contains(&status) {
            FetchError::Body("neither data nor errors".into())
        } else {
            FetchError::Status {
                status,
                body: snippet(bytes),
            }
        });
    }
    let errors = match envelope.errors {
        Some(Json::Array(errors)) => errors,
        Some(Json::Null) | None => Vec::new(),
        Some(other) => vec![other],
    };
    Ok(SubgraphResponse {
        data: envelope.data.unwrap_or_default(),
        errors,
        bytes: bytes.len(),
        cache_control: None,
    })
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(value: &'static str) -> HeaderValue {
        HeaderValue::from_static(value)
    }

    #[test]
    fn reads_both_graphql_media_types() {
        let body = br#"{"data":{"a":1}}"#;
        let expected = SubgraphResponse {
            data: Value::from(serde_json::json!({ "a": 1 })),
            errors: vec![],
            bytes: body.len(),
            cache_control: None,
        };
        assert_eq!(
            parse(200, Some(&ct("application/json; charset=utf-8")), body).unwrap(),
            expected
        );
        assert_eq!(
            parse(200, Some(&ct("application/graphql-response+json")), body).unwrap(),
            expected
        );
    }

    #[test]
    fn keeps_graphql_errors_of_non_2xx_graphql_responses_only() {
        let body = br#"{"errors":[{"message":"bad"}]}"#;
        let kept = parse(400, Some(&ct("application/graphql-response+json")), body).unwrap();
        assert_eq!(kept.errors.len(), 1);
        assert_eq!(kept.data, Value::Null);
        assert!(matches!(
            parse(500, Some(&ct("application/json")), body),
            Err(FetchError::Status { status: 500, .. })
        ));
    }

    #[test]
    fn refuses_what_is_not_graphql() {
        assert!(matches!(
            parse(200, Some(&ct("text/html")), b"<html>"),
            Err(FetchError::MediaType(_))
        ));
        assert!(matches!(
            parse(502, Some(&ct("text/html")), b"bad gateway"),
            Err(FetchError::Status { status: 502, .. })
        ));
        assert!(matches!(
            parse(200, Some(&ct("application/json")), b"[1]"),
            Err(FetchError::Body(_))
        ));
        assert!(matches!(
            parse(200, Some(&ct("application/json")), b"{}"),
            Err(FetchError::Body(_))
        ));
        assert!(matches!(
            parse(200, None, b"{}"),
            Err(FetchError::MediaType(_))
        ));
    }
}
