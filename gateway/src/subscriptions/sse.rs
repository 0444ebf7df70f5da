//! GraphQL over SSE as the graphql-sse protocol says
//! (<https://github.com/enisdenjo/graphql-sse/blob/master/PROTOCOL.md>),
//! distinct-connections mode: a request that accepts `text/event-stream`
//! gets its answer as an event stream, `next` events then `complete`, with
//! a comment every keep-alive period. The single-connection mode is
//! [`crate::subscriptions::reservations`]; this file also writes the events
//! both modes send.
//!
//! Every answer of such a request is a stream, its errors included: the
//! protocol wants problems found before execution reported through an
//! accepted (200) stream as `next` events, because a user agent fails a 4xx
//! event stream without reading it (graphql-sse's client then reports only
//! "Connection closed while having active streams"). So a refusal (a token
//! that does not verify, a validation error, a rate limit, a persisted-only
//! rule, a malformed request) arrives as one `next` holding `{"errors": …}`
//! then `complete`, with status 200; `Retry-After` and the request id stay.
//!
//! Which requests: a subscription whose `Accept` names `text/event-stream`
//! at all (JSON cannot carry it); anything else when `text/event-stream` is
//! what `Accept` prefers over JSON ([`prefers_event_stream`]), so a client
//! that lists JSON first still gets JSON for its queries.

use std::sync::Arc;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use crate::{
    pipeline::Ready,
    subscriptions::{fanout::pump, frame::Frame, registry::limit_error, state::Subscriptions},
};

/// Whether `Accept` names `text/event-stream` at all (a subscription can
/// be served no other way over HTTP).
pub fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

/// Whether `Accept` prefers `text/event-stream` to JSON: it is listed with
/// a higher quality than any JSON type (`application/json`,
/// `application/graphql-response+json`), or as high and before them.
/// Wildcards count for neither.
pub fn prefers_event_stream(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // (quality, -position) of the best event-stream and JSON entries.
    let mut stream: Option<(u16, isize)> = None;
    let mut json: Option<(u16, isize)> = None;
    for (position, entry) in accept.split(',').enumerate() {
        let mut parts = entry.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0) as u16);
        let rank = Some((quality, -(position as isize)));
        if media.eq_ignore_ascii_case("text/event-stream") {
            stream = stream.max(rank);
        } else if media.eq_ignore_ascii_case("application/json")
            || media.eq_ignore_ascii_case("application/graphql-response+json")
        {
            json = json.max(rank);
        }
    }
    stream.is_some_and(|(quality, _)| quality > 0) && stream > json
}

/// Aborts a task when dropped: the stream of an SSE response owns its
/// operation, so a client that goes away stops it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Answers a planned subscription as GraphQL over SSE: `next` events, then
/// `complete`, with a comment every keep-alive period.
pub fn event_stream(subs: Arc<Subscriptions>, ready: Ready, headers: HeaderMap) -> Response {
    let options = subs.options.clone();
    let user = ready.claims.as_ref().map(|c| c.sub);
    let Some(slot) = subs.registry.take(user, options.per_user) else {
        let errors = limit_error(format!(
            "at most {} subscriptions may be open per user",
            options.per_user
        ));
        return answered(json!({ "errors": errors }).to_string().into(), None);
    };
    let (tx, rx) = mpsc::channel::<Bytes>(options.buffer);
    let subs_ending = subs.ending();
    let task = tokio::spawn(async move {
        let _slot = slot;
        let mut emit = |frame: Frame| {
            // A full buffer is a client that does not read: its stream ends.
            distinct_events(frame)
                .into_iter()
                .all(|event| tx.try_send(event).is_ok())
        };
        pump(&subs, ready, headers, &mut emit).await;
    });
    streaming(rx, &subs_ending, options.keepalive, AbortOnDrop(task))
}

/// The events of `frame` in distinct-connections mode.
fn distinct_events(frame: Frame) -> Vec<Bytes> {
    match frame {
        Frame::Next(body) => vec![event("next", &body)],
        Frame::Error(errors) => {
            let body = json!({ "errors": errors }).to_string();
            vec![event("next", body.as_bytes()), event("complete", b"")]
        }
        Frame::Complete => vec![event("complete", b"")],
    }
}

/// `response`, a JSON answer written already (a query's result, or any
/// refusal), as an event stream: its body as one `next`, then `complete`,
/// with status 200. Any other response stays as it is.
pub async fn as_event_stream(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|media| media.starts_with("application/") && media.contains("json"));
    if !is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Written by the gateway in memory: collecting it only takes it out.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    answered(body, Some(parts.headers))
}

/// A whole answer `body` (GraphQL response JSON) as a finished event
/// stream, keeping `headers` but for the body's own.
fn answered(body: Bytes, headers: Option<HeaderMap>) -> Response {
    let mut stream = event("next", &body).to_vec();
    stream.extend_from_slice(&event("complete", b""));
    let mut response = Response::new(Body::from(stream));
    if let Some(mut headers) = headers {
        headers.remove(header::CONTENT_LENGTH);
        *response.headers_mut() = headers;
    }
    *response.status_mut() = StatusCode::OK;
    stream_headers(response.headers_mut());
    response
}

/// An event stream of what arrives on `rx`, opened with a comment (so the
/// client sees its headers at once) and kept alive with one every
/// `keepalive`; it ends when every sender is gone, or when `ending` turns
/// true (the gateway stops). `guard` lives as long as the stream: dropped
/// when the client goes away.
pub(crate) fn streaming<G: Send + 'static>(
    rx: mpsc::Receiver<Bytes>,
    ending: &tokio::sync::watch::Receiver<bool>,
    keepalive: std::time::Duration,
    guard: G,
) -> Response {
    let mut ticks = tokio::time::interval(keepalive);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = (rx, ticks, ending.clone(), guard, true);
    let stream = futures::stream::unfold(state, |state| async move {
        let (mut rx, mut ticks, mut ending, guard, first) = state;
        if first {
            // The first tick is immediate.
            ticks.tick().await;
            let comment = Bytes::from_static(b":\n\n");
            return Some((
                Ok::<_, std::convert::Infallible>(comment),
                (rx, ticks, ending, guard, false),
            ));
        }
        let next = tokio::select! {
            event = rx.recv() => event?,
            _ = ticks.tick() => Bytes::from_static(b":\n\n"),
            _ = ending.wait_for(|ending| *ending) => return None,
        };
        Some((Ok(next), (rx, ticks, ending, guard, false)))
    });
    let mut response = Response::new(Body::from_stream(stream));
    stream_headers(response.headers_mut());
    response
}

fn stream_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

/// One event: `event: name` and `data` on one `data:` line. `data` is JSON
/// (or empty): a line break in it can only be whitespace between tokens
/// (one in a string is escaped), so it becomes a space instead of ending
/// the line.
pub(crate) fn event(name: &str, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 24);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend(
        data.iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_event_stream_is_preferred_only_over_json_it_outranks() {
        for (value, preferred) in [
            ("text/event-stream", true),
            ("text/event-stream, */*", true),
            ("text/event-stream, application/json", true),
            ("application/json, text/event-stream", false),
            ("application/json;q=0.5, text/event-stream", true),
            (
                "application/graphql-response+json, text/event-stream;q=0.9",
                false,
            ),
            ("text/event-stream;q=0", false),
            ("application/json", false),
            ("*/*", false),
        ] {
            assert_eq!(prefers_event_stream(&accept(value)), preferred, "{value}");
        }
        assert!(!prefers_event_stream(&HeaderMap::new()));
    }

    #[test]
    fn an_event_is_one_data_line_whatever_whitespace_its_json_has() {
        assert_eq!(
            event("next", b"{\n\"a\":\r\n\"b\\nc\"}"),
            Bytes::from_static(b"event: next\ndata: { \"a\":  \"b\\nc\"}\n\n")
        );
        assert_eq!(
            event("complete", b""),
            Bytes::from_static(b"event: complete\ndata: \n\n")
        );
    }
}
