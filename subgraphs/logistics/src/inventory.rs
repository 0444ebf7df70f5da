//! Logistics' side of inventory's stock API (`schema/proto/inventory.proto`):
//! restocking, keyed by the restock's transaction id so a retry never adds
//! stock twice.

use std::time::Duration;

use contracts::inventory::{self as pb, inventory_client::InventoryClient};
use kit::rpc::ServiceToken;
use tonic::{Code, Status, transport::Channel};
use uuid::Uuid;

use crate::delivery::Delivery;

/// How long one call to inventory may take, connecting included.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Why inventory did not take a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Inventory refused the delivery itself (an unknown SKU, a bad item):
    /// nothing was written and asking again cannot help.
    Rejected(String),
    /// Inventory did not answer, or could not take it now: ask again later.
    Unavailable(String),
}

/// A client of inventory's stock API holding the service token.
#[derive(Clone)]
pub struct StockClient {
    client: InventoryClient<Channel>,
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

    /// Hands `delivery` to inventory as transaction `transaction_id` (one
    /// batch per line); answers the units received. A repeat of a delivery
    /// inventory already took answers its first receipt and adds nothing.
    pub async fn restock(&self, transaction_id: Uuid, delivery: &Delivery) -> Result<i32, Refusal> {
        let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
        let request = self.token.request(pb::RestockItemsRequest {
            transaction_id: transaction_id.to_string(),
            truck_id: delivery.truck_id.clone(),
            supplier_id: delivery.supplier_id.clone(),
            items: delivery
                .lines
                .iter()
                .map(|l| pb::RestockItem {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    unit_cost: l.unit_cost.to_string(),
                    mfd_date: date(l.mfd_date),
                    expiry_date: date(l.expiry_date),
                })
                .collect(),
        });
        match self.client.clone().restock_items(request).await {
            Ok(receipt) => Ok(receipt.into_inner().units),
            Err(status) => Err(refusal(transaction_id, status)),
        }
    }
}

/// Inventory's answer in restock terms: refusals of the input are final,
/// everything else (unreachable, overloaded, a bug, a misconfigured token)
/// may pass and is retried.
fn refusal(transaction_id: Uuid, status: Status) -> Refusal {
    match status.code() {
        Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition => {
            Refusal::Rejected(status.message().to_owned())
        }
        code => {
            // The details (addresses, transport errors) go to the log only.
            tracing::warn!(%transaction_id, error = %status, "inventory did not take a restock");
            Refusal::Unavailable(format!("inventory did not answer ({code:?})"))
        }
    }
}
