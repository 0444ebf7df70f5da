//! `/ready`: the gateway is ready when every subgraph is. Each subgraph's
//! health URL (its own `/ready`, next to its GraphQL path, unless configured)
//! is asked; a subgraph without one (404 or 405 there) is asked
//! `{ __typename }` instead; one over TLS or HTTP/2 on its own connections
//! ([`crate::subgraph::connector`]). Answers are kept for a short while, so
//! a load balancer polling every replica often costs the subgraphs little,
//! and every probe has a deadline. The public answer names the subgraphs that
//! are not ready and why in a word; their addresses and errors are logged.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::Uri;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use crate::subgraph::{Subgraphs, connector::Outgoing};

/// How long a probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a readiness answer is reused unless configured (`READY_CACHE`).
pub const DEFAULT_CACHE: Duration = Duration::from_secs(2);

/// The subgraphs that are not ready, by name, with why in a few words.
pub type NotReady = Vec<(String, String)>;

/// Probes every subgraph's health URL, and keeps the answer a while.
pub struct Readiness {
    /// Each subgraph's health URL, and whether it was configured (then a
    /// 404 there means not ready, not "has no such page").
    health: HashMap<String, (Uri, bool)>,
    http: Client<HttpConnector, Empty<Bytes>>,
    keep: Duration,
    last: tokio::sync::Mutex<Option<(Instant, NotReady)>>,
}

impl Readiness {
    /// Probes for subgraphs reached at `graphql` (by name), at `configured`
    /// health URLs where given, else at `/ready` next to their GraphQL path;
    /// answers kept for `keep`.
    pub fn new(
        graphql: &HashMap<String, Uri>,
        configured: &HashMap<String, String>,
        keep: Duration,
    ) -> anyhow::Result<Self> {
        if let Some(unknown) = configured.keys().find(|n| !graphql.contains_key(*n)) {
            anyhow::bail!(
                "SUBGRAPH_READY_URLS names {unknown:?}, which the supergraph does not have"
            );
        }
        let mut health = HashMap::new();
        for (name, url) in graphql {
            let probe = match configured.get(name) {
                Some(raw) => {
                    let uri: Uri = raw.parse().map_err(|e| {
                        anyhow::anyhow!("subgraph {name} has an invalid ready URL {raw:?}: {e}")
                    })?;
                    anyhow::ensure!(
                        uri.scheme_str() == Some("http") && uri.authority().is_some(),
                        "subgraph {name}'s ready URL {raw:?} is not http://host[:port]/path"
                    );
                    (uri, true)
                }
                None => (beside(url, "/ready")?, false),
            };
            health.insert(name.clone(), probe);
        }
        Ok(Self {
            health,
            http: Client::builder(TokioExecutor::new())
                // A probe every few seconds: no connection is worth keeping
                // (nor tied to the runtime of the thread that opened it).
                .pool_max_idle_per_host(0)
                .build_http(),
            keep,
            last: tokio::sync::Mutex::new(None),
        })
    }

    /// The subgraphs not ready now (sorted by name), probed at most once per
    /// `keep`: callers meanwhile get the last answer, and callers during a
    /// probe wait for it rather than probe again.
    pub async fn not_ready(&self, subgraphs: &Subgraphs) -> NotReady {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < self.keep
        {
            return answer.clone();
        }
        let probes = self
            .health
            .iter()
            .map(|(name, (uri, configured))| async move {
                let why = self.probe(name, uri, *configured, subgraphs).await?;
                Some((name.clone(), why))
            });
        let mut answer: NotReady = futures::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect();
        answer.sort();
        *last = Some((Instant::now(), answer.clone()));
        answer
    }

    /// `None` when subgraph `name` is ready; else why, in words fit for the
    /// public (the details are logged).
    async fn probe(
        &self,
        name: &str,
        uri: &Uri,
        configured: bool,
        subgraphs: &Subgraphs,
    ) -> Option<String> {
        // A subgraph over TLS or HTTP/2 is asked on its own connections.
        let connector = subgraphs
            .endpoint(name)
            .and_then(|endpoint| endpoint.connector())
            .filter(|_| !configured);
        let asked = async {
            match connector {
                Some(connector) => {
                    let get = Outgoing {
                        method: hyper::Method::GET,
                        path: uri.path_and_query().map_or("/", |p| p.as_str()),
                        headers: &hyper::HeaderMap::new(),
                        body: Bytes::new(),
                    };
                    let answer = connector.exchange(get, true).await;
                    answer.map(|a| a.status).map_err(|e| e.to_string())
                }
                None => self
                    .http
                    .get(uri.clone())
                    .await
                    .map(|response| response.status().as_u16())
                    .map_err(|e| e.to_string()),
            }
        };
        let status = match tokio::time::timeout(PROBE_TIMEOUT, asked).await {
            Ok(Ok(status)) => {
                hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY)
            }
            Ok(Err(err)) => {
                tracing::warn!(subgraph = name, url = %uri, error = %err, "readiness probe failed");
                return Some("unreachable".into());
            }
            Err(_) => {
                tracing::warn!(subgraph = name, url = %uri, "readiness probe timed out");
                return Some(format!("no answer within {PROBE_TIMEOUT:?}"));
            }
        };
        if status.is_success() {
            return None;
        }
        let no_such_page = status == hyper::StatusCode::NOT_FOUND
            || status == hyper::StatusCode::METHOD_NOT_ALLOWED;
        if no_such_page && !configured {
            // A subgraph with no readiness page: ready when it answers GraphQL.
            return subgraphs.probe(name, PROBE_TIMEOUT).await.err();
        }
        tracing::warn!(subgraph = name, url = %uri, %status, "a subgraph is not ready");
        Some(format!("not ready (HTTP {})", status.as_u16()))
    }
}

/// The URL at `path` on the same host as `url`.
fn beside(url: &Uri, path: &str) -> anyhow::Result<Uri> {
    let mut parts = url.clone().into_parts();
    parts.path_and_query = Some(path.parse()?);
    Ok(Uri::from_parts(parts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_url_sits_beside_the_graphql_path_unless_configured() {
        let graphql: HashMap<String, Uri> = [
            (
                "users".to_owned(),
                "http://users:4001/graphql".parse().unwrap(),
            ),
            (
                "catalog".to_owned(),
                "http://10.0.0.7/api/graphql?x=1".parse().unwrap(),
            ),
        ]
        .into();
        let configured = [(
            "catalog".to_owned(),
            "http://10.0.0.7:9000/healthz".to_owned(),
        )]
        .into();
        let readiness = Readiness::new(&graphql, &configured, DEFAULT_CACHE).unwrap();
        assert_eq!(
            readiness.health["users"],
            ("http://users:4001/ready".parse().unwrap(), false)
        );
        assert_eq!(
            readiness.health["catalog"],
            ("http://10.0.0.7:9000/healthz".parse().unwrap(), true)
        );
        for (name, url, problem) in [
            (
                "nope",
                "http://x/ready",
                "SUBGRAPH_READY_URLS names \"nope\"",
            ),
            ("users", "ftp://x/ready", "is not http://"),
            ("users", "/ready", "is not http://"),
            ("users", "http://x y/", "invalid ready URL"),
        ] {
            let configured = [(name.to_owned(), url.to_owned())].into();
            let err = Readiness::new(&graphql, &configured, DEFAULT_CACHE)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(problem), "{name}={url}: {err}");
        }
    }
}
