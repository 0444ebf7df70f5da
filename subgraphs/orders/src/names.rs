//! Product names for the snapshot an order keeps of what was sold.
//!
//! Catalog owns names; orders asks for them the way the gateway does, by
//! resolving `Product` entity references (`_entities`) at catalog's GraphQL
//! endpoint. The lookup is best effort: a catalog that does not answer leaves
//! the snapshot empty (`productName: null`) and never fails a checkout, and
//! `OrderItem.product { name }` still resolves live through the gateway.

use std::{collections::HashMap, time::Duration};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// How long a lookup may take before the snapshot goes without names.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

const QUERY: &str =
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { sku name } } }";

/// Looks product names up at catalog.
#[derive(Clone)]
pub struct ProductNames {
    client: Client<HttpConnector, Full<Bytes>>,
    url: hyper::Uri,
}

impl ProductNames {
    /// Names from catalog's GraphQL endpoint at `url`.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: url
                .parse()
                .with_context(|| format!("CATALOG_URL={url:?} is not a URL"))?,
        })
    }

    /// The names of those `skus` catalog knows; empty when catalog does not answer.
    pub async fn lookup(&self, skus: &[String]) -> HashMap<String, String> {
        match tokio::time::timeout(LOOKUP_TIMEOUT, self.fetch(skus)).await {
            Ok(Ok(names)) => names,
            Ok(Err(err)) => {
                tracing::warn!(error = format!("{err:#}"), "product names unavailable");
                HashMap::new()
            }
            Err(_) => {
                tracing::warn!("product names unavailable: catalog timed out");
                HashMap::new()
            }
        }
    }

    async fn fetch(&self, skus: &[String]) -> anyhow::Result<HashMap<String, String>> {
        let representations: Vec<_> = skus
            .iter()
            .map(|sku| serde_json::json!({ "__typename": "Product", "sku": sku }))
            .collect();
        let body = serde_json::json!({ "query": QUERY, "variables": { "r": representations } });
        let request = hyper::Request::post(self.url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&body)?)))?;
        let response = self.client.request(request).await?;
        anyhow::ensure!(
            response.status().is_success(),
            "catalog answered {}",
            response.status()
        );
        let bytes = response.into_body().collect().await?.to_bytes();
        let answer: serde_json::Value = serde_json::from_slice(&bytes)?;
        Ok(answer["data"]["_entities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["sku"].as_str()?.to_owned(),
                    p["name"].as_str()?.to_owned(),
                ))
            })
            .collect())
    }
}
