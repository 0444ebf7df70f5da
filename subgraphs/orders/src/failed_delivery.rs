//! What an ADMIN does about an order whose delivery failed (DELIVERY_FAILED,
//! reached from logistics' FAILED shipment in [`crate::shipping`]):
//!
//! - [`reship`]: back to CONFIRMED with the next delivery attempt; logistics
//!   makes exactly one new shipment for that attempt from the event, and the
//!   order follows it as before.
//! - [`refund`]: REFUNDED, the payment refunded once (the cancellation's
//!   refund), the goods either returned to inventory (its `ReturnStock`, as a
//!   paid cancellation does) or written off as lost (recorded on the refund,
//!   never restocked).
//!
//! Both lock the order, refuse anything but DELIVERY_FAILED with
//! `INVALID_STATE` before touching the outside world, and write through
//! [`lifecycle::change`] in one transaction.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use kit::{auth::Claims, events::NewEvent};
use uuid::Uuid;

use crate::{
    OrdersState,
    db::Order,
    error::OrdersError,
    lifecycle::{self, OrderStatus, Why},
    order, payments,
    transitions::{self, PAYMENT_REFUNDED},
};

/// What became of the goods of a delivery that failed.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "FailedDeliveryGoods")]
pub enum Goods {
    /// Back in the warehouse: returned to inventory's stock.
    Returned,
    /// Gone: written off, never restocked.
    Lost,
}

impl Goods {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Returned => "RETURNED",
            Self::Lost => "LOST",
        }
    }
}

/// ADMIN: sends a DELIVERY_FAILED order again. The order goes back to
/// CONFIRMED with its next delivery attempt; the event makes the new shipment.
pub async fn reship(
    st: &OrdersState,
    admin: &Claims,
    order_id: Uuid,
) -> Result<Order, OrdersError> {
    let mut conn = st.pool.get().await?;
    let order = conn
        .transaction(async |conn| {
            let order = failed_locked(conn, order_id, admin, "reshipped").await?;
            let attempt = lifecycle::delivery_attempt(conn, order.id).await? + 1;
            let why = Why {
                reason: Some(format!(
                    "reshipped by an admin (delivery attempt {attempt})"
                )),
                actor: Some(admin.sub),
            };
            lifecycle::change(conn, &order, OrderStatus::Confirmed, why, Vec::new()).await
        })
        .await?;
    st.relay.wake();
    Ok(order)
}

/// ADMIN: refunds a DELIVERY_FAILED order once and settles its goods:
/// RETURNED ones go back to inventory, LOST ones are written off.
pub async fn refund(
    st: &OrdersState,
    admin: &Claims,
    order_id: Uuid,
    goods: Goods,
    reason: Option<String>,
) -> Result<Order, OrdersError> {
    let reason = transitions::check_reason(reason)?.unwrap_or_else(|| match goods {
        Goods::Returned => "delivery failed; the goods were returned".into(),
        Goods::Lost => "delivery failed; the goods were lost".into(),
    });
    let mut conn = st.pool.get().await?;
    let order = conn
        .transaction(async |conn| {
            let order = failed_locked(conn, order_id, admin, "refunded").await?;
            let mut events = Vec::new();
            if let Some(refund) = payments::refund(
                conn,
                st.payments.as_ref(),
                order.id,
                Some(&reason),
                Some(goods),
            )
            .await?
            {
                events.push(NewEvent {
                    topic: PAYMENT_REFUNDED,
                    key: order.id.to_string(),
                    payload: refund,
                });
            }
            // Last outside call: anything refused above wrote nothing, and
            // ReturnStock is idempotent, so a retry after a failure here is safe.
            if goods == Goods::Returned {
                st.stock.return_stock(order.id).await?;
            }
            let why = Why {
                reason: Some(reason),
                actor: Some(admin.sub),
            };
            lifecycle::change(conn, &order, OrderStatus::Refunded, why, events).await
        })
        .await?;
    st.relay.wake();
    Ok(order)
}

/// The order, locked, if it is DELIVERY_FAILED; `INVALID_STATE` otherwise.
async fn failed_locked(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    admin: &Claims,
    verb: &str,
) -> Result<Order, OrdersError> {
    let order = order::lock_visible(conn, order_id, admin).await?;
    if order.status != OrderStatus::DeliveryFailed {
        return Err(OrdersError::InvalidState(format!(
            "order {} {}; only an order whose delivery failed can be {verb}",
            order.number,
            order.status.describe()
        )));
    }
    Ok(order)
}
