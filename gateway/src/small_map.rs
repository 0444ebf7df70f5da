//! Key lookups in response objects without hashing.
//!
//! serde_json's `Map` is an `IndexMap` with SipHash (graphql-composition
//! needs `preserve_order`, so the whole build has it). Response objects hold
//! a handful of keys, and for those a scan that compares lengths first is
//! several times cheaper than hashing the key; big objects still hash.

use serde_json::{Map, Value};

/// Objects up to this many keys are scanned.
const SCAN: usize = 12;

/// `map[key]`.
#[inline]
pub fn get<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    if map.len() <= SCAN {
        map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

/// `map[key]`, to change it.
#[inline]
pub fn get_mut<'m>(map: &'m mut Map<String, Value>, key: &str) -> Option<&'m mut Value> {
    if map.len() <= SCAN {
        map.iter_mut()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    } else {
        map.get_mut(key)
    }
}

/// `value[key]` when `value` is an object.
#[inline]
pub fn field<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => get(map, key),
        _ => None,
    }
}

/// `value[key]` when `value` is an object, to change it.
#[inline]
pub fn field_mut<'v>(value: &'v mut Value, key: &str) -> Option<&'v mut Value> {
    match value {
        Value::Object(map) => get_mut(map, key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn small_and_big_objects_answer_alike() {
        for size in [0, 1, 5, SCAN, SCAN + 1, 40] {
            let mut value = Value::Object((0..size).map(|i| (format!("k{i}"), json!(i))).collect());
            for i in 0..size {
                assert_eq!(field(&value, &format!("k{i}")), Some(&json!(i)));
            }
            assert_eq!(field(&value, "k"), None);
            assert_eq!(field(&value, "missing"), None);
            if size > 0 {
                *field_mut(&mut value, "k0").unwrap() = json!("changed");
                assert_eq!(value["k0"], "changed");
            }
        }
        assert_eq!(field(&json!([1]), "k0"), None);
    }
}
