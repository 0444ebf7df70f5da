//! What an update does to one optional field: keep it, clear it or set it.
//!
//! GraphQL update inputs tell "omitted" from "explicitly null"; a
//! [`MaybeUndefined`] converts into a [`Change`] so domain code can apply an
//! update without seeing GraphQL types.

use async_graphql::MaybeUndefined;

/// How an update treats one optional field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Change<T> {
    /// Leave the stored value alone.
    #[default]
    Keep,
    /// Remove the stored value.
    Clear,
    /// Replace the stored value.
    Set(T),
}

impl<T> Change<T> {
    /// Applies `f` to a value being set, keeping `Keep`/`Clear` as they are.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Change<U>, E> {
        Ok(match self {
            Change::Keep => Change::Keep,
            Change::Clear => Change::Clear,
            Change::Set(v) => Change::Set(f(v)?),
        })
    }
}

/// An omitted field is kept, an explicit null clears it, a value sets it.
impl<T> From<MaybeUndefined<T>> for Change<T> {
    fn from(value: MaybeUndefined<T>) -> Self {
        match value {
            MaybeUndefined::Undefined => Change::Keep,
            MaybeUndefined::Null => Change::Clear,
            MaybeUndefined::Value(v) => Change::Set(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_keeps_null_clears_value_sets() {
        assert_eq!(Change::from(MaybeUndefined::<i32>::Undefined), Change::Keep);
        assert_eq!(Change::from(MaybeUndefined::<i32>::Null), Change::Clear);
        assert_eq!(Change::from(MaybeUndefined::Value(7)), Change::Set(7));
    }

    #[test]
    fn try_map_touches_only_set_values() {
        let parse = |s: &str| s.parse::<i32>();
        assert_eq!(Change::<&str>::Keep.try_map(parse), Ok(Change::Keep));
        assert_eq!(Change::<&str>::Clear.try_map(parse), Ok(Change::Clear));
        assert_eq!(Change::Set("42").try_map(parse), Ok(Change::Set(42)));
        assert!(Change::Set("x").try_map(parse).is_err());
    }
}
