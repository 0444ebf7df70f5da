//! From events to notifications: which events tell a customer something, and
//! what they say.
//!
//! - `order.status_changed` (orders): CONFIRMED (again after a reship, with
//!   its own text), SHIPPED, DELIVERED, CANCELLED, PAYMENT_FAILED and REFUNDED
//!   each make one notification; other statuses are not wanted.
//! - `shipment.status_changed` (logistics): only FAILED; a shipment's
//!   progress already reaches the customer as the order's SHIPPED and
//!   DELIVERED. The order's DELIVERY_FAILED that follows it makes none: the
//!   customer heard of the failure once, from the shipment.
//!
//! A customer this subgraph does not know is logged and skipped; a payload
//! that cannot be read is an error, so the consumer retries and then
//! dead-letters it.

use std::sync::Arc;

use anyhow::Context as _;
use diesel_async::AsyncPgConnection;
use kit::events::{Event, Handler};
use serde::{Deserialize, de::DeserializeOwned};
use uuid::Uuid;

use super::{Draft, NotificationKind, Notifications, known_order_number, record};

/// The producer of order events.
pub const ORDERS: &str = "orders";
/// The topic orders writes on every status change.
pub const ORDER_STATUS_CHANGED: &str = "order.status_changed";
/// The producer of shipment events.
pub const LOGISTICS: &str = "logistics";
/// The topic logistics writes on every shipment status change.
pub const SHIPMENT_STATUS_CHANGED: &str = "shipment.status_changed";

/// `order.status_changed` as far as notifications read it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderStatusChanged {
    order_id: Uuid,
    number: String,
    customer_id: Uuid,
    previous_status: Option<String>,
    status: String,
    reason: Option<String>,
}

/// `shipment.status_changed` as far as notifications read it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShipmentStatusChanged {
    tracking_id: String,
    order_id: Uuid,
    customer_id: Uuid,
    status: String,
    /// Not in the payload today; used when logistics adds it.
    order_number: Option<String>,
}

/// The kind of notification an order status makes, if any.
fn order_kind(status: &str) -> Option<NotificationKind> {
    match status {
        "CONFIRMED" => Some(NotificationKind::OrderConfirmed),
        "SHIPPED" => Some(NotificationKind::OrderShipped),
        "DELIVERED" => Some(NotificationKind::OrderDelivered),
        "CANCELLED" => Some(NotificationKind::OrderCancelled),
        "PAYMENT_FAILED" => Some(NotificationKind::PaymentFailed),
        "REFUNDED" => Some(NotificationKind::OrderRefunded),
        _ => None,
    }
}

/// The shipment status that makes a notification.
const SHIPMENT_FAILED: &str = "FAILED";

fn order_draft(e: OrderStatusChanged) -> Option<Draft> {
    let kind = order_kind(&e.status)?;
    let n = &e.number;
    let (subject, body) = match kind {
        NotificationKind::OrderConfirmed
            if e.previous_status.as_deref() == Some("DELIVERY_FAILED") =>
        {
            (
                format!("Order {n} is being sent again"),
                format!(
                    "We are preparing your order {n} again and will send it with a new shipment."
                ),
            )
        }
        NotificationKind::OrderConfirmed => (
            format!("Order {n} confirmed"),
            format!("Thank you! We received the payment for your order {n} and are preparing it."),
        ),
        NotificationKind::OrderRefunded => (
            format!("Order {n} refunded"),
            format!("We could not deliver your order {n}, so we refunded your payment in full."),
        ),
        NotificationKind::OrderShipped => (
            format!("Order {n} shipped"),
            format!("Your order {n} is on its way."),
        ),
        NotificationKind::OrderDelivered => (
            format!("Order {n} delivered"),
            format!("Your order {n} was delivered. Enjoy!"),
        ),
        NotificationKind::OrderCancelled => {
            let paid = matches!(
                e.previous_status.as_deref(),
                Some("CONFIRMED" | "PROCESSING")
            );
            let mut body = format!("Your order {n} was cancelled.");
            if let Some(reason) = e.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                body.push_str(&format!(
                    " Reason: {}.",
                    reason.trim().trim_end_matches('.')
                ));
            }
            if paid {
                body.push_str(" Your payment will be refunded.");
            }
            (format!("Order {n} cancelled"), body)
        }
        NotificationKind::PaymentFailed => (
            format!("Payment for order {n} failed"),
            format!(
                "We could not take the payment for your order {n}, so it was not placed. \
                 You can try again with another payment method."
            ),
        ),
        NotificationKind::ShipmentFailed => return None,
    };
    Some(Draft {
        user_id: e.customer_id,
        kind,
        order_id: Some(e.order_id),
        order_number: Some(e.number),
        subject,
        body,
    })
}

fn shipment_failed_draft(e: ShipmentStatusChanged, number: Option<String>) -> Draft {
    let tracking = &e.tracking_id;
    let (subject, body) = match &number {
        Some(n) => (
            format!("Delivery of order {n} failed"),
            format!(
                "We could not deliver your order {n} (shipment {tracking}). \
                 Our team will contact you to arrange a new delivery."
            ),
        ),
        None => (
            format!("Delivery of shipment {tracking} failed"),
            format!(
                "We could not deliver your shipment {tracking}. \
                 Our team will contact you to arrange a new delivery."
            ),
        ),
    };
    Draft {
        user_id: e.customer_id,
        kind: NotificationKind::ShipmentFailed,
        order_id: Some(e.order_id),
        order_number: number,
        subject,
        body,
    }
}

fn payload<T: DeserializeOwned>(event: &Event) -> anyhow::Result<T> {
    serde_json::from_value(event.payload.clone())
        .with_context(|| format!("malformed {} payload (event {})", event.topic, event.id))
}

/// The `users.notifications` consumer: order and shipment events become notifications.
pub struct NotificationsHandler {
    notifications: Arc<Notifications>,
}

impl NotificationsHandler {
    pub fn new(notifications: Arc<Notifications>) -> Self {
        Self { notifications }
    }
}

impl Handler for NotificationsHandler {
    fn group(&self) -> &'static str {
        "users.notifications"
    }

    fn wants(&self, event: &Event) -> bool {
        // A payload without a status is wanted, so `handle` reports it malformed.
        let status = event.payload["status"].as_str();
        match (event.source.as_str(), event.topic.as_str()) {
            (ORDERS, ORDER_STATUS_CHANGED) => status.is_none_or(|s| order_kind(s).is_some()),
            (LOGISTICS, SHIPMENT_STATUS_CHANGED) => status.is_none_or(|s| s == SHIPMENT_FAILED),
            _ => false,
        }
    }

    async fn handle(&self, conn: &mut AsyncPgConnection, event: &Event) -> anyhow::Result<()> {
        let draft = match (event.source.as_str(), event.topic.as_str()) {
            (ORDERS, ORDER_STATUS_CHANGED) => order_draft(payload(event)?),
            (LOGISTICS, SHIPMENT_STATUS_CHANGED) => {
                let e: ShipmentStatusChanged = payload(event)?;
                if e.status != SHIPMENT_FAILED {
                    return Ok(());
                }
                let number = match e.order_number.clone() {
                    Some(number) => Some(number),
                    // Orders told us the number when the order was confirmed.
                    None => known_order_number(conn, e.customer_id, e.order_id).await?,
                };
                Some(shipment_failed_draft(e, number))
            }
            _ => None,
        };
        let Some(draft) = draft else {
            return Ok(());
        };
        let user_id = draft.user_id;
        let kind = draft.kind.as_str();
        if !record(
            conn,
            self.notifications.emails(),
            &event.source,
            event.id,
            draft,
        )
        .await?
        {
            tracing::warn!(
                %user_id,
                kind,
                event = event.id,
                source = %event.source,
                "event for an unknown customer; no notification"
            );
        }
        Ok(())
    }

    fn committed(&self, _event: &Event) {
        self.notifications.wake_mailer();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: &str, previous: &str, reason: Option<&str>) -> OrderStatusChanged {
        OrderStatusChanged {
            order_id: Uuid::nil(),
            number: "GR-000042".into(),
            customer_id: Uuid::nil(),
            previous_status: Some(previous.into()),
            status: status.into(),
            reason: reason.map(Into::into),
        }
    }

    #[test]
    fn cancellations_say_why_and_whether_money_comes_back() {
        let paid = order_draft(order("CANCELLED", "CONFIRMED", Some("out of stock."))).unwrap();
        assert_eq!(paid.subject, "Order GR-000042 cancelled");
        assert_eq!(
            paid.body,
            "Your order GR-000042 was cancelled. Reason: out of stock. Your payment will be refunded."
        );
        let unpaid = order_draft(order("CANCELLED", "RESERVED", None)).unwrap();
        assert_eq!(unpaid.body, "Your order GR-000042 was cancelled.");
    }

    #[test]
    fn only_customer_facing_statuses_make_notifications() {
        for status in ["RESERVED", "PROCESSING", "EXPIRED", "WHATEVER"] {
            assert!(
                order_draft(order(status, "RESERVED", None)).is_none(),
                "{status}"
            );
        }
        let confirmed = order_draft(order("CONFIRMED", "RESERVED", None)).unwrap();
        assert_eq!(confirmed.kind, NotificationKind::OrderConfirmed);
        assert_eq!(confirmed.order_number.as_deref(), Some("GR-000042"));
        // The failure itself was told by the shipment's FAILED.
        assert!(order_draft(order("DELIVERY_FAILED", "SHIPPED", None)).is_none());
    }

    #[test]
    fn a_reshipped_order_says_it_is_sent_again_and_a_refund_says_why() {
        let reshipped = order_draft(order("CONFIRMED", "DELIVERY_FAILED", None)).unwrap();
        assert_eq!(reshipped.kind, NotificationKind::OrderConfirmed);
        assert_eq!(reshipped.subject, "Order GR-000042 is being sent again");
        assert_eq!(
            reshipped.body,
            "We are preparing your order GR-000042 again and will send it with a new shipment."
        );
        let refunded = order_draft(order("REFUNDED", "DELIVERY_FAILED", None)).unwrap();
        assert_eq!(refunded.kind, NotificationKind::OrderRefunded);
        assert_eq!(refunded.subject, "Order GR-000042 refunded");
        assert_eq!(
            refunded.body,
            "We could not deliver your order GR-000042, so we refunded your payment in full."
        );
    }
}
