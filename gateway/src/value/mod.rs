//! The response tree's own JSON value.
//!
//! Subgraph answers are read into this ([`read`]), merged in it and projected from it,
//! so its shape is what a request costs. `serde_json::Value` is built for
//! general use and, in this build, keeps key order with an `IndexMap`
//! (graphql-composition turns `preserve_order` on for everyone): every object
//! hashes every key with SipHash and carries an index table, and every key
//! and string is its own allocation. GraphQL response objects hold a handful
//! of keys, read by scanning, so here an object is a vector of entries,
//! allocated once at its exact size, and keys and strings up to
//! [`INLINE`] bytes live inside the value with no allocation at all.
//!
//! Errors, extensions and client variables stay `serde_json::Value`: they are
//! few and small, and nothing merges them.
//!
//! This module's files are the only places in the workspace allowed
//! `unsafe`: the inline strings ([`Str`]) and the reader's ASCII fast path
//! ([`read`]), each block with its reason.

#![allow(unsafe_code)]

use std::fmt;

use serde::{
    Serialize, Serializer,
    ser::{SerializeMap, SerializeSeq},
};
pub use serde_json::Number;

pub mod read;
mod strings;
pub use read::ReadError;
pub use strings::{INLINE, Str};

/// A JSON value of the response tree.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Str),
    Array(Box<[Value]>),
    Object(Map),
}

/// A JSON object: its entries in order, looked up by scanning.
///
/// Scanning is what small objects want; an object with thousands of keys (a
/// JSON scalar) is only ever walked whole, never merged key by key on a hot path.
/// The entries are a boxed slice, exactly as long as the object (a `Vec`'s
/// capacity would make every value of the tree 8 bytes larger): objects
/// grow by merges, all of a merge's new keys at once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map(Box<[(Str, Value)]>);

impl Map {
    pub fn new() -> Self {
        Map(Box::default())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| key_eq(k.as_bytes(), key.as_bytes()))
            .map(|(_, v)| v)
    }

    #[inline]
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0
            .iter_mut()
            .find(|(k, _)| key_eq(k.as_bytes(), key.as_bytes()))
            .map(|(_, v)| v)
    }

    /// [`Self::get`], trying first the position `hint` holds and leaving
    /// there where `key` was found: objects of one type in one answer hold
    /// their keys in one order, so a walk over many finds each key at once.
    #[inline]
    pub fn get_hinted(&self, key: &str, hint: &std::cell::Cell<u32>) -> Option<&Value> {
        let mut at = hint.get();
        let found = self.find_from(key, &mut at)?;
        hint.set(at);
        Some(&self.0[found].1)
    }

    /// [`Self::get`] for keys asked in the order the object usually holds
    /// them (a selection's fields, as subgraphs answer them): the entry at
    /// `cursor` is tried first, and `cursor` is left just after the entry found.
    #[inline]
    pub fn get_next(&self, key: &str, cursor: &mut usize) -> Option<&Value> {
        let found = self.next_position(key, cursor)?;
        Some(&self.0[found].1)
    }

    /// [`Self::get_mut`] with a `cursor`, as [`Self::get_next`].
    #[inline]
    pub fn get_next_mut(&mut self, key: &str, cursor: &mut usize) -> Option<&mut Value> {
        let found = self.next_position(key, cursor)?;
        Some(&mut self.0[found].1)
    }

    #[inline]
    fn next_position(&self, key: &str, cursor: &mut usize) -> Option<usize> {
        let found = match self.0.get(*cursor) {
            Some((k, _)) if key_eq(k.as_bytes(), key.as_bytes()) => *cursor,
            _ => self
                .0
                .iter()
                .position(|(k, _)| key_eq(k.as_bytes(), key.as_bytes()))?,
        };
        *cursor = found + 1;
        Some(found)
    }

    /// [`Self::get_mut`] with a position `hint`, as [`Self::get_hinted`].
    #[inline]
    pub fn get_mut_hinted(&mut self, key: &str, hint: &mut u32) -> Option<&mut Value> {
        let found = self.find_from(key, hint)?;
        Some(&mut self.0[found].1)
    }

    #[inline]
    fn find_from(&self, key: &str, hint: &mut u32) -> Option<usize> {
        let guess = *hint as usize;
        if let Some((k, _)) = self.0.get(guess)
            && key_eq(k.as_bytes(), key.as_bytes())
        {
            return Some(guess);
        }
        let found = self
            .0
            .iter()
            .position(|(k, _)| key_eq(k.as_bytes(), key.as_bytes()))?;
        *hint = found as u32;
        Some(found)
    }

    /// Merges `other` into this object: `merge` gets each key both hold,
    /// the other keys are added, after this object's own, in one growth.
    pub fn merge_with(&mut self, other: Map, mut merge: impl FnMut(&mut Value, Value)) {
        let mut entries = std::mem::take(&mut self.0).into_vec();
        let own = entries.len();
        entries.reserve_exact(other.len());
        for (key, value) in other.0.into_vec() {
            match entries[..own]
                .iter_mut()
                .find(|(k, _)| key_eq(k.as_bytes(), key.as_bytes()))
            {
                Some((_, slot)) => merge(slot, value),
                None => entries.push((key, value)),
            }
        }
        self.0 = entries.into_boxed_slice();
    }

    /// [`Self::merge_with`] from a borrowed `other`, leaving out its key
    /// `skip`: keys this object lacks are added as copies.
    pub fn merge_with_ref(
        &mut self,
        other: &Map,
        skip: Option<&str>,
        mut merge: impl FnMut(&mut Value, &Value),
    ) {
        let skipped = |key: &Str| skip.is_some_and(|s| key_eq(s.as_bytes(), key.as_bytes()));
        // Which of the first 64 keys of `other` are missing here, so that
        // adding them does not look them up again.
        let (mut missing, mut absent) = (0, 0u64);
        // Both usually hold their keys in one order.
        let mut cursor = 0;
        for (i, (key, value)) in other.iter().enumerate() {
            if skipped(key) {
                continue;
            }
            match self.get_next_mut(key, &mut cursor) {
                Some(slot) => merge(slot, value),
                None => {
                    missing += 1;
                    if i < 64 {
                        absent |= 1 << i;
                    }
                }
            }
        }
        if missing == 0 {
            return;
        }
        let mut entries = std::mem::take(&mut self.0).into_vec();
        let own = entries.len();
        entries.reserve_exact(missing);
        for (i, (key, value)) in other.iter().enumerate() {
            let add = if i < 64 {
                absent & (1 << i) != 0
            } else {
                !skipped(key)
                    && !entries[..own]
                        .iter()
                        .any(|(k, _)| key_eq(k.as_bytes(), key.as_bytes()))
            };
            if add {
                entries.push((key.clone(), value.clone()));
            }
        }
        self.0 = entries.into_boxed_slice();
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, answering what it held; a new key goes last.
    pub fn insert(&mut self, key: impl Into<Str>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.get_mut(&key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.push(key, value);
                None
            }
        }
    }

    /// Adds `key`, which the map does not hold yet (growing the object by
    /// one: [`Self::merge_with`] adds many at once).
    pub fn push(&mut self, key: Str, value: Value) {
        debug_assert!(!self.contains_key(&key));
        let mut entries = std::mem::take(&mut self.0).into_vec();
        entries.reserve_exact(1);
        entries.push((key, value));
        self.0 = entries.into_boxed_slice();
    }

    /// Removes `key`, keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let at = self
            .0
            .iter()
            .position(|(k, _)| key_eq(k.as_bytes(), key.as_bytes()))?;
        let mut entries = std::mem::take(&mut self.0).into_vec();
        let (_, value) = entries.remove(at);
        self.0 = entries.into_boxed_slice();
        Some(value)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Str, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (&Str, &mut Value)> {
        self.0.iter_mut().map(|(k, v)| (&*k, v))
    }
}

/// Whether two keys are equal. Keys are short, and a lookup scans an
/// object comparing the wanted key with each: a call to `memcmp` per entry
/// costs more than the comparison, so keys up to 16 bytes are compared in
/// two (overlapping) machine words each.
#[inline(always)]
pub fn key_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    fn word(s: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(s[at..at + 8].try_into().expect("eight bytes"))
    }
    fn half(s: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(s[at..at + 4].try_into().expect("four bytes"))
    }
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

impl IntoIterator for Map {
    type Item = (Str, Value);
    type IntoIter = std::vec::IntoIter<(Str, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_vec().into_iter()
    }
}

impl<K: Into<Str>> FromIterator<(K, Value)> for Map {
    /// A later value of a repeated key replaces the earlier one in place.
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut entries: Vec<(Str, Value)> = Vec::new();
        for (k, v) in iter {
            let k = k.into();
            match entries
                .iter_mut()
                .find(|(own, _)| key_eq(own.as_bytes(), k.as_bytes()))
            {
                Some((_, slot)) => *slot = v,
                None => entries.push((k, v)),
            }
        }
        Map(entries.into_boxed_slice())
    }
}

static NULL: Value = Value::Null;

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// `self[key]` when `self` is an object.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => map.get(key),
            _ => None,
        }
    }

    /// `self[key]` when `self` is an object, to change it.
    #[inline]
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Object(map) => map.get_mut(key),
            _ => None,
        }
    }

    /// `self[i]` when `self` is a list.
    #[inline]
    pub fn item(&self, i: usize) -> Option<&Value> {
        match self {
            Value::Array(items) => items.get(i),
            _ => None,
        }
    }

    /// `self[i]` when `self` is a list, to change it.
    #[inline]
    pub fn item_mut(&mut self, i: usize) -> Option<&mut Value> {
        match self {
            Value::Array(items) => items.get_mut(i),
            _ => None,
        }
    }

    /// The value, leaving null in its place.
    pub fn take(&mut self) -> Value {
        std::mem::take(self)
    }

    /// Parses JSON text (see [`read`]).
    pub fn from_slice(bytes: &[u8]) -> Result<Value, ReadError> {
        read::value(bytes)
    }

    /// Appends the value as compact JSON to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Number(n) => write_number(out, n),
            Value::String(s) => s.write_json(out),
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Value::Object(map) => {
                out.push(b'{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    k.write_json(out);
                    out.push(b':');
                    v.write_json(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// Appends `s` as a JSON string.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let plain = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    let _ = serde_json::to_writer(&mut *out, n);
}

impl std::ops::Index<&str> for Value {
    type Output = Value;
    /// `self[key]`, null when absent (as `serde_json::Value` answers).
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for Value {
    type Output = Value;
    fn index(&self, i: usize) -> &Value {
        self.item(i).unwrap_or(&NULL)
    }
}

impl fmt::Display for Value {
    /// Compact JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.write_json(&mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

impl From<serde_json::Value> for Value {
    fn from(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(s.into()),
            serde_json::Value::Array(items) => {
                Value::Array(items.into_iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => Value::Object(Map(map
                .into_iter()
                .map(|(k, v)| (Str::from(k), Value::from(v)))
                .collect())),
        }
    }
}

impl From<&serde_json::Value> for Value {
    fn from(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.clone()),
            serde_json::Value::String(s) => Value::String(Str::new(s)),
            serde_json::Value::Array(items) => {
                Value::Array(items.iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => Value::Object(Map(map
                .iter()
                .map(|(k, v)| (Str::new(k), Value::from(v)))
                .collect())),
        }
    }
}

impl From<&Value> for serde_json::Value {
    fn from(value: &Value) -> Self {
        match value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.as_str().to_owned()),
            Value::Array(items) => serde_json::Value::Array(items.iter().map(Into::into).collect()),
            Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.into()))
                    .collect(),
            ),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(Str::new(s))
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => n.serialize(serializer),
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map.iter() {
                    out.serialize_entry(k.as_str(), v)?;
                }
                out.end()
            }
        }
    }
}

/// Merges `from` into `into`: objects key by key, lists element-wise, anything else replaced.
pub fn deep_merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => a.merge_with(b, deep_merge),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter_mut().zip(b.into_vec()) {
                deep_merge(x, y);
            }
        }
        (into, Value::Null) if !into.is_null() => {}
        (into, from) => *into = from,
    }
}

/// [`deep_merge`] of a copy of `from`, copying only what `into` lacks.
pub fn deep_merge_ref(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => a.merge_with_ref(b, None, deep_merge_ref),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter_mut().zip(b) {
                deep_merge_ref(x, y);
            }
        }
        (into, Value::Null) if !into.is_null() => {}
        (into, from) => *into = from.clone(),
    }
}

#[cfg(test)]
mod tests;
