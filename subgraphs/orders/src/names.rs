//! Product names for the snapshot an order keeps of what was sold.
//!
//! Catalog owns names; orders asks for them the way the gateway does, by
//! resolving `Product` entity references (`_entities`) at catalog's GraphQL
//! endpoint. The lookup is best effort: a catalog that does not answer leaves
//! the snapshot empty (`productName: null`) and never fails a checkout, and
//! `OrderItem.product { name }` still resolves live through the gateway.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_graphql::dataloader::{DataLoader, Loader};

use crate::entities::EntityClient;

/// How long a lookup may take before the snapshot goes without names.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Most SKUs asked in one `_entities` request.
const BATCH: usize = 100;

/// Looks product names up at catalog. Lookups of confirmations running at
/// the same time go out together (async-graphql's loader: what arrives
/// within a millisecond shares one `_entities` request), so catalog answers
/// one request for a wave of checkouts instead of one per checkout.
#[derive(Clone)]
pub struct ProductNames(Arc<DataLoader<Names>>);

/// One `_entities` request for a batch of SKUs.
pub struct Names(EntityClient);

impl Loader<String> for Names {
    type Value = String;
    /// Why catalog did not answer (the lookup is best effort).
    type Error = Arc<str>;

    async fn load(&self, skus: &[String]) -> Result<HashMap<String, String>, Self::Error> {
        let representations = skus
            .iter()
            .map(|sku| serde_json::json!({ "__typename": "Product", "sku": sku }))
            .collect();
        let products = self
            .0
            .resolve("... on Product { sku name }", representations, None)
            .await
            .map_err(|err| Arc::from(format!("{err:#}")))?;
        Ok(products
            .iter()
            .filter_map(|p| {
                Some((
                    p["sku"].as_str()?.to_owned(),
                    p["name"].as_str()?.to_owned(),
                ))
            })
            .collect())
    }
}

impl ProductNames {
    /// Names from catalog's GraphQL endpoint at `url`.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = EntityClient::new("CATALOG_URL", url, LOOKUP_TIMEOUT)?;
        Ok(Self(Arc::new(
            DataLoader::new(Names(client), kit::trace::spawn).max_batch_size(BATCH),
        )))
    }

    /// The names of those `skus` catalog knows; empty when catalog does not answer.
    pub async fn lookup(&self, skus: &[String]) -> HashMap<String, String> {
        if skus.is_empty() {
            return HashMap::new();
        }
        match self.0.load_many(skus.iter().cloned()).await {
            Ok(names) => names,
            Err(err) => {
                tracing::warn!(error = %err, "product names unavailable");
                HashMap::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::{Json, Router, extract::State, routing::post};
    use serde_json::{Value, json};

    use super::*;

    /// A catalog that names every SKU `Name of <sku>` (none for `GONE`)
    /// and counts the requests it answers.
    async fn catalog(requests: Arc<AtomicUsize>) -> String {
        async fn entities(
            State(requests): State<Arc<AtomicUsize>>,
            Json(body): Json<Value>,
        ) -> Json<Value> {
            requests.fetch_add(1, Ordering::SeqCst);
            let products: Vec<Value> = body["variables"]["r"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| match r["sku"].as_str().unwrap() {
                    "GONE" => Value::Null,
                    sku => json!({ "sku": sku, "name": format!("Name of {sku}") }),
                })
                .collect();
            Json(json!({ "data": { "_entities": products } }))
        }
        kit::testing::serve(
            Router::new()
                .route("/", post(entities))
                .with_state(requests),
        )
        .await
    }

    #[tokio::test]
    async fn lookups_at_the_same_time_share_one_request() {
        let requests = Arc::new(AtomicUsize::new(0));
        let names = ProductNames::new(&catalog(requests.clone()).await).unwrap();
        let asks: Vec<Vec<String>> = (0..10)
            .map(|n| vec![format!("SKU{n}"), "MILK".to_owned(), "GONE".to_owned()])
            .collect();
        let answers = futures::future::join_all(asks.iter().map(|skus| names.lookup(skus))).await;
        for (n, answer) in answers.iter().enumerate() {
            let expected: HashMap<String, String> = [format!("SKU{n}"), "MILK".to_owned()]
                .into_iter()
                .map(|sku| (sku.clone(), format!("Name of {sku}")))
                .collect();
            assert_eq!(*answer, expected, "lookup {n}");
        }
        assert_eq!(
            requests.load(Ordering::SeqCst),
            1,
            "ten lookups, one request"
        );
        // A later lookup is a request of its own.
        assert_eq!(names.lookup(&["EGGS".to_owned()]).await.len(), 1);
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        // The batch delay ran on tokio's timer: async-graphql's fallback
        // (async-io's) starts a reactor thread of its own, named so.
        let threads: Vec<String> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect();
        assert!(
            !threads.iter().any(|t| t == "async-io"),
            "a second reactor runs: {threads:?}"
        );
    }

    #[tokio::test]
    async fn a_catalog_that_does_not_answer_leaves_names_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let names = ProductNames::new(&url).unwrap();
        assert!(names.lookup(&["MILK".to_owned()]).await.is_empty());
    }
}
