//! Subscriptions through the gateway: clients speak `graphql-transport-ws`
//! on a WebSocket upgrade of `/graphql`, or GraphQL over SSE
//! (distinct-connections mode: `Accept: text/event-stream` on POST or GET).
//!
//! A subscription is planned like any operation. The plan's `Subscription`
//! node names the subgraph that owns the root field: the gateway subscribes
//! there over `graphql-transport-ws` with the caller's token (see
//! [`crate::upstream`]) and, for every event, runs the rest of the plan — the
//! entity fetches for fields other subgraphs own — and shapes the result like
//! a query's. Events of one subscription are delivered in order.
//!
//! Protection: every client has a bounded outgoing buffer; one that stops
//! reading and lets it fill is closed (`1008`, policy violation) instead of
//! growing the gateway's memory. Subscriptions are limited per connection and
//! per user (`SUBSCRIPTION_LIMIT`). Quiet connections are pinged; a lost
//! subgraph ends the subscription with an error and `complete`.
//!
//! Close codes are the protocol's: 4400 bad message, 4401 subscribe before
//! `connection_ack`, 4403 refused token, 4408 no `connection_init` in time,
//! 4409 duplicate operation id, 4429 second `connection_init`.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    body::Body,
    extract::{
        FromRequestParts, Request, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures::{SinkExt, StreamExt, stream::SplitSink};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::{
    execution::{self, Execution},
    http::{self, Gateway, GraphqlRequest, Ready, Report},
    metrics::Outcome,
    upstream::{self, Upstream},
};

/// Limits, keep-alive and buffering of subscriptions.
#[derive(Clone, Debug)]
pub struct SubscriptionOptions {
    /// Operations open at once on one WebSocket.
    pub per_connection: usize,
    /// Subscriptions open at once by one user on this gateway (all
    /// connections, WebSocket and SSE).
    pub per_user: usize,
    /// Messages waiting for a client before it counts as not reading.
    pub buffer: usize,
    /// Pings to quiet clients (and SSE comments) this often.
    pub keepalive: Duration,
    /// How long a new WebSocket may take to send `connection_init`.
    pub init_timeout: Duration,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        Self {
            per_connection: 100,
            per_user: 200,
            buffer: 64,
            keepalive: Duration::from_secs(15),
            init_timeout: Duration::from_secs(10),
        }
    }
}

/// Open subscriptions of one gateway, by user, and the upstream
/// subscriptions that feed them.
#[derive(Default)]
pub struct Registry {
    by_user: Mutex<HashMap<Uuid, usize>>,
    open: AtomicUsize,
    upstreams: Mutex<Upstreams>,
}

impl Registry {
    /// Client subscriptions open on this gateway.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Subscriptions this gateway holds open on subgraphs.
    pub fn upstream(&self) -> usize {
        self.lock_upstreams().open.len()
    }

    fn lock_upstreams(&self) -> std::sync::MutexGuard<'_, Upstreams> {
        self.upstreams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more subscription of `user`, if under `limit`.
    fn take(self: &Arc<Self>, user: Option<Uuid>, limit: usize) -> Option<Slot> {
        if let Some(user) = user {
            let mut by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
            let count = by_user.entry(user).or_default();
            if *count >= limit {
                return None;
            }
            *count += 1;
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            registry: self.clone(),
            user,
        })
    }
}

/// One counted subscription; counted off when dropped.
struct Slot {
    registry: Arc<Registry>,
    user: Option<Uuid>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(user) = self.user {
            let mut by_user = self
                .registry
                .by_user
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(count) = by_user.get_mut(&user) {
                *count -= 1;
                if *count == 0 {
                    by_user.remove(&user);
                }
            }
        }
    }
}

fn limit_error(message: String) -> Value {
    json!([{ "message": message, "extensions": { "code": "SUBSCRIPTION_LIMIT" } }])
}

/// What one operation sends its client.
#[derive(Clone, Debug)]
pub(crate) enum Frame {
    /// A result (the written response JSON).
    Next(Bytes),
    /// The operation failed before producing results (GraphQL errors); ends it.
    Error(Value),
    /// The operation is over.
    Complete,
}

/// Subscriptions open on subgraphs, shared: clients that send the same
/// operation with the same variables and the same token get the same
/// events, so one upstream subscription (and one run of the entity fetches
/// per event) serves them all, as Apollo Router's deduplication does.
#[derive(Default)]
struct Upstreams {
    open: HashMap<Arc<str>, Arc<Shared>>,
}

/// One upstream subscription and the clients it feeds.
struct Shared {
    events: tokio::sync::broadcast::Sender<Frame>,
    /// Clients following it; the upstream is stopped when the last leaves.
    members: AtomicUsize,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

/// A client's place on a shared upstream subscription.
struct Member {
    registry: Arc<Registry>,
    /// Shared with the map entry: it holds the operation and the token, so
    /// ten thousand members must not hold ten thousand copies.
    key: Arc<str>,
    shared: Arc<Shared>,
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut upstreams = self.registry.lock_upstreams();
        if self.shared.members.fetch_sub(1, Ordering::AcqRel) == 1 {
            if upstreams
                .open
                .get(&self.key)
                .is_some_and(|s| Arc::ptr_eq(s, &self.shared))
            {
                upstreams.open.remove(&self.key);
            }
            if let Some(task) = self
                .shared
                .task
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                task.abort();
            }
        }
    }
}

/// Runs one client operation and hands each frame to `emit`, which answers
/// `false` once the client is gone. A query or mutation gives one result; a
/// subscription one per event until the subgraph completes or is lost.
async fn pump(
    gw: &Arc<Gateway>,
    ready: Ready,
    headers: HeaderMap,
    emit: &mut (dyn FnMut(Frame) -> bool + Send),
) {
    if !ready.is_subscription() {
        let answered =
            http::answer(&ready.loaded, &ready.prepared, &ready.variables, &headers).await;
        if emit(Frame::Next(answered.body.into())) {
            emit(Frame::Complete);
        }
        return;
    }
    // The caller's headers (and the plan) live on only in the upstream
    // subscription, not in every member.
    let (member, mut events) = join(gw, ready, headers);
    loop {
        match events.recv().await {
            Ok(frame) => {
                let last = !matches!(frame, Frame::Next(_));
                if !emit(frame) || last {
                    break;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                // Events were lost for this client: it does not keep up.
                tracing::warn!(missed, "a subscriber fell behind; ending its subscription");
                let body = json!({ "errors": [{
                    "message": format!("the client fell {missed} events behind"),
                    "extensions": { "code": "SUBSCRIPTION_LAGGED" },
                }] });
                if emit(Frame::Next(body.to_string().into())) {
                    emit(Frame::Complete);
                }
                break;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                emit(Frame::Complete);
                break;
            }
        }
    }
    drop(member);
}

/// Follows the upstream subscription of `ready` for this caller, opening
/// it if no identical one is open.
fn join(
    gw: &Arc<Gateway>,
    ready: Ready,
    headers: HeaderMap,
) -> (Member, tokio::sync::broadcast::Receiver<Frame>) {
    let registry = gw.subscriptions.clone();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = format!(
        "{}\u{0}{}\u{0}{}\u{0}{}",
        ready.prepared.operation,
        Value::Object(ready.variables.clone()),
        token,
        Arc::as_ptr(&ready.loaded) as usize,
    );
    let mut upstreams = registry.lock_upstreams();
    if let Some((key, shared)) = upstreams.open.get_key_value(key.as_str()) {
        shared.members.fetch_add(1, Ordering::AcqRel);
        let events = shared.events.subscribe();
        let (key, shared) = (key.clone(), shared.clone());
        drop(upstreams);
        return (
            Member {
                registry,
                key,
                shared,
            },
            events,
        );
    }
    let (tx, events) = tokio::sync::broadcast::channel(gw.options.subscriptions.buffer);
    let shared = Arc::new(Shared {
        events: tx.clone(),
        members: AtomicUsize::new(1),
        task: Mutex::new(None),
    });
    let key: Arc<str> = key.into();
    upstreams.open.insert(key.clone(), shared.clone());
    drop(upstreams);
    let (gw2, headers2, registry2, key2, shared2) = (
        gw.clone(),
        headers,
        registry.clone(),
        key.clone(),
        shared.clone(),
    );
    let task = tokio::spawn(async move {
        let mut emit = |frame: Frame| {
            // No receiver left: the last member is leaving and aborts this task.
            tx.send(frame).is_ok()
        };
        source(&gw2, ready, &headers2, &mut emit).await;
        // Ended by the subgraph: identical subscriptions from now on open a new one.
        let mut upstreams = registry2.lock_upstreams();
        if upstreams
            .open
            .get(&key2)
            .is_some_and(|s| Arc::ptr_eq(s, &shared2))
        {
            upstreams.open.remove(&key2);
        }
    });
    *shared.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
    (
        Member {
            registry,
            key,
            shared,
        },
        events,
    )
}

/// Subscribes on the subgraph that owns the subscription of `ready` and
/// emits every event completed with the rest of the plan, then how it ended.
async fn source(
    gw: &Gateway,
    ready: Ready,
    headers: &HeaderMap,
    emit: &mut (dyn FnMut(Frame) -> bool + Send),
) {
    let loaded = &ready.loaded;
    let Some(primary) = execution::subscription_primary(&ready.prepared.plan) else {
        emit(Frame::Error(json!([{
            "message": "the subscription has no subgraph to subscribe to",
            "extensions": { "code": "INTERNAL_SERVER_ERROR" },
        }])));
        return;
    };
    let service = primary.service_name.as_str();
    // Why is logged, not sent: it names addresses and transport errors.
    let unreachable = |why: String| {
        tracing::warn!(subgraph = service, %why, "a subscription's subgraph failed");
        json!([{
            "message": format!("the {service} subgraph cannot serve the subscription"),
            "extensions": { "code": "SUBREQUEST_HTTP_ERROR", "serviceName": service },
        }])
    };
    let Some(url) = loaded.subgraphs.url(service) else {
        emit(Frame::Error(unreachable("no URL".into())));
        return;
    };
    let variables: Map<String, Value> = primary
        .variable_usages
        .iter()
        .flatten()
        .filter_map(|name| ready.variables.get(name).map(|v| (name.clone(), v.clone())))
        .collect();
    let opened = upstream::subscribe(
        url,
        http::bearer(headers),
        &primary.operation.document_str,
        variables,
        loaded.subgraphs.timeout(service),
    )
    .await;
    let mut source = match opened {
        Ok(source) => source.with_keepalive(gw.options.subscriptions.keepalive),
        Err(why) => {
            emit(Frame::Error(unreachable(why)));
            return;
        }
    };
    loop {
        match source.next().await {
            Upstream::Next(mut payload) => {
                let errors = match payload.get_mut("errors").map(Value::take) {
                    Some(Value::Array(errors)) => errors
                        .into_iter()
                        .map(|e| execution::with_service(e, service))
                        .collect(),
                    _ => Vec::new(),
                };
                let data = payload
                    .get_mut("data")
                    .map(|data| crate::value::Value::from(data.take()))
                    .unwrap_or_default();
                let event = Execution { data, errors };
                let result = execution::execute_event(
                    &ready.prepared.plan,
                    &loaded.subgraphs,
                    loaded.supergraph.shapes(),
                    &ready.variables,
                    headers,
                    event,
                )
                .await;
                let (body, _) =
                    http::write_response(&result, &ready.prepared, loaded, &ready.variables);
                if !emit(Frame::Next(body.into())) {
                    source.close().await;
                    return;
                }
            }
            Upstream::Error(payload) => {
                let errors = match payload {
                    Value::Array(errors) => errors
                        .into_iter()
                        .map(|e| execution::with_service(e, service))
                        .collect(),
                    other => vec![execution::with_service(other, service)],
                };
                emit(Frame::Error(Value::Array(errors)));
                return;
            }
            Upstream::Complete => {
                emit(Frame::Complete);
                return;
            }
            Upstream::Lost(why) => {
                let body = json!({ "errors": unreachable(why) }).to_string();
                if emit(Frame::Next(body.into())) {
                    emit(Frame::Complete);
                }
                return;
            }
        }
    }
}

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
pub(crate) fn event_stream(gw: Arc<Gateway>, ready: Ready, headers: HeaderMap) -> Response {
    let options = gw.options.subscriptions.clone();
    let user = ready.claims.as_ref().map(|c| c.sub);
    let Some(slot) = gw.subscriptions.take(user, options.per_user) else {
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
        pump(&gw, ready, headers, &mut emit).await;
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

/// Upgrades `/graphql` to a `graphql-transport-ws` connection.
pub(crate) async fn websocket(gw: Arc<Gateway>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let offered = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == upstream::PROTOCOL);
    if !offered {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "errors": [{
                "message": "WebSocket clients must offer the graphql-transport-ws subprotocol",
                "extensions": { "code": "BAD_REQUEST" },
            }] })),
        )
            .into_response();
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let peer = http::peer_of(&parts.extensions);
    let headers = carried_headers(&parts.headers);
    drop(parts);
    upgrade
        .protocols([upstream::PROTOCOL])
        // Client messages are small (a subscribe is a few hundred bytes);
        // a bigger one takes more reads. Every idle connection keeps this.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(http::MAX_BODY_BYTES)
        .on_upgrade(move |socket| connection(gw, socket, headers, peer))
}

/// The upgrade request's headers a session needs later, copied. hyper's
/// header values are slices of its 16 KiB read buffer: keeping one for the
/// life of a connection would keep that whole buffer (half of an idle
/// connection's memory).
fn carried_headers(headers: &HeaderMap) -> HeaderMap {
    let mut carried = HeaderMap::new();
    for name in [
        header::AUTHORIZATION.as_str(),
        "x-request-id",
        "traceparent",
        "graphql-client-name",
        "apollographql-client-name",
    ] {
        if let Some(copy) = headers
            .get(name)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            carried.insert(header::HeaderName::from_static(name), copy);
        }
    }
    carried
}

/// Ends a connection: the reason is sent in the close frame.
#[derive(Default)]
struct Closer {
    closed: AtomicBool,
    reason: Mutex<Option<(u16, String)>>,
    notify: Notify,
}

impl Closer {
    fn close(&self, code: u16, reason: impl Into<String>) {
        {
            let mut slot = self.reason.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() && !self.closed.load(Ordering::Acquire) {
                *slot = Some((code, reason.into()));
            }
        }
        self.gone();
    }

    /// Closed without a word (the client went away).
    fn gone(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    async fn closed(&self) {
        loop {
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    fn reason(&self) -> Option<(u16, String)> {
        self.reason.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// What a connection's operations write to, bounded.
#[derive(Clone)]
struct Outbox {
    tx: mpsc::Sender<Message>,
    closer: Arc<Closer>,
}

impl Outbox {
    /// Queues `text`; `false` once the client is gone. A full queue closes
    /// the connection: the client stopped reading.
    fn push(&self, text: String) -> bool {
        match self.tx.try_send(Message::Text(text.into())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.closer
                    .close(1008, "the client did not read its messages; buffer full");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn frame(&self, id: &str, frame: Frame) -> bool {
        let id = Value::String(id.to_owned()).to_string();
        let text = match frame {
            Frame::Next(body) => {
                let mut text = String::with_capacity(body.len() + id.len() + 32);
                text.push_str("{\"id\":");
                text.push_str(&id);
                text.push_str(",\"type\":\"next\",\"payload\":");
                // The body is JSON written by serde_json: valid UTF-8.
                text.push_str(&String::from_utf8_lossy(&body));
                text.push('}');
                text
            }
            Frame::Error(errors) => {
                format!("{{\"id\":{id},\"type\":\"error\",\"payload\":{errors}}}")
            }
            Frame::Complete => format!("{{\"id\":{id},\"type\":\"complete\"}}"),
        };
        self.push(text)
    }
}

/// How long a closing connection may take to flush its last messages and
/// close frame to a client that reads again.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Message>,
    closer: Arc<Closer>,
    keepalive: Duration,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            biased;
            () = closer.closed() => break,
            message = rx.recv() => match message {
                Some(message) => message,
                None => break,
            },
            _ = ticks.tick() => Message::Text(r#"{"type":"ping"}"#.into()),
        };
        let mut send = sink.send(message);
        let mut send = Pin::new(&mut send);
        tokio::select! {
            sent = &mut send => if sent.is_err() {
                closer.gone();
                return;
            },
            () = closer.closed() => {
                // Finish the frame under way (a client may read again) before closing.
                if !matches!(tokio::time::timeout(CLOSE_GRACE, send).await, Ok(Ok(()))) {
                    return;
                }
                break;
            }
        }
    }
    if let Some((code, reason)) = closer.reason() {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
}

#[derive(Deserialize)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
}

/// One client's WebSocket.
struct Session {
    gw: Arc<Gateway>,
    out: Outbox,
    /// The upgrade request's token and forwarded headers ([`carried_headers`];
    /// its token counts when `connection_init` has none).
    upgrade_headers: HeaderMap,
    /// The client's address (for per-address rate limits).
    peer: Option<std::net::IpAddr>,
    /// Headers every operation runs with (the caller's token), once acknowledged.
    headers: Option<HeaderMap>,
    user: Option<Uuid>,
    init_seen: bool,
    running: HashMap<String, (u64, tokio::task::AbortHandle)>,
    next_generation: u64,
    finished: Arc<Finished>,
}

/// Operations of a session that ended by themselves (id and generation),
/// for the session to forget. A lock and a `Notify` rather than a channel:
/// an idle connection then holds no channel blocks.
#[derive(Default)]
struct Finished {
    ended: Mutex<Vec<(String, u64)>>,
    notify: Notify,
}

impl Finished {
    fn push(&self, id: String, generation: u64) {
        self.ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, generation));
        self.notify.notify_one();
    }

    fn take(&self) -> Vec<(String, u64)> {
        std::mem::take(&mut *self.ended.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Why a connection is closed: its close code and reason.
type Violation = (u16, String);

async fn connection(
    gw: Arc<Gateway>,
    socket: WebSocket,
    upgrade_headers: HeaderMap,
    peer: Option<std::net::IpAddr>,
) {
    let options = gw.options.subscriptions.clone();
    let (sink, mut stream) = socket.split();
    let closer = Arc::new(Closer::default());
    let (tx, rx) = mpsc::channel(options.buffer);
    let writer = tokio::spawn(write_loop(sink, rx, closer.clone(), options.keepalive));
    let finished = Arc::new(Finished::default());
    let mut session = Session {
        gw,
        out: Outbox {
            tx,
            closer: closer.clone(),
        },
        upgrade_headers,
        peer,
        headers: None,
        user: None,
        init_seen: false,
        running: HashMap::new(),
        next_generation: 0,
        finished: finished.clone(),
    };
    let init_deadline = tokio::time::sleep(options.init_timeout);
    let mut init_deadline = std::pin::pin!(init_deadline);
    loop {
        tokio::select! {
            message = stream.next() => {
                let outcome = match message {
                    Some(Ok(Message::Text(text))) => session.handle(text.as_str()).await,
                    Some(Ok(Message::Binary(_))) => Err((4400, "binary messages are not part of graphql-transport-ws".into())),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        closer.gone();
                        break;
                    }
                    Some(Ok(_)) => Ok(()),
                };
                if let Err((code, reason)) = outcome {
                    closer.close(code, reason);
                    break;
                }
            }
            () = finished.notify.notified() => {
                for (id, generation) in finished.take() {
                    if session.running.get(&id).is_some_and(|(g, _)| *g == generation) {
                        session.running.remove(&id);
                    }
                }
            }
            () = &mut init_deadline, if session.headers.is_none() => {
                closer.close(4408, "Connection initialisation timeout");
                break;
            }
            () = closer.closed() => break,
        }
    }
    for (_, (_, task)) in session.running.drain() {
        task.abort();
    }
    drop(session);
    let _ = writer.await;
}

impl Session {
    async fn handle(&mut self, text: &str) -> Result<(), Violation> {
        let message: ClientMessage = serde_json::from_str(text)
            .map_err(|e| (4400, format!("Invalid message received: {e}")))?;
        match message.kind.as_str() {
            "connection_init" => self.init(message.payload).await,
            "ping" => {
                self.out.push(r#"{"type":"pong"}"#.into());
                Ok(())
            }
            "pong" => Ok(()),
            "subscribe" => self.subscribe(message.id, message.payload),
            "complete" => {
                if let Some((_, task)) = message.id.and_then(|id| self.running.remove(&id)) {
                    task.abort();
                }
                Ok(())
            }
            other => Err((
                4400,
                format!("Invalid message received: unknown type {other:?}"),
            )),
        }
    }

    async fn init(&mut self, payload: Option<Value>) -> Result<(), Violation> {
        if self.init_seen {
            return Err((4429, "Too many initialisation requests".into()));
        }
        self.init_seen = true;
        // Needed only now: freed for the rest of the connection.
        let mut upgrade_headers = std::mem::take(&mut self.upgrade_headers);
        let token = payload
            .as_ref()
            .and_then(kit::server::init_token)
            .or_else(|| http::bearer(&upgrade_headers).map(str::to_owned));
        let mut headers = HeaderMap::new();
        if let Some(token) = &token {
            if let Some(verifier) = &self.gw.verifier {
                let claims = verifier
                    .verify(token)
                    .await
                    .map_err(|e| (4403, format!("Forbidden: {e}")))?;
                self.user = Some(claims.sub);
            }
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                (
                    4403,
                    "Forbidden: the token is not a header value".to_owned(),
                )
            })?;
            headers.insert(header::AUTHORIZATION, value);
        }
        for name in [
            "x-request-id",
            "traceparent",
            "graphql-client-name",
            "apollographql-client-name",
        ] {
            if let Some(value) = upgrade_headers.remove(name) {
                headers.insert(name, value);
            }
        }
        self.headers = Some(headers);
        self.out.push(r#"{"type":"connection_ack"}"#.into());
        Ok(())
    }

    fn subscribe(&mut self, id: Option<String>, payload: Option<Value>) -> Result<(), Violation> {
        let Some(headers) = self.headers.clone() else {
            return Err((4401, "Unauthorized".into()));
        };
        let id = id.filter(|id| !id.is_empty()).ok_or_else(|| {
            (
                4400,
                "Invalid message received: subscribe needs an id".to_owned(),
            )
        })?;
        if self.running.contains_key(&id) {
            return Err((4409, format!("Subscriber for {id} already exists")));
        }
        let request: GraphqlRequest = payload
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| (4400, format!("Invalid message received: {e}")))?
            .unwrap_or_default();
        let options = &self.gw.options.subscriptions;
        if self.running.len() >= options.per_connection {
            let errors = limit_error(format!(
                "at most {} operations may run at once on one connection",
                options.per_connection
            ));
            self.out.frame(&id, Frame::Error(errors));
            return Ok(());
        }
        let Some(slot) = self.gw.subscriptions.take(self.user, options.per_user) else {
            let errors = limit_error(format!(
                "at most {} subscriptions may be open per user",
                options.per_user
            ));
            self.out.frame(&id, Frame::Error(errors));
            return Ok(());
        };
        let generation = self.next_generation;
        self.next_generation += 1;
        let peer = self.peer;
        let (gw, out, finished, task_id) = (
            self.gw.clone(),
            self.out.clone(),
            self.finished.clone(),
            id.clone(),
        );
        let task = tokio::spawn(async move {
            let _slot = slot;
            let started = std::time::Instant::now();
            let mut report = Report {
                operation: request.operation_name.clone(),
                outcome: Outcome::Refused,
            };
            // Queries, mutations and refusals count as requests; a
            // subscription's lifetime is not a request latency.
            let mut counted = true;
            // Boxed: its state is freed once the operation runs, instead of
            // sizing this task (alive as long as the subscription) for good.
            let prepared = Box::pin(http::prepare(
                &gw,
                &headers,
                peer,
                request,
                false,
                &mut report,
            ))
            .await;
            match prepared {
                Err(refusal) => {
                    let errors = match refusal.capped(gw.options.max_errors).errors {
                        Value::Object(mut body) => body.remove("errors").unwrap_or(Value::Null),
                        other => other,
                    };
                    out.frame(&task_id, Frame::Error(errors));
                }
                Ok(ready) => {
                    report.outcome = Outcome::Ok;
                    counted = !ready.is_subscription();
                    let mut emit = |frame| out.frame(&task_id, frame);
                    pump(&gw, ready, headers, &mut emit).await;
                }
            }
            if counted {
                gw.metrics.request(
                    report.operation.as_deref(),
                    report.outcome,
                    started.elapsed(),
                );
            }
            finished.push(task_id, generation);
        });
        self.running.insert(id, (generation, task.abort_handle()));
        Ok(())
    }
}
