//! OTLP/protobuf written straight from grocery's span records: an
//! attribute is encoded as a `KeyValue` field the moment it is set, a
//! finished span as a `Span` message straight into its batch's buffer, and a
//! batch is framed as an `ExportTraceServiceRequest` around those bytes.
//! Field numbers are [`super::proto`]'s (opentelemetry-proto's).
//!
//! Why not build [`super::proto`]'s structs and let prost encode them: that
//! copied every id, name and attribute into owned `Vec`s and `String`s once
//! per span, only to write them out and free them. Measured with
//! `BENCH_TRACING=grpc` in the federation bench (2 shared cores, 6 rounds,
//! traced and untraced gateways in turns; December 2026), the gateway's CPU
//! per request rose by 9–12 % with tracing before this (three runs) and by
//! 3–6.5 % after (three runs); requests/s on that busy machine wandered too
//! much between rounds to say more than that.

use super::span::{Kind, SpanContext, Value};

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

fn tag(field: u8, wire: u8) -> u8 {
    // Every field written here is below 16: its key is one byte.
    field << 3 | wire
}

/// Bytes `n` takes as a varint.
pub(super) fn varint_len(n: u64) -> usize {
    // 1 for 0..=127, one more per 7 bits.
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

pub(super) fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length-delimited field's bytes: key, length, `len` bytes of content.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn bytes_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(tag(field, LEN));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `Span.attributes` (field 9): one `KeyValue { key, value: AnyValue }`.
pub(super) fn attribute(out: &mut Vec<u8>, key: &str, value: &Value) {
    let value_len = match value {
        // AnyValue.string_value (1)
        Value::Text(text) => field_len(text.len()),
        // AnyValue.bool_value (2)
        Value::Bool(_) => 2,
        // AnyValue.int_value (3), an int64: negative ones take ten bytes
        Value::Int(i) => 1 + varint_len(*i as u64),
    };
    let key_value_len = field_len(key.len()) + field_len(value_len);
    out.push(tag(9, LEN));
    varint(out, key_value_len as u64);
    bytes_field(out, 1, key.as_bytes());
    out.push(tag(2, LEN));
    varint(out, value_len as u64);
    match value {
        Value::Text(text) => bytes_field(out, 1, text.as_bytes()),
        Value::Bool(b) => out.extend_from_slice(&[tag(2, VARINT), u8::from(*b)]),
        Value::Int(i) => {
            out.push(tag(3, VARINT));
            varint(out, *i as u64);
        }
    }
}

/// `Span.name` (field 5), written by `write` at the end of `out`: its
/// length is known only afterwards, so the name is moved up by the few
/// bytes of its length (a decoder keeps the last name a span carries).
pub(super) fn name_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    out.push(tag(5, LEN));
    let at = out.len();
    write(out);
    let len = (out.len() - at) as u64;
    let mut prefix = Vec::with_capacity(2);
    varint(&mut prefix, len);
    out.splice(at..at, prefix);
}

/// `Span.status` (field 15): `Status { message, code: ERROR }`.
pub(super) fn error_status(out: &mut Vec<u8>, message: &str) {
    let status_len = field_len(message.len()) + 2;
    out.push(tag(15, LEN));
    varint(out, status_len as u64);
    bytes_field(out, 2, message.as_bytes());
    out.extend_from_slice(&[tag(3, VARINT), 2]);
}

/// What a finished span is besides its recorded fields.
pub(super) struct Head<'a> {
    pub context: SpanContext,
    pub parent: Option<[u8; 8]>,
    /// Written unless the span was renamed (its fields hold the name then).
    pub name: Option<&'a str>,
    pub kind: Kind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
}

/// `ScopeSpans.spans` (field 2): one `Span` of `head` and the `fields`
/// recorded while it ran (attributes, name, status), appended to `out`.
pub(super) fn span(out: &mut Vec<u8>, head: &Head<'_>, fields: &[u8]) {
    let len = field_len(16)
        + field_len(8)
        + head.parent.map_or(0, |_| field_len(8))
        + head.name.map_or(0, |name| field_len(name.len()))
        + 2 // kind: one-byte key, one-byte value
        + 2 * 9 // start and end: fixed64
        + fields.len()
        + 2 + 4; // flags: fixed32 under a two-byte key (field 16)
    out.reserve(field_len(len));
    out.push(tag(2, LEN));
    varint(out, len as u64);
    bytes_field(out, 1, &head.context.trace_id);
    bytes_field(out, 2, &head.context.span_id);
    if let Some(parent) = &head.parent {
        bytes_field(out, 4, parent);
    }
    if let Some(name) = head.name {
        bytes_field(out, 5, name.as_bytes());
    }
    out.extend_from_slice(&[tag(6, VARINT), head.kind as u8]);
    out.push(tag(7, FIXED64));
    out.extend_from_slice(&head.start_unix_nanos.to_le_bytes());
    out.push(tag(8, FIXED64));
    out.extend_from_slice(&head.end_unix_nanos.to_le_bytes());
    out.extend_from_slice(fields);
    // Field 16 needs a two-byte key: 16 << 3 | 5 = 133 as a varint.
    out.extend_from_slice(&[133, 1]);
    out.extend_from_slice(&u32::from(head.context.sampled).to_le_bytes());
}

/// The fixed parts of every export request of one service: its `Resource`
/// and `InstrumentationScope`, encoded once.
pub(super) struct Frame {
    /// `ResourceSpans.resource` (field 1), key and length included.
    resource: Vec<u8>,
    /// `ScopeSpans.scope` (field 1), key and length included.
    scope: Vec<u8>,
}

impl Frame {
    pub(super) fn new(service: &str) -> Self {
        let mut attributes = Vec::new();
        for (key, value) in [
            ("service.name", service),
            ("telemetry.sdk.name", "grocery"),
            ("telemetry.sdk.language", "rust"),
        ] {
            // A Resource's attributes are its field 1, a Span's its field 9.
            let at = attributes.len();
            attribute(&mut attributes, key, &Value::Text(value.to_owned().into()));
            attributes[at] = tag(1, LEN);
        }
        let mut resource = Vec::new();
        bytes_field(&mut resource, 1, &attributes);
        let mut scope_body = Vec::new();
        bytes_field(&mut scope_body, 1, b"grocery");
        bytes_field(&mut scope_body, 2, env!("CARGO_PKG_VERSION").as_bytes());
        let mut scope = Vec::new();
        bytes_field(&mut scope, 1, &scope_body);
        Self { resource, scope }
    }

    /// The `ExportTraceServiceRequest` of `spans` (encoded by [`span`]).
    pub(super) fn request(&self, spans: &[u8]) -> Vec<u8> {
        let scope_spans = self.scope.len() + spans.len();
        let resource_spans = self.resource.len() + field_len(scope_spans);
        let mut out = Vec::with_capacity(field_len(resource_spans));
        out.push(tag(1, LEN));
        varint(&mut out, resource_spans as u64);
        out.extend_from_slice(&self.resource);
        out.push(tag(2, LEN));
        varint(&mut out, scope_spans as u64);
        out.extend_from_slice(&self.scope);
        out.extend_from_slice(spans);
        out
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::super::proto;
    use super::*;

    #[test]
    fn varint_lengths_match_what_is_written() {
        for n in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            varint(&mut out, n);
            assert_eq!(out.len(), varint_len(n), "{n}");
        }
    }

    #[test]
    fn a_span_written_here_decodes_as_prost_reads_it() {
        let mut fields = Vec::new();
        attribute(&mut fields, "text", &Value::Text("ü".repeat(100).into()));
        attribute(&mut fields, "negative", &Value::Int(-7));
        attribute(&mut fields, "yes", &Value::Bool(true));
        name_with(&mut fields, |out| out.extend_from_slice(&[b'n'; 200]));
        error_status(&mut fields, "boom");
        let head = Head {
            context: SpanContext {
                trace_id: [7; 16],
                span_id: [8; 8],
                sampled: true,
            },
            parent: Some([9; 8]),
            name: None,
            kind: Kind::Client,
            start_unix_nanos: 1,
            end_unix_nanos: u64::MAX,
        };
        let mut spans = Vec::new();
        span(&mut spans, &head, &fields);
        span(
            &mut spans,
            &Head {
                parent: None,
                name: Some("plain"),
                ..head
            },
            &[],
        );
        let request = Frame::new("svc").request(&spans);
        let decoded = proto::ExportTraceServiceRequest::decode(&request[..]).unwrap();
        let [resource] = &decoded.resource_spans[..] else {
            panic!("{decoded:?}")
        };
        let service = &resource.resource.as_ref().unwrap().attributes[0];
        assert_eq!(
            (service.key.as_str(), service.text()),
            ("service.name", Some("svc"))
        );
        let scope = &resource.scope_spans[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, "grocery");
        let [first, second] = &scope.spans[..] else {
            panic!("{scope:?}")
        };
        assert_eq!(first.trace_id, [7; 16]);
        assert_eq!(first.span_id, [8; 8]);
        assert_eq!(first.parent_span_id, [9; 8]);
        assert_eq!(first.name, "n".repeat(200));
        assert_eq!(first.kind, 3);
        assert_eq!(
            (first.start_time_unix_nano, first.end_time_unix_nano),
            (1, u64::MAX)
        );
        assert_eq!(
            first.attribute("text").unwrap().text(),
            Some(&*"ü".repeat(100))
        );
        assert_eq!(first.attribute("negative").unwrap().int(), Some(-7));
        let yes = first.attribute("yes").unwrap().value.clone().unwrap().value;
        assert_eq!(yes, Some(proto::any_value::Value::BoolValue(true)));
        let status = first.status.as_ref().unwrap();
        assert_eq!((status.code, status.message.as_str()), (2, "boom"));
        assert_eq!(first.flags, 1);
        assert_eq!(second.name, "plain");
        assert!(second.parent_span_id.is_empty());
        assert!(second.attributes.is_empty() && second.status.is_none());
    }
}
