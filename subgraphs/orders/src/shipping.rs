//! Orders follow their shipment: logistics' `shipment.status_changed` moves a
//! paid order to PROCESSING (picked), SHIPPED (in transit) and DELIVERED, and
//! to DELIVERY_FAILED when the shipment fails from any of CREATED, PICKED or
//! IN_TRANSIT (see [`crate::failed_delivery`] for what an ADMIN does then).
//!
//! Consumers of one group may see a shipment's events out of order (two
//! replicas, a retry), so the handler moves the order forward to where the
//! shipment is, through the steps in between, and never back: a late PICKED
//! after IN_TRANSIT changes nothing. Each event names its delivery attempt;
//! news of an earlier attempt's shipment (one the order was reshipped after)
//! changes nothing either.

use std::sync::Arc;

use anyhow::Context as _;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use kit::events::{Event, Handler};
use uuid::Uuid;

use crate::{
    OrdersState,
    db::{Order, schema::orders},
    lifecycle::{self, OrderStatus, Why},
};

/// The topic logistics writes.
pub const SHIPMENT_STATUS_CHANGED: &str = "shipment.status_changed";
/// The producer of shipment events.
pub const LOGISTICS: &str = "logistics";

/// The order status a shipment status stands for, if any.
pub fn order_status_for(shipment_status: &str) -> Option<OrderStatus> {
    match shipment_status {
        "PICKED" => Some(OrderStatus::Processing),
        "IN_TRANSIT" => Some(OrderStatus::Shipped),
        "DELIVERED" => Some(OrderStatus::Delivered),
        "FAILED" => Some(OrderStatus::DeliveryFailed),
        _ => None,
    }
}

/// Where an order stands on the way to its customer (0 = paid), if it is on it.
fn progress(status: OrderStatus) -> Option<usize> {
    FORWARD.iter().position(|s| *s == status)
}

const FORWARD: [OrderStatus; 4] = [
    OrderStatus::Confirmed,
    OrderStatus::Processing,
    OrderStatus::Shipped,
    OrderStatus::Delivered,
];

/// The `orders.shipments` consumer.
pub struct ShipmentsHandler {
    state: Arc<OrdersState>,
}

impl ShipmentsHandler {
    pub fn new(state: Arc<OrdersState>) -> Self {
        Self { state }
    }
}

impl Handler for ShipmentsHandler {
    fn group(&self) -> &'static str {
        "orders.shipments"
    }

    fn wants(&self, event: &Event) -> bool {
        event.source == LOGISTICS && event.topic == SHIPMENT_STATUS_CHANGED
    }

    async fn handle(&self, conn: &mut AsyncPgConnection, event: &Event) -> anyhow::Result<()> {
        let p = &event.payload;
        let order_id: Uuid = p["orderId"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .context("shipment event without a valid orderId")?;
        let status = p["status"]
            .as_str()
            .context("shipment event without a status")?;
        let Some(target) = order_status_for(status) else {
            return Ok(());
        };
        let tracking = p["trackingId"].as_str().unwrap_or("?");
        let order: Option<Order> = orders::table
            .find(order_id)
            .select(Order::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some(mut order) = order else {
            tracing::warn!(%order_id, tracking, "shipment event for an unknown order");
            return Ok(());
        };
        // Events from before reships existed are about the first delivery.
        let attempt = p["deliveryAttempt"].as_i64().unwrap_or(1);
        let current = lifecycle::delivery_attempt(conn, order.id).await?;
        if attempt != i64::from(current) {
            tracing::warn!(
                %order_id,
                tracking,
                attempt,
                current,
                "news of a shipment that is not the order's current one; left as it is"
            );
            return Ok(());
        }
        let why = Why {
            reason: Some(format!(
                "shipment {tracking} is {}",
                status.to_lowercase().replace('_', " ")
            )),
            actor: None,
        };
        if target == OrderStatus::DeliveryFailed {
            if order.status.allows(target) {
                lifecycle::change(conn, &order, target, why, Vec::new()).await?;
            } else {
                tracing::warn!(
                    %order_id,
                    status = order.status.as_str(),
                    tracking,
                    "shipment failed for an order that is not on its way; left as it is"
                );
            }
            return Ok(());
        }
        let (Some(now), Some(goal)) = (progress(order.status), progress(target)) else {
            tracing::warn!(
                %order_id,
                status = order.status.as_str(),
                shipment = status,
                "shipment moved for an order that is not on its way; left as it is"
            );
            return Ok(());
        };
        for step in &FORWARD[(now + 1).min(goal + 1)..=goal] {
            order = lifecycle::change(conn, &order, *step, why.clone(), Vec::new()).await?;
        }
        Ok(())
    }

    fn committed(&self, _event: &Event) {
        self.state.relay.wake();
    }
}
