//! Stockable items: which SKUs inventory knows (catalog registers them), the
//! margin each is sold at, and the row lock every stock decision is made under.

use std::collections::BTreeMap;

use diesel::{prelude::*, sql_types};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use crate::{
    db::schema::{items, stock_movements},
    error::InventoryError,
};

/// Upper-cased and checked against `[A-Z0-9_-]{1,32}`.
pub fn normalize_sku(raw: &str) -> Result<String, InventoryError> {
    kit::lines::normalize_sku(raw).ok_or_else(|| sku_error(raw))
}

/// `BAD_USER_INPUT` on `sku` for `raw`.
pub(crate) fn sku_error(raw: &str) -> InventoryError {
    InventoryError::invalid("sku", format!("{:?} is not a valid SKU", raw.trim()))
}

/// An item row read under `FOR UPDATE`, with the units in expired batches not yet written off.
#[derive(QueryableByName, Clone, Debug)]
pub struct LockedItem {
    #[diesel(sql_type = sql_types::Text)]
    pub sku: String,
    #[diesel(sql_type = sql_types::Bool)]
    pub active: bool,
    #[diesel(sql_type = sql_types::Int4)]
    pub on_hand: i32,
    #[diesel(sql_type = sql_types::Int4)]
    pub reserved: i32,
    #[diesel(sql_type = sql_types::Nullable<sql_types::Numeric>)]
    pub margin: Option<Decimal>,
    #[diesel(sql_type = sql_types::Int4)]
    pub expired: i32,
}

impl LockedItem {
    /// Units that can still be promised: unexpired stock not held by reservations.
    pub fn available(&self) -> i32 {
        (self.on_hand - self.expired - self.reserved).max(0)
    }
}

/// Locks the items of `skus` in SKU order (so concurrent callers never
/// deadlock) and returns them by SKU; `UnknownSku` names any that do not exist.
/// `NO KEY UPDATE`: the key-share locks that inserts referencing an item take
/// (a reservation's lines, ledger rows) must not queue behind this lock.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    skus: &[String],
) -> Result<BTreeMap<String, LockedItem>, InventoryError> {
    let rows: Vec<LockedItem> = kit::prepared::prepared(
        "SELECT i.sku, i.active, i.on_hand, i.reserved, i.margin,
                COALESCE((SELECT SUM(b.remaining) FROM batches b
                          WHERE b.sku = i.sku AND NOT b.sold_out AND b.expiry_date < CURRENT_DATE), 0)::int4
                    AS expired
         FROM items i WHERE i.sku = ANY($1) ORDER BY i.sku FOR NO KEY UPDATE OF i",
    )
    .bind::<sql_types::Array<sql_types::Text>, _>(skus)
    .load(conn)
    .await?;
    let found: BTreeMap<String, LockedItem> =
        rows.into_iter().map(|r| (r.sku.clone(), r)).collect();
    let missing: Vec<String> = skus
        .iter()
        .filter(|s| !found.contains_key(*s))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(InventoryError::UnknownSku(missing))
    }
}

/// Registers `sku` (or changes whether it is for sale). Idempotent.
pub async fn upsert(
    conn: &mut AsyncPgConnection,
    sku: &str,
    active: bool,
) -> Result<(String, bool), InventoryError> {
    let sku = normalize_sku(sku)?;
    diesel::insert_into(items::table)
        .values((items::sku.eq(&sku), items::active.eq(active)))
        .on_conflict(items::sku)
        .do_update()
        .set((
            items::active.eq(active),
            items::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok((sku, active))
}

/// Deletes an item that never moved stock (true), or deactivates one that did (false).
pub async fn retire(conn: &mut AsyncPgConnection, sku: &str) -> Result<bool, InventoryError> {
    let sku = normalize_sku(sku)?;
    conn.transaction(async |conn| {
        let exists: Option<String> = items::table
            .find(&sku)
            .select(items::sku)
            .for_update()
            .first(conn)
            .await
            .optional()?;
        if exists.is_none() {
            return Ok(true);
        }
        let has_history: bool = diesel::select(diesel::dsl::exists(
            stock_movements::table.filter(stock_movements::sku.eq(&sku)),
        ))
        .get_result(conn)
        .await?;
        if has_history {
            diesel::update(items::table.find(&sku))
                .set((
                    items::active.eq(false),
                    items::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            Ok(false)
        } else {
            diesel::delete(items::table.find(&sku))
                .execute(conn)
                .await?;
            Ok(true)
        }
    })
    .await
}

/// Sets (or with `None` clears) a product's margin override: 0 to 10 (1000 %), at most 4 decimals.
pub async fn set_margin(
    conn: &mut AsyncPgConnection,
    sku: &str,
    margin: Option<Decimal>,
) -> Result<(), InventoryError> {
    let sku = normalize_sku(sku)?;
    if let Some(m) = margin
        && (m < Decimal::ZERO || m > Decimal::TEN || m.normalize().scale() > 4)
    {
        return Err(InventoryError::invalid(
            "margin",
            "margin must be between 0 and 10 with at most 4 decimals",
        ));
    }
    // The price changes with the margin: the same statement writes the event.
    let updated = kit::prepared::prepared(concat!(
        "WITH changed AS (
             UPDATE items SET margin = $2, updated_at = now() WHERE sku = $1
             RETURNING sku, on_hand, reserved, margin)",
        crate::events::insert_stock_changed!()
    ))
    .bind::<sql_types::Text, _>(&sku)
    .bind::<sql_types::Nullable<sql_types::Numeric>, _>(margin)
    .execute(conn)
    .await?;
    if updated == 0 {
        return Err(InventoryError::UnknownSku(vec![sku]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_upper_cased_and_checked() {
        assert_eq!(normalize_sku(" apple-1 ").unwrap(), "APPLE-1");
        for bad in [
            "",
            "has space",
            "ÄPFEL",
            "straße",
            &"X".repeat(33),
            "semi;colon",
        ] {
            assert!(normalize_sku(bad).is_err(), "{bad}");
        }
    }
}
