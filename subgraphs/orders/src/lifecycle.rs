//! The order lifecycle, in one place (ARCHITECTURE §5):
//!
//! ```text
//! RESERVED → CONFIRMED → PROCESSING → SHIPPED → DELIVERED
//! RESERVED → CANCELLED | EXPIRED | PAYMENT_FAILED
//! CONFIRMED | PROCESSING → CANCELLED   (refund, stock returned)
//! CONFIRMED | PROCESSING | SHIPPED → DELIVERY_FAILED   (its shipment failed)
//! DELIVERY_FAILED → CONFIRMED   (reshipped: a new shipment, the next delivery attempt)
//! DELIVERY_FAILED → REFUNDED    (refunded; the goods returned to stock or written off)
//! ```
//!
//! [`OrderStatus::transition`] refuses everything else, and [`change`] is the
//! only writer of `orders.status`: it writes the status, a history row and an
//! `order.status_changed` outbox row (plus any payment events) in the
//! caller's transaction, while the caller holds the order's row lock.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use kit::events::{NewEvent, outbox};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    db::{Order, StatusChange, schema::order_status_history},
    error::OrdersError,
};

/// The `order.status_changed` topic.
pub const STATUS_CHANGED: &str = "order.status_changed";

/// Where an order is in its life.
// (Stored as its name in `orders.status`: see the `FromSql` below.)
#[derive(
    async_graphql::Enum,
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    diesel::deserialize::FromSqlRow,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Stock is held until `reservedUntil`; lines can still be edited.
    Reserved,
    /// Paid; the stock is sold.
    Confirmed,
    /// Being picked and packed.
    Processing,
    Shipped,
    Delivered,
    Cancelled,
    /// The reservation lapsed before the order was confirmed.
    Expired,
    /// The payment was declined; the stock went back.
    PaymentFailed,
    /// Paid, but its shipment failed; an ADMIN reships or refunds it.
    DeliveryFailed,
    /// Its delivery failed and the payment was refunded.
    Refunded,
}

impl OrderStatus {
    /// Every status, for tests and docs.
    pub const ALL: [OrderStatus; 10] = [
        Self::Reserved,
        Self::Confirmed,
        Self::Processing,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
        Self::Expired,
        Self::PaymentFailed,
        Self::DeliveryFailed,
        Self::Refunded,
    ];

    /// The stored (and GraphQL) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Confirmed => "CONFIRMED",
            Self::Processing => "PROCESSING",
            Self::Shipped => "SHIPPED",
            Self::Delivered => "DELIVERED",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
            Self::PaymentFailed => "PAYMENT_FAILED",
            Self::DeliveryFailed => "DELIVERY_FAILED",
            Self::Refunded => "REFUNDED",
        }
    }

    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn allows(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Reserved, Confirmed | Cancelled | Expired | PaymentFailed)
                | (Confirmed, Processing | Cancelled | DeliveryFailed)
                | (Processing, Shipped | Cancelled | DeliveryFailed)
                | (Shipped, Delivered | DeliveryFailed)
                | (DeliveryFailed, Confirmed | Refunded)
        )
    }

    /// `to` if the lifecycle allows it; otherwise why not, naming the current state.
    pub fn transition(self, to: OrderStatus) -> Result<OrderStatus, Refused> {
        if self.allows(to) {
            Ok(to)
        } else {
            Err(Refused { from: self, to })
        }
    }

    /// How an order in this state is described when something is refused.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Reserved => "is reserved and not paid yet",
            Self::Confirmed => "is already paid",
            Self::Processing => "is already paid and being prepared",
            Self::Shipped => "has already shipped",
            Self::Delivered => "was already delivered",
            Self::Cancelled => "was cancelled",
            Self::Expired => "expired (its reservation lapsed)",
            Self::PaymentFailed => "could not be paid (payment failed)",
            Self::DeliveryFailed => "could not be delivered (its shipment failed)",
            Self::Refunded => "was refunded after its delivery failed",
        }
    }
}

impl TryFrom<String> for OrderStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown order status {s:?}"))
    }
}

/// Read from the status column by name (diesel's derives, raw SQL alike);
/// an unknown name is an error, not a default.
impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for OrderStatus {
    fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        let name = <String as diesel::deserialize::FromSql<
            diesel::sql_types::Text,
            diesel::pg::Pg,
        >>::from_sql(bytes)?;
        Ok(Self::try_from(name)?)
    }
}

/// A transition the lifecycle does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl Refused {
    /// The message clients see: `order GR-000042 is already paid; it cannot become CONFIRMED`.
    pub fn message(&self, number: &str) -> String {
        format!(
            "order {number} {}; it cannot become {}",
            self.from.describe(),
            self.to.as_str()
        )
    }
}

/// What a status change is about, for its history row and event.
#[derive(Clone, Debug, Default)]
pub struct Why {
    pub reason: Option<String>,
    pub actor: Option<Uuid>,
}

/// Moves the locked `order` to `to`: status (and `confirmed_at`), history row
/// and `order.status_changed` event, plus `extra` events, all in the caller's
/// transaction. Refused transitions write nothing.
pub async fn change(
    conn: &mut AsyncPgConnection,
    order: &Order,
    to: OrderStatus,
    why: Why,
    extra: Vec<NewEvent>,
) -> Result<Order, OrdersError> {
    Ok(write(conn, order, to, why, extra, None).await?.0)
}

/// What a confirmation settles on the order in the same write as its new
/// status (CONFIRMED or PAYMENT_FAILED): the amounts it was charged, who it
/// is for, its lines as committed, the payment and the idempotency key.
pub struct Settled<'a> {
    pub totals: crate::money::Totals,
    pub snapshot: serde_json::Value,
    pub notes: Option<&'a str>,
    /// The lines priced in place; empty when they were rewritten before
    /// (inventory sold other SKUs than the order held).
    pub lines: crate::checkout::Repriced<'a>,
    pub payment: crate::payments::Recorded<'a>,
    /// The key the confirmation was given, kept for its repeats.
    pub key: Option<&'a str>,
}

/// [`change`], writing `settled` in the same statement.
///
/// Also answers the history row it wrote.
pub async fn settle(
    conn: &mut AsyncPgConnection,
    order: &Order,
    to: OrderStatus,
    why: Why,
    extra: Vec<NewEvent>,
    settled: Settled<'_>,
) -> Result<(Order, StatusChange), OrdersError> {
    write(conn, order, to, why, extra, Some(settled)).await
}

/// The tail of a status write whose CTE `o(id)` holds the order written: its
/// history row (`$6` from, `$2` to, `$7` reason, `$8` actor, `$5` at) and its
/// events (`$9`–`$11`: topics, keys, payloads, in order; the columns
/// [`kit::events::outbox::append`] writes).
macro_rules! recorded {
    () => {
        "h AS (
             INSERT INTO order_status_history (order_id, from_status, to_status, reason, actor_id, at)
             SELECT id, $6, $2, $7, $8, $5 FROM o
             RETURNING id
         ), e AS (
             INSERT INTO outbox (topic, key, payload)
             SELECT e.topic, e.key, e.payload
             FROM o, unnest($9::text[], $10::text[], $11::jsonb[]) WITH ORDINALITY AS e(topic, key, payload, n)
             ORDER BY e.n
         )
         SELECT (SELECT count(*) FROM o) AS updated, (SELECT id FROM h) AS history_id"
    };
}
async fn write(
    conn: &mut AsyncPgConnection,
    order: &Order,
    to: OrderStatus,
    why: Why,
    extra: Vec<NewEvent>,
    settled: Option<Settled<'_>>,
) -> Result<(Order, StatusChange), OrdersError> {
    use diesel::sql_types::{
        Array, Int4, Jsonb, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid,
    };
    order
        .status
        .transition(to)
        .map_err(|refused| OrdersError::InvalidState(refused.message(&order.number)))?;
    // Microseconds, as the row keeps it (the answer is built here, not read back).
    let at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    // A reshipped order was paid when it was first confirmed.
    let confirmed_at = match to {
        OrderStatus::Confirmed => order.confirmed_at.or(Some(at)),
        _ => order.confirmed_at,
    };
    let cancel_reason = match to {
        OrderStatus::Cancelled => why.reason.clone(),
        _ => order.cancel_reason.clone(),
    };
    // The caller holds the row's lock, so the row is what `order` says plus
    // this write.
    let mut updated = Order {
        status: to,
        confirmed_at,
        cancel_reason: cancel_reason.clone(),
        updated_at: at,
        ..order.clone()
    };
    // Which shipment a confirmation asks logistics for: 1, then one more per
    // reship (this one counted: its history row is not written yet).
    let attempt = match (to, order.status) {
        (OrderStatus::Confirmed, OrderStatus::DeliveryFailed) => {
            Some(delivery_attempt(conn, order.id).await? + 1)
        }
        (OrderStatus::Confirmed, _) => Some(1),
        _ => None,
    };
    // One raw statement, prepared once per connection (diesel prepares no
    // `UPDATE`): the status, its history row and its events.
    let write = kit::prepared::prepared(match settled {
        None => concat!(
            "WITH o AS (
                 UPDATE orders SET status = $2, confirmed_at = $3, cancel_reason = $4,
                        updated_at = $5
                 WHERE id = $1 RETURNING id
             ), ",
            recorded!(),
        ),
        Some(_) => concat!(
            "WITH o AS (
                 UPDATE orders SET status = $2, confirmed_at = $3, cancel_reason = $4,
                        updated_at = $5, subtotal = $12, tax = $13, shipping_cost = $14,
                        total = $15, customer_snapshot = $16, notes = $17
                 WHERE id = $1 RETURNING id, customer_id
             ), lines AS (
                 UPDATE order_items SET quantity = q.quantity, unit_price = q.unit_price,
                        line_total = q.line_total, product_name = q.product_name
                 FROM unnest($18::text[], $19::int4[], $20::numeric[], $21::numeric[], $22::text[])
                      AS q(sku, quantity, unit_price, line_total, product_name)
                 WHERE order_items.order_id = $1 AND order_items.sku = q.sku
             ), paid AS (
                 INSERT INTO payments (order_id, status, amount, provider, method,
                                       provider_reference, failure_reason, created_at, updated_at)
                 SELECT id, $23, $24, $25, $26, $27, $28, $5, $5 FROM o
             ), keyed AS (
                 INSERT INTO confirmation_keys (customer_id, key, order_id)
                 SELECT customer_id, $29, id FROM o WHERE $29 IS NOT NULL
             ), ",
            recorded!(),
        ),
    })
    .bind::<SqlUuid, _>(order.id)
    .bind::<Text, _>(to.as_str())
    .bind::<Nullable<Timestamptz>, _>(confirmed_at)
    .bind::<Nullable<Text>, _>(cancel_reason)
    .bind::<Timestamptz, _>(at);
    if let Some(Settled {
        totals, snapshot, ..
    }) = &settled
    {
        // As `numeric(14, 2)` gives them back: two decimals.
        let cents = |mut amount: rust_decimal::Decimal| {
            amount.rescale(2);
            Some(amount)
        };
        updated.subtotal = cents(totals.subtotal);
        updated.tax = cents(totals.tax);
        updated.shipping_cost = cents(totals.shipping);
        updated.total = cents(totals.total);
        updated.customer_snapshot = Some(snapshot.clone());
        updated.notes = settled.as_ref().and_then(|s| s.notes).map(str::to_owned);
    }
    let mut events = vec![status_changed(
        &updated,
        Some(order.status),
        at,
        &why,
        attempt,
    )];
    events.extend(extra);
    let (topics, keys, payloads) = outbox::columns(&events);
    let write = write
        .bind::<Nullable<Text>, _>(Some(order.status.as_str()))
        .bind::<Nullable<Text>, _>(&why.reason)
        .bind::<Nullable<SqlUuid>, _>(why.actor)
        .bind::<Array<Text>, _>(topics)
        .bind::<Array<Text>, _>(keys)
        .bind::<Array<Jsonb>, _>(payloads);
    let write = match settled {
        None => write,
        Some(Settled {
            totals,
            snapshot,
            notes,
            lines,
            payment,
            key,
        }) => write
            .bind::<Numeric, _>(totals.subtotal)
            .bind::<Numeric, _>(totals.tax)
            .bind::<Numeric, _>(totals.shipping)
            .bind::<Numeric, _>(totals.total)
            .bind::<Jsonb, _>(snapshot)
            .bind::<Nullable<Text>, _>(notes)
            .bind::<Array<Text>, _>(lines.skus)
            .bind::<Array<Int4>, _>(lines.quantities)
            .bind::<Array<Numeric>, _>(lines.unit_prices)
            .bind::<Array<Numeric>, _>(lines.line_totals)
            .bind::<Array<Nullable<Text>>, _>(lines.names)
            .bind::<Text, _>(payment.status)
            .bind::<Numeric, _>(payment.amount)
            .bind::<Text, _>(payment.provider)
            .bind::<Nullable<Text>, _>(payment.method)
            .bind::<Nullable<Text>, _>(payment.reference)
            .bind::<Nullable<Text>, _>(payment.failure)
            .bind::<Nullable<Text>, _>(key)
            .bind::<Nullable<Text>, _>(key),
    };
    let done: Updated = write.get_result(conn).await?;
    let (1, Some(history_id)) = (done.updated, done.history_id) else {
        return Err(OrdersError::NotFound);
    };
    let change = StatusChange {
        id: history_id,
        order_id: order.id,
        from_status: Some(order.status.as_str().to_owned()),
        to_status: to.as_str().to_owned(),
        reason: why.reason,
        actor_id: why.actor,
        at,
    };
    Ok((updated, change))
}

/// How many orders a status write changed (1, or 0 when there is no such
/// order), and the id of the history row it wrote.
#[derive(QueryableByName)]
struct Updated {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    updated: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    history_id: Option<i64>,
}

/// The `order.status_changed` event of `order`, now in its status, coming
/// from `from` (`None`: created); `attempt` for a confirmation.
pub(crate) fn status_changed(
    order: &Order,
    from: Option<OrderStatus>,
    at: DateTime<Utc>,
    why: &Why,
    attempt: Option<i32>,
) -> NewEvent {
    let mut payload = serde_json::json!({
            "orderId": order.id,
            "number": order.number,
            "customerId": order.customer_id,
            "previousStatus": from.map(OrderStatus::as_str),
            "status": order.status.as_str(),
            "reason": why.reason,
            "at": at,
    });
    if let Some(attempt) = attempt {
        payload["deliveryAttempt"] = attempt.into();
    }
    NewEvent {
        topic: STATUS_CHANGED,
        key: order.id.to_string(),
        payload,
    }
}

/// Which delivery of `order_id` is the current one: 1, plus one per reship
/// (DELIVERY_FAILED → CONFIRMED in its history).
pub async fn delivery_attempt(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> Result<i32, OrdersError> {
    let reships: i64 = order_status_history::table
        .filter(order_status_history::order_id.eq(order_id))
        .filter(order_status_history::from_status.eq(OrderStatus::DeliveryFailed.as_str()))
        .filter(order_status_history::to_status.eq(OrderStatus::Confirmed.as_str()))
        .count()
        .get_result(conn)
        .await?;
    Ok(1 + i32::try_from(reships).unwrap_or(i32::MAX - 1))
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::{self, *};

    #[test]
    fn only_the_documented_transitions_are_allowed() {
        let allowed = [
            (Reserved, Confirmed),
            (Reserved, Cancelled),
            (Reserved, Expired),
            (Reserved, PaymentFailed),
            (Confirmed, Processing),
            (Confirmed, Cancelled),
            (Processing, Shipped),
            (Processing, Cancelled),
            (Shipped, Delivered),
            (Confirmed, DeliveryFailed),
            (Processing, DeliveryFailed),
            (Shipped, DeliveryFailed),
            (DeliveryFailed, Confirmed),
            (DeliveryFailed, Refunded),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.transition(to).is_ok(),
                    allowed.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
        }
    }

    #[test]
    fn refusals_say_which_state_the_order_is_in() {
        let refused = Confirmed.transition(Confirmed).unwrap_err();
        assert_eq!(
            refused.message("GR-000007"),
            "order GR-000007 is already paid; it cannot become CONFIRMED"
        );
        assert!(
            Cancelled
                .transition(Confirmed)
                .unwrap_err()
                .message("x")
                .contains("cancelled")
        );
        assert!(
            Expired
                .transition(Confirmed)
                .unwrap_err()
                .message("x")
                .contains("expired")
        );
        assert!(
            PaymentFailed
                .transition(Confirmed)
                .unwrap_err()
                .message("x")
                .contains("payment failed")
        );
        assert_eq!(
            DeliveryFailed
                .transition(Cancelled)
                .unwrap_err()
                .message("GR-000009"),
            "order GR-000009 could not be delivered (its shipment failed); it cannot become CANCELLED"
        );
        assert!(
            Refunded
                .transition(Confirmed)
                .unwrap_err()
                .message("x")
                .contains("refunded")
        );
    }

    #[test]
    fn stored_names_round_trip() {
        for status in OrderStatus::ALL {
            assert_eq!(
                OrderStatus::try_from(status.as_str().to_owned()),
                Ok(status)
            );
        }
        assert!(OrderStatus::try_from("SHIPPING".to_owned()).is_err());
    }
}
