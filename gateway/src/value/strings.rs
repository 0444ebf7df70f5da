//! [`Str`]: the response tree's strings, inline when short, else shared.

use std::fmt;

use serde::{Serialize, Serializer};

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
    pub(super) fn plain(s: &str) -> Self {
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
    pub(super) fn is_plain(&self) -> bool {
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
            super::write_str(out, self)
        }
    }
}

#[cfg(test)]
impl Str {
    /// Whether the string lives inside the value (no allocation).
    pub(super) fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline(..))
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

impl Serialize for Str {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
