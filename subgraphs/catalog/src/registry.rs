//! How the catalog tells inventory about products.
//!
//! Inventory keeps one stock item per SKU and must know a product before it
//! can be restocked or sold. The catalog calls [`StockRegistry`] inside the
//! same database transaction as its own change, so a product inventory did
//! not accept is never committed. [`GrpcStockRegistry`] is the production
//! implementation over inventory's internal RPC (`schema/proto/inventory.proto`).

use std::time::Duration;

use anyhow::Context as _;
use contracts::inventory::{ItemRef, UpsertItemRequest, inventory_client::InventoryClient};
use futures::{FutureExt, future::BoxFuture};
use kit::rpc::ServiceToken;
use tonic::transport::Channel;

/// How long one call to inventory may take, connecting included.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Inventory's view of the catalog: which SKUs exist and may be sold.
pub trait StockRegistry: Send + Sync + 'static {
    /// Makes `sku` stockable in inventory, or changes whether it may be sold.
    fn upsert(&self, sku: &str, active: bool) -> BoxFuture<'_, anyhow::Result<()>>;
    /// Forgets `sku` if it has no stock history (Ok(true)); deactivates it otherwise (Ok(false)).
    fn retire(&self, sku: &str) -> BoxFuture<'_, anyhow::Result<bool>>;
}

/// [`StockRegistry`] over inventory's gRPC API, authenticated with the internal RPC token.
#[derive(Clone)]
pub struct GrpcStockRegistry {
    client: InventoryClient<Channel>,
    token: ServiceToken,
}

impl GrpcStockRegistry {
    /// A client of `url` (e.g. `http://127.0.0.1:50051`) that connects on first use.
    pub fn connect_lazy(url: &str, rpc_token: &str) -> anyhow::Result<Self> {
        let channel = kit::rpc::channel(url, RPC_TIMEOUT).context("INVENTORY_RPC_URL")?;
        Ok(Self {
            client: InventoryClient::new(channel),
            token: ServiceToken::new(rpc_token)?,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        self.token.request(message)
    }
}

impl StockRegistry for GrpcStockRegistry {
    fn upsert(&self, sku: &str, active: bool) -> BoxFuture<'_, anyhow::Result<()>> {
        let request = self.request(UpsertItemRequest {
            sku: sku.to_owned(),
            active,
        });
        // The client is a cheap handle on the shared channel; calls need `&mut`.
        let mut client = self.client.clone();
        let sku = sku.to_owned();
        async move {
            client
                .upsert_item(request)
                .await
                .with_context(|| format!("inventory UpsertItem({sku}, active={active})"))?;
            Ok(())
        }
        .boxed()
    }

    fn retire(&self, sku: &str) -> BoxFuture<'_, anyhow::Result<bool>> {
        let request = self.request(ItemRef {
            sku: sku.to_owned(),
        });
        let mut client = self.client.clone();
        let sku = sku.to_owned();
        async move {
            let response = client
                .retire_item(request)
                .await
                .with_context(|| format!("inventory RetireItem({sku})"))?;
            Ok(response.into_inner().deleted)
        }
        .boxed()
    }
}
