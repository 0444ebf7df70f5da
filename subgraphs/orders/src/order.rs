//! Reading orders: one by id (optionally locked), their items, payments and history.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use kit::auth::{Claims, Role};
use uuid::Uuid;

use crate::{
    db::{
        Item, Order, Payment, Refund, StatusChange,
        schema::{order_status_history, orders},
    },
    error::OrdersError,
};

/// Whether `claims` may see `order`: its customer or an admin.
pub fn visible_to(order: &Order, claims: &Claims) -> bool {
    order.customer_id == claims.sub || claims.role == Role::Admin
}

/// Whether `claims` may read `order`: whoever may see it, and a TRUCK once
/// the order is paid and on its way to delivery (what a delivery needs of
/// it; [`delivery_only`] hides the rest).
pub fn readable_by(order: &Order, claims: &Claims) -> bool {
    use crate::lifecycle::OrderStatus::*;
    visible_to(order, claims)
        || (claims.role == Role::Truck
            && matches!(
                order.status,
                Confirmed | Processing | Shipped | Delivered | DeliveryFailed
            ))
}

/// Whether `claims` reads orders as a delivery does: a TRUCK sees the
/// number, items and quantities, the delivery address and contact phone,
/// and nothing of prices, payments or billing.
pub fn delivery_only(claims: &Claims) -> bool {
    claims.role == Role::Truck
}

/// The order, if it exists.
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Order>> {
    orders::table
        .find(id)
        .select(Order::as_select())
        .first(conn)
        .await
        .optional()
}

/// Orders by id (any order).
pub async fn find_many(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<Order>> {
    orders::table
        .filter(orders::id.eq_any(ids))
        .select(Order::as_select())
        .load(conn)
        .await
}

/// Locks the order for the caller's transaction; `NotFound` when it does not
/// exist or `claims` may not see it (others learn nothing about it).
pub async fn lock_visible(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    claims: &Claims,
) -> Result<Order, OrdersError> {
    orders::table
        .find(id)
        .select(Order::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .filter(|order| visible_to(order, claims))
        .ok_or(OrdersError::NotFound)
}

/// What a write knows of the order it answers with, so the answer's fields
/// need not be read back: a checkout's preview and confirmation build these
/// from the rows they wrote (each read saved is a statement and a pooled
/// connection per field). `None` is unknown: the field reads the database.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// The lines, in SKU order.
    pub items: Option<Vec<Item>>,
    /// `Some(None)`: known to have no payment.
    pub payment: Option<Option<Payment>>,
    /// The refunds of `payment`.
    pub refunds: Option<Vec<Refund>>,
    /// Every status change, oldest first.
    pub history: Option<Vec<StatusChange>>,
}

/// Items of several orders, in SKU order (byte order, as Rust sorts
/// strings, whatever the server's locale: [`Known`] lines compare equal).
///
/// Each order's lines are looked up by key (the `OFFSET 0` keeps the lookup
/// per order). A prepared `order_id = ANY($1)` keeps the generic plan it was
/// first given, and on a young table (no statistics yet, as in a new
/// deployment's first minutes) that plan reads the whole table on every
/// call, more of it as the table grows.
///
/// One order (a mutation's answer, a single `order` query) takes a statement
/// of its own: with the array, PostgreSQL plans every call anew (0.13 ms,
/// more than the lookup) because only a custom plan knows its length.
pub async fn items_of(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<Item>> {
    if let [id] = ids {
        return kit::prepared::prepared(
            "SELECT * FROM order_items WHERE order_id = $1 ORDER BY sku COLLATE \"C\"",
        )
        .bind::<diesel::sql_types::Uuid, _>(id)
        .load(conn)
        .await;
    }
    kit::prepared::prepared(
        "SELECT i.* FROM unnest($1::uuid[]) AS k(id)
         CROSS JOIN LATERAL (SELECT * FROM order_items WHERE order_id = k.id OFFSET 0) i
         ORDER BY i.order_id, i.sku COLLATE \"C\"",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(ids)
    .load(conn)
    .await
}

/// Every status change of an order, oldest first.
pub async fn history_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Vec<StatusChange>> {
    order_status_history::table
        .filter(order_status_history::order_id.eq(id))
        .order(order_status_history::id)
        .select(StatusChange::as_select())
        .load(conn)
        .await
}
