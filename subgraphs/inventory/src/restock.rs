//! Deliveries: a truck's restock becomes one batch per item, once per
//! transaction id however often the call is repeated.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    db::schema::{batches, restocks},
    error::InventoryError,
    items,
    ledger::{self, Kind, Movement},
};

/// Most items one delivery may hold.
pub const MAX_ITEMS: usize = 500;

/// One product of a delivery, as requested.
#[derive(Clone, Debug)]
pub struct RestockItem {
    pub sku: String,
    pub quantity: i32,
    pub unit_cost: Decimal,
    pub mfd_date: Option<NaiveDate>,
    pub expiry_date: Option<NaiveDate>,
}

/// A delivery, as requested.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub transaction_id: String,
    pub truck_id: String,
    pub supplier_id: String,
    pub items: Vec<RestockItem>,
}

/// What a delivery became; stored, and answered again on repeats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub transaction_id: String,
    pub batch_ids: Vec<Uuid>,
    pub units: i32,
}

fn identifier(field: &'static str, value: &str) -> Result<String, InventoryError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 100 || value.chars().any(char::is_control) {
        return Err(InventoryError::invalid(
            field,
            format!("{field} must be 1 to 100 printable characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Checks every item; nothing is written unless all are valid.
pub fn validate(delivery: &Delivery, today: NaiveDate) -> Result<Delivery, InventoryError> {
    if delivery.items.is_empty() || delivery.items.len() > MAX_ITEMS {
        return Err(InventoryError::invalid(
            "items",
            format!("a delivery has 1 to {MAX_ITEMS} items"),
        ));
    }
    let mut items = Vec::with_capacity(delivery.items.len());
    for item in &delivery.items {
        let sku = items::normalize_sku(&item.sku)?;
        if !(1..=1_000_000).contains(&item.quantity) {
            return Err(InventoryError::invalid(
                "quantity",
                format!("{sku}: quantity must be between 1 and 1000000"),
            ));
        }
        if item.unit_cost < Decimal::ZERO
            || item.unit_cost.normalize().scale() > 4
            || item.unit_cost > Decimal::from(1_000_000)
        {
            return Err(InventoryError::invalid(
                "unitCost",
                format!("{sku}: unit cost must be between 0 and 1000000 with at most 4 decimals"),
            ));
        }
        if let (Some(mfd), Some(expiry)) = (item.mfd_date, item.expiry_date)
            && expiry <= mfd
        {
            return Err(InventoryError::invalid(
                "expiryDate",
                format!("{sku}: expiry must be after manufacture"),
            ));
        }
        if item.expiry_date.is_some_and(|expiry| expiry < today) {
            return Err(InventoryError::invalid(
                "expiryDate",
                format!("{sku}: these goods have already expired"),
            ));
        }
        if item.mfd_date.is_some_and(|mfd| mfd > today) {
            return Err(InventoryError::invalid(
                "mfdDate",
                format!("{sku}: manufacture date is in the future"),
            ));
        }
        items.push(RestockItem {
            sku,
            ..item.clone()
        });
    }
    Ok(Delivery {
        transaction_id: identifier("transactionId", &delivery.transaction_id)?,
        truck_id: identifier("truckId", &delivery.truck_id)?,
        supplier_id: identifier("supplierId", &delivery.supplier_id)?,
        items,
    })
}

/// Receives a delivery: every item becomes a batch; the transaction id makes
/// repeats answer the first receipt without adding stock.
pub async fn restock(
    conn: &mut AsyncPgConnection,
    delivery: &Delivery,
) -> Result<Receipt, InventoryError> {
    // A retry answers the first receipt before anything else is checked: by
    // now its goods may have expired or its SKU may have been retired.
    let transaction_id = identifier("transactionId", &delivery.transaction_id)?;
    if let Some(receipt) = stored_receipt(conn, &transaction_id).await? {
        return Ok(receipt);
    }
    let delivery = validate(delivery, chrono::Utc::now().date_naive())?;
    let mut skus: Vec<String> = delivery.items.iter().map(|i| i.sku.clone()).collect();
    skus.sort();
    skus.dedup();
    conn.transaction(async |conn| {
        items::lock(conn, &skus).await?;
        let receipt = Receipt {
            transaction_id: delivery.transaction_id.clone(),
            batch_ids: delivery.items.iter().map(|_| Uuid::now_v7()).collect(),
            units: delivery.items.iter().map(|i| i.quantity).sum(),
        };
        // Claiming the key first makes a concurrent repeat wait, then find the receipt.
        let claimed = diesel::insert_into(restocks::table)
            .values((
                restocks::transaction_id.eq(&delivery.transaction_id),
                restocks::truck_id.eq(&delivery.truck_id),
                restocks::supplier_id.eq(&delivery.supplier_id),
                restocks::receipt.eq(serde_json::to_value(&receipt).map_err(anyhow::Error::from)?),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        if claimed == 0 {
            return stored_receipt(conn, &delivery.transaction_id)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!("restock {} vanished", delivery.transaction_id).into()
                });
        }
        let rows: Vec<_> = delivery
            .items
            .iter()
            .zip(&receipt.batch_ids)
            .map(|(item, id)| {
                (
                    batches::id.eq(*id),
                    batches::sku.eq(&item.sku),
                    batches::quantity.eq(item.quantity),
                    batches::remaining.eq(item.quantity),
                    batches::unit_cost.eq(item.unit_cost),
                    batches::mfd_date.eq(item.mfd_date),
                    batches::expiry_date.eq(item.expiry_date),
                    batches::supplier_id.eq(&delivery.supplier_id),
                    batches::truck_id.eq(&delivery.truck_id),
                    batches::transaction_id.eq(&delivery.transaction_id),
                )
            })
            .collect();
        diesel::insert_into(batches::table)
            .values(rows)
            .execute(conn)
            .await?;
        let movements: Vec<Movement> = delivery
            .items
            .iter()
            .zip(&receipt.batch_ids)
            .map(|(item, id)| Movement {
                sku: item.sku.clone(),
                kind: Kind::Restock,
                on_hand_delta: item.quantity,
                reserved_delta: 0,
                batch_id: Some(*id),
                reference: Some(delivery.transaction_id.clone()),
            })
            .collect();
        ledger::apply(conn, &movements).await?;
        Ok(receipt)
    })
    .await
}

async fn stored_receipt(
    conn: &mut AsyncPgConnection,
    transaction_id: &str,
) -> Result<Option<Receipt>, InventoryError> {
    let stored: Option<serde_json::Value> = restocks::table
        .find(transaction_id)
        .select(restocks::receipt)
        .first(conn)
        .await
        .optional()?;
    match stored {
        Some(value) => Ok(Some(
            serde_json::from_value(value).map_err(anyhow::Error::from)?,
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(item: RestockItem) -> Delivery {
        Delivery {
            transaction_id: "t-1".into(),
            truck_id: "truck-1".into(),
            supplier_id: "farm".into(),
            items: vec![item],
        }
    }

    fn item() -> RestockItem {
        RestockItem {
            sku: "apple".into(),
            quantity: 10,
            unit_cost: "0.4000".parse().unwrap(),
            mfd_date: NaiveDate::from_ymd_opt(2026, 11, 1),
            expiry_date: NaiveDate::from_ymd_opt(2026, 12, 1),
        }
    }

    #[test]
    fn accepts_a_good_delivery_and_normalises_skus() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let ok = validate(&delivery(item()), today).unwrap();
        assert_eq!(ok.items[0].sku, "APPLE");
    }

    #[test]
    fn refuses_bad_items() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let bad = [
            RestockItem {
                quantity: 0,
                ..item()
            },
            RestockItem {
                unit_cost: "-0.01".parse().unwrap(),
                ..item()
            },
            RestockItem {
                unit_cost: "0.12345".parse().unwrap(),
                ..item()
            },
            RestockItem {
                expiry_date: NaiveDate::from_ymd_opt(2026, 10, 1),
                ..item()
            },
            RestockItem {
                expiry_date: NaiveDate::from_ymd_opt(2026, 11, 21),
                mfd_date: None,
                ..item()
            },
            RestockItem {
                sku: "no spaces".into(),
                ..item()
            },
        ];
        for item in bad {
            assert!(
                validate(&delivery(item.clone()), today).is_err(),
                "{item:?}"
            );
        }
        assert!(
            validate(
                &Delivery {
                    items: vec![],
                    ..delivery(item())
                },
                today
            )
            .is_err()
        );
        assert!(
            validate(
                &Delivery {
                    truck_id: " ".into(),
                    ..delivery(item())
                },
                today
            )
            .is_err()
        );
    }
}
