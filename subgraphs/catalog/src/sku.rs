//! Stock-keeping units: the key every subgraph uses for a product.
//!
//! Clients may type a SKU in any case; it is stored and compared in upper
//! case, so `apple`, `Apple` and `APPLE` are one product everywhere.

use std::fmt;

use crate::error::CatalogError;

/// The longest SKU the catalog accepts.
pub const MAX_LEN: usize = kit::lines::SKU_MAX_LEN;

/// A normalised SKU: 1–32 of `A-Z`, `0-9`, `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    /// Trims, upper-cases (ASCII only) and checks `raw`; `BAD_USER_INPUT` on field `sku`.
    pub fn parse(raw: &str) -> Result<Self, CatalogError> {
        if raw.trim().is_empty() {
            return Err(CatalogError::invalid("sku", "sku must not be empty"));
        }
        kit::lines::normalize_sku(raw).map(Self).ok_or_else(|| {
            CatalogError::invalid(
                "sku",
                format!(
                    "{:?} is not a valid SKU: use 1 to {MAX_LEN} letters, digits, '_' or '-'",
                    raw.trim()
                ),
            )
        })
    }

    /// A SKU read back from the `products` table, whose CHECK constraint
    /// admits only normalised SKUs.
    pub(crate) fn stored(sku: String) -> Self {
        Self(sku)
    }

    /// The SKU as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Sku> for String {
    fn from(sku: Sku) -> Self {
        sku.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_surrounding_space() {
        assert_eq!(Sku::parse(" apple-1_x ").unwrap().as_str(), "APPLE-1_X");
        assert_eq!(Sku::parse("MILK").unwrap().as_str(), "MILK");
        assert_eq!(
            Sku::parse(&"a".repeat(32)).unwrap().as_str(),
            "A".repeat(32)
        );
    }

    #[test]
    fn refuses_empty_long_and_foreign_characters() {
        for bad in [
            "",
            "   ",
            &"A".repeat(33),
            "APPLE PIE",
            "APPLE.1",
            "straße",
            "ÄPFEL",
            "A/B",
            "%",
        ] {
            match Sku::parse(bad) {
                Err(CatalogError::Invalid { field: "sku", .. }) => {}
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
