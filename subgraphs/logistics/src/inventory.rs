//! Logistics' side of inventory's stock API (`schema/proto/inventory.proto`):
//! restocking, keyed by the restock's transaction id so a retry never adds
//! stock twice.

use std::time::Duration;

use contracts::inventory::inventory_client::InventoryClient;
use kit::rpc::ServiceToken;
use tonic::transport::Channel;

/// How long one call to inventory may take, connecting included.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of inventory's stock API holding the service token.
#[derive(Clone)]
pub struct StockClient {
    #[allow(dead_code)]
    client: InventoryClient<Channel>,
    #[allow(dead_code)]
    token: ServiceToken,
}

impl StockClient {
    /// A client of `url` that connects on first use.
    pub fn connect_lazy(url: &str, rpc_token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: InventoryClient::new(kit::rpc::channel(url, RPC_TIMEOUT)?),
            token: ServiceToken::new(rpc_token)?,
        })
    }
}
