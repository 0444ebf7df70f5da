//! Lines of SKUs and quantities as clients and services send them: SKUs
//! normalised, duplicates merged, limits checked. Each subgraph words its own
//! errors from a [`LineProblem`].

use std::collections::BTreeMap;

/// The longest SKU.
pub const SKU_MAX_LEN: usize = 32;

/// `raw` trimmed and upper-cased, if it is a SKU: 1–32 of `A-Z 0-9 _ -`.
/// ASCII-only upper-casing: `ß` must not turn into an acceptable `SS`.
pub fn normalize_sku(raw: &str) -> Option<String> {
    let sku = raw.trim().to_ascii_uppercase();
    let valid = (1..=SKU_MAX_LEN).contains(&sku.len())
        && sku
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    valid.then_some(sku)
}

/// Why lines were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    /// No lines at all.
    Empty,
    /// A line's quantity is outside 1..=max.
    Quantity(i32),
    /// A line's SKU (as given) is not a SKU.
    Sku(String),
    /// The lines of one SKU add up to more than the most allowed.
    SkuTotal,
    /// More distinct SKUs than allowed; how many there were.
    TooManyLines(usize),
}

/// `lines` with SKUs normalised and duplicates merged, in SKU order; each
/// quantity and each SKU's total at most `max_quantity`, at most `max_lines` SKUs.
pub fn merge<'a>(
    lines: impl IntoIterator<Item = (&'a str, i32)>,
    max_quantity: i32,
    max_lines: usize,
) -> Result<Vec<(String, i32)>, LineProblem> {
    let mut merged: BTreeMap<String, i32> = BTreeMap::new();
    let mut any = false;
    for (sku, quantity) in lines {
        any = true;
        if !(1..=max_quantity).contains(&quantity) {
            return Err(LineProblem::Quantity(quantity));
        }
        let sku = normalize_sku(sku).ok_or_else(|| LineProblem::Sku(sku.to_owned()))?;
        let total = merged.entry(sku).or_default();
        *total = total.saturating_add(quantity);
        if *total > max_quantity {
            return Err(LineProblem::SkuTotal);
        }
    }
    if !any {
        return Err(LineProblem::Empty);
    }
    if merged.len() > max_lines {
        return Err(LineProblem::TooManyLines(merged.len()));
    }
    Ok(merged.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_upper_cased_in_ascii_only() {
        assert_eq!(normalize_sku(" apple-1 ").as_deref(), Some("APPLE-1"));
        assert_eq!(normalize_sku("straße"), None);
        assert_eq!(normalize_sku(""), None);
        assert_eq!(normalize_sku(&"A".repeat(33)), None);
    }

    #[test]
    fn duplicates_merge_in_sku_order_within_the_limits() {
        let merged = merge([("milk", 1), ("apple", 2), (" Apple ", 3)], 10, 5).unwrap();
        assert_eq!(merged, [("APPLE".to_owned(), 5), ("MILK".to_owned(), 1)]);
        assert_eq!(merge([], 10, 5), Err(LineProblem::Empty));
        assert_eq!(merge([("A", 0)], 10, 5), Err(LineProblem::Quantity(0)));
        assert_eq!(
            merge([("A", 6), ("a", 5)], 10, 5),
            Err(LineProblem::SkuTotal)
        );
        assert_eq!(
            merge([("A", 1), ("B", 1)], 10, 1),
            Err(LineProblem::TooManyLines(2))
        );
        assert_eq!(merge([("?", 1)], 10, 5), Err(LineProblem::Sku("?".into())));
    }
}
