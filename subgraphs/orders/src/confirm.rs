//! `confirmOrder`: commit the reserved stock (FEFO prices), price the order,
//! charge it once, and record the outcome: CONFIRMED, or PAYMENT_FAILED with
//! the stock returned.
//!
//! Exactly-once is decided by the order's row lock: the whole confirmation
//! runs in one transaction that holds it, so a concurrent confirmation waits
//! and then finds the order paid (`INVALID_STATE`, or the same order when it
//! presents the same idempotency key). Behind the lock the `payments` primary
//! key refuses a second payment, and the provider call and `CommitStock` are
//! both keyed by the order id, so a retry after a crash charges and commits
//! nothing twice. A provider that does not answer rolls everything back: the
//! order stays RESERVED (its stock stays committed in inventory, where a
//! retry finds it) and the client may retry.
//!
//! The customer snapshot is what the call gives, completed from the
//! customer's profile at users (see [`crate::profiles`]), with the user id of
//! the order. Product names come from catalog (see [`crate::names`]).
//! Neither lookup runs under the order's lock.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kit::{auth::Claims, events::NewEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    OrdersState, cart,
    checkout::{self, Repriced},
    db::{Line, Order, StatusChange, schema::orders},
    error::OrdersError,
    lifecycle::{self, OrderStatus, Settled, Why},
    order,
    payments::{self, Charge, ChargeOutcome},
    transitions,
};

/// The `payment.succeeded` and `payment.failed` topics.
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
pub const PAYMENT_FAILED: &str = "payment.failed";

/// A postal address as the order keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub name: Option<String>,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// Who the order is for, as given in the call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub shipping_address: Option<Address>,
    /// Defaults to the shipping address.
    pub billing_address: Option<Address>,
}

/// The snapshot stored on the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerSnapshot {
    pub user_id: Uuid,
    #[serde(flatten)]
    pub details: Customer,
}

/// What `confirmOrder` was given.
#[derive(Clone, Debug, Default)]
pub struct Confirmation {
    pub idempotency_key: Option<String>,
    pub payment_token: Option<String>,
    pub customer: Customer,
    pub notes: Option<String>,
    /// The caller's access token, presented to users for the profile.
    pub bearer: Option<std::sync::Arc<str>>,
}

enum Outcome {
    Done(Order, Box<order::Known>),
    Lapsed(Order),
}

/// Confirms and pays for `order_id` (its customer or an admin).
pub async fn confirm(
    st: &OrdersState,
    claims: &Claims,
    order_id: Uuid,
    input: Confirmation,
) -> Result<(Order, order::Known), OrdersError> {
    let mut input = validate(input)?;
    if let Some(profile) = profile(st, claims, order_id, &input).await? {
        input.customer = input.customer.completed_from(profile);
    }
    let mut conn = st.pool.get().await?;
    let outcome = conn
        .transaction(async |conn| {
            let Locked {
                order,
                keyed,
                held,
                history,
            } = locked(conn, order_id, input.idempotency_key.as_deref())
                .await?
                .filter(|l| order::visible_to(&l.order, claims))
                .ok_or(OrdersError::NotFound)?;
            match keyed {
                Some(id) if id == order.id => return Ok(Outcome::Done(order, Box::default())),
                Some(_) => return Err(OrdersError::KeyReused),
                None => {}
            }
            order
                .status
                .transition(OrderStatus::Confirmed)
                .map_err(|refused| {
                    let message = refused.message(&order.number);
                    // What devices of the Ordering API look for first.
                    let paid = matches!(
                        order.status,
                        OrderStatus::Confirmed
                            | OrderStatus::Processing
                            | OrderStatus::Shipped
                            | OrderStatus::Delivered
                    );
                    OrdersError::InvalidState(if paid {
                        format!("Already paid: {message}")
                    } else {
                        message
                    })
                })?;
            if order
                .reserved_until
                .is_some_and(|t| t <= chrono::Utc::now())
            {
                return Ok(Outcome::Lapsed(
                    transitions::expire(st, conn, &order).await?,
                ));
            }
            // Catalog names the products while inventory commits them.
            let (committed, mut names) =
                tokio::join!(st.stock.commit(order.id), st.names.lookup(&held));
            let committed = match committed {
                Ok(committed) => committed,
                Err(OrdersError::InvalidState(m)) if m.contains("expired") => {
                    return Ok(Outcome::Lapsed(
                        transitions::expire(st, conn, &order).await?,
                    ));
                }
                Err(e) => return Err(e),
            };
            // What inventory sold is what the order holds, even if an edit's
            // write was lost after inventory had taken it.
            let sold: Vec<Line> = committed
                .lines
                .iter()
                .map(|l| Line {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                })
                .collect();
            let unnamed: Vec<String> = sold
                .iter()
                .filter(|l| !held.contains(&l.sku))
                .map(|l| l.sku.clone())
                .collect();
            if !unnamed.is_empty() {
                names.extend(st.names.lookup(&unnamed).await);
            }
            // Usually inventory sold exactly the SKUs the order holds: price
            // those rows in place; otherwise rewrite the lines.
            let mut same = sold.iter().map(|l| l.sku.as_str()).collect::<Vec<_>>();
            same.sort_unstable();
            let mut holding = held.iter().map(String::as_str).collect::<Vec<_>>();
            holding.sort_unstable();
            let lines = if same == holding {
                Repriced::new(&committed, &names)
            } else {
                checkout::replace_items(conn, order.id, &sold, Some(&committed), &names).await?;
                Repriced::default()
            };
            let skus: Vec<String> = sold.into_iter().map(|l| l.sku).collect();
            let totals = st.charges.totals(committed.subtotal);
            let snapshot = CustomerSnapshot {
                user_id: order.customer_id,
                details: input.customer.clone(),
            };
            // Written with the new status, after the charge: one statement
            // (with the priced lines, the payment and the key).
            let snapshot = serde_json::to_value(&snapshot).map_err(anyhow::Error::from)?;
            let charge = Charge {
                order_id: order.id,
                amount: totals.total,
                token: input.payment_token.clone(),
            };
            let outcome = st.payments.charge(charge.clone()).await.map_err(|err| {
                tracing::warn!(order_id = %order.id, error = %err, "charge failed");
                OrdersError::Unavailable(
                    "the payment provider is unavailable; the order is still reserved, retry"
                        .into(),
                )
            })?;
            let recorded = payments::Recorded::new(st.payments.name(), &charge, &outcome);
            // What the answer shows is what the statement writes (lines
            // rewritten by `replace_items` are read back instead).
            let mut known = order::Known {
                items: (!lines.skus.is_empty()).then(|| lines.items(order.id)),
                payment: None,
                refunds: Some(Vec::new()),
                history: serde_json::from_value::<Vec<StatusChange>>(history).ok(),
            };
            let payment_row = recorded.row(order.id);
            let settled = Settled {
                totals,
                snapshot,
                notes: input.notes.as_deref(),
                lines,
                payment: recorded,
                key: input.idempotency_key.as_deref(),
            };
            let payment = serde_json::json!({
                "orderId": order.id,
                "amount": totals.total,
                "provider": st.payments.name(),
            });
            let (order, change) = match &outcome {
                ChargeOutcome::Approved { reference, .. } => {
                    if order.from_cart {
                        cart::clear(conn, order.customer_id, Some(&skus)).await?;
                    }
                    let event = NewEvent {
                        topic: PAYMENT_SUCCEEDED,
                        key: order.id.to_string(),
                        payload: with(payment, "reference", reference.clone()),
                    };
                    let why = Why {
                        reason: None,
                        actor: Some(claims.sub),
                    };
                    lifecycle::settle(
                        conn,
                        &order,
                        OrderStatus::Confirmed,
                        why,
                        vec![event],
                        settled,
                    )
                    .await?
                }
                ChargeOutcome::Declined { reason } => {
                    st.stock.return_stock(order.id).await?;
                    let event = NewEvent {
                        topic: PAYMENT_FAILED,
                        key: order.id.to_string(),
                        payload: with(payment, "reason", reason.clone()),
                    };
                    let why = Why {
                        reason: Some(reason.clone()),
                        actor: Some(claims.sub),
                    };
                    let to = OrderStatus::PaymentFailed;
                    lifecycle::settle(conn, &order, to, why, vec![event], settled).await?
                }
            };
            // The payment row is stamped with the write's time.
            known.payment = Some(Some(payment_row(order.updated_at)));
            if let Some(history) = &mut known.history {
                history.push(change);
            }
            Ok(Outcome::Done(order, Box::new(known)))
        })
        .await?;
    st.relay.wake();
    match outcome {
        Outcome::Done(order, known) => Ok((order, *known)),
        Outcome::Lapsed(order) => Err(OrdersError::InvalidState(format!(
            "order {} expired: its reservation lapsed before it was confirmed",
            order.number
        ))),
    }
}

/// The profile of the order's customer when the call leaves part of the
/// snapshot out (asked before the order is locked, holding no connection).
async fn profile(
    st: &OrdersState,
    claims: &Claims,
    order_id: Uuid,
    input: &Confirmation,
) -> Result<Option<Customer>, OrdersError> {
    let c = &input.customer;
    let complete = c.email.is_some()
        && c.phone.is_some()
        && c.shipping_address.is_some()
        && c.billing_address.is_some();
    let Some(bearer) = input.bearer.as_deref().filter(|_| !complete) else {
        return Ok(None);
    };
    // A customer confirms their own order (any other is refused under the
    // lock); an admin confirms someone's, so ask whose.
    let customer = if claims.role == kit::auth::Role::Admin {
        match orders::table
            .find(order_id)
            .select(orders::customer_id)
            .first::<Uuid>(&mut st.pool.get().await?)
            .await
            .optional()?
        {
            Some(customer) => customer,
            None => return Ok(None),
        }
    } else {
        claims.sub
    };
    Ok(st.profiles.lookup(customer, bearer).await)
}

fn with(mut payload: serde_json::Value, key: &str, value: String) -> serde_json::Value {
    payload[key] = serde_json::Value::String(value);
    payload
}

/// The order, locked for the caller's transaction, with the order its
/// customer's idempotency `key` confirmed (if any) and the SKUs it holds:
/// one statement. `None` when there is no such order.
async fn locked(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    key: Option<&str>,
) -> QueryResult<Option<Locked>> {
    use diesel::sql_types::{Nullable, Text, Uuid as SqlUuid};
    kit::prepared::prepared(
        "SELECT o.*,
                (SELECT k.order_id FROM confirmation_keys k
                 WHERE k.customer_id = o.customer_id AND k.key = $2) AS keyed,
                ARRAY(SELECT i.sku FROM order_items i WHERE i.order_id = o.id ORDER BY i.sku)
                    AS held,
                (SELECT COALESCE(jsonb_agg(h ORDER BY h.id), '[]') FROM order_status_history h
                 WHERE h.order_id = o.id) AS history
         FROM orders o WHERE o.id = $1 FOR UPDATE OF o",
    )
    .bind::<SqlUuid, _>(order_id)
    .bind::<Nullable<Text>, _>(key)
    .get_result(conn)
    .await
    .optional()
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(embed)]
    order: Order,
    /// The order the idempotency key confirmed.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    keyed: Option<Uuid>,
    /// The SKUs of its lines.
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
    held: Vec<String>,
    /// Its status history, oldest first (rows as JSON): the confirmation's
    /// answer is this plus the row it writes.
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    history: serde_json::Value,
}

fn trimmed(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn check_len(field: &'static str, value: &Option<String>, max: usize) -> Result<(), OrdersError> {
    match value {
        Some(v) if v.chars().count() > max => Err(OrdersError::invalid(
            field,
            format!("{field} is at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

fn check_address(
    field: &'static str,
    address: Option<Address>,
) -> Result<Option<Address>, OrdersError> {
    let Some(a) = address else {
        return Ok(None);
    };
    let required = [&a.line1, &a.city, &a.postal_code];
    if required.iter().any(|v| v.trim().is_empty()) {
        return Err(OrdersError::invalid(
            field,
            format!("{field} needs line1, city and postalCode"),
        ));
    }
    let country = a.country.trim().to_uppercase();
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(OrdersError::invalid(
            field,
            format!("{field}.country must be an ISO 3166-1 alpha-2 code like \"DE\""),
        ));
    }
    for value in [&a.line1, &a.city, &a.postal_code] {
        if value.chars().count() > 200 {
            return Err(OrdersError::invalid(
                field,
                format!("{field} fields are at most 200 characters"),
            ));
        }
    }
    Ok(Some(Address {
        name: trimmed(a.name),
        line1: a.line1.trim().to_owned(),
        line2: trimmed(a.line2),
        city: a.city.trim().to_owned(),
        region: trimmed(a.region),
        postal_code: a.postal_code.trim().to_owned(),
        country,
    }))
}

fn validate(input: Confirmation) -> Result<Confirmation, OrdersError> {
    let key = trimmed(input.idempotency_key);
    check_len("idempotencyKey", &key, 200)?;
    let notes = trimmed(input.notes);
    check_len("notes", &notes, 1000)?;
    let email = trimmed(input.customer.email);
    if email
        .as_deref()
        .is_some_and(|e| !e.contains('@') || e.len() > 254)
    {
        return Err(OrdersError::invalid(
            "customer.email",
            "not an e-mail address",
        ));
    }
    let phone = trimmed(input.customer.phone);
    check_len("customer.phone", &phone, 40)?;
    let shipping = check_address("customer.shippingAddress", input.customer.shipping_address)?;
    let billing = check_address("customer.billingAddress", input.customer.billing_address)?
        .or_else(|| shipping.clone());
    Ok(Confirmation {
        idempotency_key: key,
        payment_token: trimmed(input.payment_token),
        customer: Customer {
            email,
            phone,
            shipping_address: shipping,
            billing_address: billing,
        },
        notes,
        bearer: input.bearer,
    })
}
