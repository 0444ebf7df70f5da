//! The stock ledger: every change of `on_hand` or `reserved` is written here
//! in the same transaction, so the counters can always be audited.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::stock_movements;

/// What moved the stock.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Restock,
    Reserve,
    Release,
    ExpireReservation,
    Commit,
    Return,
    Adjustment,
    Expiry,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Restock => "RESTOCK",
            Self::Reserve => "RESERVE",
            Self::Release => "RELEASE",
            Self::ExpireReservation => "EXPIRE_RESERVATION",
            Self::Commit => "COMMIT",
            Self::Return => "RETURN",
            Self::Adjustment => "ADJUSTMENT",
            Self::Expiry => "EXPIRY",
        }
    }
}

/// One ledger row to write.
#[derive(Clone, Debug)]
pub struct Movement {
    pub sku: String,
    pub kind: Kind,
    pub on_hand_delta: i32,
    pub reserved_delta: i32,
    pub batch_id: Option<Uuid>,
    pub reference: Option<String>,
}

/// Writes the movements without touching the counters (for callers that
/// update the counters themselves).
pub async fn record(conn: &mut AsyncPgConnection, movements: &[Movement]) -> QueryResult<()> {
    if movements.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = movements
        .iter()
        .map(|m| {
            (
                stock_movements::sku.eq(&m.sku),
                stock_movements::kind.eq(m.kind.as_str()),
                stock_movements::on_hand_delta.eq(m.on_hand_delta),
                stock_movements::reserved_delta.eq(m.reserved_delta),
                stock_movements::batch_id.eq(m.batch_id),
                stock_movements::reference.eq(m.reference.as_deref()),
            )
        })
        .collect();
    diesel::insert_into(stock_movements::table)
        .values(rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes the movements and applies their deltas to the item counters, with
/// a `stock.changed` event for every item whose counters moved. The caller
/// holds the item rows' locks and has already changed the batches.
pub async fn apply(conn: &mut AsyncPgConnection, movements: &[Movement]) -> QueryResult<()> {
    use diesel::sql_types::{Array, Integer, Text};
    record(conn, movements).await?;
    let mut totals: std::collections::BTreeMap<&str, (i32, i32)> = Default::default();
    for m in movements {
        let t = totals.entry(&m.sku).or_default();
        t.0 += m.on_hand_delta;
        t.1 += m.reserved_delta;
    }
    totals.retain(|_, (on_hand, reserved)| *on_hand != 0 || *reserved != 0);
    if totals.is_empty() {
        return Ok(());
    }
    let skus: Vec<&str> = totals.keys().copied().collect();
    let on_hand: Vec<i32> = totals.values().map(|t| t.0).collect();
    let reserved: Vec<i32> = totals.values().map(|t| t.1).collect();
    // One UPDATE for every SKU: the caller already holds the rows' locks,
    // so the join's row order cannot deadlock. The same statement writes
    // each SKU's `stock.changed` event.
    kit::prepared::prepared(concat!(
        "WITH changed AS (
             UPDATE items SET on_hand = items.on_hand + d.on_hand,
                    reserved = items.reserved + d.reserved, updated_at = now()
             FROM unnest($1, $2, $3) AS d(sku, on_hand, reserved) WHERE items.sku = d.sku
             RETURNING items.sku, items.on_hand, items.reserved, items.margin)",
        crate::events::insert_stock_changed!()
    ))
    .bind::<Array<Text>, _>(&skus)
    .bind::<Array<Integer>, _>(&on_hand)
    .bind::<Array<Integer>, _>(&reserved)
    .execute(conn)
    .await?;
    Ok(())
}

/// A ledger row as read back.
#[derive(Queryable, Clone, Debug)]
pub struct Recorded {
    pub id: i64,
    pub kind: String,
    pub on_hand_delta: i32,
    pub reserved_delta: i32,
    pub batch_id: Option<Uuid>,
    pub reference: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The newest `limit` movements of `sku`, newest first.
pub async fn history(
    conn: &mut AsyncPgConnection,
    sku: &str,
    limit: i64,
) -> QueryResult<Vec<Recorded>> {
    stock_movements::table
        .filter(stock_movements::sku.eq(sku))
        .order(stock_movements::id.desc())
        .limit(limit)
        .select((
            stock_movements::id,
            stock_movements::kind,
            stock_movements::on_hand_delta,
            stock_movements::reserved_delta,
            stock_movements::batch_id,
            stock_movements::reference,
            stock_movements::created_at,
        ))
        .load(conn)
        .await
}
