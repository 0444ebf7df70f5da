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
//! This module and [`read`] are the only places in the workspace allowed
//! `unsafe`: the inline strings and the reader's ASCII fast path, each block
//! with its reason.
#![allow(unsafe_code)]

use std::fmt;

use serde::{
    Serialize, Serializer,
    ser::{SerializeMap, SerializeSeq},
};
pub use serde_json::Number;

pub mod read;
pub use read::ReadError;

/// Strings up to this many bytes are stored inline.
pub const INLINE: usize = 14;

/// An immutable string of 16 bytes: inline when short, otherwise one shared
/// allocation, so the copies an entity makes when it lands on several paths
/// of the response (or when requests share one subgraph answer) cost a
/// reference count, not an allocation and a copy each.
pub struct Str(Repr);

/// A string is *plain* when JSON writes it as is between quotes: read from
/// JSON with no escape in it (a raw `"`, `\\` or control character cannot
/// stand in a JSON string), it is known to be, and writing it skips the scan.
enum Repr {
    /// The length, with [`PLAIN`] set when plain.
    Inline(u8, [u8; INLINE]),
    /// An `Arc<str>` taken apart so that its length fits beside the tag:
    /// the pointer [`Arc::into_raw`] gave and the length.
    Heap {
        len: u32,
        plain: bool,
        ptr: std::ptr::NonNull<u8>,
    },
}

// SAFETY: `Heap` owns one strong count of an `Arc<str>`, which is Send and
// Sync; the inline form is plain bytes.
unsafe impl Send for Str {}
// SAFETY: as for Send: shared access only reads the string.
unsafe impl Sync for Str {}

/// The flag of a plain inline string's length byte.
const PLAIN: u8 = 0x80;

impl Str {
    /// A copy of `s`.
    #[inline]
    pub fn new(s: &str) -> Self {
        Self::with(s, false)
    }

    /// A copy of `s`, which JSON writes as is (see [`Repr`]).
    #[inline]
    fn plain(s: &str) -> Self {
        Self::with(s, true)
    }

    #[inline]
    fn with(s: &str, plain: bool) -> Self {
        if s.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            return Str(Repr::Inline(
                s.len() as u8 | if plain { PLAIN } else { 0 },
                buf,
            ));
        }
        // Subgraph answers are bounded far below 4 GiB (fetch's
        // MAX_RESPONSE_BYTES), client documents further still.
        let len = u32::try_from(s.len()).expect("a string under 4 GiB");
        let arc: std::sync::Arc<str> = s.into();
        let ptr = std::sync::Arc::into_raw(arc).cast::<u8>().cast_mut();
        Str(Repr::Heap {
            len,
            plain,
            ptr: std::ptr::NonNull::new(ptr).expect("Arc::into_raw is never null"),
        })
    }

    /// The `Arc<str>` a heap string holds, as `Arc::from_raw` wants it.
    #[inline]
    fn raw(len: u32, ptr: std::ptr::NonNull<u8>) -> *const str {
        std::ptr::slice_from_raw_parts(ptr.as_ptr().cast_const(), len as usize) as *const str
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: an inline buffer is only ever filled, up to `len`, with
            // the bytes of a `&str` (see `with`), so they are valid UTF-8.
            Repr::Inline(len, buf) => unsafe {
                std::str::from_utf8_unchecked(&buf[..(*len & !PLAIN) as usize])
            },
            // SAFETY: `ptr` and `len` are those of a live `Arc<str>` this
            // value holds a strong count of (see `with`, `Clone`, `Drop`).
            Repr::Heap { len, ptr, .. } => unsafe { &*Self::raw(*len, *ptr) },
        }
    }

    /// Whether JSON writes it as is (see [`Repr`]).
    #[inline]
    fn is_plain(&self) -> bool {
        match &self.0 {
            Repr::Inline(len, _) => len & PLAIN != 0,
            Repr::Heap { plain, .. } => *plain,
        }
    }

    /// Appends it to `out` as a JSON string.
    #[inline]
    pub fn write_json(&self, out: &mut Vec<u8>) {
        if self.is_plain() {
            let s = self.as_bytes();
            out.reserve(s.len() + 2);
            out.push(b'"');
            out.extend_from_slice(s);
            out.push(b'"');
        } else {
            write_str(out, self)
        }
    }
}

impl Clone for Str {
    #[inline]
    fn clone(&self) -> Self {
        match &self.0 {
            Repr::Inline(len, buf) => Str(Repr::Inline(*len, *buf)),
            &Repr::Heap { len, plain, ptr } => {
                // SAFETY: this value holds a strong count of that Arc, so it
                // is alive; the new value owns the count added here.
                unsafe { std::sync::Arc::increment_strong_count(Self::raw(len, ptr)) };
                Str(Repr::Heap { len, plain, ptr })
            }
        }
    }
}

impl Drop for Str {
    #[inline]
    fn drop(&mut self) {
        if let Repr::Heap { len, ptr, .. } = self.0 {
            // SAFETY: this value owns one strong count of that Arc (see
            // `with` and `Clone`), given back exactly once, here.
            drop(unsafe { std::sync::Arc::from_raw(Self::raw(len, ptr)) });
        }
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str::new(s)
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        Str::new(&s)
    }
}

impl std::ops::Deref for Str {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Str {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Str {}

impl std::hash::Hash for Str {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

impl Serialize for Str {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_what_serde_json_does() {
        let text = r#"{"a":[1,-2,3.5,true,null,"x"],"long key that does not fit inline":{"s":"a string longer than twenty-two bytes","e":"q\"uote\\ \u00e9 \n"},"n":18446744073709551615,"empty":{},"none":[]}"#;
        let ours = Value::from_slice(text.as_bytes()).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::Value::from(&ours), theirs);
        assert_eq!(Value::from(&theirs), ours);
        let mut out = Vec::new();
        ours.write_json(&mut out);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
            theirs
        );
        assert_eq!(serde_json::to_value(&ours).unwrap(), theirs);
        assert_eq!(ours.to_string(), String::from_utf8(out).unwrap());
        assert!(Value::from_slice(b"{\"a\":").is_err());
        // Strings read without escapes are written as they were read; the
        // others (short and long, keys and values) escaped again.
        let escapes = r#"{"pl":"plain","k\"ey":"q\"uote","long":"a plain string longer than twenty-two bytes","long\n":"an escaped string\u0001 longer than twenty-two bytes","ctl":"\u001f\t"}"#;
        let read = Value::from_slice(escapes.as_bytes()).unwrap();
        let mut out = Vec::new();
        read.write_json(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), escapes);
        let plain = |v: &Value| match v {
            Value::String(s) => s.is_plain(),
            _ => unreachable!(),
        };
        assert!(plain(&read["pl"]) && plain(&read["long"]));
        assert!(!plain(&read["k\"ey"]) && !plain(&read["long\n"]) && !plain(&read["ctl"]));
        assert!(!Str::new("made, not read").is_plain());
    }

    #[test]
    fn short_strings_are_inline_and_long_ones_kept_whole() {
        for s in [
            "",
            "id",
            "__typename",
            &"x".repeat(INLINE),
            &"y".repeat(INLINE + 1),
            "é".repeat(20).as_str(),
        ] {
            let v = Str::new(s);
            assert_eq!(v.as_str(), s);
            assert_eq!(Str::from(s.to_owned()), v);
            assert_eq!(matches!(v.0, Repr::Inline(..)), s.len() <= INLINE, "{s}");
        }
        assert_eq!(std::mem::size_of::<Str>(), 16);
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }

    #[test]
    fn keys_compare_equal_exactly_when_their_bytes_do() {
        let words = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abce",
            "abcdefg",
            "abcdefh",
            "bbcdefg",
            "abcdefgh",
            "abcdefgi",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "xbcdefghijklmnop",
            "abcdefghijklmnopq",
            "abcdefghijklmnopr",
        ];
        for a in words {
            for b in words {
                assert_eq!(key_eq(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
            }
            // Every length up to 17, differing in one byte anywhere.
            let long = "0123456789abcdefg";
            for n in 0..=long.len() {
                for at in 0..n {
                    let mut other = long.as_bytes()[..n].to_vec();
                    other[at] ^= 1;
                    assert!(!key_eq(&long.as_bytes()[..n], &other));
                }
                assert!(key_eq(
                    &long.as_bytes()[..n],
                    long[..n].to_owned().as_bytes()
                ));
            }
        }
    }

    #[test]
    fn hinted_lookups_find_every_key_wherever_the_hint_points() {
        let map: Map = [
            ("a", Value::from("1")),
            ("b", Value::from("2")),
            ("c", Value::from("3")),
        ]
        .into_iter()
        .collect();
        let hint = std::cell::Cell::new(7);
        assert_eq!(map.get_hinted("b", &hint), Some(&Value::from("2")));
        assert_eq!(hint.get(), 1, "left where it was found");
        assert_eq!(map.get_hinted("b", &hint), Some(&Value::from("2")));
        assert_eq!(map.get_hinted("c", &hint), Some(&Value::from("3")));
        assert_eq!(map.get_hinted("z", &hint), None);
        assert_eq!(hint.get(), 2, "a miss leaves the hint alone");
        let mut map = map;
        let mut hint = 0;
        *map.get_mut_hinted("c", &mut hint).unwrap() = Value::Null;
        assert_eq!((map.get("c"), hint), (Some(&Value::Null), 2));
        // Keys asked in order: each found where the cursor points, and in
        // any other order found all the same.
        let mut cursor = 0;
        for (key, after) in [("a", 1), ("b", 2), ("c", 3)] {
            assert!(map.get_next(key, &mut cursor).is_some());
            assert_eq!(cursor, after);
        }
        assert_eq!(map.get_next("a", &mut cursor), Some(&Value::from("1")));
        assert_eq!(cursor, 1, "found behind the cursor");
        assert_eq!(map.get_next("z", &mut cursor), None);
        assert_eq!(cursor, 1, "a miss leaves the cursor alone");
        *map.get_next_mut("b", &mut cursor).unwrap() = Value::Bool(true);
        assert_eq!((map.get("b"), cursor), (Some(&Value::Bool(true)), 2));
    }

    #[test]
    fn merges_add_missing_keys_after_their_own_and_merge_the_shared_ones() {
        let own = |n: usize| -> Map {
            (0..n)
                .map(|i| (format!("k{i}"), Value::from("own")))
                .collect()
        };
        // Keys beyond the first 64 of the other object take the slower path.
        for n in [3, 70] {
            let other: Map = (1..n + 2)
                .map(|i| (format!("k{i}"), Value::from("other")))
                .collect();
            let expected: Vec<(String, &str)> = (0..n + 2)
                .map(|i| {
                    let from = if i < n { "own" } else { "other" };
                    (
                        format!("k{i}"),
                        if (1..n).contains(&i) { "both" } else { from },
                    )
                })
                .collect();
            let written = |map: &Map| -> Vec<(String, &str)> {
                map.iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            if v.as_str() == Some("both") {
                                "both"
                            } else if v.as_str() == Some("own") {
                                "own"
                            } else {
                                "other"
                            },
                        )
                    })
                    .collect()
            };
            let mut owned = own(n);
            owned.merge_with(other.clone(), |slot, _| *slot = Value::from("both"));
            assert_eq!(written(&owned), expected);
            let mut copied = own(n);
            copied.merge_with_ref(&other, None, |slot, _| *slot = Value::from("both"));
            assert_eq!(written(&copied), expected);
            // A skipped key is neither merged nor added.
            let mut skipping = own(n);
            let last = format!("k{}", n + 1);
            skipping.merge_with_ref(&other, Some(&last), |slot, _| *slot = Value::from("both"));
            assert_eq!(written(&skipping), expected[..n + 1]);
        }
    }

    #[test]
    fn objects_keep_order_and_replace_in_place() {
        let mut map: Map = [("b", Value::from("1")), ("a", Value::from("2"))]
            .into_iter()
            .collect();
        assert_eq!(map.insert("b", Value::Null), Some(Value::from("1")));
        map.insert("c", Value::Bool(true));
        assert_eq!(
            map.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["b", "a", "c"]
        );
        assert_eq!(map.remove("a"), Some(Value::from("2")));
        assert_eq!(
            map.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        let value = Value::Object(map);
        assert_eq!(value["c"], Value::Bool(true));
        assert_eq!(value["missing"], Value::Null);
    }
}
