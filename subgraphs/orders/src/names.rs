//! Product names for the snapshot an order keeps of what was sold.
//!
//! Catalog owns names; orders asks for them the way the gateway does, by
//! resolving `Product` entity references (`_entities`) at catalog's GraphQL
//! endpoint. The lookup is best effort: a catalog that does not answer leaves
//! the snapshot empty (`productName: null`) and never fails a checkout, and
//! `OrderItem.product { name }` still resolves live through the gateway.

use std::{collections::HashMap, time::Duration};

use crate::entities::EntityClient;

/// How long a lookup may take before the snapshot goes without names.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Looks product names up at catalog.
#[derive(Clone)]
pub struct ProductNames(EntityClient);

impl ProductNames {
    /// Names from catalog's GraphQL endpoint at `url`.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(Self(EntityClient::new("CATALOG_URL", url, LOOKUP_TIMEOUT)?))
    }

    /// The names of those `skus` catalog knows; empty when catalog does not answer.
    pub async fn lookup(&self, skus: &[String]) -> HashMap<String, String> {
        if skus.is_empty() {
            return HashMap::new();
        }
        let representations = skus
            .iter()
            .map(|sku| serde_json::json!({ "__typename": "Product", "sku": sku }))
            .collect();
        match self
            .0
            .resolve("... on Product { sku name }", representations, None)
            .await
        {
            Ok(products) => products
                .iter()
                .filter_map(|p| {
                    Some((
                        p["sku"].as_str()?.to_owned(),
                        p["name"].as_str()?.to_owned(),
                    ))
                })
                .collect(),
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "product names unavailable");
                HashMap::new()
            }
        }
    }
}
