//! GraphQL over SSE in single-connection mode (graphql-sse's reservations;
//! see [`crate::subscriptions::sse`] for the protocol): one event stream
//! carries every operation of a client, each event tagged with its
//! operation's id, and plain requests steer it. This file holds the
//! reservations, reserves and opens them;
//! [`crate::subscriptions::reserved_operations`] runs operations on them.
//!
//! - `PUT /graphql` reserves a stream: 201 and its token (`text/plain`);
//! - `GET /graphql` with the token and `Accept: text/event-stream` opens it
//!   (one stream per reservation: 409 while it is open);
//! - `POST /graphql` with the token and `extensions.operationId` starts an
//!   operation: 202, then `next` `{"id", "payload"}` events and `complete`
//!   `{"id"}` on the stream. A refusal (a token that does not verify, a
//!   validation error, a rate limit) is accepted too and arrives as one
//!   `next` with its errors, which graphql-sse's client reports as the
//!   operation's GraphQL error; a request that is not one (no operation id,
//!   an id already running, bad JSON) is refused over HTTP (400, 409);
//! - `DELETE /graphql?operationId=` stops one (200, also when it is over).
//!
//! The token travels in `X-GraphQL-Event-Stream-Token` or the `token` query
//! parameter: 32 hex digits, 128 random bits. It is the capability, as in
//! the protocol's reference server; every operation is authenticated by its
//! own `authorization`. Anything but 32 hex digits is refused before any
//! lookup (400); an unknown token gets 404.
//!
//! Against hostile clients: a client (the user a PUT's token names, else
//! its address) holds at most `per_client` reservations, open or not
//! (`SSE_RESERVATIONS_PER_CLIENT`, 429); one not opened within `lapse`
//! (`SSE_RESERVATION_TIMEOUT`) lapses; at most `max_waiting` wait to be
//! opened on one gateway (503 beyond). A waiting reservation is a map entry
//! of a few hundred bytes: its event buffer is made when it is opened or
//! gets an operation. Operations run at once on one stream are limited as
//! on one WebSocket (`SUBSCRIPTIONS_PER_CONNECTION`), and a stream whose
//! client lets its buffer fill ends, its operations with it.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::{sync::mpsc, task::AbortHandle};
use uuid::Uuid;

use crate::{
    pipeline::{bearer, response::error_body},
    subscriptions::{registry::limit_error, sse, state::Subscriptions},
};

/// The header a reservation's token travels in.
pub static TOKEN_HEADER: HeaderName = HeaderName::from_static("x-graphql-event-stream-token");

/// Whom a reservation counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Client {
    User(Uuid),
    Address(IpAddr),
    Unknown,
}

pub(super) type Token = u128;

/// The reservations of one gateway.
#[derive(Default)]
pub struct Reservations {
    inner: Mutex<Inner>,
}

#[derive(Default)]
pub(super) struct Inner {
    streams: HashMap<Token, Arc<Reserved>>,
    per_client: HashMap<Client, usize>,
    /// Reservations in the order they were made, to find lapsed ones
    /// without a scan; entries of ones opened or gone are skipped.
    made: VecDeque<(Instant, Token)>,
    /// Reservations not opened yet.
    waiting: usize,
}

/// One reservation.
pub(super) struct Reserved {
    client: Client,
    made: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
pub(super) struct State {
    opened: bool,
    /// The stream's events, made when first needed; the sender is dropped
    /// when the stream is ended.
    sender: Option<mpsc::Sender<Bytes>>,
    receiver: Option<mpsc::Receiver<Bytes>>,
    pub(super) operations: HashMap<String, (u64, AbortHandle)>,
    pub(super) generation: u64,
    ended: bool,
}

impl Reserved {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stream's sender, made with the stream if it is not yet; `None`
    /// once the stream ended.
    pub(super) fn sender(&self, buffer: usize) -> Option<mpsc::Sender<Bytes>> {
        let mut state = self.state();
        if state.ended {
            return None;
        }
        if state.sender.is_none() && !state.opened {
            let (tx, rx) = mpsc::channel(buffer);
            state.sender = Some(tx);
            state.receiver = Some(rx);
        }
        state.sender.clone()
    }

    /// Ends the stream: every operation stopped, no more events.
    pub(super) fn end(&self) {
        let mut state = self.state();
        state.ended = true;
        state.sender = None;
        for (_, (_, task)) in state.operations.drain() {
            task.abort();
        }
    }
}

impl Inner {
    /// Forgets reservation `token`; whether it was there.
    fn remove(&mut self, token: Token) -> bool {
        let Some(reserved) = self.streams.remove(&token) else {
            return false;
        };
        if !reserved.state().opened {
            self.waiting -= 1;
        }
        if let Some(count) = self.per_client.get_mut(&reserved.client) {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&reserved.client);
            }
        }
        reserved.end();
        true
    }

    /// A new reservation `token` of `client`, waiting to be opened.
    fn insert(&mut self, token: Token, client: Client, now: Instant) {
        let reserved = Arc::new(Reserved {
            client,
            made: now,
            state: Mutex::default(),
        });
        self.streams.insert(token, reserved);
        *self.per_client.entry(client).or_default() += 1;
        self.made.push_back((now, token));
        self.waiting += 1;
    }

    /// Lets go of the reservations not opened within `lapse`.
    fn sweep(&mut self, lapse: Duration, now: Instant) {
        while let Some(&(made, token)) = self.made.front() {
            if now.duration_since(made) < lapse {
                break;
            }
            self.made.pop_front();
            let waiting = self
                .streams
                .get(&token)
                .is_some_and(|r| r.made == made && !r.state().opened);
            if waiting {
                self.remove(token);
            }
        }
    }

    /// The reservation `token`, unless it lapsed.
    pub(super) fn find(&mut self, token: Token, lapse: Duration) -> Option<Arc<Reserved>> {
        let reserved = self.streams.get(&token)?.clone();
        if !reserved.state().opened && reserved.made.elapsed() >= lapse {
            self.remove(token);
            return None;
        }
        Some(reserved)
    }
}

impl Reservations {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reservations held (waiting or open).
    pub fn len(&self) -> usize {
        self.lock().streams.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reservations not opened yet.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }
}

/// Whether a request names a reservation (its header, or `token=` in `query`).
pub fn names_a_stream(headers: &HeaderMap, query: Option<&str>) -> bool {
    headers.contains_key(&TOKEN_HEADER) || query_param(query, "token").is_some()
}

/// Moves a `token` query parameter into [`TOKEN_HEADER`] (where a POST's
/// token is looked for), unless the header is there.
pub fn token_param_to_header(headers: &mut HeaderMap, query: Option<&str>) {
    if headers.contains_key(&TOKEN_HEADER) {
        return;
    }
    let value = query_param(query, "token").map(|t| HeaderValue::from_str(&t));
    // A value no header can hold is no token: the header says so.
    let value = value.map(|v| v.unwrap_or(HeaderValue::from_static("-")));
    if let Some(value) = value {
        headers.insert(TOKEN_HEADER.clone(), value);
    }
}

/// `PUT /graphql`: a new reservation for the caller, its token in the body.
pub async fn reserve(
    subs: &Arc<Subscriptions>,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Response {
    let options = &subs.options;
    // A token that does not verify reserves as its address: the operations
    // it then sends are refused with the error graphql-sse reports.
    let user = match (&subs.pipeline.verifier, bearer(headers)) {
        (Some(verifier), Some(token)) => verifier.verify(token).await.ok().map(|c| c.sub),
        _ => None,
    };
    let client = match (user, subs.pipeline.limiter.client_ip(headers, peer)) {
        (Some(user), _) => Client::User(user),
        (None, Some(ip)) => Client::Address(ip),
        (None, None) => Client::Unknown,
    };
    let token: Token = rand::random();
    let now = Instant::now();
    let mut inner = subs.reservations.lock();
    inner.sweep(options.reservation_lapse, now);
    if inner.per_client.get(&client).copied().unwrap_or(0) >= options.reservations_per_client {
        drop(inner);
        let errors = limit_error(format!(
            "at most {} event streams may be reserved at once per client",
            options.reservations_per_client
        ));
        return json_answer(StatusCode::TOO_MANY_REQUESTS, json!({ "errors": errors }));
    }
    if inner.waiting >= options.max_waiting_reservations {
        drop(inner);
        let mut response = json_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            error_body(
                "too many event streams are reserved and not opened on this gateway; retry later",
                "SERVICE_UNAVAILABLE",
            ),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(options.reservation_lapse.as_secs().max(1)),
        );
        return response;
    }
    inner.insert(token, client, now);
    drop(inner);
    let mut response = (StatusCode::CREATED, format!("{token:032x}")).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `GET /graphql` with a token: the reservation's event stream.
pub fn open(subs: &Arc<Subscriptions>, headers: &HeaderMap, query: Option<&str>) -> Response {
    let token = match token_of(headers, query) {
        Ok(token) => token,
        Err(why) => return bad_request(why),
    };
    if !sse::accepts_event_stream(headers) {
        return json_answer(
            StatusCode::NOT_ACCEPTABLE,
            error_body(
                "a reserved event stream is opened with Accept: text/event-stream; \
                 operations are sent with POST",
                "BAD_REQUEST",
            ),
        );
    }
    let options = &subs.options;
    let mut inner = subs.reservations.lock();
    let Some(reserved) = inner.find(token, options.reservation_lapse) else {
        return not_found();
    };
    let receiver = {
        let mut state = reserved.state();
        if state.ended {
            // Its buffer filled before it was opened: it is over.
            drop(state);
            inner.remove(token);
            return not_found();
        }
        if state.opened {
            drop(state);
            drop(inner);
            return json_answer(
                StatusCode::CONFLICT,
                error_body("this event stream is open already", "CONFLICT"),
            );
        }
        state.opened = true;
        match state.receiver.take() {
            Some(receiver) => receiver,
            None => {
                let (tx, rx) = mpsc::channel(options.buffer);
                state.sender = Some(tx);
                rx
            }
        }
    };
    inner.waiting -= 1;
    drop(inner);
    let guard = Opened {
        subs: subs.clone(),
        token,
        reserved,
    };
    sse::streaming(receiver, &subs.ending(), options.keepalive, guard)
}

/// An open stream's reservation: forgotten, with its operations, when the
/// client goes away.
struct Opened {
    subs: Arc<Subscriptions>,
    token: Token,
    reserved: Arc<Reserved>,
}

impl Drop for Opened {
    fn drop(&mut self) {
        let mut inner = self.subs.reservations.lock();
        let ours = inner
            .streams
            .get(&self.token)
            .is_some_and(|r| Arc::ptr_eq(r, &self.reserved));
        if ours {
            inner.remove(self.token);
        }
    }
}

/// The request's token, from its header or else `query`'s `token`.
/// Why not, if it has none or a malformed one.
pub(super) fn token_of(headers: &HeaderMap, query: Option<&str>) -> Result<Token, &'static str> {
    let raw = match headers.get(&TOKEN_HEADER) {
        Some(value) => Some(value.to_str().unwrap_or("\u{0}").to_owned()),
        None => query_param(query, "token").map(|t| t.into_owned()),
    };
    let Some(raw) = raw else {
        return Err("the request names no event stream");
    };
    let well_formed = raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit());
    match well_formed.then(|| Token::from_str_radix(&raw, 16)) {
        Some(Ok(token)) => Ok(token),
        _ => Err("the event stream token is not one this gateway gives (32 hex digits)"),
    }
}

/// The value of parameter `name` in the query string `query`, decoded.
pub(super) fn query_param<'a>(
    query: Option<&'a str>,
    name: &str,
) -> Option<std::borrow::Cow<'a, str>> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

pub(super) fn json_answer(status: StatusCode, body: Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(super) fn bad_request(message: &str) -> Response {
    json_answer(StatusCode::BAD_REQUEST, error_body(message, "BAD_REQUEST"))
}

pub(super) fn not_found() -> Response {
    json_answer(
        StatusCode::NOT_FOUND,
        error_body(
            "no such event stream: reserve one with PUT (reservations not opened in time lapse)",
            "NOT_FOUND",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_not_opened_in_time_lapses_and_an_opened_one_stays() {
        let lapse = Duration::from_secs(30);
        let made = Instant::now();
        let mut inner = Inner::default();
        inner.insert(1, Client::Unknown, made);
        inner.insert(2, Client::Unknown, made);
        inner.streams[&2].state().opened = true;
        inner.waiting -= 1;

        inner.sweep(lapse, made + lapse - Duration::from_millis(1));
        assert_eq!(inner.streams.len(), 2);
        inner.sweep(lapse, made + lapse);
        assert_eq!(inner.streams.keys().collect::<Vec<_>>(), [&2]);
        assert_eq!(inner.waiting, 0);
        assert_eq!(inner.per_client[&Client::Unknown], 1);
        assert!(inner.made.is_empty());
        assert!(inner.remove(2));
        assert!(inner.per_client.is_empty());
    }

    #[test]
    fn only_32_hex_digits_are_a_token() {
        let header = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(TOKEN_HEADER.clone(), HeaderValue::from_str(value).unwrap());
            headers
        };
        let token = format!("{:032x}", 0xabc_u128);
        assert_eq!(token_of(&header(&token), None).ok(), Some(0xabc));
        for bad in ["", "abc", &"f".repeat(33), &"g".repeat(32), "-"] {
            assert!(token_of(&header(bad), None).is_err(), "{bad:?}");
        }
        let query = format!("token={token}&operationId=1");
        assert_eq!(token_of(&HeaderMap::new(), Some(&query)).ok(), Some(0xabc));
        assert!(token_of(&HeaderMap::new(), Some("token=%00")).is_err());
        assert!(token_of(&HeaderMap::new(), None).is_err());
    }
}
