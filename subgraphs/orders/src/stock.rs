//! Orders' side of inventory's stock API (`schema/proto/inventory.proto`):
//! reserve, re-price, commit, release and return stock, always keyed by the
//! order id so a retry never moves stock twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use contracts::inventory::{self as pb, inventory_client::InventoryClient};
use kit::rpc::ServiceToken;
use prost::Message;
use rust_decimal::Decimal;
use tonic::{Code, Status, transport::Channel};
use uuid::Uuid;

use crate::{
    db::Line,
    error::{OrdersError, Shortfall},
};

/// How long one call to inventory may take, connecting included.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// A priced line, as inventory quotes or commits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedLine {
    pub sku: String,
    pub quantity: i32,
    pub unit_price: Decimal,
    pub line_total: Decimal,
}

/// Priced lines and their sum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priced {
    pub lines: Vec<PricedLine>,
    pub subtotal: Decimal,
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

    /// Holds `lines` for `order_id`; answers when the hold ends and, in the
    /// same call, what the lines would cost if committed now (as [`Self::price`]
    /// with the order's id; `None` when inventory cannot price them).
    pub async fn reserve(
        &self,
        order_id: Uuid,
        lines: &[Line],
        ttl: Option<Duration>,
    ) -> Result<(DateTime<Utc>, Option<Priced>), OrdersError> {
        let request = self.token.request(pb::ReserveStockRequest {
            order_id: order_id.to_string(),
            lines: wire_lines(lines),
            ttl_seconds: ttl.map_or(0, |t| t.as_secs().clamp(1, u64::from(u32::MAX)) as u32),
            with_quote: true,
        });
        let reservation = self
            .client
            .clone()
            .reserve_stock(request)
            .await
            .map_err(|s| stock_error("ReserveStock", s))?
            .into_inner();
        let until = DateTime::parse_from_rfc3339(&reservation.expires_at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| OrdersError::Internal(anyhow::anyhow!("ReserveStock expires_at: {e}")))?;
        let quote = match reservation.quote {
            Some(quote) => Some(priced(quote.lines, &quote.subtotal)?),
            None => None,
        };
        Ok((until, quote))
    }

    /// Sets the active reservation of `order_id` to exactly `lines` (it keeps its expiry).
    pub async fn adjust(&self, order_id: Uuid, lines: &[Line]) -> Result<(), OrdersError> {
        let request = self.token.request(pb::ReserveStockRequest {
            order_id: order_id.to_string(),
            lines: wire_lines(lines),
            ttl_seconds: 0,
            with_quote: false,
        });
        self.client
            .clone()
            .adjust_reservation(request)
            .await
            .map_err(|s| stock_error("AdjustReservation", s))?;
        Ok(())
    }

    /// Prices `lines` as a commit now would; units held by `own_order` count as its own.
    pub async fn price(
        &self,
        lines: &[Line],
        own_order: Option<Uuid>,
    ) -> Result<Priced, OrdersError> {
        let request = self.token.request(pb::GetPriceRequest {
            lines: wire_lines(lines),
            order_id: own_order.map(|id| id.to_string()).unwrap_or_default(),
        });
        let quote = self
            .client
            .clone()
            .get_price(request)
            .await
            .map_err(|s| stock_error("GetPrice", s))?
            .into_inner();
        priced(quote.lines, &quote.subtotal)
    }

    /// Sells the reservation of `order_id`, first expiry first out; answers the prices.
    pub async fn commit(&self, order_id: Uuid) -> Result<Priced, OrdersError> {
        let request = self.token.request(pb::OrderRef {
            order_id: order_id.to_string(),
        });
        let commitment = self
            .client
            .clone()
            .commit_stock(request)
            .await
            .map_err(|s| stock_error("CommitStock", s))?
            .into_inner();
        priced(commitment.lines, &commitment.subtotal)
    }

    /// Gives back whatever inventory holds for `order_id`: an active
    /// reservation is released, committed stock is returned, and nothing held
    /// (already released, expired, returned, never reserved) is fine.
    pub async fn release(&self, order_id: Uuid) -> Result<(), OrdersError> {
        let request = self.token.request(pb::OrderRef {
            order_id: order_id.to_string(),
        });
        match self.client.clone().release_stock(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::NotFound => Ok(()),
            // Only a committed reservation refuses a release: its units are sold.
            Err(status) if status.code() == Code::FailedPrecondition => {
                self.return_stock(order_id).await
            }
            Err(status) => Err(stock_error("ReleaseStock", status)),
        }
    }

    /// Puts a committed order's units back into their batches (idempotent).
    pub async fn return_stock(&self, order_id: Uuid) -> Result<(), OrdersError> {
        let request = self.token.request(pb::OrderRef {
            order_id: order_id.to_string(),
        });
        self.client
            .clone()
            .return_stock(request)
            .await
            .map_err(|s| stock_error("ReturnStock", s))?;
        Ok(())
    }
}

fn wire_lines(lines: &[Line]) -> Vec<pb::Line> {
    lines
        .iter()
        .map(|l| pb::Line {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect()
}

fn money(field: &str, raw: &str) -> Result<Decimal, OrdersError> {
    raw.parse()
        .map_err(|_| OrdersError::Internal(anyhow::anyhow!("inventory sent {field}={raw:?}")))
}

fn priced(lines: Vec<pb::PricedLine>, subtotal: &str) -> Result<Priced, OrdersError> {
    Ok(Priced {
        lines: lines
            .into_iter()
            .map(|l| {
                Ok(PricedLine {
                    unit_price: money("unit_price", &l.unit_price)?,
                    line_total: money("line_total", &l.line_total)?,
                    sku: l.sku,
                    quantity: l.quantity,
                })
            })
            .collect::<Result<_, OrdersError>>()?,
        subtotal: money("subtotal", subtotal)?,
    })
}

/// Inventory's answer in orders' terms. Refusals about the input come back as
/// the caller's input errors; an unreachable or overloaded inventory is
/// `Unavailable` (nothing changed, retry).
fn stock_error(call: &str, status: Status) -> OrdersError {
    match status.code() {
        Code::InvalidArgument => OrdersError::invalid("items", status.message()),
        Code::NotFound => OrdersError::invalid("items", status.message()),
        Code::FailedPrecondition => match pb::Shortfalls::decode(status.details()) {
            Ok(details) if !details.items.is_empty() => OrdersError::Shortfall(
                details
                    .items
                    .into_iter()
                    .map(|s| Shortfall {
                        sku: s.sku,
                        requested: s.requested,
                        available: s.available,
                    })
                    .collect(),
            ),
            // Not for sale, or the reservation is no longer active.
            _ if status.message().contains("not for sale") => {
                OrdersError::invalid("items", status.message())
            }
            _ => OrdersError::InvalidState(status.message().to_owned()),
        },
        // A lost race inside inventory (Aborted) is worth a retry too.
        _ if kit::rpc::did_not_answer(&status) || status.code() == Code::Aborted => {
            // The status names addresses and transport errors: the log's, not the client's.
            tracing::warn!(call, error = %status, "inventory unavailable");
            OrdersError::Unavailable(kit::error::DEPENDENCY_DOWN.into())
        }
        _ => OrdersError::Internal(anyhow::anyhow!("inventory {call}: {status}")),
    }
}
