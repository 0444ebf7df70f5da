//! Reservations: stock held for an order until it is committed, released or
//! expires. This is where "never oversell" is decided.
//!
//! A reservation locks its items in SKU order (so two orders never deadlock)
//! and adds to their `reserved` only while `on_hand − expired − reserved`
//! covers every line, all in one statement: the row locks decide, so
//! concurrent orders can never both take the last unit. The order id is the
//! idempotency key: a repeat of any call answers the first result and moves
//! nothing.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::{
        Line, ReservationStatus,
        schema::{reservation_lines, reservations},
    },
    error::{InventoryError, Shortfall},
    items,
    ledger::{self, Kind, Movement},
};

/// Most lines one reservation may hold.
pub const MAX_LINES: usize = 100;
/// Most units of one SKU one reservation may hold.
pub const MAX_QUANTITY: i32 = 100_000;

/// A reservation as callers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationView {
    pub order_id: Uuid,
    pub status: ReservationStatus,
    pub lines: Vec<Line>,
    pub expires_at: DateTime<Utc>,
}

/// Normalises SKUs, merges duplicate lines and checks quantities.
pub fn normalize_lines(lines: &[Line]) -> Result<Vec<Line>, InventoryError> {
    use kit::lines::LineProblem;
    let given = lines.iter().map(|l| (l.sku.as_str(), l.quantity));
    match kit::lines::merge(given, MAX_QUANTITY, MAX_LINES) {
        Ok(merged) => Ok(merged
            .into_iter()
            .map(|(sku, quantity)| Line { sku, quantity })
            .collect()),
        Err(LineProblem::Empty) => Err(InventoryError::invalid(
            "lines",
            "at least one line is required",
        )),
        Err(LineProblem::Quantity(quantity)) => Err(InventoryError::invalid(
            "quantity",
            format!("quantity must be between 1 and {MAX_QUANTITY}, got {quantity}"),
        )),
        Err(LineProblem::Sku(raw)) => Err(items::sku_error(&raw)),
        Err(LineProblem::SkuTotal) => Err(InventoryError::invalid(
            "quantity",
            format!("at most {MAX_QUANTITY} units per SKU"),
        )),
        Err(LineProblem::TooManyLines(_)) => Err(InventoryError::invalid(
            "lines",
            format!("at most {MAX_LINES} lines"),
        )),
    }
}

/// The stored reservation of `order_id`, if any.
pub async fn find(
    mut conn: &AsyncPgConnection,
    order_id: Uuid,
) -> QueryResult<Option<ReservationView>> {
    let Some((status, expires_at)) = reservations::table
        .find(order_id)
        .select((reservations::status, reservations::expires_at))
        .first::<(String, DateTime<Utc>)>(&mut conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let lines = lines_of(conn, order_id).await?;
    Ok(Some(ReservationView {
        order_id,
        status: ReservationStatus::parse(&status),
        lines,
        expires_at,
    }))
}

pub(crate) async fn lines_of(
    mut conn: &AsyncPgConnection,
    order_id: Uuid,
) -> QueryResult<Vec<Line>> {
    Ok(reservation_lines::table
        .filter(reservation_lines::order_id.eq(order_id))
        .order(reservation_lines::sku)
        .select((reservation_lines::sku, reservation_lines::quantity))
        .load::<(String, i32)>(&mut conn)
        .await?
        .into_iter()
        .map(|(sku, quantity)| Line { sku, quantity })
        .collect())
}

/// Locks the reservation row of `order_id` and reads its status.
pub(crate) async fn lock(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> Result<(ReservationStatus, DateTime<Utc>), InventoryError> {
    reservations::table
        .find(order_id)
        .select((reservations::status, reservations::expires_at))
        .for_update()
        .first::<(String, DateTime<Utc>)>(conn)
        .await
        .optional()?
        .map(|(status, expires_at)| (ReservationStatus::parse(&status), expires_at))
        .ok_or(InventoryError::UnknownOrder(order_id))
}

pub(crate) async fn set_status(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    status: ReservationStatus,
) -> QueryResult<()> {
    diesel::update(reservations::table.find(order_id))
        .set((
            reservations::status.eq(status.as_str()),
            reservations::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Most time one reservation may hold stock.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// Holds `lines` for `order_id` until `ttl` passes. All or nothing: any
/// shortfall refuses the whole reservation and writes nothing.
///
/// One statement, committed on its own ([`RESERVE`]): it locks the items in
/// SKU order, decides, and writes the claim, the lines, the ledger, the
/// counters and the `stock.changed` events together. A contended SKU is
/// thus held for one statement and its commit's flush, never across a
/// round trip to this process. A repeat (the same order id) finds the claim
/// taken, writes nothing and answers the stored reservation.
///
/// Takes the connection shared, so that a caller can pipeline a read behind
/// the statement (`ReserveStock` with its quote: one round trip).
pub async fn reserve(
    mut conn: &AsyncPgConnection,
    order_id: Uuid,
    lines: &[Line],
    ttl: Duration,
) -> Result<ReservationView, InventoryError> {
    use diesel::sql_types::{Array, Int4, Text, Timestamptz, Uuid as SqlUuid};
    let lines = normalize_lines(lines)?;
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(InventoryError::invalid(
            "ttl",
            "a reservation holds stock for 1 second to 24 hours",
        ));
    }
    let skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.quantity).collect();
    // Microseconds, as PostgreSQL stores it, so the first answer equals every repeat.
    let expires_at = (Utc::now()
        + chrono::Duration::from_std(ttl).map_err(|e| InventoryError::Internal(e.into()))?)
    .trunc_subsecs(6);
    let verdicts: Vec<LineVerdict> = kit::prepared::prepared(RESERVE)
        .bind::<SqlUuid, _>(order_id)
        .bind::<Array<Text>, _>(&skus)
        .bind::<Array<Int4>, _>(&quantities)
        .bind::<Timestamptz, _>(expires_at)
        .load(&mut conn)
        .await?;
    if verdicts.iter().any(|v| v.claimed) {
        return Ok(ReservationView {
            order_id,
            status: ReservationStatus::Active,
            lines,
            expires_at,
        });
    }
    // Nothing was written: a repeat of a reservation that exists, or a refusal.
    if let Some(existing) = find(conn, order_id).await? {
        return Ok(existing);
    }
    Err(refusal(&lines, &verdicts))
}

/// The reservation in one statement. `$1` order id, `$2`/`$3` SKUs and
/// quantities (normalised: one line per SKU), `$4` expiry. Answers one row
/// per line: the item as locked (`active`, `free` = on hand − expired −
/// reserved; null when unknown) and whether the claim was written.
///
/// Order of work, forced by the references: `locked` takes the item rows'
/// locks in SKU order (like every other writer, so no deadlock) and reads
/// their newest counters; `verdict` says whether every line fits; only then
/// is the claim inserted (a repeat conflicts and claims nothing), and every
/// write hangs on the claim. The expired units are read from the
/// statement's snapshot: they only ever shrink, so a stale sum can refuse
/// too much, never oversell.
///
/// The lines come through `wanted_lines` and the items are found by joining
/// them, never by `= ANY($2)`: so the generic plan is costed like a custom
/// one and the plan cache stops planning the statement after five calls
/// (migration `line_rows`).
const RESERVE: &str = concat!(
    "WITH want AS (
         SELECT * FROM wanted_lines($2::text[], $3::int4[]) AS w(sku, quantity)
     ), locked AS (
         SELECT i.sku, i.active,
                (i.on_hand - i.reserved
                 - COALESCE((SELECT SUM(b.remaining) FROM batches b
                             WHERE b.sku = i.sku AND NOT b.sold_out
                               AND b.expiry_date < CURRENT_DATE), 0))::int4 AS free
         FROM items i WHERE i.sku IN (SELECT sku FROM want) ORDER BY i.sku FOR UPDATE
     ), verdict AS (
         SELECT count(*) = (SELECT count(*) FROM want) AS ok
         FROM want w JOIN locked l ON l.sku = w.sku
         WHERE l.active AND l.free >= w.quantity
     ), claimed AS (
         INSERT INTO reservations (order_id, status, expires_at)
         SELECT $1, 'ACTIVE', $4 WHERE (SELECT ok FROM verdict)
         ON CONFLICT DO NOTHING RETURNING order_id
     ), lines AS (
         INSERT INTO reservation_lines (order_id, sku, quantity)
         SELECT $1, w.sku, w.quantity FROM want w WHERE EXISTS (SELECT 1 FROM claimed)
     ), moves AS (
         INSERT INTO stock_movements (sku, kind, on_hand_delta, reserved_delta, reference)
         SELECT w.sku, 'RESERVE', 0, w.quantity, $1::text FROM want w
         WHERE EXISTS (SELECT 1 FROM claimed)
     ), changed AS (
         UPDATE items SET reserved = items.reserved + w.quantity, updated_at = now()
         FROM want w WHERE items.sku = w.sku AND EXISTS (SELECT 1 FROM claimed)
         RETURNING items.sku, items.on_hand, items.reserved, items.margin
     ), events AS (",
    crate::events::insert_stock_changed!(),
    ")
     SELECT w.sku, l.active, l.free, EXISTS (SELECT 1 FROM claimed) AS claimed
     FROM want w LEFT JOIN locked l ON l.sku = w.sku"
);

/// One line of [`RESERVE`]'s answer.
#[derive(QueryableByName, Debug)]
struct LineVerdict {
    #[diesel(sql_type = diesel::sql_types::Text)]
    sku: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bool>)]
    active: Option<bool>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Int4>)]
    free: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    claimed: bool,
}

/// Why a reservation that claimed nothing was refused, from the items as
/// they were locked: unknown SKUs first, then SKUs not for sale, then what
/// is short.
fn refusal(lines: &[Line], verdicts: &[LineVerdict]) -> InventoryError {
    let missing: Vec<String> = verdicts
        .iter()
        .filter(|v| v.active.is_none())
        .map(|v| v.sku.clone())
        .collect();
    if !missing.is_empty() {
        return InventoryError::UnknownSku(missing);
    }
    if let Some(v) = verdicts.iter().find(|v| v.active == Some(false)) {
        return InventoryError::InactiveSku(v.sku.clone());
    }
    let short: Vec<Shortfall> = lines
        .iter()
        .filter_map(|l| {
            let free = verdicts
                .iter()
                .find(|v| v.sku == l.sku)
                .and_then(|v| v.free)
                .unwrap_or(0);
            (free < l.quantity).then(|| Shortfall {
                sku: l.sku.clone(),
                requested: l.quantity,
                available: free.max(0),
            })
        })
        .collect();
    if short.is_empty() {
        // Every line fitted but the claim was taken and is gone again: only a
        // concurrent repeat that rolled back can do that. Retrying is safe.
        InventoryError::Internal(anyhow::anyhow!(
            "the reservation's claim was taken by a repeat that did not commit"
        ))
    } else {
        InventoryError::Shortfall(short)
    }
}

/// Writes `lines` as the reservation lines of `order_id`.
async fn insert_lines(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    lines: &[Line],
) -> QueryResult<usize> {
    let rows: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                reservation_lines::order_id.eq(order_id),
                reservation_lines::sku.eq(&l.sku),
                reservation_lines::quantity.eq(l.quantity),
            )
        })
        .collect();
    diesel::insert_into(reservation_lines::table)
        .values(rows)
        .execute(conn)
        .await
}

/// The ledger movements that hold `lines` for `order_id`.
fn holds(order_id: Uuid, lines: &[Line]) -> Vec<Movement> {
    lines
        .iter()
        .map(|l| Movement {
            sku: l.sku.clone(),
            kind: Kind::Reserve,
            on_hand_delta: 0,
            reserved_delta: l.quantity,
            batch_id: None,
            reference: Some(order_id.to_string()),
        })
        .collect()
}

/// Sets the active reservation of `order_id` to exactly `lines`: SKUs that
/// grow are held like a new reservation (all or nothing), SKUs that shrink or
/// go give their units back. The hold keeps its expiry. Every item involved
/// is locked first, in SKU order, like every other writer.
pub async fn adjust(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    lines: &[Line],
) -> Result<ReservationView, InventoryError> {
    let lines = normalize_lines(lines)?;
    conn.transaction(async |conn| {
        let (status, expires_at) = lock(conn, order_id).await?;
        match status {
            ReservationStatus::Active if expires_at > Utc::now() => {}
            ReservationStatus::Active => return Err(InventoryError::Expired(order_id)),
            status => return Err(InventoryError::WrongState { order_id, status }),
        }
        let old: BTreeMap<String, i32> = lines_of(conn, order_id)
            .await?
            .into_iter()
            .map(|l| (l.sku, l.quantity))
            .collect();
        let new: BTreeMap<String, i32> =
            lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect();
        let mut skus: Vec<String> = old.keys().chain(new.keys()).cloned().collect();
        skus.sort();
        skus.dedup();
        let growing: Vec<Line> = skus
            .iter()
            .filter_map(|sku| {
                let delta = new.get(sku).copied().unwrap_or(0) - old.get(sku).copied().unwrap_or(0);
                (delta > 0).then(|| Line {
                    sku: sku.clone(),
                    quantity: delta,
                })
            })
            .collect();
        let growing_skus: Vec<String> = growing.iter().map(|l| l.sku.clone()).collect();
        check_sellable(conn, &growing_skus).await?;
        items::lock(conn, &skus).await?;
        for (i, line) in growing.iter().enumerate() {
            if !hold(conn, line).await? {
                let short = match shortfalls(conn, &growing, &growing[..i]).await {
                    InventoryError::Shortfall(short) => short,
                    other => return Err(other),
                };
                // Said in terms of the whole line: what it asked for, what it could have.
                let whole = |s: Shortfall| {
                    let own = old.get(&s.sku).copied().unwrap_or(0);
                    Shortfall {
                        requested: new[&s.sku],
                        available: s.available + own,
                        sku: s.sku,
                    }
                };
                return Err(InventoryError::Shortfall(
                    short.into_iter().map(whole).collect(),
                ));
            }
        }
        ledger::record(conn, &holds(order_id, &growing)).await?;
        let reference = Some(order_id.to_string());
        let given_back: Vec<Movement> = skus
            .iter()
            .filter_map(|sku| {
                let delta = old.get(sku).copied().unwrap_or(0) - new.get(sku).copied().unwrap_or(0);
                (delta > 0).then(|| Movement {
                    sku: sku.clone(),
                    kind: Kind::Release,
                    on_hand_delta: 0,
                    reserved_delta: -delta,
                    batch_id: None,
                    reference: reference.clone(),
                })
            })
            .collect();
        ledger::apply(conn, &given_back).await?;
        diesel::delete(reservation_lines::table.filter(reservation_lines::order_id.eq(order_id)))
            .execute(conn)
            .await?;
        insert_lines(conn, order_id, &lines).await?;
        Ok(ReservationView {
            order_id,
            status: ReservationStatus::Active,
            lines,
            expires_at,
        })
    })
    .await
}

/// Unknown SKUs and SKUs not for sale are refused before anything is locked.
async fn check_sellable(
    conn: &mut AsyncPgConnection,
    skus: &[String],
) -> Result<(), InventoryError> {
    let known: BTreeMap<String, bool> = crate::db::schema::items::table
        .filter(crate::db::schema::items::sku.eq_any(skus))
        .select((
            crate::db::schema::items::sku,
            crate::db::schema::items::active,
        ))
        .load::<(String, bool)>(conn)
        .await?
        .into_iter()
        .collect();
    let missing: Vec<String> = skus
        .iter()
        .filter(|s| !known.contains_key(*s))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(InventoryError::UnknownSku(missing));
    }
    match known.into_iter().find(|(_, active)| !active) {
        Some((sku, _)) => Err(InventoryError::InactiveSku(sku)),
        None => Ok(()),
    }
}

/// Adds `line` to its item's `reserved` if that many units are free; false if not.
/// The same statement writes the item's `stock.changed` event.
async fn hold(conn: &mut AsyncPgConnection, line: &Line) -> QueryResult<bool> {
    let held = kit::prepared::prepared(concat!(
        "WITH changed AS (
             UPDATE items SET reserved = reserved + $2, updated_at = now()
             WHERE sku = $1 AND active
               AND on_hand - reserved
                   - COALESCE((SELECT SUM(b.remaining) FROM batches b
                               WHERE b.sku = items.sku AND NOT b.sold_out AND b.expiry_date < CURRENT_DATE), 0)
                   >= $2
             RETURNING sku, on_hand, reserved, margin)",
        crate::events::insert_stock_changed!()
    ))
    .bind::<diesel::sql_types::Text, _>(&line.sku)
    .bind::<diesel::sql_types::Int4, _>(line.quantity)
    .execute(conn)
    .await?;
    Ok(held == 1)
}

/// What is short, read without locks (the transaction is about to roll
/// back). Units this attempt already held (`held`) count as free again.
async fn shortfalls(conn: &mut AsyncPgConnection, lines: &[Line], held: &[Line]) -> InventoryError {
    let skus: Vec<String> = lines.iter().map(|l| l.sku.clone()).collect();
    let views = match crate::stock::views(conn, &skus).await {
        Ok(views) => views,
        Err(e) => return e.into(),
    };
    let own = |sku: &str| {
        held.iter()
            .filter(|h| h.sku == sku)
            .map(|h| h.quantity)
            .sum::<i32>()
    };
    let short: Vec<Shortfall> = lines
        .iter()
        .filter_map(|l| {
            let available = views.get(&l.sku).map_or(0, |v| v.available()) + own(&l.sku);
            (available < l.quantity).then(|| Shortfall {
                sku: l.sku.clone(),
                requested: l.quantity,
                available,
            })
        })
        .collect();
    if short.is_empty() {
        // The units were taken between the failed update and this read and
        // have since been let go: the line that failed is short all the same.
        let failed = &lines[held.len()];
        InventoryError::Shortfall(vec![Shortfall {
            sku: failed.sku.clone(),
            requested: failed.quantity,
            available: 0,
        }])
    } else {
        InventoryError::Shortfall(short)
    }
}

/// Gives the held `lines` back (kind `Release`, or `ExpireReservation` from
/// the sweeper). The caller holds the reservation row's lock and its items' locks.
pub(crate) async fn unhold(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    lines: &[Line],
    kind: Kind,
    status: ReservationStatus,
) -> Result<(), InventoryError> {
    let movements: Vec<Movement> = lines
        .iter()
        .map(|l| Movement {
            sku: l.sku.clone(),
            kind,
            on_hand_delta: 0,
            reserved_delta: -l.quantity,
            batch_id: None,
            reference: Some(order_id.to_string()),
        })
        .collect();
    ledger::apply(conn, &movements).await?;
    set_status(conn, order_id, status).await?;
    Ok(())
}

/// Returns an active reservation's units. Released, expired or returned
/// reservations answer as they are; a committed one must be returned instead.
pub async fn release(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> Result<ReservationView, InventoryError> {
    conn.transaction(async |conn| {
        let (status, _) = lock(conn, order_id).await?;
        match status {
            ReservationStatus::Active => {
                let lines = lines_of(conn, order_id).await?;
                let skus: Vec<String> = lines.iter().map(|l| l.sku.clone()).collect();
                items::lock(conn, &skus).await?;
                unhold(
                    conn,
                    order_id,
                    &lines,
                    Kind::Release,
                    ReservationStatus::Released,
                )
                .await?;
            }
            ReservationStatus::Committed => {
                return Err(InventoryError::WrongState { order_id, status });
            }
            ReservationStatus::Released
            | ReservationStatus::Expired
            | ReservationStatus::Returned => {}
        }
        Ok(())
    })
    .await?;
    find(conn, order_id)
        .await?
        .ok_or(InventoryError::UnknownOrder(order_id))
}

/// Expires up to `limit` reservations whose time is up; returns how many.
/// Safe to run on several replicas at once (`SKIP LOCKED`).
pub async fn expire_due(conn: &mut AsyncPgConnection, limit: i64) -> Result<usize, InventoryError> {
    conn.transaction(async |conn| {
        let due: Vec<Uuid> = reservations::table
            .filter(reservations::status.eq(ReservationStatus::Active.as_str()))
            .filter(reservations::expires_at.le(diesel::dsl::now))
            .order(reservations::expires_at)
            .limit(limit)
            .select(reservations::order_id)
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        // All their lines in one query; every item locked at once, in SKU
        // order: locking per reservation would not be globally ordered and
        // could deadlock with a concurrent reserve.
        let rows: Vec<(Uuid, String, i32)> = reservation_lines::table
            .filter(reservation_lines::order_id.eq_any(&due))
            .select((
                reservation_lines::order_id,
                reservation_lines::sku,
                reservation_lines::quantity,
            ))
            .load(conn)
            .await?;
        let mut skus: Vec<String> = rows.iter().map(|(_, sku, _)| sku.clone()).collect();
        skus.sort();
        skus.dedup();
        items::lock(conn, &skus).await?;
        let mut by_order: BTreeMap<Uuid, Vec<Line>> = BTreeMap::new();
        for (order_id, sku, quantity) in rows {
            by_order
                .entry(order_id)
                .or_default()
                .push(Line { sku, quantity });
        }
        for order_id in &due {
            let lines = by_order.remove(order_id).unwrap_or_default();
            unhold(
                conn,
                *order_id,
                &lines,
                Kind::ExpireReservation,
                ReservationStatus::Expired,
            )
            .await?;
        }
        Ok(due.len())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: i32) -> Line {
        Line {
            sku: sku.into(),
            quantity,
        }
    }

    #[test]
    fn lines_are_merged_normalised_and_checked() {
        let merged =
            normalize_lines(&[line("apple", 2), line("BANANA", 1), line(" Apple ", 3)]).unwrap();
        assert_eq!(merged, [line("APPLE", 5), line("BANANA", 1)]);
        assert!(normalize_lines(&[]).is_err());
        assert!(normalize_lines(&[line("APPLE", 0)]).is_err());
        assert!(normalize_lines(&[line("APPLE", -3)]).is_err());
        assert!(normalize_lines(&[line("APPLE", MAX_QUANTITY), line("apple", 1)]).is_err());
        assert!(normalize_lines(&[line("bad sku", 1)]).is_err());
    }
}
