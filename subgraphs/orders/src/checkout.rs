//! `previewOrder`: validate the lines, reserve them in inventory under the
//! order's id, then write the order RESERVED, in that order. And editing a
//! reserved order: its reservation follows its lines.
//!
//! Reserving first means a crash between the two steps leaves only a
//! reservation nobody refers to, and inventory's sweeper returns its stock
//! when it lapses; writing first would leave an order claiming stock it never
//! got. Nothing is written when inventory refuses.

use std::{collections::HashMap, sync::atomic::Ordering};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use kit::auth::Claims;

use crate::{
    OrdersState, cart,
    db::{
        Item, Line, Order, StatusChange,
        schema::{order_items, orders},
    },
    error::OrdersError,
    lifecycle::{self, OrderStatus},
    lines, order,
    stock::Priced,
    transitions,
};

/// A change to a reserved order's lines.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Adds units of a product (a new line, or more of one).
    Add { sku: String, quantity: i32 },
    /// Sets a line's quantity.
    Set { sku: String, quantity: i32 },
    /// Removes a line.
    Remove { sku: String },
}

/// Edits a RESERVED order (its customer or an admin): inventory's
/// reservation is set to the new lines first (more held, or given back; all
/// or nothing), then the lines and estimated totals are rewritten. Any other
/// status → `INVALID_STATE`.
pub async fn edit(
    st: &OrdersState,
    claims: &Claims,
    order_id: Uuid,
    edit: Edit,
) -> Result<Order, OrdersError> {
    let mut conn = st.pool.get().await?;
    let (order, lapsed) = conn
        .transaction(async |conn| {
            let order = order::lock_visible(conn, order_id, claims).await?;
            if order.status != OrderStatus::Reserved {
                return Err(OrdersError::InvalidState(format!(
                    "order {} {}; only reserved orders can be edited",
                    order.number,
                    order.status.describe()
                )));
            }
            if order.reserved_until.is_some_and(|t| t <= Utc::now()) {
                return Ok((transitions::expire(st, conn, &order).await?, true));
            }
            let current: Vec<Line> = order::items_of(conn, &[order.id])
                .await?
                .into_iter()
                .map(|i| Line {
                    sku: i.sku,
                    quantity: i.quantity,
                })
                .collect();
            let wanted = apply(current, edit)?;
            st.stock.adjust(order.id, &wanted).await?;
            let quote = estimate(st, order.id, &wanted).await;
            replace_items(conn, order.id, &wanted, quote.as_ref(), &HashMap::new()).await?;
            let totals = quote.as_ref().map(|q| st.charges.totals(q.subtotal));
            let order: Order = diesel::update(orders::table.find(order.id))
                .set((
                    orders::subtotal.eq(totals.map(|t| t.subtotal)),
                    orders::tax.eq(totals.map(|t| t.tax)),
                    orders::shipping_cost.eq(totals.map(|t| t.shipping)),
                    orders::total.eq(totals.map(|t| t.total)),
                    orders::updated_at.eq(Utc::now()),
                ))
                .returning(Order::as_returning())
                .get_result(conn)
                .await?;
            Ok((order, false))
        })
        .await?;
    if lapsed {
        st.relay.wake();
        return Err(OrdersError::InvalidState(format!(
            "order {} expired: its reservation lapsed",
            order.number
        )));
    }
    Ok(order)
}

/// The lines after `edit`, checked like a new order's.
fn apply(mut current: Vec<Line>, edit: Edit) -> Result<Vec<Line>, OrdersError> {
    match edit {
        Edit::Add { sku, quantity } => {
            lines::check_quantity(quantity)?;
            current.push(Line { sku, quantity });
        }
        Edit::Set { sku, quantity } => {
            lines::check_quantity(quantity)?;
            let sku = lines::normalize_sku(&sku)?;
            let line = current.iter_mut().find(|l| l.sku == sku).ok_or_else(|| {
                OrdersError::invalid("sku", format!("the order has no {sku} line"))
            })?;
            line.quantity = quantity;
        }
        Edit::Remove { sku } => {
            let sku = lines::normalize_sku(&sku)?;
            let before = current.len();
            current.retain(|l| l.sku != sku);
            if current.len() == before {
                return Err(OrdersError::invalid(
                    "sku",
                    format!("the order has no {sku} line"),
                ));
            }
            if current.is_empty() {
                return Err(OrdersError::invalid(
                    "sku",
                    "an order keeps at least one line: cancel it instead",
                ));
            }
        }
    }
    lines::normalize(&current)
}

/// Reserves `items` (or the cart's lines when `None`) for `customer` and
/// writes the order RESERVED with estimated prices.
pub async fn preview(
    st: &OrdersState,
    customer: Uuid,
    items: Option<Vec<Line>>,
) -> Result<(Order, order::Known), OrdersError> {
    let (lines, from_cart) = match items {
        Some(items) => (lines::normalize(&items)?, false),
        None => {
            let mut conn = st.pool.get().await?;
            let cart = cart::lines(&mut conn, customer).await?;
            if cart.is_empty() {
                return Err(OrdersError::invalid(
                    "items",
                    "the cart is empty: pass items or add to the cart first",
                ));
            }
            (lines::normalize(&cart)?, true)
        }
    };
    let order_id = Uuid::now_v7();
    let (reserved_until, quote) = st
        .stock
        .reserve(order_id, &lines, st.reservation_ttl)
        .await?;
    // From here on, a failure leaks nothing: the reservation lapses on its own.
    if std::sync::atomic::AtomicBool::load(&st.faults.fail_after_reserve, Ordering::SeqCst) {
        return Err(OrdersError::Internal(anyhow::anyhow!(
            "injected failure between reserving and writing order {order_id}"
        )));
    }
    let written = write(
        st,
        order_id,
        customer,
        &lines,
        reserved_until,
        quote.as_ref(),
        from_cart,
    )
    .await;
    if written.is_err() {
        // Give the stock back now rather than when the reservation lapses.
        if let Err(err) = st.stock.release(order_id).await {
            tracing::warn!(%order_id, error = %err, "release after a failed write; the reservation will lapse");
        }
    }
    let written = written?;
    st.relay.wake();
    Ok(written)
}

/// Writes the order RESERVED with its lines, history row and
/// `order.status_changed` event: one raw statement, prepared once per
/// connection and committed on its own (no transaction around it).
async fn write(
    st: &OrdersState,
    order_id: Uuid,
    customer: Uuid,
    lines: &[Line],
    reserved_until: DateTime<Utc>,
    quote: Option<&Priced>,
    from_cart: bool,
) -> Result<(Order, order::Known), OrdersError> {
    use diesel::sql_types::{
        Array, Bool, Int4, Jsonb, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid,
    };
    let totals = quote.map(|q| st.charges.totals(q.subtotal));
    // Microseconds, as the row keeps it (the answer is built here).
    let at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let cents = |amount: Option<rust_decimal::Decimal>| {
        amount.map(|mut amount| {
            amount.rescale(2);
            amount
        })
    };
    let mut order = Order {
        id: order_id,
        // Given by the database: the statement writes it into the event.
        number: String::new(),
        customer_id: customer,
        status: OrderStatus::Reserved,
        subtotal: cents(totals.map(|t| t.subtotal)),
        tax: cents(totals.map(|t| t.tax)),
        shipping_cost: cents(totals.map(|t| t.shipping)),
        total: cents(totals.map(|t| t.total)),
        reserved_until: Some(reserved_until),
        confirmed_at: None,
        customer_snapshot: None,
        notes: None,
        cancel_reason: None,
        from_cart,
        created_at: at,
        updated_at: at,
    };
    let event = lifecycle::status_changed(&order, None, at, &lifecycle::Why::default(), None);
    let priced = |sku: &str| quote.and_then(|q| q.lines.iter().find(|p| p.sku == sku));
    let skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.quantity).collect();
    let prices: Vec<Option<rust_decimal::Decimal>> = lines
        .iter()
        .map(|l| priced(&l.sku).map(|p| p.unit_price))
        .collect();
    let line_totals: Vec<Option<rust_decimal::Decimal>> = lines
        .iter()
        .map(|l| priced(&l.sku).map(|p| p.line_total))
        .collect();
    let mut conn = st.pool.get().await?;
    let written: Written = kit::prepared::prepared(
        "WITH o AS (
             INSERT INTO orders (id, customer_id, status, subtotal, tax, shipping_cost, total,
                                 reserved_until, from_cart, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
             RETURNING id, number, status, created_at
         ), items AS (
             INSERT INTO order_items (order_id, sku, quantity, unit_price, line_total)
             SELECT o.id, i.sku, i.quantity, i.unit_price, i.line_total
             FROM o, unnest($11::text[], $12::int4[], $13::numeric[], $14::numeric[])
                  AS i(sku, quantity, unit_price, line_total)
         ), h AS (
             INSERT INTO order_status_history (order_id, from_status, to_status, at)
             SELECT id, NULL, status, created_at FROM o
             RETURNING id
         ), e AS (
             INSERT INTO outbox (topic, key, payload)
             SELECT $15, $16, $17::jsonb || jsonb_build_object('number', number) FROM o
         )
         SELECT number, (SELECT id FROM h) AS history_id FROM o",
    )
    .bind::<SqlUuid, _>(order_id)
    .bind::<SqlUuid, _>(customer)
    .bind::<Text, _>(OrderStatus::Reserved.as_str())
    .bind::<Nullable<Numeric>, _>(totals.map(|t| t.subtotal))
    .bind::<Nullable<Numeric>, _>(totals.map(|t| t.tax))
    .bind::<Nullable<Numeric>, _>(totals.map(|t| t.shipping))
    .bind::<Nullable<Numeric>, _>(totals.map(|t| t.total))
    .bind::<Timestamptz, _>(reserved_until)
    .bind::<Bool, _>(from_cart)
    .bind::<Timestamptz, _>(at)
    .bind::<Array<Text>, _>(skus)
    .bind::<Array<Int4>, _>(quantities)
    .bind::<Array<Nullable<Numeric>>, _>(prices)
    .bind::<Array<Nullable<Numeric>>, _>(line_totals)
    .bind::<Text, _>(event.topic)
    .bind::<Text, _>(&event.key)
    .bind::<Jsonb, _>(&event.payload)
    .get_result(&mut conn)
    .await?;
    order.number = written.number;
    // The answer's lines and history are what was just written.
    let mut items: Vec<Item> = lines
        .iter()
        .map(|l| Item {
            order_id,
            sku: l.sku.clone(),
            quantity: l.quantity,
            unit_price: cents(priced(&l.sku).map(|p| p.unit_price)),
            line_total: cents(priced(&l.sku).map(|p| p.line_total)),
            product_name: None,
        })
        .collect();
    items.sort_unstable_by(|a, b| a.sku.cmp(&b.sku));
    let known = order::Known {
        items: Some(items),
        payment: Some(None),
        refunds: None,
        history: Some(vec![StatusChange {
            id: written.history_id,
            order_id,
            from_status: None,
            to_status: OrderStatus::Reserved.as_str().to_owned(),
            reason: None,
            actor_id: None,
            at,
        }]),
    };
    Ok((order, known))
}

/// What [`write`] answers: the number the database gave the order, and the
/// id of its history row.
#[derive(QueryableByName)]
struct Written {
    #[diesel(sql_type = diesel::sql_types::Text)]
    number: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    history_id: i64,
}

/// What the lines would cost if committed now, counting the order's own
/// reservation as its own; `None` (unpriced) when inventory cannot say.
pub(crate) async fn estimate(st: &OrdersState, order_id: Uuid, lines: &[Line]) -> Option<Priced> {
    match st.stock.price(lines, Some(order_id)).await {
        Ok(quote) => Some(quote),
        Err(err) => {
            tracing::warn!(%order_id, error = %err, "no price estimate for the order");
            None
        }
    }
}

/// Replaces the order's items with `lines`, priced from `quote` when given.
pub(crate) async fn replace_items(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    lines: &[Line],
    quote: Option<&Priced>,
    names: &HashMap<String, String>,
) -> QueryResult<()> {
    diesel::delete(order_items::table.filter(order_items::order_id.eq(order_id)))
        .execute(conn)
        .await?;
    insert_items(conn, order_id, lines, quote, names).await
}

/// A quote's lines as the arrays that price an order's items in place (one
/// `UPDATE`, part of the confirmation's last statement: see
/// [`crate::lifecycle::settle`]) where [`replace_items`] would delete and
/// insert every row. Only for a quote of exactly the SKUs the order holds (a
/// commitment of its own reservation); quantities follow the quote too.
#[derive(Default)]
pub struct Repriced<'a> {
    pub skus: Vec<&'a str>,
    pub quantities: Vec<i32>,
    pub unit_prices: Vec<rust_decimal::Decimal>,
    pub line_totals: Vec<rust_decimal::Decimal>,
    pub names: Vec<Option<&'a str>>,
}

impl<'a> Repriced<'a> {
    /// The rows of `order_id` these lines write, in SKU order, as
    /// `numeric(14, 2)` keeps the prices.
    pub fn items(&self, order_id: Uuid) -> Vec<Item> {
        let cents = |mut amount: rust_decimal::Decimal| {
            amount.rescale(2);
            Some(amount)
        };
        let mut items: Vec<Item> = (0..self.skus.len())
            .map(|n| Item {
                order_id,
                sku: self.skus[n].to_owned(),
                quantity: self.quantities[n],
                unit_price: cents(self.unit_prices[n]),
                line_total: cents(self.line_totals[n]),
                product_name: self.names[n].map(str::to_owned),
            })
            .collect();
        items.sort_unstable_by(|a, b| a.sku.cmp(&b.sku));
        items
    }

    pub fn new(quote: &'a Priced, names: &'a HashMap<String, String>) -> Self {
        let lines = &quote.lines;
        Self {
            skus: lines.iter().map(|l| l.sku.as_str()).collect(),
            quantities: lines.iter().map(|l| l.quantity).collect(),
            unit_prices: lines.iter().map(|l| l.unit_price).collect(),
            line_totals: lines.iter().map(|l| l.line_total).collect(),
            names: lines
                .iter()
                .map(|l| names.get(&l.sku).map(String::as_str))
                .collect(),
        }
    }
}

/// Writes `lines` as the items of an order that has none, priced from
/// `quote` and named from `names` where they say.
async fn insert_items(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    lines: &[Line],
    quote: Option<&Priced>,
    names: &HashMap<String, String>,
) -> QueryResult<()> {
    let rows: Vec<_> = lines
        .iter()
        .map(|line| {
            let priced = quote.and_then(|q| q.lines.iter().find(|p| p.sku == line.sku));
            (
                order_items::order_id.eq(order_id),
                order_items::sku.eq(&line.sku),
                order_items::quantity.eq(line.quantity),
                order_items::unit_price.eq(priced.map(|p| p.unit_price)),
                order_items::line_total.eq(priced.map(|p| p.line_total)),
                order_items::product_name.eq(names.get(&line.sku)),
            )
        })
        .collect();
    diesel::insert_into(order_items::table)
        .values(rows)
        .execute(conn)
        .await?;
    Ok(())
}
