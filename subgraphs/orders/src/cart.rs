//! The cart: lines a customer collects before `previewOrder`, priced live by
//! inventory's `GetPrice` whenever it is read.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{
    OrdersState,
    db::{Line, schema::cart_lines},
    error::OrdersError,
    lines::{self, MAX_LINES, MAX_QUANTITY},
    stock::Priced,
};

/// A cart line with its current price; unpriced when not enough is in stock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CartLine {
    pub sku: String,
    pub quantity: i32,
    pub unit_price: Option<Decimal>,
    pub line_total: Option<Decimal>,
    /// Units that could be ordered now, when fewer than `quantity`.
    pub available: Option<i32>,
}

/// The cart as shown: lines and the sum of the priced ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    pub subtotal: Decimal,
}

/// The cart's lines, in SKU order.
pub async fn lines(conn: &mut AsyncPgConnection, customer: Uuid) -> QueryResult<Vec<Line>> {
    Ok(cart_lines::table
        .filter(cart_lines::customer_id.eq(customer))
        .order(cart_lines::sku)
        .select((cart_lines::sku, cart_lines::quantity))
        .load::<(String, i32)>(conn)
        .await?
        .into_iter()
        .map(|(sku, quantity)| Line { sku, quantity })
        .collect())
}

/// How a change sets a line's quantity.
#[derive(Clone, Copy, Debug)]
pub enum Set {
    /// Adds to what is there.
    Add(i32),
    /// Replaces what is there.
    To(i32),
}

/// Adds to or sets a line. The SKU must be known to inventory and for sale
/// (stock may be short: a cart holds nothing).
pub async fn put(st: &OrdersState, customer: Uuid, sku: &str, set: Set) -> Result<(), OrdersError> {
    let sku = lines::normalize_sku(sku)?;
    let (Set::Add(quantity) | Set::To(quantity)) = set;
    lines::check_quantity(quantity)?;
    match st
        .stock
        .price(
            &[Line {
                sku: sku.clone(),
                quantity: 1,
            }],
            None,
        )
        .await
    {
        Ok(_) | Err(OrdersError::Shortfall(_)) => {}
        Err(OrdersError::Invalid { message, .. }) => {
            return Err(OrdersError::invalid("sku", message));
        }
        Err(e) => return Err(e),
    }
    let mut conn = st.pool.get().await?;
    conn.transaction(async |conn| {
        // Serialises changes of one customer's cart, so the line limit holds.
        kit::prepared::prepared("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))")
            .bind::<diesel::sql_types::Text, _>(customer.to_string())
            .execute(conn)
            .await?;
        let current = lines(conn, customer).await?;
        let existing = current.iter().find(|l| l.sku == sku).map(|l| l.quantity);
        let new = match set {
            Set::Add(q) => existing.unwrap_or(0) + q,
            Set::To(q) => q,
        };
        if new > MAX_QUANTITY {
            return Err(OrdersError::invalid(
                "quantity",
                format!("at most {MAX_QUANTITY} units of one SKU"),
            ));
        }
        if existing.is_none() && current.len() >= MAX_LINES {
            return Err(OrdersError::invalid(
                "sku",
                format!("a cart holds at most {MAX_LINES} lines"),
            ));
        }
        diesel::insert_into(cart_lines::table)
            .values((
                cart_lines::customer_id.eq(customer),
                cart_lines::sku.eq(&sku),
                cart_lines::quantity.eq(new),
            ))
            .on_conflict((cart_lines::customer_id, cart_lines::sku))
            .do_update()
            .set(cart_lines::quantity.eq(new))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

/// Removes one line (no error when it is not there).
pub async fn remove(
    conn: &mut AsyncPgConnection,
    customer: Uuid,
    sku: &str,
) -> Result<(), OrdersError> {
    let sku = lines::normalize_sku(sku)?;
    diesel::delete(
        cart_lines::table
            .filter(cart_lines::customer_id.eq(customer))
            .filter(cart_lines::sku.eq(sku)),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes `skus` from the cart (all lines when `None`).
pub async fn clear(
    conn: &mut AsyncPgConnection,
    customer: Uuid,
    skus: Option<&[String]>,
) -> QueryResult<usize> {
    let mine = cart_lines::table.filter(cart_lines::customer_id.eq(customer));
    match skus {
        Some(skus) => {
            diesel::delete(mine.filter(cart_lines::sku.eq_any(skus)))
                .execute(conn)
                .await
        }
        None => diesel::delete(mine).execute(conn).await,
    }
}

/// The cart priced as committing it now would. Lines short of stock are left
/// unpriced (with what is available) and the rest priced without them.
pub async fn priced(st: &OrdersState, customer: Uuid) -> Result<Cart, OrdersError> {
    let lines = {
        let mut conn = st.pool.get().await?;
        lines(&mut conn, customer).await?
    };
    if lines.is_empty() {
        return Ok(Cart {
            lines: Vec::new(),
            subtotal: Decimal::ZERO,
        });
    }
    let (quote, short) = match st.stock.price(&lines, None).await {
        Ok(quote) => (quote, Vec::new()),
        Err(OrdersError::Shortfall(short)) => {
            let rest: Vec<Line> = lines
                .iter()
                .filter(|l| !short.iter().any(|s| s.sku == l.sku))
                .cloned()
                .collect();
            let quote = match rest.is_empty() {
                true => Priced {
                    lines: Vec::new(),
                    subtotal: Decimal::ZERO,
                },
                false => st.stock.price(&rest, None).await?,
            };
            (quote, short)
        }
        Err(e) => return Err(e),
    };
    Ok(Cart {
        lines: lines
            .into_iter()
            .map(|line| {
                let priced = quote.lines.iter().find(|p| p.sku == line.sku);
                CartLine {
                    unit_price: priced.map(|p| p.unit_price),
                    line_total: priced.map(|p| p.line_total),
                    available: short
                        .iter()
                        .find(|s| s.sku == line.sku)
                        .map(|s| s.available),
                    sku: line.sku,
                    quantity: line.quantity,
                }
            })
            .collect(),
        subtotal: quote.subtotal,
    })
}
