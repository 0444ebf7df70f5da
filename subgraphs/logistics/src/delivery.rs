//! What a truck delivers, and what makes a delivery acceptable. The rules are
//! inventory's own (`RestockItems` would refuse the same things), checked here
//! first so that bad input is refused before anything is written. Whether a
//! SKU exists only inventory knows: it answers that on the first attempt.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::LogisticsError;

/// Most lines one delivery may hold (inventory's limit).
pub const MAX_LINES: usize = 500;
/// Most units of one line.
pub const MAX_QUANTITY: i32 = 1_000_000;
/// Longest truck, supplier id and idempotency key.
const MAX_ID_LEN: usize = 100;
const MAX_KEY_LEN: usize = 200;

/// One product of a delivery; stored as JSON in `restock_orders.lines`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub sku: String,
    pub quantity: i32,
    pub unit_cost: Decimal,
    pub mfd_date: Option<NaiveDate>,
    pub expiry_date: Option<NaiveDate>,
}

/// A delivery: who brings what from whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub truck_id: String,
    pub supplier_id: String,
    pub lines: Vec<Line>,
}

/// A restock as asked for: the delivery, and the requester's key for retries.
#[derive(Clone, Debug)]
pub struct Request {
    pub delivery: Delivery,
    pub idempotency_key: Option<String>,
}

fn identifier(field: &str, value: &str) -> Result<String, LogisticsError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_ID_LEN || value.chars().any(char::is_control)
    {
        return Err(LogisticsError::invalid(
            field,
            format!("{field} must be 1 to {MAX_ID_LEN} printable characters"),
        ));
    }
    Ok(value.to_owned())
}

fn line(index: usize, line: &Line, today: NaiveDate) -> Result<Line, LogisticsError> {
    let field = |name: &str| format!("items[{index}].{name}");
    let sku = kit::lines::normalize_sku(&line.sku).ok_or_else(|| {
        LogisticsError::invalid(
            field("sku"),
            format!("{:?} is not a valid SKU", line.sku.trim()),
        )
    })?;
    if !(1..=MAX_QUANTITY).contains(&line.quantity) {
        return Err(LogisticsError::invalid(
            field("quantity"),
            format!("{sku}: quantity must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    if line.unit_cost < Decimal::ZERO
        || line.unit_cost > Decimal::from(1_000_000)
        || line.unit_cost.normalize().scale() > 4
    {
        return Err(LogisticsError::invalid(
            field("unitCost"),
            format!("{sku}: unit cost must be between 0 and 1000000 with at most 4 decimals"),
        ));
    }
    if let (Some(mfd), Some(expiry)) = (line.mfd_date, line.expiry_date)
        && expiry <= mfd
    {
        return Err(LogisticsError::invalid(
            field("expiryDate"),
            format!("{sku}: expiry must be after manufacture"),
        ));
    }
    if line.expiry_date.is_some_and(|expiry| expiry < today) {
        return Err(LogisticsError::invalid(
            field("expiryDate"),
            format!("{sku}: these goods have already expired"),
        ));
    }
    if line.mfd_date.is_some_and(|mfd| mfd > today) {
        return Err(LogisticsError::invalid(
            field("mfdDate"),
            format!("{sku}: manufacture date is in the future"),
        ));
    }
    Ok(Line {
        sku,
        ..line.clone()
    })
}

/// `request` checked and normalised (SKUs upper-cased, ids trimmed); the
/// first problem found is the error.
pub fn validate(request: &Request, today: NaiveDate) -> Result<Request, LogisticsError> {
    let delivery = &request.delivery;
    let truck_id = identifier("truckId", &delivery.truck_id)?;
    let supplier_id = identifier("supplierId", &delivery.supplier_id)?;
    if delivery.lines.is_empty() || delivery.lines.len() > MAX_LINES {
        return Err(LogisticsError::invalid(
            "items",
            format!("a restock has 1 to {MAX_LINES} items"),
        ));
    }
    let lines = delivery
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| line(i, l, today))
        .collect::<Result<_, _>>()?;
    let idempotency_key = request
        .idempotency_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            if k.chars().count() > MAX_KEY_LEN {
                Err(LogisticsError::invalid(
                    "idempotencyKey",
                    format!("idempotencyKey is at most {MAX_KEY_LEN} characters"),
                ))
            } else {
                Ok(k.to_owned())
            }
        })
        .transpose()?;
    Ok(Request {
        delivery: Delivery {
            truck_id,
            supplier_id,
            lines,
        },
        idempotency_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    fn apple() -> Line {
        Line {
            sku: " apple ".into(),
            quantity: 10,
            unit_cost: "0.4000".parse().unwrap(),
            mfd_date: NaiveDate::from_ymd_opt(2026, 11, 1),
            expiry_date: NaiveDate::from_ymd_opt(2026, 12, 1),
        }
    }

    fn request(lines: Vec<Line>) -> Request {
        Request {
            delivery: Delivery {
                truck_id: " truck-1 ".into(),
                supplier_id: "farm".into(),
                lines,
            },
            idempotency_key: Some("  ".into()),
        }
    }

    fn refusal(lines: Vec<Line>) -> (String, String) {
        match validate(&request(lines), today()) {
            Err(LogisticsError::Invalid { field, message }) => (field, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_good_delivery_is_normalised() {
        let ok = validate(&request(vec![apple()]), today()).unwrap();
        assert_eq!(ok.delivery.truck_id, "truck-1");
        assert_eq!(ok.delivery.lines[0].sku, "APPLE");
        assert_eq!(ok.idempotency_key, None, "a blank key is no key");
    }

    #[test]
    fn each_bad_line_is_refused_with_its_field() {
        let cases = [
            (
                Line {
                    quantity: 0,
                    ..apple()
                },
                "items[1].quantity",
            ),
            (
                Line {
                    unit_cost: "-0.01".parse().unwrap(),
                    ..apple()
                },
                "items[1].unitCost",
            ),
            (
                Line {
                    unit_cost: "0.12345".parse().unwrap(),
                    ..apple()
                },
                "items[1].unitCost",
            ),
            (
                Line {
                    expiry_date: NaiveDate::from_ymd_opt(2026, 10, 1),
                    ..apple()
                },
                "items[1].expiryDate",
            ),
            (
                Line {
                    mfd_date: None,
                    expiry_date: NaiveDate::from_ymd_opt(2026, 11, 21),
                    ..apple()
                },
                "items[1].expiryDate",
            ),
            (
                Line {
                    mfd_date: NaiveDate::from_ymd_opt(2026, 11, 23),
                    ..apple()
                },
                "items[1].mfdDate",
            ),
            (
                Line {
                    sku: "no spaces".into(),
                    ..apple()
                },
                "items[1].sku",
            ),
        ];
        for (bad, field) in cases {
            assert_eq!(refusal(vec![apple(), bad.clone()]).0, field, "{bad:?}");
        }
        // Trailing zeros are not decimals that matter.
        let cost = Line {
            unit_cost: "0.400000".parse().unwrap(),
            ..apple()
        };
        assert!(validate(&request(vec![cost]), today()).is_ok());
    }

    #[test]
    fn empty_and_oversized_deliveries_and_blank_ids_are_refused() {
        assert_eq!(refusal(vec![]).0, "items");
        assert_eq!(refusal(vec![apple(); MAX_LINES + 1]).0, "items");
        assert!(validate(&request(vec![apple(); MAX_LINES]), today()).is_ok());
        let mut blank = request(vec![apple()]);
        blank.delivery.supplier_id = " ".into();
        assert!(matches!(
            validate(&blank, today()),
            Err(LogisticsError::Invalid { field, .. }) if field == "supplierId"
        ));
        let mut long_key = request(vec![apple()]);
        long_key.idempotency_key = Some("k".repeat(201));
        assert!(matches!(
            validate(&long_key, today()),
            Err(LogisticsError::Invalid { field, .. }) if field == "idempotencyKey"
        ));
    }
}
