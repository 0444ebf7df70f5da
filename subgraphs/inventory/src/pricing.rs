//! Cost-plus pricing: a line costs what its units cost in the batches they are
//! drawn from (first expiry first), plus the product's margin, rounded half-up
//! to cents per line. Quotes walk the batches a commit would draw from now.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    db::Line,
    error::{InventoryError, Shortfall},
};

/// Rounds to cents, halves away from zero.
pub fn round_money(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The margin a product sells at: its override, else the configured default.
pub fn effective_margin(own: Option<Decimal>, default: Decimal) -> Decimal {
    own.unwrap_or(default)
}

/// Units drawn from one batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    pub batch_id: Uuid,
    pub quantity: i32,
    pub unit_cost: Decimal,
    pub expiry_date: Option<NaiveDate>,
}

/// A priced line and the batches behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    pub sku: String,
    pub quantity: i32,
    pub unit_price: Decimal,
    pub line_total: Decimal,
    pub draws: Vec<Draw>,
}

impl PricedLine {
    /// Prices `draws` at `margin`: Σ units × cost × (1 + margin), rounded per line.
    pub fn new(sku: String, draws: Vec<Draw>, margin: Decimal) -> Self {
        let quantity: i32 = draws.iter().map(|d| d.quantity).sum();
        let raw: Decimal = draws
            .iter()
            .map(|d| Decimal::from(d.quantity) * d.unit_cost * (Decimal::ONE + margin))
            .sum();
        let line_total = round_money(raw);
        let unit_price = if quantity > 0 {
            round_money(line_total / Decimal::from(quantity))
        } else {
            Decimal::ZERO
        };
        Self {
            sku,
            quantity,
            unit_price,
            line_total,
            draws,
        }
    }
}

/// Priced lines and their sum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priced {
    pub lines: Vec<PricedLine>,
    pub subtotal: Decimal,
}

impl Priced {
    pub fn new(lines: Vec<PricedLine>) -> Self {
        let subtotal = lines.iter().map(|l| l.line_total).sum();
        Self { lines, subtotal }
    }
}

/// A batch as the FEFO walk sees it.
#[derive(Queryable, QueryableByName, Clone, Debug)]
#[diesel(table_name = crate::db::schema::batches)]
pub struct Sellable {
    pub id: Uuid,
    pub remaining: i32,
    pub unit_cost: Decimal,
    pub expiry_date: Option<NaiveDate>,
}

/// Unexpired batches of `sku` holding units, first expiry first (then oldest
/// delivery). With `lock`, the rows are locked for the caller's transaction.
pub async fn sellable_batches(
    conn: &mut AsyncPgConnection,
    sku: &str,
    lock: bool,
) -> QueryResult<Vec<Sellable>> {
    let mut of = sellable_batches_of(conn, &[sku.to_owned()], lock).await?;
    Ok(of.remove(sku).unwrap_or_default())
}

/// [`sellable_batches`] of every SKU in `skus` in one statement (locked SKU
/// by SKU in SKU order, as item rows are); SKUs without any are left out.
pub async fn sellable_batches_of(
    conn: &mut AsyncPgConnection,
    skus: &[String],
    lock: bool,
) -> QueryResult<BTreeMap<String, Vec<Sellable>>> {
    use diesel::sql_types::{Array, Text};
    // Raw, so that `NOT sold_out` is a literal the generic plan can match
    // to the partial FEFO index (diesel binds every literal), and the SKUs
    // come through `listed_skus` (estimated like any short list, see
    // migration `line_rows`): one plan per connection instead of one per call.
    macro_rules! sellable {
        () => {
            "SELECT b.sku, b.id, b.remaining, b.unit_cost, b.expiry_date FROM batches b
             WHERE b.sku IN (SELECT * FROM listed_skus($1::text[])) AND NOT b.sold_out
               AND (b.expiry_date IS NULL OR b.expiry_date >= CURRENT_DATE)
             ORDER BY b.sku, b.expiry_date NULLS LAST, b.received_at, b.id"
        };
    }
    let sql = if lock {
        concat!(sellable!(), " FOR UPDATE OF b")
    } else {
        sellable!()
    };
    let rows: Vec<SellableRow> = kit::prepared::prepared(sql)
        .bind::<Array<Text>, _>(skus)
        .load(conn)
        .await?;
    let mut of: BTreeMap<String, Vec<Sellable>> = BTreeMap::new();
    for row in rows {
        of.entry(row.sku).or_default().push(row.batch);
    }
    Ok(of)
}

/// A row of [`sellable_batches_of`].
#[derive(QueryableByName)]
struct SellableRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    sku: String,
    #[diesel(embed)]
    batch: Sellable,
}

/// Takes `quantity` units from `batches` in order after skipping `skip` units;
/// `None` when they do not hold enough.
pub fn draw(batches: &[Sellable], skip: i32, quantity: i32) -> Option<Vec<Draw>> {
    let mut skip = skip.max(0);
    let mut wanted = quantity;
    let mut draws = Vec::new();
    for batch in batches {
        let mut units = batch.remaining;
        let skipped = units.min(skip);
        skip -= skipped;
        units -= skipped;
        if units == 0 {
            continue;
        }
        let take = units.min(wanted);
        draws.push(Draw {
            batch_id: batch.id,
            quantity: take,
            unit_cost: batch.unit_cost,
            expiry_date: batch.expiry_date,
        });
        wanted -= take;
        if wanted == 0 {
            return Some(draws);
        }
    }
    (wanted == 0).then_some(draws)
}

/// Prices `lines` as committing them now would, assuming units already
/// reserved by others are drawn first. Units held by the active reservation
/// of `own_order` are not someone else's: they are not skipped. Holds nothing.
///
/// The same whether `own_order`'s reservation is written before or after
/// this read: before, `reserved` lacks its units and `own` is 0; after, both
/// count them. So it may be pipelined beside the reservation (`ReserveStock`).
pub async fn quote(
    mut conn: &AsyncPgConnection,
    lines: &[Line],
    default_margin: Decimal,
    own_order: Option<Uuid>,
) -> Result<Priced, InventoryError> {
    let skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
    // The items, what `own_order` holds of them and their sellable batches,
    // in one read (one snapshot); an item without any batch comes once, with
    // no batch.
    let rows: Vec<QuoteRow> = kit::prepared::prepared(
        "SELECT i.sku, i.active, i.reserved, i.margin,
                (SELECT COALESCE(SUM(l.quantity), 0)::int4
                 FROM reservation_lines l JOIN reservations r ON r.order_id = l.order_id
                 WHERE l.order_id = $2 AND l.sku = i.sku AND r.status = 'ACTIVE') AS own,
                b.id, b.remaining, b.unit_cost, b.expiry_date
         FROM items i
         LEFT JOIN LATERAL (
             SELECT b.id, b.remaining, b.unit_cost, b.expiry_date, b.received_at FROM batches b
             WHERE b.sku = i.sku AND NOT b.sold_out
               AND (b.expiry_date IS NULL OR b.expiry_date >= CURRENT_DATE)
         ) b ON true
         WHERE i.sku IN (SELECT * FROM listed_skus($1::text[]))
         ORDER BY i.sku, b.expiry_date NULLS LAST, b.received_at, b.id",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&skus)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(own_order)
    .load(&mut conn)
    .await?;
    // (active, reserved by others, margin) per SKU, and its batches FEFO.
    let mut known: BTreeMap<String, (bool, i32, Option<Decimal>)> = BTreeMap::new();
    let mut sellable: BTreeMap<String, Vec<Sellable>> = BTreeMap::new();
    for row in rows {
        known.insert(
            row.sku.clone(),
            (row.active, row.reserved - row.own, row.margin),
        );
        row.batch.add_to(row.sku, &mut sellable);
    }
    let missing: Vec<String> = lines
        .iter()
        .filter(|l| !known.contains_key(&l.sku))
        .map(|l| l.sku.clone())
        .collect();
    if !missing.is_empty() {
        return Err(InventoryError::UnknownSku(missing));
    }
    if let Some(line) = lines.iter().find(|l| !known[&l.sku].0) {
        return Err(InventoryError::InactiveSku(line.sku.clone()));
    }
    let mut priced = Vec::new();
    let mut shortfalls = Vec::new();
    for line in lines {
        let (_, reserved, margin) = known[&line.sku];
        let batches = sellable
            .get(&line.sku)
            .map(Vec::as_slice)
            .unwrap_or_default();
        match draw(batches, reserved, line.quantity) {
            Some(draws) => priced.push(PricedLine::new(
                line.sku.clone(),
                draws,
                effective_margin(margin, default_margin),
            )),
            None => {
                let units: i32 = batches.iter().map(|b| b.remaining).sum();
                shortfalls.push(Shortfall {
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    available: (units - reserved).max(0),
                });
            }
        }
    }
    if shortfalls.is_empty() {
        Ok(Priced::new(priced))
    } else {
        Err(InventoryError::Shortfall(shortfalls))
    }
}

/// A row of [`quote`]'s read: an item, what the order holds of it, and one
/// of its sellable batches (none when it has none).
#[derive(QueryableByName)]
struct QuoteRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    sku: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    active: bool,
    #[diesel(sql_type = diesel::sql_types::Int4)]
    reserved: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Numeric>)]
    margin: Option<Decimal>,
    #[diesel(sql_type = diesel::sql_types::Int4)]
    own: i32,
    #[diesel(embed)]
    batch: JoinedBatch,
}

/// A sellable batch as a read that joins batches to their item (`LEFT JOIN
/// LATERAL`) gives it: all null for an item without any.
#[derive(QueryableByName)]
pub(crate) struct JoinedBatch {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Int4>)]
    remaining: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Numeric>)]
    unit_cost: Option<Decimal>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Date>)]
    expiry_date: Option<NaiveDate>,
}

impl JoinedBatch {
    /// Adds the batch, if the row has one, to `sku`'s batches in `of`.
    pub(crate) fn add_to(self, sku: String, of: &mut BTreeMap<String, Vec<Sellable>>) {
        if let (Some(id), Some(remaining), Some(unit_cost)) =
            (self.id, self.remaining, self.unit_cost)
        {
            of.entry(sku).or_default().push(Sellable {
                id,
                remaining,
                unit_cost,
                expiry_date: self.expiry_date,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(remaining: i32, cost: &str) -> Sellable {
        Sellable {
            id: Uuid::new_v4(),
            remaining,
            unit_cost: cost.parse().unwrap(),
            expiry_date: None,
        }
    }

    #[test]
    fn rounds_half_up_to_cents() {
        assert_eq!(round_money("2.345".parse().unwrap()).to_string(), "2.35");
        assert_eq!(round_money("2.344".parse().unwrap()).to_string(), "2.34");
        assert_eq!(round_money("0.005".parse().unwrap()).to_string(), "0.01");
    }

    #[test]
    fn a_line_spanning_batches_sums_their_costs_plus_margin() {
        let batches = [batch(2, "1.00"), batch(5, "1.10")];
        let draws = draw(&batches, 0, 3).unwrap();
        assert_eq!(draws.iter().map(|d| d.quantity).collect::<Vec<_>>(), [2, 1]);
        // (2 × 1.00 + 1 × 1.10) × 1.25 = 3.875 → 3.88; unit price 1.29333… → 1.29
        let line = PricedLine::new("APPLE".into(), draws, "0.25".parse().unwrap());
        assert_eq!(line.line_total.to_string(), "3.88");
        assert_eq!(line.unit_price.to_string(), "1.29");
    }

    #[test]
    fn draws_skip_units_held_by_others_and_refuse_too_much() {
        let batches = [batch(2, "1.00"), batch(5, "1.10")];
        let draws = draw(&batches, 3, 2).unwrap();
        assert_eq!(draws.len(), 1);
        assert_eq!(draws[0].batch_id, batches[1].id);
        assert!(draw(&batches, 3, 5).is_none());
        assert!(draw(&batches, 0, 8).is_none());
    }
}
