//! The lines a customer asks for: SKUs normalised, duplicates merged,
//! quantities and line counts checked, before anything is reserved.

use kit::lines::LineProblem;

use crate::{db::Line, error::OrdersError};

/// Most units of one SKU in one order or cart.
pub const MAX_QUANTITY: i32 = 1000;
/// Most lines in one order or cart.
pub const MAX_LINES: usize = 100;

/// `raw` trimmed and upper-cased; `BAD_USER_INPUT` unless 1–32 of `A-Z 0-9 _ -`.
pub fn normalize_sku(raw: &str) -> Result<String, OrdersError> {
    kit::lines::normalize_sku(raw).ok_or_else(|| sku_error(raw))
}

fn sku_error(raw: &str) -> OrdersError {
    OrdersError::invalid(
        "sku",
        format!("{raw:?} is not a SKU (1–32 letters, digits, _ or -)"),
    )
}

fn quantity_error(quantity: i32) -> OrdersError {
    OrdersError::invalid(
        "quantity",
        format!("quantity must be between 1 and {MAX_QUANTITY}, got {quantity}"),
    )
}

/// Checks one quantity.
pub fn check_quantity(quantity: i32) -> Result<(), OrdersError> {
    if (1..=MAX_QUANTITY).contains(&quantity) {
        Ok(())
    } else {
        Err(quantity_error(quantity))
    }
}

/// Normalises SKUs, merges duplicates (in SKU order) and checks every rule.
pub fn normalize(lines: &[Line]) -> Result<Vec<Line>, OrdersError> {
    let given = lines.iter().map(|l| (l.sku.as_str(), l.quantity));
    match kit::lines::merge(given, MAX_QUANTITY, MAX_LINES) {
        Ok(merged) => Ok(merged
            .into_iter()
            .map(|(sku, quantity)| Line { sku, quantity })
            .collect()),
        Err(LineProblem::Empty) => Err(OrdersError::invalid(
            "items",
            "at least one line is required",
        )),
        Err(LineProblem::Quantity(quantity)) => Err(quantity_error(quantity)),
        Err(LineProblem::Sku(raw)) => Err(sku_error(&raw)),
        Err(LineProblem::SkuTotal) => Err(OrdersError::invalid(
            "quantity",
            format!("at most {MAX_QUANTITY} units of one SKU"),
        )),
        Err(LineProblem::TooManyLines(n)) => Err(OrdersError::invalid(
            "items",
            format!("at most {MAX_LINES} lines, got {n}"),
        )),
    }
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
