//! Committing a reservation: its units leave the batches that expire first,
//! each line is priced from what those units cost, and the allocation is kept
//! so a refund can put every unit back where it came from.

use chrono::Utc;
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
    pricing::{self, Draw, Priced, PricedLine},
    reservations::{self, ReservationView},
};

/// Turns the active reservation of `order_id` into sold stock and prices it.
/// A repeat answers the first commitment.
pub async fn commit(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    default_margin: Decimal,
) -> Result<Priced, InventoryError> {
    conn.transaction(async |conn| {
        let (status, expires_at) = reservations::lock(conn, order_id).await?;
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
        let lines = reservations::lines_of(conn, order_id).await?;
        let skus: Vec<String> = lines.iter().map(|l| l.sku.clone()).collect();
        let locked = items::lock(conn, &skus).await?;
        let sellable_of = pricing::sellable_batches_of(conn, &skus, true).await?;
        let mut priced = Vec::new();
        let mut movements = Vec::new();
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
            for draw in &draws {
                taken.push((line.sku.as_str(), draw.clone()));
                movements.push(Movement {
                    sku: line.sku.clone(),
                    kind: Kind::Commit,
                    on_hand_delta: -draw.quantity,
                    reserved_delta: -draw.quantity,
                    batch_id: Some(draw.batch_id),
                    reference: Some(order_id.to_string()),
                });
            }
            let margin = pricing::effective_margin(locked[&line.sku].margin, default_margin);
            priced.push(PricedLine::new(line.sku.clone(), draws, margin));
        }
        if !shortfalls.is_empty() {
            return Err(InventoryError::Shortfall(shortfalls));
        }
        take_from_batches(conn, order_id, &taken).await?;
        ledger::apply(conn, &movements).await?;
        let commitment = Priced::new(priced);
        diesel::update(stored::table.find(order_id))
            .set((
                stored::status.eq(ReservationStatus::Committed.as_str()),
                stored::commitment
                    .eq(serde_json::to_value(&commitment).map_err(anyhow::Error::from)?),
                stored::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
        Ok(commitment)
    })
    .await
}

/// Takes the drawn units out of their (locked) batches and keeps where each
/// came from: one UPDATE and one INSERT however many batches.
async fn take_from_batches(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    taken: &[(&str, Draw)],
) -> QueryResult<()> {
    use diesel::sql_types::{Array, Integer, Uuid as SqlUuid};
    let ids: Vec<Uuid> = taken.iter().map(|(_, d)| d.batch_id).collect();
    let units: Vec<i32> = taken.iter().map(|(_, d)| d.quantity).collect();
    diesel::sql_query(
        "UPDATE batches SET remaining = batches.remaining - d.units \
         FROM unnest($1, $2) AS d(id, units) WHERE batches.id = d.id",
    )
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Array<Integer>, _>(&units)
    .execute(conn)
    .await?;
    let rows: Vec<_> = taken
        .iter()
        .map(|(sku, draw)| {
            (
                allocations::order_id.eq(order_id),
                allocations::batch_id.eq(draw.batch_id),
                allocations::sku.eq(*sku),
                allocations::quantity.eq(draw.quantity),
                allocations::unit_cost.eq(draw.unit_cost),
            )
        })
        .collect();
    diesel::insert_into(allocations::table)
        .values(rows)
        .execute(conn)
        .await?;
    Ok(())
}

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
