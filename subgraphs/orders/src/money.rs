//! An order's amounts (ARCHITECTURE §5b): lines come priced and rounded from
//! inventory; tax and shipping are configuration; `total = subtotal + tax + shipping`.

use rust_decimal::{Decimal, RoundingStrategy};

/// Rounds to cents, halves away from zero (as inventory does per line).
pub fn round_money(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Tax and shipping settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charges {
    /// `TAX_RATE`: 0.08 = 8 % (default 0).
    pub tax_rate: Decimal,
    /// `SHIPPING_FEE` per order (default 0.00).
    pub shipping_fee: Decimal,
    /// `FREE_SHIPPING_FROM`: orders whose subtotal reaches this ship free.
    pub free_shipping_from: Option<Decimal>,
}

impl Default for Charges {
    fn default() -> Self {
        Self {
            tax_rate: Decimal::ZERO,
            shipping_fee: Decimal::ZERO,
            free_shipping_from: None,
        }
    }
}

/// The amounts of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub shipping: Decimal,
    pub total: Decimal,
}

impl Charges {
    /// Tax and shipping on `subtotal` (already a sum of rounded lines).
    pub fn totals(&self, subtotal: Decimal) -> Totals {
        let tax = round_money(subtotal * self.tax_rate);
        let free = self.free_shipping_from.is_some_and(|from| subtotal >= from);
        let shipping = if free {
            Decimal::ZERO
        } else {
            round_money(self.shipping_fee)
        };
        Totals {
            subtotal: round_money(subtotal),
            tax,
            shipping,
            total: round_money(subtotal) + tax + shipping,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn tax_rounds_half_up_and_shipping_is_free_from_the_threshold() {
        let charges = Charges {
            tax_rate: d("0.05"),
            shipping_fee: d("4.99"),
            free_shipping_from: Some(d("50.00")),
        };
        // 12.30 × 5 % = 0.615 → 0.62
        assert_eq!(
            charges.totals(d("12.30")),
            Totals {
                subtotal: d("12.30"),
                tax: d("0.62"),
                shipping: d("4.99"),
                total: d("17.91")
            }
        );
        let free = charges.totals(d("50.00"));
        assert_eq!((free.shipping, free.total), (d("0"), d("52.50")));
    }

    #[test]
    fn defaults_charge_nothing_extra() {
        let totals = Charges::default().totals(d("3.10"));
        assert_eq!(
            (totals.tax, totals.shipping, totals.total),
            (d("0"), d("0"), d("3.10"))
        );
    }
}
