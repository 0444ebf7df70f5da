//! Subscriptions over WebSocket: the gateway as a `graphql-transport-ws`
//! server on an upgrade of `/graphql`. Each operation of a connection runs
//! as its own task, prepared by the pipeline and fed by [`crate::subscriptions::fanout`]; the
//! client's outgoing buffer is bounded, and a client that lets it fill is
//! closed with 1008 rather than growing the gateway's memory.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    extract::{
        FromRequestParts, Request, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::{SinkExt, StreamExt, stream::SplitSink};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::{
    metrics::Outcome,
    pipeline::{self, GraphqlRequest, Report},
    subscriptions::{
        fanout::pump, frame::Frame, registry::limit_error, state::Subscriptions, ws_client,
    },
};

/// Upgrades `/graphql` to a `graphql-transport-ws` connection.
pub async fn websocket(subs: Arc<Subscriptions>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let offered = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == ws_client::PROTOCOL);
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
    let peer = pipeline::peer_of(&parts.extensions);
    let headers = carried_headers(&parts.headers);
    drop(parts);
    upgrade
        .protocols([ws_client::PROTOCOL])
        // Client messages are small (a subscribe is a few hundred bytes);
        // a bigger one takes more reads. Every idle connection keeps this.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(pipeline::MAX_BODY_BYTES)
        .on_upgrade(move |socket| connection(subs, socket, headers, peer))
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
    subs: Arc<Subscriptions>,
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
    subs: Arc<Subscriptions>,
    socket: WebSocket,
    upgrade_headers: HeaderMap,
    peer: Option<std::net::IpAddr>,
) {
    let options = subs.options.clone();
    let (sink, mut stream) = socket.split();
    let closer = Arc::new(Closer::default());
    let (tx, rx) = mpsc::channel(options.buffer);
    let writer = tokio::spawn(write_loop(sink, rx, closer.clone(), options.keepalive));
    let finished = Arc::new(Finished::default());
    let mut session = Session {
        subs,
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
            .and_then(auth::init_token)
            .or_else(|| pipeline::bearer(&upgrade_headers).map(str::to_owned));
        let mut headers = HeaderMap::new();
        if let Some(token) = &token {
            if let Some(verifier) = &self.subs.pipeline.verifier {
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
        let options = &self.subs.options;
        if self.running.len() >= options.per_connection {
            let errors = limit_error(format!(
                "at most {} operations may run at once on one connection",
                options.per_connection
            ));
            self.out.frame(&id, Frame::Error(errors));
            return Ok(());
        }
        let Some(slot) = self.subs.registry.take(self.user, options.per_user) else {
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
        let (subs, out, finished, task_id) = (
            self.subs.clone(),
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
            let prepared = Box::pin(pipeline::prepare(
                &subs.pipeline,
                &headers,
                peer,
                request,
                false,
                &mut report,
            ))
            .await;
            match prepared {
                Err(refusal) => {
                    let errors = match refusal.capped(subs.pipeline.options.max_errors).errors {
                        Value::Object(mut body) => body.remove("errors").unwrap_or(Value::Null),
                        other => other,
                    };
                    out.frame(&task_id, Frame::Error(errors));
                }
                Ok(ready) => {
                    report.outcome = Outcome::Ok;
                    counted = !ready.is_subscription();
                    let mut emit = |frame| out.frame(&task_id, frame);
                    pump(&subs, ready, headers, &mut emit).await;
                }
            }
            if counted {
                subs.pipeline.metrics.request(
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
