//! Entity lookups at another subgraph: what orders knows of products and
//! customers it asks their owners for, the way the gateway does, by
//! resolving entity references (`_entities`) at the owner's GraphQL endpoint.
//! Data crosses subgraphs only this way (ARCHITECTURE §6): orders never
//! reads another subgraph's tables.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};

/// A pooled client of one subgraph's `_entities`.
#[derive(Clone)]
pub struct EntityClient {
    client: Client<HttpConnector, Full<Bytes>>,
    url: hyper::Uri,
    timeout: Duration,
}

/// A connector that sends each request as soon as it is written.
fn connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http
}

impl EntityClient {
    /// A client of the GraphQL endpoint at `url` (`setting` names it in errors).
    pub fn new(setting: &str, url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector()),
            url: url
                .parse()
                .with_context(|| format!("{setting}={url:?} is not a URL"))?,
            timeout,
        })
    }

    /// Resolves `representations` with `selection` (an inline fragment such
    /// as `... on Product { name }`), as the caller holding `bearer` when
    /// given; answers `_entities` in representation order.
    pub async fn resolve(
        &self,
        selection: &str,
        representations: Vec<Value>,
        bearer: Option<&str>,
    ) -> anyhow::Result<Vec<Value>> {
        tokio::time::timeout(self.timeout, self.fetch(selection, representations, bearer))
            .await
            .map_err(|_| anyhow::anyhow!("timed out after {:?}", self.timeout))?
    }

    async fn fetch(
        &self,
        selection: &str,
        representations: Vec<Value>,
        bearer: Option<&str>,
    ) -> anyhow::Result<Vec<Value>> {
        let query =
            format!("query($r: [_Any!]!) {{ _entities(representations: $r) {{ {selection} }} }}");
        let body = json!({ "query": query, "variables": { "r": representations } });
        let mut request = hyper::Request::post(self.url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(token) = bearer {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::from(serde_json::to_vec(&body)?)))?;
        let response = self.client.request(request).await?;
        anyhow::ensure!(
            response.status().is_success(),
            "answered {}",
            response.status()
        );
        let bytes = response.into_body().collect().await?.to_bytes();
        let mut answer: Value = serde_json::from_slice(&bytes)?;
        // Entities it could not resolve come back null (with errors beside them).
        match answer["data"]["_entities"].take() {
            Value::Array(entities) => Ok(entities),
            _ => match answer["errors"][0]["message"].as_str() {
                Some(error) => anyhow::bail!("answered an error: {error}"),
                None => anyhow::bail!("answered no _entities"),
            },
        }
    }
}
