//! Committing a reservation: its units leave the batches that expire first,
//! each line is priced from what those units cost, and the allocation is kept
//! so a refund can put every unit back where it came from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{
    db::{
        ReservationStatus,
        schema::{allocations, batches, reservations as stored},
    },
    error::{InventoryError, Shortfall},
    items,
    ledger::{self, Kind, Movement},
    pricing::{self, Draw, JoinedBatch, Priced, PricedLine, Sellable},
    reservations::{self, ReservationView},
};

/// How often a commitment is recomputed when the batches it drew from
/// changed before it could lock them (another order took their last units).
const COMMIT_ATTEMPTS: usize = 8;

/// Turns the active reservation of `order_id` into sold stock and prices it.
/// A repeat answers the first commitment.
///
/// Optimistic: the reservation, its lines, their margins and the sellable
/// batches are read without locks, the draws (first expiry first) and the
/// prices computed here, and one statement ([`COMMIT`]), committed on its
/// own, locks the reservation, the items and the drawn batches (in that
/// order, like every writer), checks that nothing it relied on moved, and
/// writes everything. So no hot row is held across a round trip. When the
/// check fails nothing is written and the commitment is computed again.
pub async fn commit(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    default_margin: Decimal,
) -> Result<Priced, InventoryError> {
    for _ in 0..COMMIT_ATTEMPTS {
        let Some((status, expires_at, lines, sellable_of)) = reserved_lines(conn, order_id).await?
        else {
            return Err(InventoryError::UnknownOrder(order_id));
        };
        match status {
            ReservationStatus::Committed | ReservationStatus::Returned => {
                return stored_commitment(conn, order_id).await;
            }
            ReservationStatus::Active if expires_at > Utc::now() => {}
            ReservationStatus::Active => return Err(InventoryError::Expired(order_id)),
            ReservationStatus::Released | ReservationStatus::Expired => {
                return Err(InventoryError::WrongState { order_id, status });
            }
        }
        let mut priced = Vec::new();
        let mut shortfalls = Vec::new();
        let mut taken = Vec::new();
        for line in &lines {
            let sellable = sellable_of
                .get(&line.sku)
                .map(Vec::as_slice)
                .unwrap_or_default();
            // The reservation already counts among `reserved`; this order's
            // units are the first ones out, so nothing is skipped.
            let Some(draws) = pricing::draw(sellable, 0, line.quantity) else {
                // Only possible when batches expired after the reservation was made.
                shortfalls.push(Shortfall {
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    available: sellable.iter().map(|b| b.remaining).sum(),
                });
                continue;
            };
            taken.extend(draws.iter().map(|d| (line.sku.as_str(), d.clone())));
            let margin = pricing::effective_margin(line.margin, default_margin);
            priced.push(PricedLine::new(line.sku.clone(), draws, margin));
        }
        if !shortfalls.is_empty() {
            return Err(InventoryError::Shortfall(shortfalls));
        }
        let commitment = Priced::new(priced);
        if write_commitment(conn, order_id, &lines, &taken, &commitment).await? {
            return Ok(commitment);
        }
    }
    Err(InventoryError::Internal(anyhow::anyhow!(
        "the batches of order {order_id} kept changing; {COMMIT_ATTEMPTS} attempts to commit it failed"
    )))
}

/// A reserved line with its reservation's state, the margin its item had
/// when read, and one of its item's sellable batches (none when it has none).
#[derive(QueryableByName)]
struct ReservedRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    sku: String,
    #[diesel(sql_type = diesel::sql_types::Int4)]
    quantity: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Numeric>)]
    margin: Option<Decimal>,
    #[diesel(embed)]
    batch: JoinedBatch,
}

/// A reserved line and the margin its item had when read.
struct ReservedLine {
    sku: String,
    quantity: i32,
    margin: Option<Decimal>,
}

type Reserved = (
    ReservationStatus,
    DateTime<Utc>,
    Vec<ReservedLine>,
    BTreeMap<String, Vec<Sellable>>,
);

/// The reservation's status, expiry and lines (with their items' margins),
/// in SKU order, and the sellable batches of those SKUs first expiry first:
/// one read without locks; `None` when there is no such order.
async fn reserved_lines(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> QueryResult<Option<Reserved>> {
    let rows: Vec<ReservedRow> = kit::prepared::prepared(
        "SELECT r.status, r.expires_at, l.sku, l.quantity, i.margin,
                b.id, b.remaining, b.unit_cost, b.expiry_date
         FROM reservations r
         JOIN reservation_lines l ON l.order_id = r.order_id
         JOIN items i ON i.sku = l.sku
         LEFT JOIN LATERAL (
             SELECT b.id, b.remaining, b.unit_cost, b.expiry_date, b.received_at FROM batches b
             WHERE b.sku = l.sku AND NOT b.sold_out
               AND (b.expiry_date IS NULL OR b.expiry_date >= CURRENT_DATE)
         ) b ON true
         WHERE r.order_id = $1
         ORDER BY l.sku, b.expiry_date NULLS LAST, b.received_at, b.id",
    )
    .bind::<diesel::sql_types::Uuid, _>(order_id)
    .load(conn)
    .await?;
    let Some(first) = <[ReservedRow]>::first(&rows) else {
        return Ok(None);
    };
    let (status, expires_at) = (ReservationStatus::parse(&first.status), first.expires_at);
    let mut lines: Vec<ReservedLine> = Vec::new();
    let mut sellable: BTreeMap<String, Vec<Sellable>> = BTreeMap::new();
    for row in rows {
        if lines.last().is_none_or(|l| l.sku != row.sku) {
            lines.push(ReservedLine {
                sku: row.sku.clone(),
                quantity: row.quantity,
                margin: row.margin,
            });
        }
        row.batch.add_to(row.sku, &mut sellable);
    }
    Ok(Some((status, expires_at, lines, sellable)))
}

/// Writes the commitment if nothing it was computed from moved: false (and
/// nothing written) when the reservation is no longer active, an item's
/// margin changed or a drawn batch no longer has the units.
async fn write_commitment(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    lines: &[ReservedLine],
    taken: &[(&str, Draw)],
    commitment: &Priced,
) -> Result<bool, InventoryError> {
    use diesel::sql_types::{Array, Int4, Jsonb, Nullable, Numeric, Text, Uuid as SqlUuid};
    let skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.quantity).collect();
    let margins: Vec<Option<Decimal>> = lines.iter().map(|l| l.margin).collect();
    let batch_ids: Vec<Uuid> = taken.iter().map(|(_, d)| d.batch_id).collect();
    let batch_skus: Vec<&str> = taken.iter().map(|(sku, _)| *sku).collect();
    let units: Vec<i32> = taken.iter().map(|(_, d)| d.quantity).collect();
    let costs: Vec<Decimal> = taken.iter().map(|(_, d)| d.unit_cost).collect();
    let json = serde_json::to_value(commitment).map_err(anyhow::Error::from)?;
    let done: Committed = kit::prepared::prepared(COMMIT)
        .bind::<SqlUuid, _>(order_id)
        .bind::<Array<Text>, _>(&skus)
        .bind::<Array<Int4>, _>(&quantities)
        .bind::<Array<Nullable<Numeric>>, _>(&margins)
        .bind::<Array<SqlUuid>, _>(&batch_ids)
        .bind::<Array<Text>, _>(&batch_skus)
        .bind::<Array<Int4>, _>(&units)
        .bind::<Array<Numeric>, _>(&costs)
        .bind::<Jsonb, _>(&json)
        .get_result(conn)
        .await?;
    Ok(done.committed)
}

#[derive(QueryableByName)]
struct Committed {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    committed: bool,
}

/// The commitment in one statement. `$1` order id; `$2`–`$4` its lines'
/// SKUs, quantities and the margins they were priced with; `$5`–`$8` the
/// draws (batch, SKU, units, unit cost); `$9` the commitment to keep.
///
/// Locks in the writers' order: the reservation (found by its key alone,
/// then checked still active and not lapsed: with the status in the same
/// scan, statistics that say few reservations are active let the planner
/// walk the partial index of active reservations by expiry instead, with
/// every entry commits left behind until the next vacuum), its items in SKU order, the drawn batches in id order, each
/// step hanging on the one before. `verdict` then checks every item is
/// there with the margin priced, and every drawn batch is unexpired and
/// still has the units; only then is the reservation marked committed, and
/// every other write hangs on that.
///
/// A commitment writes no `stock.changed`: it moves neither availability
/// nor price. Items lose the units from both on hand and reserved, so
/// on hand − reserved − expired stays; and the units committed are the first
/// ones out, so after skipping the new `reserved` in the smaller batches the
/// next unit is the one it was (an event here only ever repeated the last
/// one: 2 of the 4 `stock.changed` of a two-line checkout, each written,
/// relayed and consumed).
///
/// Lines and draws come through `priced_lines` and `drawn_batches`, and the
/// rows to lock are found by joining them, for the reason `RESERVE` (in
/// `reservations.rs`) gives: one generic plan per connection instead of
/// planning every call.
const COMMIT: &str = "WITH held AS (
         SELECT order_id, status, expires_at FROM reservations WHERE order_id = $1 FOR UPDATE
     ), r AS (
         SELECT order_id FROM held WHERE status = 'ACTIVE' AND expires_at > now()
     ), want AS (
         SELECT * FROM priced_lines($2::text[], $3::int4[], $4::numeric[]) AS w(sku, quantity, margin)
     ), li AS (
         SELECT i.sku, i.margin FROM items i
         WHERE i.sku IN (SELECT sku FROM want) AND EXISTS (SELECT 1 FROM r) ORDER BY i.sku FOR UPDATE
     ), draws AS (
         SELECT * FROM drawn_batches($5::uuid[], $6::text[], $7::int4[], $8::numeric[])
                AS d(batch_id, sku, quantity, unit_cost)
     ), lb AS (
         SELECT b.id, b.remaining, b.expiry_date FROM batches b
         WHERE b.id IN (SELECT batch_id FROM draws) AND (SELECT count(*) FROM li) > 0 ORDER BY b.id FOR UPDATE
     ), verdict AS (
         SELECT (SELECT count(*) FROM want w JOIN li ON li.sku = w.sku
                 WHERE li.margin IS NOT DISTINCT FROM w.margin) = (SELECT count(*) FROM want)
            AND (SELECT count(*) FROM draws d JOIN lb ON lb.id = d.batch_id
                 WHERE lb.remaining >= d.quantity
                   AND (lb.expiry_date IS NULL OR lb.expiry_date >= CURRENT_DATE))
                = (SELECT count(*) FROM draws) AS ok
     ), claimed AS (
         UPDATE reservations SET status = 'COMMITTED', commitment = $9, updated_at = now()
         WHERE order_id = $1 AND EXISTS (SELECT 1 FROM r) AND (SELECT ok FROM verdict)
         RETURNING order_id
     ), taken AS (
         UPDATE batches SET remaining = batches.remaining - d.quantity FROM draws d
         WHERE batches.id = d.batch_id AND EXISTS (SELECT 1 FROM claimed)
     ), kept AS (
         INSERT INTO allocations (order_id, batch_id, sku, quantity, unit_cost)
         SELECT $1, d.batch_id, d.sku, d.quantity, d.unit_cost FROM draws d
         WHERE EXISTS (SELECT 1 FROM claimed)
     ), moves AS (
         INSERT INTO stock_movements (sku, kind, on_hand_delta, reserved_delta, batch_id, reference)
         SELECT d.sku, 'COMMIT', -d.quantity, -d.quantity, d.batch_id, $1::text FROM draws d
         WHERE EXISTS (SELECT 1 FROM claimed)
     ), changed AS (
         UPDATE items SET on_hand = items.on_hand - w.quantity,
                reserved = items.reserved - w.quantity, updated_at = now()
         FROM want w WHERE items.sku = w.sku AND EXISTS (SELECT 1 FROM claimed)
     )
     SELECT EXISTS (SELECT 1 FROM claimed) AS committed";

async fn stored_commitment(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> Result<Priced, InventoryError> {
    let stored: Option<serde_json::Value> = stored::table
        .find(order_id)
        .select(stored::commitment)
        .first(conn)
        .await?;
    let value = stored
        .ok_or_else(|| anyhow::anyhow!("committed reservation {order_id} has no commitment"))?;
    Ok(serde_json::from_value(value).map_err(anyhow::Error::from)?)
}

/// Puts a committed order's units back into the batches they came from
/// (a refund). A repeat answers without moving anything.
pub async fn return_stock(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> Result<ReservationView, InventoryError> {
    conn.transaction(async |conn| {
        let (status, _) = reservations::lock(conn, order_id).await?;
        match status {
            ReservationStatus::Committed => {}
            ReservationStatus::Returned => return Ok(()),
            other => {
                return Err(InventoryError::WrongState {
                    order_id,
                    status: other,
                });
            }
        }
        let drawn: Vec<(Uuid, String, i32)> = allocations::table
            .filter(allocations::order_id.eq(order_id))
            .order((allocations::sku, allocations::batch_id))
            .select((
                allocations::batch_id,
                allocations::sku,
                allocations::quantity,
            ))
            .load(conn)
            .await?;
        let mut skus: Vec<String> = drawn.iter().map(|(_, sku, _)| sku.clone()).collect();
        skus.dedup();
        items::lock(conn, &skus).await?;
        let mut movements = Vec::new();
        let expired: std::collections::HashSet<Uuid> = batches::table
            .filter(batches::id.eq_any(drawn.iter().map(|(id, _, _)| *id)))
            .filter(batches::expiry_date.lt(crate::db::today()))
            .select(batches::id)
            .load::<Uuid>(conn)
            .await?
            .into_iter()
            .collect();
        for (batch_id, sku, quantity) in drawn {
            movements.push(Movement {
                sku: sku.clone(),
                kind: Kind::Return,
                on_hand_delta: quantity,
                reserved_delta: 0,
                batch_id: Some(batch_id),
                reference: Some(order_id.to_string()),
            });
            if expired.contains(&batch_id) {
                // Units coming back to a batch that has expired meanwhile are
                // written off at once: expired stock never grows, so no
                // reservation can count on it.
                movements.push(Movement {
                    sku,
                    kind: Kind::Expiry,
                    on_hand_delta: -quantity,
                    reserved_delta: 0,
                    batch_id: Some(batch_id),
                    reference: Some("returned after expiry".into()),
                });
                continue;
            }
            diesel::update(batches::table.find(batch_id))
                .set(batches::remaining.eq(batches::remaining + quantity))
                .execute(conn)
                .await?;
        }
        ledger::apply(conn, &movements).await?;
        reservations::set_status(conn, order_id, ReservationStatus::Returned).await?;
        Ok(())
    })
    .await?;
    reservations::find(conn, order_id)
        .await?
        .ok_or(InventoryError::UnknownOrder(order_id))
}
