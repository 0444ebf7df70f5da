//! GraphQL over SSE (distinct-connections mode): `Accept: text/event-stream`
//! on POST or GET answered with `next` events, then `complete`, and a
//! comment every keep-alive period.

use std::sync::Arc;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use crate::{
    pipeline::Ready,
    subscriptions::{fanout::pump, frame::Frame, registry::limit_error, state::Subscriptions},
};

/// Whether the client asked for GraphQL over SSE.
pub fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

/// Aborts a task when dropped: the stream of an SSE response owns its
/// operation, so a client that goes away stops it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Answers a planned operation as GraphQL over SSE: `next` events, then
/// `complete`, with a comment every keep-alive period.
pub fn event_stream(subs: Arc<Subscriptions>, ready: Ready, headers: HeaderMap) -> Response {
    let options = subs.options.clone();
    let user = ready.claims.as_ref().map(|c| c.sub);
    let Some(slot) = subs.registry.take(user, options.per_user) else {
        let errors = limit_error(format!(
            "at most {} subscriptions may be open per user",
            options.per_user
        ));
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({ "errors": errors })),
        )
            .into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/graphql-response+json"),
        );
        return response;
    };
    let (tx, rx) = mpsc::channel::<Bytes>(options.buffer);
    let task = tokio::spawn(async move {
        let _slot = slot;
        let mut emit = |frame: Frame| {
            let event = match frame {
                Frame::Next(body) => sse_event("next", &body),
                Frame::Error(errors) => {
                    let body = json!({ "errors": errors }).to_string();
                    if tx.try_send(sse_event("next", body.as_bytes())).is_err() {
                        return false;
                    }
                    sse_event("complete", b"")
                }
                Frame::Complete => sse_event("complete", b""),
            };
            // A full buffer is a client that does not read: its stream ends.
            tx.try_send(event).is_ok()
        };
        pump(&subs, ready, headers, &mut emit).await;
    });
    let mut ticks = tokio::time::interval(options.keepalive);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = (rx, ticks, AbortOnDrop(task), true);
    let stream = futures::stream::unfold(state, |(mut rx, mut ticks, task, first)| async move {
        if first {
            // The first tick is immediate; the stream opens with a comment,
            // so the client sees its headers at once.
            ticks.tick().await;
            return Some((
                Ok::<_, std::convert::Infallible>(Bytes::from_static(b":\n\n")),
                (rx, ticks, task, false),
            ));
        }
        tokio::select! {
            event = rx.recv() => event.map(|e| (Ok(e), (rx, ticks, task, false))),
            _ = ticks.tick() => Some((Ok(Bytes::from_static(b":\n\n")), (rx, ticks, task, false))),
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn sse_event(name: &str, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 24);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}
