//! The `logistics.shipments` consumer: a paid order gets its shipment (one
//! per delivery attempt: a reshipped order is CONFIRMED again with the next
//! attempt), a cancelled one loses it (unless its goods already left).

use std::sync::Arc;

use anyhow::Context as _;
use diesel_async::AsyncPgConnection;
use kit::events::{Event, Handler};
use uuid::Uuid;

use crate::{LogisticsState, shipments};

/// The producer of order events.
pub const ORDERS: &str = "orders";
/// The topic orders writes on every status change.
pub const ORDER_STATUS_CHANGED: &str = "order.status_changed";

pub struct ShipmentsHandler {
    state: Arc<LogisticsState>,
}

impl ShipmentsHandler {
    pub fn new(state: Arc<LogisticsState>) -> Self {
        Self { state }
    }
}

fn uuid_at(payload: &serde_json::Value, field: &str) -> anyhow::Result<Uuid> {
    payload[field]
        .as_str()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("order.status_changed without a valid {field}"))
}

impl Handler for ShipmentsHandler {
    fn group(&self) -> &'static str {
        "logistics.shipments"
    }

    fn wants(&self, event: &Event) -> bool {
        event.source == ORDERS
            && event.topic == ORDER_STATUS_CHANGED
            && matches!(
                event.payload["status"].as_str(),
                Some("CONFIRMED" | "CANCELLED")
            )
    }

    async fn handle(&self, conn: &mut AsyncPgConnection, event: &Event) -> anyhow::Result<()> {
        let order_id = uuid_at(&event.payload, "orderId")?;
        match event.payload["status"].as_str() {
            Some("CONFIRMED") => {
                let customer_id = uuid_at(&event.payload, "customerId")?;
                // Events from before reships existed are about the first delivery.
                let attempt = match event.payload.get("deliveryAttempt") {
                    None | Some(serde_json::Value::Null) => 1,
                    Some(n) => n
                        .as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .filter(|n| *n >= 1)
                        .context("order.status_changed with an invalid deliveryAttempt")?,
                };
                let (shipment, made) = shipments::create_for_order(
                    conn,
                    order_id,
                    attempt,
                    customer_id,
                    &self.state.carrier,
                )
                .await?;
                if made {
                    tracing::info!(%order_id, attempt, tracking = %shipment.tracking_id, "shipment created");
                }
            }
            Some("CANCELLED") => {
                shipments::cancel_for_order(conn, order_id).await?;
            }
            _ => {}
        }
        Ok(())
    }

    fn committed(&self, _event: &Event) {
        self.state.relay.wake();
    }
}
