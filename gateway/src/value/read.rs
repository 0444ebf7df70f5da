//! Reading JSON text straight into [`Value`].
//!
//! serde's data model puts a visitor call and a peek between every token and
//! the value built from it; reading the bytes directly is what a subgraph
//! answer costs most. Objects and lists collect their entries on shared
//! stacks and are allocated once, at their size, when they close. The text
//! must be UTF-8 and valid JSON (RFC 8259): lone surrogates, control
//! characters in strings, trailing text and nesting deeper than
//! [`MAX_DEPTH`] are refused, as serde_json refuses them.

use std::fmt;

use super::{Map, Number, Str, Value};

/// Deepest nesting read (serde_json's limit too).
pub const MAX_DEPTH: usize = 128;

/// Why a text is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub at: usize,
    pub what: &'static str,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

impl std::error::Error for ReadError {}

/// Parses one JSON value that is the whole of `bytes` (whitespace aside).
pub fn read(bytes: &[u8]) -> Result<Value, ReadError> {
    let mut reader = Reader {
        bytes,
        at: 0,
        depth: 0,
        entries: Vec::new(),
        items: Vec::new(),
        text: String::new(),
    };
    let value = reader.value()?;
    if reader.peek().is_some() {
        return reader.fail("trailing characters");
    }
    Ok(value)
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
    depth: usize,
    /// Entries of the objects still open, innermost last.
    entries: Vec<(Str, Value)>,
    /// Items of the lists still open, innermost last.
    items: Vec<Value>,
    /// Where an escaped string is decoded.
    text: String,
}

fn utf8(bytes: &[u8], from: usize, to: usize) -> Result<&str, ReadError> {
    std::str::from_utf8(&bytes[from..to]).map_err(|e| ReadError {
        at: from + e.valid_up_to(),
        what: "invalid UTF-8",
    })
}

#[inline]
fn special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

impl Reader<'_> {
    fn fail<T>(&self, what: &'static str) -> Result<T, ReadError> {
        Err(ReadError { at: self.at, what })
    }

    /// The next byte that is not whitespace, left unread.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.at) {
            if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                self.at += 1;
            } else {
                return Some(b);
            }
        }
        None
    }

    fn value(&mut self) -> Result<Value, ReadError> {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => {
                self.at += 1;
                Ok(Value::String(self.string()?))
            }
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.fail("expected a value"),
            None => self.fail("unexpected end of text"),
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, ReadError> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            self.fail("expected a value")
        }
    }

    fn enter(&mut self) -> Result<(), ReadError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail("nested too deeply");
        }
        self.at += 1;
        Ok(())
    }

    fn object(&mut self) -> Result<Value, ReadError> {
        self.enter()?;
        let start = self.entries.len();
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return self.fail("expected a key");
                }
                self.at += 1;
                let key = self.string()?;
                if self.peek() != Some(b':') {
                    return self.fail("expected ':'");
                }
                self.at += 1;
                let value = self.value()?;
                self.entries.push((key, value));
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b'}') => {
                        self.at += 1;
                        break;
                    }
                    _ => return self.fail("expected ',' or '}'"),
                }
            }
        }
        self.depth -= 1;
        Ok(Value::Object(Map(self.entries.drain(start..).collect())))
    }

    fn array(&mut self) -> Result<Value, ReadError> {
        self.enter()?;
        let start = self.items.len();
        if self.peek() == Some(b']') {
            self.at += 1;
        } else {
            loop {
                let item = self.value()?;
                self.items.push(item);
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b']') => {
                        self.at += 1;
                        break;
                    }
                    _ => return self.fail("expected ',' or ']'"),
                }
            }
        }
        self.depth -= 1;
        Ok(Value::Array(self.items.drain(start..).collect()))
    }

    /// A string whose opening quote is read.
    fn string(&mut self) -> Result<Str, ReadError> {
        let bytes = self.bytes;
        let start = self.at;
        let end = bytes[start..]
            .iter()
            .position(|&b| special(b))
            .map_or(bytes.len(), |n| start + n);
        match bytes.get(end) {
            Some(b'"') => {
                let s = utf8(bytes, start, end)?;
                self.at = end + 1;
                Ok(Str::new(s))
            }
            Some(b'\\') => self.escaped(start, end),
            Some(_) => {
                self.at = end;
                self.fail("control character in a string")
            }
            None => self.fail("unterminated string"),
        }
    }

    /// The rest of a string from its first escape at `at`.
    fn escaped(&mut self, start: usize, mut at: usize) -> Result<Str, ReadError> {
        let bytes = self.bytes;
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        text.push_str(utf8(bytes, start, at)?);
        loop {
            match bytes.get(at) {
                Some(b'"') => {
                    self.at = at + 1;
                    let s = Str::new(&text);
                    self.text = text;
                    return Ok(s);
                }
                Some(b'\\') => {
                    let c = match bytes.get(at + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.at = at;
                            let (c, len) = self.unicode(at)?;
                            text.push(c);
                            at += len;
                            continue;
                        }
                        _ => {
                            self.at = at;
                            return self.fail("invalid escape");
                        }
                    };
                    text.push(c);
                    at += 2;
                }
                Some(&b) if b < 0x20 => {
                    self.at = at;
                    return self.fail("control character in a string");
                }
                Some(_) => {
                    let run = at;
                    while bytes.get(at).is_some_and(|&b| !special(b)) {
                        at += 1;
                    }
                    text.push_str(utf8(bytes, run, at)?);
                }
                None => {
                    self.at = at;
                    return self.fail("unterminated string");
                }
            }
        }
    }

    /// The character of the `\u` escape at `at`, and how many bytes it took
    /// (two escapes for a surrogate pair).
    fn unicode(&self, at: usize) -> Result<(char, usize), ReadError> {
        let unit = |from: usize| -> Option<u32> {
            let digits = self.bytes.get(from..from + 4)?;
            let digits = std::str::from_utf8(digits).ok()?;
            u32::from_str_radix(digits, 16).ok()
        };
        let Some(first) = unit(at + 2) else {
            return self.fail("invalid \\u escape");
        };
        let code = match first {
            0xD800..=0xDBFF => {
                let low = match self.bytes.get(at + 6..at + 8) {
                    Some(b"\\u") => unit(at + 8),
                    _ => None,
                };
                match low {
                    Some(low @ 0xDC00..=0xDFFF) => {
                        let code = 0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00);
                        return char::from_u32(code).map(|c| (c, 12)).ok_or(ReadError {
                            at,
                            what: "invalid \\u escape",
                        });
                    }
                    _ => return self.fail("lone surrogate in a \\u escape"),
                }
            }
            0xDC00..=0xDFFF => return self.fail("lone surrogate in a \\u escape"),
            code => code,
        };
        char::from_u32(code).map(|c| (c, 6)).ok_or(ReadError {
            at,
            what: "invalid \\u escape",
        })
    }

    fn number(&mut self) -> Result<Value, ReadError> {
        let bytes = self.bytes;
        let start = self.at;
        let digit = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_digit);
        let mut at = start;
        let negative = bytes[at] == b'-';
        if negative {
            at += 1;
        }
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => {
                while digit(at) {
                    at += 1;
                }
            }
            _ => return self.fail("invalid number"),
        }
        let mut float = false;
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            if !digit(at) {
                self.at = at;
                return self.fail("invalid number");
            }
            while digit(at) {
                at += 1;
            }
            float = true;
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if !digit(at) {
                self.at = at;
                return self.fail("invalid number");
            }
            while digit(at) {
                at += 1;
            }
            float = true;
        }
        self.at = at;
        // Only ASCII digits, signs, dots and exponents were taken.
        let text = utf8(bytes, start, at)?;
        if !float {
            if negative {
                if let Ok(n) = text.parse::<i64>() {
                    return Ok(Value::Number(n.into()));
                }
            } else if let Ok(n) = text.parse::<u64>() {
                return Ok(Value::Number(n.into()));
            }
        }
        // A fraction, an exponent, or an integer too big for 64 bits.
        match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(ReadError {
                at: start,
                what: "number out of range",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_serde_json(text: &str) {
        let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
        let ours = read(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(serde_json::Value::from(&ours), theirs, "{text}");
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for text in [
            "null",
            " true ",
            "false",
            "0",
            "-7",
            "18446744073709551615",
            "-9223372036854775808",
            "123456789012345678901234567890",
            "3.25",
            "-1e-3",
            "6.02E+23",
            r#""""#,
            r#""plain""#,
            r#""a \"quoted\" \\ /slash\/ \b\f\n\r\t tab""#,
            r#""\u00e9\u4e2d\ud83d\ude00 and é中😀""#,
            r#""a string well past the twenty-two bytes kept inline, with an \n escape""#,
            "[]",
            "{}",
            " [ 1 , [ 2 , [ ] ] , { } ] ",
            r#"{"data":{"users":[{"__typename":"User","id":"1","name":"Ada","reviews":[{"id":"r1","body":"good","product":{"upc":"p1","price":899,"weight":1.5,"inStock":true}}]}]},"errors":null,"extensions":{"cost":{"n":[1,2]}}}"#,
        ] {
            same_as_serde_json(text);
        }
    }

    #[test]
    fn keeps_key_order_and_every_key() {
        let value = read(br#"{"b":1,"a":2,"c":{"z":0,"y":[true]}}"#).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["b", "a", "c"]);
        let inner: Vec<&str> = value["c"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(inner, ["z", "y"]);
    }

    #[test]
    fn refuses_what_is_not_json() {
        for (text, what) in [
            ("", "unexpected end of text"),
            ("nul", "expected a value"),
            ("{\"a\" 1}", "expected ':'"),
            ("{\"a\":1,}", "expected a key"),
            ("[1 2]", "expected ',' or ']'"),
            ("{\"a\":1", "expected ',' or '}'"),
            ("\"open", "unterminated string"),
            ("\"tab\there\"", "control character in a string"),
            ("\"\\x\"", "invalid escape"),
            ("\"\\u12\"", "invalid \\u escape"),
            ("\"\\ud800\"", "lone surrogate in a \\u escape"),
            ("\"\\udc00x\"", "lone surrogate in a \\u escape"),
            ("01", "trailing characters"),
            ("1.", "invalid number"),
            ("-", "invalid number"),
            ("1e", "invalid number"),
            ("1e999", "number out of range"),
            ("{} {}", "trailing characters"),
        ] {
            let err = read(text.as_bytes()).expect_err(text);
            assert_eq!(err.what, what, "{text}");
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_err(),
                "{text}"
            );
        }
        assert_eq!(read(b"\"\xff\"").unwrap_err().what, "invalid UTF-8");
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(read(deep.as_bytes()).unwrap_err().what, "nested too deeply");
        let fine = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(read(fine.as_bytes()).is_ok());
    }
}
