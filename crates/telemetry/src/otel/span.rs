//! Spans as grocery records them: a [`Tracer`] per component opens a
//! [`Span`], code sets its attributes, and dropping it hands it to the
//! exporter's queue. A disabled tracer (no endpoint) opens spans that hold
//! nothing and do nothing: no allocation, no clock read, no queue.

use std::{
    borrow::Cow,
    sync::Arc,
    time::{Instant, SystemTime},
};

use axum::http::{HeaderMap, HeaderValue};

use super::{encode, export::Shared};
use crate::trace::{TRACEPARENT, Traceparent};

/// The W3C trace context of a span: its trace, its id, and whether it is recorded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl SpanContext {
    /// A valid version-00 `traceparent` (as [`Traceparent::child_of`] accepts it).
    pub fn parse(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = unhex(trace)?;
        let span_id: [u8; 8] = unhex(span)?;
        let [flags]: [u8; 1] = unhex(flags)?;
        let zero = |b: &[u8]| b.iter().all(|&b| b == 0);
        (!zero(&trace_id) && !zero(&span_id)).then_some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header of the context, written without
    /// [`Traceparent`]'s three strings.
    pub fn header_value(&self) -> HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 55];
        text[..3].copy_from_slice(b"00-");
        let digits = self
            .trace_id
            .iter()
            .chain(&self.span_id)
            .flat_map(|&b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        // 32 digits of trace id, a dash, 16 of span id.
        for (i, digit) in digits.enumerate() {
            text[3 + i + usize::from(i >= 32)] = digit;
        }
        text[35] = b'-';
        text[52..].copy_from_slice(if self.sampled { b"-01" } else { b"-00" });
        HeaderValue::from_bytes(&text).expect("hex digits and dashes")
    }

    /// The context as the `traceparent` header carries it.
    pub fn traceparent(&self) -> Traceparent {
        Traceparent {
            trace_id: hex(&self.trace_id),
            span_id: hex(&self.span_id),
            flags: if self.sampled { "01" } else { "00" }.into(),
        }
    }
}

/// Lower-case hex only, as W3C trace context asks.
fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// What a span is to its trace (OTLP `SpanKind`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// An attribute's value; text is borrowed where it can be, since it is
/// written out (encoded) the moment it is set.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Text(Cow<'a, str>),
    Int(i64),
    Bool(bool),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Cow::Borrowed(v))
    }
}
impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Cow::Owned(v))
    }
}
impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u16> for Value<'_> {
    fn from(v: u16) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// A component's tracer: [`Tracer::default`] is off; [`Tracer::start`]
/// (in `export`) turns it on. Cloning shares the exporter.
#[derive(Clone, Default)]
pub struct Tracer(pub(super) Option<Arc<Shared>>);

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Tracer(off)"),
            Some(shared) => write!(f, "Tracer({})", shared.service),
        }
    }
}

impl Tracer {
    /// Whether spans are exported at all.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// A component's span for a request that arrived with `incoming` as its
    /// `traceparent`: in the caller's trace when that is valid, else in a new one.
    pub fn open(&self, name: &'static str, kind: Kind, incoming: Option<&str>) -> Span {
        let Some(shared) = &self.0 else {
            return Span::off();
        };
        let parent = incoming.and_then(SpanContext::parse);
        shared.span(name, kind, parent)
    }

    /// A span under the one whose context `headers` carry in `traceparent`
    /// (as [`Tracer::open`] and [`Span::propagate`] left it).
    pub fn child_of_headers(&self, headers: &HeaderMap, name: &'static str, kind: Kind) -> Span {
        let Some(shared) = &self.0 else {
            return Span::off();
        };
        let parent = headers
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(SpanContext::parse);
        match parent {
            Some(parent) => shared.span(name, kind, Some(parent)),
            None => Span::off(),
        }
    }

    /// A span under `parent`; nothing without one.
    pub fn child(&self, parent: Option<SpanContext>, name: &'static str, kind: Kind) -> Span {
        match (&self.0, parent) {
            (Some(shared), Some(parent)) => shared.span(name, kind, Some(parent)),
            _ => Span::off(),
        }
    }
}

impl Shared {
    fn span(self: &Arc<Self>, name: &'static str, kind: Kind, parent: Option<SpanContext>) -> Span {
        let trace_id = parent.map_or_else(new_trace_id, |p| p.trace_id);
        let sampled = self.sampler.samples(parent.map(|p| p.sampled), &trace_id);
        let context = SpanContext {
            trace_id,
            span_id: new_span_id(),
            sampled,
        };
        let recording = sampled.then(|| {
            Box::new(Recording {
                shared: self.clone(),
                parent: parent.map(|p| p.span_id),
                name,
                renamed: false,
                kind,
                start_unix_nanos: unix_nanos(),
                started: Instant::now(),
                fields: Vec::with_capacity(FIELDS),
            })
        });
        Span {
            context: Some(context),
            recording,
        }
    }
}

fn new_trace_id() -> [u8; 16] {
    let id: [u8; 16] = rand::random();
    if id == [0; 16] { [1; 16] } else { id }
}

fn new_span_id() -> [u8; 8] {
    let id: [u8; 8] = rand::random();
    if id == [0; 8] { [1; 8] } else { id }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A span being recorded; exported when dropped. A span of a disabled
/// tracer has no context; one of an unsampled trace has a context (so the
/// decision travels on) but records nothing.
#[derive(Default)]
pub struct Span {
    context: Option<SpanContext>,
    recording: Option<Box<Recording>>,
}

struct Recording {
    shared: Arc<Shared>,
    parent: Option<[u8; 8]>,
    /// Its name unless [`Span::rename`] wrote another into `fields`.
    name: &'static str,
    renamed: bool,
    kind: Kind,
    start_unix_nanos: u64,
    started: Instant,
    /// Attributes, a new name and an error status, already encoded as the
    /// OTLP `Span` fields they are ([`encode`]).
    fields: Vec<u8>,
}

/// Bytes set aside for a span's fields: a gateway fetch's six attributes
/// and name take about 200.
const FIELDS: usize = 256;

impl Span {
    /// A span that records nothing (tracing off).
    pub fn off() -> Self {
        Self::default()
    }

    /// Whether setting attributes on it does anything.
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Its trace context, unless tracing is off.
    pub fn context(&self) -> Option<SpanContext> {
        self.context
    }

    /// Sets attribute `key`; `value` is converted only when the span records.
    pub fn set<'a, V: Into<Value<'a>>>(&mut self, key: &'static str, value: V) {
        if let Some(recording) = &mut self.recording {
            encode::attribute(&mut recording.fields, key, &value.into());
        }
    }

    /// Renames it (a name known only once the request is read, e.g.
    /// `query Checkout`), formatted only when the span records.
    pub fn rename(&mut self, name: std::fmt::Arguments<'_>) {
        if let Some(recording) = &mut self.recording {
            encode::name_with(&mut recording.fields, |out| {
                let _ = std::io::Write::write_fmt(out, name);
            });
            recording.renamed = true;
        }
    }

    /// Marks it failed, with why.
    pub fn fail(&mut self, message: impl FnOnce() -> String) {
        if let Some(recording) = &mut self.recording {
            encode::error_status(&mut recording.fields, &message());
        }
    }

    /// Writes its context into `headers` as `traceparent`, so what is sent
    /// with them continues its trace under it.
    pub fn propagate(&self, headers: &mut HeaderMap) {
        if let Some(context) = &self.context {
            headers.insert(TRACEPARENT.clone(), context.header_value());
        }
    }

    /// Ends it now (dropping it does the same).
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        let (Some(context), Some(recording)) = (self.context, self.recording.take()) else {
            return;
        };
        let head = encode::Head {
            context,
            parent: recording.parent,
            name: (!recording.renamed).then_some(recording.name),
            kind: recording.kind,
            start_unix_nanos: recording.start_unix_nanos,
            end_unix_nanos: recording.start_unix_nanos
                + recording.started.elapsed().as_nanos() as u64,
        };
        recording.shared.finish(&head, &recording.fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_traceparent_round_trips() {
        let context = SpanContext::parse(CALLER).unwrap();
        assert!(context.sampled);
        assert_eq!(context.traceparent().to_string(), CALLER);
        assert_eq!(context.header_value(), CALLER);
        let unsampled = SpanContext::parse(&CALLER.replace("-01", "-00")).unwrap();
        assert!(!unsampled.sampled);
        for bad in [
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        ] {
            assert_eq!(SpanContext::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_off_tracer_opens_spans_without_context() {
        let tracer = Tracer::default();
        let mut span = tracer.open("request", Kind::Server, Some(CALLER));
        span.set("http.request.method", "POST");
        assert!(!span.is_recording());
        assert_eq!(span.context(), None);
        let mut headers = HeaderMap::new();
        span.propagate(&mut headers);
        assert!(headers.is_empty());
    }
}
