//! A role as a token carries it: a checked name, not a list this crate knows.
//!
//! The subgraphs' roles (`CUSTOMER`, `TRUCK`, `PARTNER`, `ADMIN`) are kit's
//! `Role` enum, read from the name; the gateway serves any supergraph and
//! compares names it is configured with. A name in a token that nobody here
//! knows still verifies: it is the signer's word, and it grants nothing
//! until some component's rule names it.

use std::{borrow::Cow, fmt};

use serde::{Deserialize, Serialize};

/// Longest role name accepted.
const MAX_LEN: usize = 64;

/// A role's name as tokens carry it: an upper-case ASCII letter, then
/// upper-case letters, digits and underscores, at most 64 bytes (the shape
/// of a GraphQL enum value such as `CUSTOMER`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoleName(Cow<'static, str>);

/// A text that is not a [`RoleName`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a role name (an upper-case letter, then upper-case letters, digits or underscores, at most 64)"
)]
pub struct InvalidRoleName(pub String);

const fn is_role_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_LEN || !bytes[0].is_ascii_uppercase() {
        return false;
    }
    let mut i = 1;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

impl RoleName {
    /// The name `name`, when it has a role name's shape.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidRoleName> {
        let name = name.into();
        if is_role_name(&name) {
            Ok(Self(Cow::Owned(name)))
        } else {
            Err(InvalidRoleName(name))
        }
    }

    /// A name written in the program (`RoleName::from_static("ADMIN")`).
    ///
    /// # Panics
    ///
    /// When `name` is not a role name: at compile time in a `const`, else at
    /// the first call, a bug in the caller either way.
    pub const fn from_static(name: &'static str) -> Self {
        assert!(is_role_name(name), "not a role name");
        Self(Cow::Borrowed(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RoleName {
    type Err = InvalidRoleName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for RoleName {
    type Error = InvalidRoleName;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

impl From<RoleName> for String {
    fn from(role: RoleName) -> Self {
        role.0.into_owned()
    }
}

impl PartialEq<str> for RoleName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_enum_value_shaped_names_only() {
        for good in ["ADMIN", "PARTNER", "A", "TRUCK_2", &"X".repeat(64)] {
            assert_eq!(RoleName::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "admin",
            "Admin",
            "2FA",
            "_X",
            "A-B",
            "A B",
            &"X".repeat(65),
        ] {
            assert_eq!(RoleName::new(bad), Err(InvalidRoleName(bad.to_owned())));
        }
    }

    #[test]
    fn reads_and_writes_as_a_plain_string() {
        let role: RoleName = serde_json::from_str(r#""PARTNER""#).unwrap();
        assert_eq!(role, RoleName::from_static("PARTNER"));
        assert_eq!(serde_json::to_string(&role).unwrap(), r#""PARTNER""#);
        assert!(serde_json::from_str::<RoleName>(r#""partner""#).is_err());
    }
}
