//! The lines a customer asks for: SKUs normalised, duplicates merged,
//! quantities and line counts checked, before anything is reserved.

use std::collections::BTreeMap;

use crate::{db::Line, error::OrdersError};

/// Most units of one SKU in one order or cart.
pub const MAX_QUANTITY: i32 = 1000;
/// Most lines in one order or cart.
pub const MAX_LINES: usize = 100;

/// `raw` trimmed and upper-cased; `BAD_USER_INPUT` unless 1–32 of `A-Z 0-9 _ -`.
pub fn normalize_sku(raw: &str) -> Result<String, OrdersError> {
    let sku = raw.trim().to_uppercase();
    let valid = (1..=32).contains(&sku.len())
        && sku
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(sku)
    } else {
        Err(OrdersError::invalid(
            "sku",
            format!("{raw:?} is not a SKU (1–32 letters, digits, _ or -)"),
        ))
    }
}

/// Checks one quantity.
pub fn check_quantity(quantity: i32) -> Result<(), OrdersError> {
    if (1..=MAX_QUANTITY).contains(&quantity) {
        Ok(())
    } else {
        Err(OrdersError::invalid(
            "quantity",
            format!("quantity must be between 1 and {MAX_QUANTITY}, got {quantity}"),
        ))
    }
}

/// Normalises SKUs, merges duplicates (in SKU order) and checks every rule.
pub fn normalize(lines: &[Line]) -> Result<Vec<Line>, OrdersError> {
    if lines.is_empty() {
        return Err(OrdersError::invalid(
            "items",
            "at least one line is required",
        ));
    }
    let mut merged: BTreeMap<String, i32> = BTreeMap::new();
    for line in lines {
        check_quantity(line.quantity)?;
        let total = merged.entry(normalize_sku(&line.sku)?).or_default();
        *total += line.quantity;
        if *total > MAX_QUANTITY {
            return Err(OrdersError::invalid(
                "quantity",
                format!("at most {MAX_QUANTITY} units of one SKU"),
            ));
        }
    }
    if merged.len() > MAX_LINES {
        return Err(OrdersError::invalid(
            "items",
            format!("at most {MAX_LINES} lines, got {}", merged.len()),
        ));
    }
    Ok(merged
        .into_iter()
        .map(|(sku, quantity)| Line { sku, quantity })
        .collect())
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
    fn duplicates_merge_and_rules_hold() {
        assert_eq!(
            normalize(&[line("apple", 2), line("MILK", 1), line(" Apple ", 3)]).unwrap(),
            [line("APPLE", 5), line("MILK", 1)]
        );
        assert!(normalize(&[]).is_err());
        assert!(normalize(&[line("APPLE", 0)]).is_err());
        assert!(normalize(&[line("APPLE", 1001)]).is_err());
        assert!(normalize(&[line("APPLE", 600), line("apple", 401)]).is_err());
        assert!(normalize(&[line("bad sku", 1)]).is_err());
        let many: Vec<Line> = (0..101).map(|i| line(&format!("SKU{i}"), 1)).collect();
        assert!(normalize(&many).is_err());
        assert_eq!(normalize(&many[..100]).unwrap().len(), 100);
    }
}
