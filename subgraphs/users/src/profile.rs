//! Contact details a user keeps on their profile, and the rules they obey.
//!
//! Payment methods are provider tokens with a display label; a raw card
//! number is refused wherever it shows up, because grocery never stores one.

use serde::{Deserialize, Serialize};

use crate::error::UsersError;

/// A postal address, stored as JSON on the account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// A stored payment method: the provider's token and a label for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentMethod {
    pub token: String,
    pub label: Option<String>,
}

/// Trims and lower-cases an e-mail address and checks its shape.
pub fn normalize_email(raw: &str) -> Result<String, UsersError> {
    let email = raw.trim().to_lowercase();
    let bad = || {
        UsersError::invalid(
            "email",
            format!("{:?} is not a valid e-mail address", raw.trim()),
        )
    };
    if email.len() > 254 {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if local_ok && domain_ok {
        Ok(email)
    } else {
        Err(bad())
    }
}

/// Strips spaces, dashes, dots and parentheses; the rest must be an optional
/// `+` and 7 to 15 digits (E.164 length).
pub fn normalize_phone(raw: &str) -> Result<String, UsersError> {
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    if (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(compact)
    } else {
        Err(UsersError::invalid(
            "phone",
            format!("{:?} is not a valid phone number", raw.trim()),
        ))
    }
}

fn text(
    field: &'static str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, UsersError> {
    let value = value.trim();
    if value.is_empty() {
        return if required {
            Err(UsersError::invalid(
                field,
                format!("{field} must not be empty"),
            ))
        } else {
            Ok(None)
        };
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(UsersError::invalid(
            field,
            format!("{field} must be at most {max} printable characters"),
        ));
    }
    Ok(Some(value.to_owned()))
}

impl Address {
    /// Trims every part and checks lengths and the country code.
    pub fn normalized(self) -> Result<Self, UsersError> {
        let country = self.country.trim().to_uppercase();
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(UsersError::invalid(
                "country",
                "country must be a two-letter ISO 3166-1 code",
            ));
        }
        Ok(Self {
            line1: text("line1", &self.line1, 200, true)?.unwrap_or_default(),
            line2: match self.line2 {
                Some(l) => text("line2", &l, 200, false)?,
                None => None,
            },
            city: text("city", &self.city, 100, true)?.unwrap_or_default(),
            region: match self.region {
                Some(r) => text("region", &r, 100, false)?,
                None => None,
            },
            postal_code: text("postalCode", &self.postal_code, 20, true)?.unwrap_or_default(),
            country,
        })
    }
}

/// Whether `s` contains a run of 12–19 digits, possibly split by spaces,
/// dashes or dots: the shape of a card number, valid checksum or not.
fn contains_card_number(s: &str) -> bool {
    let mut digits = 0;
    let mut pending_separator = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            pending_separator = false;
        } else if matches!(c, ' ' | '-' | '.') && digits > 0 && !pending_separator {
            pending_separator = true;
        } else {
            if (12..=19).contains(&digits) {
                return true;
            }
            digits = 0;
            pending_separator = false;
        }
    }
    (12..=19).contains(&digits)
}

impl PaymentMethod {
    /// Checks the token and label and refuses anything shaped like a card number.
    pub fn normalized(self) -> Result<Self, UsersError> {
        let token = text("defaultPaymentMethod.token", &self.token, 200, true)?.unwrap_or_default();
        let label = match self.label {
            Some(l) => text("defaultPaymentMethod.label", &l, 50, false)?,
            None => None,
        };
        if contains_card_number(&token) || label.as_deref().is_some_and(contains_card_number) {
            return Err(UsersError::invalid(
                "defaultPaymentMethod",
                "send a payment provider token, never a card number",
            ));
        }
        Ok(Self { token, label })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            normalize_email("  Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@ex..com",
            "ann@-x.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_keep_digits_and_plus() {
        assert_eq!(
            normalize_phone("+1 (555) 010-9999").unwrap(),
            "+15550109999"
        );
        assert!(normalize_phone("12345").is_err());
        assert!(normalize_phone("call me").is_err());
    }

    #[test]
    fn card_numbers_are_refused_tokens_are_not() {
        let pan = PaymentMethod {
            token: "4111 1111 1111 1111".into(),
            label: None,
        };
        assert!(pan.normalized().is_err());
        let in_label = PaymentMethod {
            token: "tok_visa".into(),
            label: Some("4111111111111111".into()),
        };
        assert!(in_label.normalized().is_err());
        let ok = PaymentMethod {
            token: " tok_visa ".into(),
            label: Some("Visa •••• 1111".into()),
        };
        assert_eq!(ok.normalized().unwrap().token, "tok_visa");
    }

    #[test]
    fn addresses_need_a_country_code() {
        let address = Address {
            line1: " 1 Main St ".into(),
            line2: Some("  ".into()),
            city: "Springfield".into(),
            region: None,
            postal_code: "12345".into(),
            country: "us".into(),
        };
        let normalized = address.clone().normalized().unwrap();
        assert_eq!(normalized.line1, "1 Main St");
        assert_eq!(normalized.line2, None);
        assert_eq!(normalized.country, "US");
        assert!(
            Address {
                country: "USA".into(),
                ..address
            }
            .normalized()
            .is_err()
        );
    }
}
