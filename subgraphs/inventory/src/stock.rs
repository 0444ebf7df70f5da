//! Stock as clients see it (on hand, reserved, available, next unit's price)
//! in one query for any number of SKUs, and the admin's manual adjustments.

use std::collections::HashMap;

use diesel::{prelude::*, sql_types};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use crate::{
    db::{Batch, schema::batches},
    error::{InventoryError, Shortfall},
    items,
    ledger::{self, Kind, Movement},
    pricing::{self, Sellable},
};

/// The stock of one SKU.
#[derive(QueryableByName, Clone, Debug, PartialEq, Eq)]
pub struct StockView {
    #[diesel(sql_type = sql_types::Text)]
    pub sku: String,
    #[diesel(sql_type = sql_types::Int4)]
    pub on_hand: i32,
    #[diesel(sql_type = sql_types::Int4)]
    pub reserved: i32,
    #[diesel(sql_type = sql_types::Int4)]
    pub expired: i32,
    #[diesel(sql_type = sql_types::Nullable<sql_types::Numeric>)]
    pub margin: Option<Decimal>,
    /// Cost of the next unit a new order would get (first expiry first, after reserved units).
    #[diesel(sql_type = sql_types::Nullable<sql_types::Numeric>)]
    pub next_unit_cost: Option<Decimal>,
}

impl StockView {
    /// Units in unexpired batches not held by reservations.
    pub fn available(&self) -> i32 {
        (self.on_hand - self.expired - self.reserved).max(0)
    }

    /// The next unit's cost-plus price; `None` when nothing is available.
    pub fn unit_price(&self, default_margin: Decimal) -> Option<Decimal> {
        let cost = self.next_unit_cost?;
        let margin = pricing::effective_margin(self.margin, default_margin);
        Some(pricing::round_money(cost * (Decimal::ONE + margin)))
    }

    /// What an SKU inventory has never heard of shows.
    pub fn empty(sku: &str) -> Self {
        Self {
            sku: sku.to_owned(),
            on_hand: 0,
            reserved: 0,
            expired: 0,
            margin: None,
            next_unit_cost: None,
        }
    }
}

/// Stock of every SKU in `skus` that inventory knows, in one query.
pub async fn views(
    conn: &mut AsyncPgConnection,
    skus: &[String],
) -> QueryResult<HashMap<String, StockView>> {
    let rows: Vec<StockView> = kit::prepared::prepared(
        "SELECT i.sku, i.on_hand, i.reserved, i.margin,
                COALESCE(e.expired, 0)::int4 AS expired,
                n.unit_cost AS next_unit_cost
         FROM items i
         LEFT JOIN LATERAL (
             SELECT SUM(b.remaining) AS expired FROM batches b
             WHERE b.sku = i.sku AND NOT b.sold_out AND b.expiry_date < CURRENT_DATE
         ) e ON true
         LEFT JOIN LATERAL (
             SELECT x.unit_cost FROM (
                 SELECT b.unit_cost,
                        SUM(b.remaining) OVER (ORDER BY b.expiry_date NULLS LAST, b.received_at, b.id) AS upto
                 FROM batches b
                 WHERE b.sku = i.sku AND NOT b.sold_out
                   AND (b.expiry_date IS NULL OR b.expiry_date >= CURRENT_DATE)
             ) x WHERE x.upto > i.reserved ORDER BY x.upto LIMIT 1
         ) n ON true
         WHERE i.sku = ANY($1)",
    )
    .bind::<sql_types::Array<sql_types::Text>, _>(skus)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|v| (v.sku.clone(), v)).collect())
}

/// Batches of `sku`, newest first (admin view).
pub async fn batches_of(conn: &mut AsyncPgConnection, sku: &str) -> QueryResult<Vec<Batch>> {
    batches::table
        .filter(batches::sku.eq(sku))
        .order((batches::received_at.desc(), batches::id.desc()))
        .select(Batch::as_select())
        .load(conn)
        .await
}

/// Corrects on-hand stock by `delta` with a reason (a count found more or
/// fewer units). Removals take from the batches that expire first; additions
/// go to the most recent unexpired batch. On-hand never drops below reserved.
pub async fn adjust(
    conn: &mut AsyncPgConnection,
    sku: &str,
    delta: i32,
    reason: &str,
) -> Result<(), InventoryError> {
    let sku = items::normalize_sku(sku)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(InventoryError::invalid(
            "reason",
            "a reason of 1 to 200 characters is required",
        ));
    }
    if delta == 0 || delta.unsigned_abs() > 1_000_000 {
        return Err(InventoryError::invalid(
            "delta",
            "delta must be non-zero and at most 1000000 units",
        ));
    }
    conn.transaction(async |conn| {
        let locked = items::lock(conn, std::slice::from_ref(&sku)).await?;
        let item = &locked[&sku];
        let reference = Some(format!("adjustment: {reason}"));
        let mut movements = Vec::new();
        if delta < 0 {
            let sellable = item.on_hand - item.expired - item.reserved;
            if sellable + delta < 0 {
                return Err(InventoryError::Shortfall(vec![Shortfall {
                    sku: sku.clone(),
                    requested: -delta,
                    available: sellable.max(0),
                }]));
            }
            let sellable_batches: Vec<Sellable> =
                pricing::sellable_batches(conn, &sku, true).await?;
            let draws = pricing::draw(&sellable_batches, 0, -delta)
                .ok_or_else(|| anyhow::anyhow!("counters and batches of {sku} disagree"))?;
            for draw in draws {
                diesel::update(batches::table.find(draw.batch_id))
                    .set(batches::remaining.eq(batches::remaining - draw.quantity))
                    .execute(conn)
                    .await?;
                movements.push(Movement {
                    sku: sku.clone(),
                    kind: Kind::Adjustment,
                    on_hand_delta: -draw.quantity,
                    reserved_delta: 0,
                    batch_id: Some(draw.batch_id),
                    reference: reference.clone(),
                });
            }
        } else {
            let newest: Option<uuid::Uuid> = batches::table
                .filter(batches::sku.eq(&sku))
                .filter(
                    batches::expiry_date
                        .is_null()
                        .or(batches::expiry_date.ge(crate::db::today())),
                )
                .order((batches::received_at.desc(), batches::id.desc()))
                .select(batches::id)
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let batch_id = newest.ok_or_else(|| {
                InventoryError::invalid(
                    "delta",
                    format!("{sku} has no unexpired batch to add to; restock instead"),
                )
            })?;
            diesel::update(batches::table.find(batch_id))
                .set((
                    batches::remaining.eq(batches::remaining + delta),
                    batches::quantity.eq(batches::quantity + delta),
                ))
                .execute(conn)
                .await?;
            movements.push(Movement {
                sku: sku.clone(),
                kind: Kind::Adjustment,
                on_hand_delta: delta,
                reserved_delta: 0,
                batch_id: Some(batch_id),
                reference,
            });
        }
        ledger::apply(conn, &movements).await?;
        Ok(())
    })
    .await
}
