//! GTIN-12 (UPC-A) and GTIN-13 (EAN-13) barcodes and their check digit.
//!
//! The last digit is a checksum of the others (GS1 mod-10: digits weighted
//! 3, 1, 3, … from the right), so a mistyped digit or a swap of neighbours is
//! caught before it reaches a shelf label.

use crate::error::CatalogError;

/// A barcode whose length and check digit are right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gtin(String);

impl Gtin {
    /// Checks a trimmed GTIN-12 or GTIN-13; `BAD_USER_INPUT` on field `upc`.
    pub fn parse(raw: &str) -> Result<Self, CatalogError> {
        let digits = raw.trim();
        if !matches!(digits.len(), 12 | 13) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CatalogError::invalid(
                "upc",
                format!("{digits:?} is not a UPC: use 12 (GTIN-12) or 13 (GTIN-13) digits"),
            ));
        }
        let (body, check) = digits.split_at(digits.len() - 1);
        let expected = check_digit(body);
        if check.as_bytes()[0] - b'0' != expected {
            return Err(CatalogError::invalid(
                "upc",
                format!("{digits:?} has a wrong check digit (expected {expected})"),
            ));
        }
        Ok(Self(digits.to_owned()))
    }

    /// The digits, check digit included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Gtin> for String {
    fn from(gtin: Gtin) -> Self {
        gtin.0
    }
}

/// The GS1 check digit of `body` (ASCII digits, without the check digit).
pub fn check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_gs1_check_digits() {
        // Published examples: a UPC-A and an EAN-13.
        assert_eq!(check_digit("03600029145"), 2);
        assert_eq!(check_digit("400638133393"), 1);
        assert_eq!(check_digit("00000000000"), 0);
    }

    #[test]
    fn accepts_valid_gtin_12_and_13() {
        assert_eq!(
            Gtin::parse("036000291452").unwrap().as_str(),
            "036000291452"
        );
        assert_eq!(
            Gtin::parse(" 4006381333931 ").unwrap().as_str(),
            "4006381333931"
        );
    }

    #[test]
    fn refuses_wrong_check_digits_lengths_and_characters() {
        for bad in [
            "036000291453", // check digit off by one
            "036000291425", // neighbours swapped
            "4006381333932",
            "03600029145",    // 11 digits
            "40063813339310", // 14 digits
            "03600029145X",
            "0360-0029-1452",
            "",
        ] {
            match Gtin::parse(bad) {
                Err(CatalogError::Invalid { field: "upc", .. }) => {}
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
