//! Status changes after checkout and their side effects on stock and money:
//! cancelling (release, or refund and return), expiring, and the admin's
//! `updateOrderStatus`. Each locks the order, checks the lifecycle before
//! touching anything outside, and writes through [`lifecycle::change`].

use diesel_async::{AsyncConnection, AsyncPgConnection};
use kit::{auth::Claims, events::NewEvent};
use uuid::Uuid;

use crate::{
    OrdersState,
    db::Order,
    error::OrdersError,
    lifecycle::{self, OrderStatus, Why},
    order, payments,
};

/// The `payment.refunded` topic.
pub const PAYMENT_REFUNDED: &str = "payment.refunded";

/// Cancels an order: a reserved one gives its stock back; a paid one
/// (CONFIRMED, PROCESSING) is refunded (once) and its stock returned; later
/// states are refused with `INVALID_STATE`.
pub async fn cancel(
    st: &OrdersState,
    claims: &Claims,
    order_id: Uuid,
    reason: Option<String>,
) -> Result<Order, OrdersError> {
    let reason = check_reason(reason)?;
    let mut conn = st.pool.get().await?;
    let order = conn
        .transaction(async |conn| {
            let order = order::lock_visible(conn, order_id, claims).await?;
            cancel_locked(st, conn, &order, reason, claims.sub).await
        })
        .await?;
    st.relay.wake();
    Ok(order)
}

async fn cancel_locked(
    st: &OrdersState,
    conn: &mut AsyncPgConnection,
    order: &Order,
    reason: Option<String>,
    actor: Uuid,
) -> Result<Order, OrdersError> {
    refuse_unless_allowed(order, OrderStatus::Cancelled)?;
    let mut events = Vec::new();
    match order.status {
        OrderStatus::Reserved => st.stock.release(order.id).await?,
        _ => {
            if let Some(refund) = payments::refund(
                conn,
                st.payments.as_ref(),
                order.id,
                reason.as_deref(),
                None,
            )
            .await?
            {
                events.push(NewEvent {
                    topic: PAYMENT_REFUNDED,
                    key: order.id.to_string(),
                    payload: refund,
                });
            }
            st.stock.return_stock(order.id).await?;
        }
    }
    let why = Why {
        reason,
        actor: Some(actor),
    };
    lifecycle::change(conn, order, OrderStatus::Cancelled, why, events).await
}

/// Turns a reserved order whose hold lapsed EXPIRED, giving back whatever
/// inventory still holds for it. The caller holds the order's lock.
pub async fn expire(
    st: &OrdersState,
    conn: &mut AsyncPgConnection,
    order: &Order,
) -> Result<Order, OrdersError> {
    refuse_unless_allowed(order, OrderStatus::Expired)?;
    st.stock.release(order.id).await?;
    let why = Why {
        reason: Some("the reservation lapsed".into()),
        actor: None,
    };
    lifecycle::change(conn, order, OrderStatus::Expired, why, Vec::new()).await
}

/// ADMIN: moves an order along the same lifecycle, with the same side
/// effects. CONFIRMED is only reached by paying (`confirmOrder`).
pub async fn update_status(
    st: &OrdersState,
    admin: &Claims,
    order_id: Uuid,
    to: OrderStatus,
) -> Result<Order, OrdersError> {
    let mut conn = st.pool.get().await?;
    let order = conn
        .transaction(async |conn| {
            let order = order::lock_visible(conn, order_id, admin).await?;
            let why = Why {
                reason: Some("set by an admin".into()),
                actor: Some(admin.sub),
            };
            match to {
                OrderStatus::Cancelled => {
                    cancel_locked(st, conn, &order, why.reason, admin.sub).await
                }
                OrderStatus::DeliveryFailed => Err(OrdersError::InvalidState(format!(
                    "order {}: a delivery fails when its shipment does \
                     (updateShipmentStatus FAILED), not by an admin",
                    order.number
                ))),
                OrderStatus::Confirmed | OrderStatus::Refunded
                    if order.status == OrderStatus::DeliveryFailed =>
                {
                    Err(OrdersError::InvalidState(format!(
                        "order {}'s delivery failed: reship it (reshipOrder) or refund it \
                         (refundOrder)",
                        order.number
                    )))
                }
                OrderStatus::Confirmed if order.status.allows(to) => {
                    Err(OrdersError::InvalidState(format!(
                        "order {} is confirmed by paying for it (confirmOrder), not by an admin",
                        order.number
                    )))
                }
                OrderStatus::Expired | OrderStatus::PaymentFailed => {
                    refuse_unless_allowed(&order, to)?;
                    st.stock.release(order.id).await?;
                    lifecycle::change(conn, &order, to, why, Vec::new()).await
                }
                _ => lifecycle::change(conn, &order, to, why, Vec::new()).await,
            }
        })
        .await?;
    st.relay.wake();
    Ok(order)
}

/// Checks the lifecycle before any side effect outside the database.
fn refuse_unless_allowed(order: &Order, to: OrderStatus) -> Result<(), OrdersError> {
    order
        .status
        .transition(to)
        .map(|_| ())
        .map_err(|refused| OrdersError::InvalidState(refused.message(&order.number)))
}

pub(crate) fn check_reason(reason: Option<String>) -> Result<Option<String>, OrdersError> {
    match reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
    {
        Some(r) if r.chars().count() > 500 => Err(OrdersError::invalid(
            "reason",
            "a reason is at most 500 characters",
        )),
        other => Ok(other),
    }
}
