//! W3C trace context: [`Traceparent`], the trace a request belongs to and
//! this component's span in it, carried by the [`TRACEPARENT`] header.

use axum::http::{HeaderValue, header::HeaderName};

/// `traceparent`: the W3C trace context.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// A W3C trace context: the trace a request belongs to and this component's span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traceparent {
    pub trace_id: String,
    pub span_id: String,
    pub flags: String,
}

impl Traceparent {
    /// A new span of this component: in the caller's trace when `incoming`
    /// is a valid version-00 `traceparent`, else in a new sampled trace.
    pub fn child_of(incoming: Option<&str>) -> Self {
        let span_id = random_hex(8);
        let parsed = incoming.and_then(|v| {
            let mut parts = v.trim().split('-');
            let (version, trace, parent, flags) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            let hex = |s: &str, n: usize| {
                s.len() == n
                    && s.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            };
            let valid = version == "00"
                && parts.next().is_none()
                && hex(trace, 32)
                && trace.bytes().any(|b| b != b'0')
                && hex(parent, 16)
                && parent.bytes().any(|b| b != b'0')
                && hex(flags, 2);
            valid.then(|| (trace.to_owned(), flags.to_owned()))
        });
        let (trace_id, flags) = parsed.unwrap_or_else(|| (random_hex(16), "01".into()));
        Self {
            trace_id,
            span_id,
            flags,
        }
    }

    /// As the `traceparent` header carries it (what [`Display`] writes).
    ///
    /// [`Display`]: std::fmt::Display
    pub fn header_value(&self) -> HeaderValue {
        let mut text = Vec::with_capacity(55);
        text.extend_from_slice(b"00-");
        text.extend_from_slice(self.trace_id.as_bytes());
        text.push(b'-');
        text.extend_from_slice(self.span_id.as_bytes());
        text.push(b'-');
        text.extend_from_slice(self.flags.as_bytes());
        // Hex digits and dashes (checked when read, or made here).
        HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).unwrap_or_else(|_| {
            HeaderValue::from_static("00-00000000000000000000000000000001-0000000000000001-01")
        })
    }
}

impl std::fmt::Display for Traceparent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

fn random_hex(bytes: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let raw: [u8; 16] = rand::random();
    let mut out = String::with_capacity(bytes * 2);
    for &b in raw.iter().take(bytes) {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    if out.bytes().all(|b| b == b'0') {
        out.replace_range(out.len() - 1.., "1");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_valid_parent_keeps_its_trace_and_flags_under_a_new_span() {
        let child = Traceparent::child_of(Some(CALLER));
        assert_eq!(child.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(child.flags, "01");
        assert_ne!(child.span_id, "b7ad6b7169203331");
        assert_eq!(child.span_id.len(), 16);
        assert_eq!(child.header_value(), child.to_string().as_str());
    }

    #[test]
    fn anything_else_starts_a_new_sampled_trace() {
        for bad in [
            "",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            let child = Traceparent::child_of(Some(bad));
            assert_ne!(child.trace_id, "0af7651916cd43dd8448eb211c80319c", "{bad}");
            assert_eq!((child.trace_id.len(), child.flags.as_str()), (32, "01"));
        }
    }
}
