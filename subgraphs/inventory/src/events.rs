//! The `stock.changed` event: what a SKU's availability and sell price are
//! after a change, written to the outbox by the very statement that changes
//! the item's counters (a writable CTE), so the checkout path pays no extra
//! round trip and the event commits or rolls back with the change. A write
//! that moves neither (a commitment: see `allocation::COMMIT`) writes none.
//!
//! Contract (also read by the gateway's entity cache): topic `stock.changed`,
//! key = the SKU, payload `{"sku": "APPLE", "available": 17, "unitPrice": "3.00"}`
//! with `unitPrice` the next unit's cost-plus price as Decimal text, or null
//! when no batch prices it. Events of one SKU are written under its item row
//! lock, so their outbox ids grow in commit order.

use diesel::{QueryResult, sql_types};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

/// The topic of a change of a SKU's availability or price.
pub const STOCK_CHANGED: &str = "stock.changed";

/// The tail of a statement whose CTE `changed(sku, on_hand, reserved, margin)`
/// holds item rows as they now are: writes one `stock.changed` event per row,
/// priced like [`crate::stock::views`] (first expiry first, after the reserved
/// units; the item's margin, else `pricing_defaults`), rounded half-up to cents.
/// A macro so that statements are `concat!`-ed at compile time.
macro_rules! insert_stock_changed {
    () => {
        " INSERT INTO outbox (topic, key, payload)
          SELECT 'stock.changed', c.sku, jsonb_build_object(
                     'sku', c.sku,
                     'available', GREATEST(c.on_hand - c.reserved - COALESCE(e.expired, 0), 0),
                     'unitPrice', round(n.unit_cost * (1 + COALESCE(c.margin,
                         (SELECT d.default_margin FROM pricing_defaults d), 0.25)), 2)::text)
          FROM changed c
          LEFT JOIN LATERAL (
              SELECT SUM(b.remaining) AS expired FROM batches b
              WHERE b.sku = c.sku AND NOT b.sold_out AND b.expiry_date < CURRENT_DATE
          ) e ON true
          LEFT JOIN LATERAL (
              SELECT x.unit_cost FROM (
                  SELECT b.unit_cost,
                         SUM(b.remaining) OVER (ORDER BY b.expiry_date NULLS LAST, b.received_at, b.id) AS upto
                  FROM batches b
                  WHERE b.sku = c.sku AND NOT b.sold_out
                    AND (b.expiry_date IS NULL OR b.expiry_date >= CURRENT_DATE)
              ) x WHERE x.upto > c.reserved ORDER BY x.upto LIMIT 1
          ) n ON true
          ORDER BY c.sku"
    };
}
pub(crate) use insert_stock_changed;

/// Makes `margin` the margin of items without their own in the prices of
/// `stock.changed` events (`DEFAULT_MARGIN`; written at start-up).
pub async fn set_default_margin(conn: &mut AsyncPgConnection, margin: Decimal) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO pricing_defaults (id, default_margin) VALUES (true, $1)
         ON CONFLICT (id) DO UPDATE SET default_margin = EXCLUDED.default_margin
         WHERE pricing_defaults.default_margin IS DISTINCT FROM EXCLUDED.default_margin",
    )
    .bind::<sql_types::Numeric, _>(margin)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A `stock.changed` event as the subscription feed reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockChanged {
    /// The outbox id: grows with every change of the SKU.
    pub id: i64,
    pub sku: String,
    pub available: i32,
    pub unit_price: Option<Decimal>,
}

impl StockChanged {
    /// The event in `event`, if it is a well-formed `stock.changed` of inventory.
    pub fn from_event(event: &kit::events::Event) -> Option<Self> {
        if event.topic != STOCK_CHANGED || event.source != crate::DB_SCHEMA {
            return None;
        }
        let p = &event.payload;
        let unit_price = match &p["unitPrice"] {
            serde_json::Value::Null => None,
            v => Some(v.as_str()?.parse().ok()?),
        };
        Some(Self {
            id: event.id,
            sku: p["sku"].as_str().filter(|s| *s == event.key)?.to_owned(),
            available: i32::try_from(p["available"].as_i64()?).ok()?,
            unit_price,
        })
    }
}
