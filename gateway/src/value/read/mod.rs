//! JSON text read straight into [`Value`]: every subgraph answer passes
//! through here.
//!
//! serde_json driving a visitor costs per value what its generic machinery
//! costs (a key read was ~250 instructions before its bytes were looked
//! at), which on a small answer was a fifth of a request's work. This
//! reader knows the one value it builds: a string without escapes is its
//! slice, found eight bytes at a time (and checked for UTF-8 only when it
//! is not ASCII); objects and lists collect on two shared stacks and are
//! allocated once, at their size. It accepts and refuses what serde_json
//! does, skipping what a GraphQL response's reader drops (`extensions`) as
//! leniently as serde_json ignores values, and reads numbers as it does
//! (integers as `u64`/`i64`, anything else, and `-0`, as `f64`), with
//! serde_json's nesting limit. Its floats are rounded correctly, where
//! serde_json without its `float_roundtrip` feature may be one unit off in
//! the last place.

use super::{Map, Number, Str, Value};

/// The deepest nesting read: serde_json's default (its 128th level is refused).
const MAX_DEPTH: usize = 127;

/// Why a text is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct ReadError {
    what: &'static str,
    at: usize,
}

/// A GraphQL response's top level: `data` as a [`Value`], `errors` as
/// serde_json reads them (few, small, and passed on as they are); other
/// keys (`extensions`) are read and dropped.
pub struct Envelope {
    pub data: Option<Value>,
    pub errors: Option<serde_json::Value>,
}

/// Reads `bytes`, one JSON value and nothing else but whitespace.
pub fn value(bytes: &[u8]) -> Result<Value, ReadError> {
    let mut reader = Reader::new(bytes)?;
    let value = reader.value()?;
    reader.end()?;
    Ok(value)
}

/// Reads `bytes` as a GraphQL response: a JSON object.
pub fn envelope(bytes: &[u8]) -> Result<Envelope, ReadError> {
    let mut reader = Reader::new(bytes)?;
    let mut envelope = Envelope {
        data: None,
        errors: None,
    };
    reader.blank();
    if reader.next() != Some(b'{') {
        return Err(reader.error("expected a JSON object"));
    }
    reader.members(|reader, key| {
        match key.as_str() {
            "data" => envelope.data = Some(reader.value()?),
            "errors" => {
                let start = reader.at;
                reader.skip()?;
                envelope.errors = Some(
                    serde_json::from_slice(&reader.bytes[start..reader.at])
                        .map_err(|_| reader.error("unreadable errors"))?,
                );
            }
            _ => reader.skip()?,
        }
        Ok(())
    })?;
    reader.end()?;
    Ok(envelope)
}

/// Where the first byte that ends a plain run of string bytes is, from
/// `from` on: a quote, a backslash or a control character (which JSON
/// strings may not hold raw). Eight bytes at a time; with it, whether the
/// run is all ASCII.
#[inline]
fn plain_run_end(bytes: &[u8], from: usize) -> (usize, bool) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    /// The high bit of each byte of `v` that is zero (exact for the
    /// lowest one, which is the one wanted).
    #[inline]
    fn zero_bytes(v: u64) -> u64 {
        v.wrapping_sub(ONES) & !v & HIGH
    }
    let mut i = from;
    let mut high = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let v = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let stops = zero_bytes(v ^ (ONES * u64::from(b'"')))
            | zero_bytes(v ^ (ONES * u64::from(b'\\')))
            | (v.wrapping_sub(ONES * 0x20) & !v & HIGH);
        if stops != 0 {
            let end = i + (stops.trailing_zeros() / 8) as usize;
            // Only the bytes before the stop count.
            let before = bytes[i..end].iter().fold(0, |h, b| h | b);
            return (end, high & HIGH == 0 && before < 0x80);
        }
        high |= v;
        i += 8;
    }
    while i < bytes.len() && !matches!(bytes[i], b'"' | b'\\' | 0..0x20) {
        high |= u64::from(bytes[i]);
        i += 1;
    }
    (i, high & HIGH == 0)
}

thread_local! {
    /// The reader's stacks, kept between answers with what they grew to
    /// (up to [`KEPT_STACK`]).
    static STACKS: std::cell::Cell<Stacks> = std::cell::Cell::default();
}

/// The most entries or items a thread's stacks keep room for between
/// answers: a huge answer's room is given back.
const KEPT_STACK: usize = 4096;

/// The shared stacks of the objects and lists being read, and the
/// decoding buffer of strings with escapes.
#[derive(Default)]
struct Stacks {
    entries: Vec<(Str, Value)>,
    items: Vec<Value>,
    text: String,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    depth: usize,
    /// Entries of the objects being read, innermost last.
    entries: Vec<(Str, Value)>,
    /// Items of the lists being read, innermost last.
    items: Vec<Value>,
    /// A string with escapes, decoded.
    text: String,
}

impl Drop for Reader<'_> {
    /// Gives the stacks back, emptied (a failed read leaves values on them).
    fn drop(&mut self) {
        let mut stacks = Stacks {
            entries: std::mem::take(&mut self.entries),
            items: std::mem::take(&mut self.items),
            text: std::mem::take(&mut self.text),
        };
        stacks.entries.clear();
        stacks.items.clear();
        stacks.text.clear();
        if stacks.entries.capacity() > KEPT_STACK {
            stacks.entries = Vec::new();
        }
        if stacks.items.capacity() > KEPT_STACK {
            stacks.items = Vec::new();
        }
        if stacks.text.capacity() > KEPT_STACK * 16 {
            stacks.text = String::new();
        }
        let _ = STACKS.try_with(|kept| kept.set(stacks));
    }
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, ReadError> {
        let stacks = STACKS.try_with(|kept| kept.take()).unwrap_or_default();
        Ok(Self {
            bytes,
            at: 0,
            depth: 0,
            entries: stacks.entries,
            items: stacks.items,
            text: stacks.text,
        })
    }

    fn error(&self, what: &'static str) -> ReadError {
        self.error_at(what, self.at)
    }

    fn error_at(&self, what: &'static str, at: usize) -> ReadError {
        ReadError { what, at }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    /// Skips whitespace.
    #[inline]
    fn blank(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Nothing but whitespace is left.
    fn end(&mut self) -> Result<(), ReadError> {
        self.blank();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    fn value(&mut self) -> Result<Value, ReadError> {
        self.blank();
        match self.peek() {
            Some(b'"') => {
                self.at += 1;
                Ok(Value::String(self.string()?))
            }
            Some(b'{') => {
                self.at += 1;
                self.object()
            }
            Some(b'[') => {
                self.at += 1;
                self.list()
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.word(b"true", Value::Bool(true)),
            Some(b'f') => self.word(b"false", Value::Bool(false)),
            Some(b'n') => self.word(b"null", Value::Null),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end")),
        }
    }

    fn word(&mut self, word: &[u8], value: Value) -> Result<Value, ReadError> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn deeper(&mut self) -> Result<(), ReadError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        Ok(())
    }

    /// Reads the members of an object whose `{` was read, up to its `}`,
    /// handing each key to `member` to read its value.
    fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, Str) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        self.deeper()?;
        self.blank();
        if self.peek() == Some(b'}') {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            self.blank();
            if self.next() != Some(b'"') {
                return Err(self.error("expected a key"));
            }
            let key = self.string()?;
            self.blank();
            if self.next() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            member(self, key)?;
            self.blank();
            match self.next() {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn object(&mut self) -> Result<Value, ReadError> {
        let start = self.entries.len();
        self.members(|reader, key| {
            let value = reader.value()?;
            reader.entries.push((key, value));
            Ok(())
        })?;
        let entries: Box<[(Str, Value)]> = self.entries.drain(start..).collect();
        Ok(Value::Object(Map(entries)))
    }

    fn list(&mut self) -> Result<Value, ReadError> {
        self.deeper()?;
        let start = self.items.len();
        self.blank();
        if self.peek() == Some(b']') {
            self.at += 1;
        } else {
            loop {
                let item = self.value()?;
                self.items.push(item);
                self.blank();
                match self.next() {
                    Some(b',') => {}
                    Some(b']') => break,
                    _ => return Err(self.error("expected ',' or ']'")),
                }
            }
        }
        self.depth -= 1;
        let items: Box<[Value]> = self.items.drain(start..).collect();
        Ok(Value::Array(items))
    }

    /// Reads a string whose opening quote was read.
    fn string(&mut self) -> Result<Str, ReadError> {
        let start = self.at;
        let bytes = self.bytes;
        let (i, ascii) = plain_run_end(bytes, start);
        match bytes.get(i) {
            Some(b'"') => {
                let s = if ascii {
                    // SAFETY: ASCII bytes are UTF-8.
                    unsafe { std::str::from_utf8_unchecked(&bytes[start..i]) }
                } else {
                    std::str::from_utf8(&bytes[start..i])
                        .map_err(|e| self.error_at("invalid UTF-8", start + e.valid_up_to()))?
                };
                self.at = i + 1;
                Ok(Str::plain(s))
            }
            Some(b'\\') => {
                self.at = i;
                self.escaped(start)
            }
            Some(_) => {
                self.at = i;
                Err(self.error("control character in a string"))
            }
            None => {
                self.at = i;
                Err(self.error("unterminated string"))
            }
        }
    }

    /// Reads the rest of a string with escapes, which began at `start`;
    /// the reader is at its first backslash.
    fn escaped(&mut self, start: usize) -> Result<Str, ReadError> {
        let bytes = self.bytes;
        self.text.clear();
        let mut run = start;
        loop {
            let i = self.at;
            match bytes.get(i) {
                Some(b'"') => {
                    self.push_run(run, i)?;
                    self.at = i + 1;
                    return Ok(Str::new(&self.text));
                }
                Some(b'\\') => {
                    self.push_run(run, i)?;
                    self.at = i + 1;
                    let c = match self.next() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode()?,
                        _ => return Err(self.error("invalid escape")),
                    };
                    self.text.push(c);
                    run = self.at;
                }
                Some(b) if *b < 0x20 => return Err(self.error("control character in a string")),
                Some(_) => self.at += 1,
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// Adds the bytes between two escapes (or an escape and a quote).
    fn push_run(&mut self, from: usize, to: usize) -> Result<(), ReadError> {
        let run = std::str::from_utf8(&self.bytes[from..to])
            .map_err(|e| self.error_at("invalid UTF-8", from + e.valid_up_to()))?;
        self.text.push_str(run);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, ReadError> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("unterminated escape"))?;
        let mut n = 0;
        for d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape")),
            };
            n = n * 16 + u32::from(v);
        }
        self.at += 4;
        Ok(n)
    }

    /// A `\u` escape whose `u` was read, with its low surrogate when it is
    /// a high one.
    fn unicode(&mut self) -> Result<char, ReadError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.at..].starts_with(b"\\u") {
                    return Err(self.error("lone leading surrogate"));
                }
                self.at += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.error("invalid low surrogate"));
                }
                0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone trailing surrogate")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Value, ReadError> {
        let start = self.at;
        let (int_start, int_end, float) = self.number_text()?;
        let negative = int_start > start;
        if !float {
            // At most 19 digits always fit a u64; 20 may.
            let digits = &self.bytes[int_start..int_end];
            let mut n: u64 = 0;
            let mut fits = true;
            for d in digits {
                match n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d - b'0')))
                {
                    Some(next) => n = next,
                    None => {
                        fits = false;
                        break;
                    }
                }
            }
            if fits {
                if !negative {
                    return Ok(Value::Number(Number::from(n)));
                }
                // As serde_json: `-0` and what an i64 cannot hold are floats.
                let neg = (n as i64).wrapping_neg();
                if neg < 0 {
                    return Ok(Value::Number(Number::from(neg)));
                }
            }
        }
        // SAFETY: the slice is ASCII sign, digits, point and exponent.
        let text = unsafe { std::str::from_utf8_unchecked(&self.bytes[start..self.at]) };
        let f: f64 = text.parse().map_err(|_| self.error("invalid number"))?;
        Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| self.error("number out of range"))
    }

    /// Reads a number's text: where its integer digits are, and whether it
    /// has a fraction or an exponent.
    fn number_text(&mut self) -> Result<(usize, usize, bool), ReadError> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let int_start = self.at;
        match self.peek() {
            Some(b'0') => {
                self.at += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error("leading zero"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("invalid number")),
        }
        let int_end = self.at;
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            float = true;
        }
        Ok((int_start, int_end, float))
    }

    /// Skips a value as serde_json ignores one: its syntax is checked, not
    /// what it says (strings need not be UTF-8 nor their `\\u` escapes
    /// pair up, numbers need not fit a float), and nesting has no limit,
    /// kept on a stack, not the call stack.
    fn skip(&mut self) -> Result<(), ReadError> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            // One value (an object or list only opened).
            self.blank();
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    self.skip_string()?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number_text()?;
                }
                Some(b't') => {
                    self.word(b"true", Value::Null)?;
                }
                Some(b'f') => {
                    self.word(b"false", Value::Null)?;
                }
                Some(b'n') => {
                    self.word(b"null", Value::Null)?;
                }
                Some(b'[') => {
                    self.at += 1;
                    self.blank();
                    if self.peek() == Some(b']') {
                        self.at += 1;
                    } else {
                        open.push(b']');
                        continue;
                    }
                }
                Some(b'{') => {
                    self.at += 1;
                    self.blank();
                    if self.peek() == Some(b'}') {
                        self.at += 1;
                    } else {
                        open.push(b'}');
                        self.skip_key()?;
                        continue;
                    }
                }
                Some(_) => return Err(self.error("expected a value")),
                None => return Err(self.error("unexpected end")),
            }
            // After a value: the next one in what is open, or its end.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                self.blank();
                match self.next() {
                    Some(b',') if close == b'}' => {
                        self.blank();
                        self.skip_key()?;
                        break;
                    }
                    Some(b',') => break,
                    Some(b) if b == close => {
                        open.pop();
                    }
                    _ => return Err(self.error("expected ',' or a closing bracket")),
                }
            }
        }
    }

    /// Skips an object's key and its colon.
    fn skip_key(&mut self) -> Result<(), ReadError> {
        if self.next() != Some(b'"') {
            return Err(self.error("expected a key"));
        }
        self.skip_string()?;
        self.blank();
        if self.next() != Some(b':') {
            return Err(self.error("expected ':'"));
        }
        Ok(())
    }

    /// Skips a string whose opening quote was read: escapes are checked
    /// for their form only, the bytes not at all.
    fn skip_string(&mut self) -> Result<(), ReadError> {
        loop {
            let (i, _) = plain_run_end(self.bytes, self.at);
            self.at = i;
            match self.next() {
                Some(b'"') => return Ok(()),
                Some(b'\\') => match self.next() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                    Some(b'u') => {
                        self.hex4()?;
                    }
                    _ => return Err(self.error("invalid escape")),
                },
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }
}

#[cfg(test)]
mod tests;
