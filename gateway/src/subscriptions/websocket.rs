//! Subscriptions over WebSocket: the gateway as a `graphql-transport-ws`
//! or `graphql-ws` server on an upgrade of `/graphql`, whichever the client
//! offers (see [`crate::subscriptions::subprotocol`]: this file runs a
//! connection the same way for both). Each operation of a connection runs
//! as its own task, prepared by the pipeline and fed by
//! [`crate::subscriptions::fanout`]; the client's outgoing buffer is
//! bounded, and a client that lets it fill is closed with 1008 rather than
//! growing the gateway's memory.

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
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::{
    pipeline::{self, GraphqlRequest},
    subscriptions::{
        fanout::operate,
        frame::Frame,
        registry::limit_error,
        state::Subscriptions,
        subprotocol::{Command, Fault, Reply, Subprotocol},
    },
};

/// Upgrades `/graphql` to a `graphql-transport-ws` or `graphql-ws` connection.
pub async fn websocket(subs: Arc<Subscriptions>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let Some(protocol) = Subprotocol::chosen(&parts.headers) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "errors": [{
                "message": "WebSocket clients must offer the graphql-transport-ws subprotocol \
                            (or the older graphql-ws of subscriptions-transport-ws)",
                "extensions": { "code": "BAD_REQUEST" },
            }] })),
        )
            .into_response();
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let peer = pipeline::peer_of(&parts.extensions);
    let headers = carried_headers(&parts.headers);
    drop(parts);
    upgrade
        .protocols([protocol.name()])
        // Client messages are small (a subscribe is a few hundred bytes);
        // a bigger one takes more reads. Every idle connection keeps this.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(pipeline::MAX_BODY_BYTES)
        .on_upgrade(move |socket| connection(subs, protocol, socket, headers, peer))
}

/// The upgrade request's headers a session needs later, copied. hyper's
/// header values are slices of its 16 KiB read buffer: keeping one for the
/// life of a connection would keep that whole buffer (half of an idle
/// connection's memory).
pub(crate) fn carried_headers(headers: &HeaderMap) -> HeaderMap {
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
    protocol: Subprotocol,
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
        self.protocol
            .frame(id, frame)
            .into_iter()
            .all(|text| self.push(text))
    }
}

/// How long a closing connection may take to flush its last messages and
/// close frame to a client that reads again.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Message>,
    closer: Arc<Closer>,
    keepalive: (Duration, &'static str),
) {
    let (keepalive, keepalive_message) = keepalive;
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
            _ = ticks.tick() => Message::Text(keepalive_message.into()),
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
    // What was queued before the close (the error that explains it, say)
    // goes first, within the same grace.
    let flushed = tokio::time::timeout(CLOSE_GRACE, async {
        while let Ok(message) = rx.try_recv() {
            sink.send(message).await?;
        }
        Ok::<_, axum::Error>(())
    })
    .await;
    if !matches!(flushed, Ok(Ok(()))) {
        return;
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
    protocol: Subprotocol,
    socket: WebSocket,
    upgrade_headers: HeaderMap,
    peer: Option<std::net::IpAddr>,
) {
    let options = subs.options.clone();
    let (sink, mut stream) = socket.split();
    let closer = Arc::new(Closer::default());
    let (tx, rx) = mpsc::channel(options.buffer);
    let keepalive = (options.keepalive, protocol.keepalive());
    let writer = tokio::spawn(write_loop(sink, rx, closer.clone(), keepalive));
    let finished = Arc::new(Finished::default());
    let mut session = Session {
        subs,
        out: Outbox {
            tx,
            closer: closer.clone(),
            protocol,
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
                    Some(Ok(Message::Binary(_))) => session.fault(Fault::Binary),
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
        match self.out.protocol.read(text) {
            Command::Init(payload) => self.init(payload).await,
            Command::Ping => {
                self.out.push(r#"{"type":"pong"}"#.into());
                Ok(())
            }
            Command::Nothing => Ok(()),
            Command::Terminate => Err((1000, String::new())),
            Command::Start { id, payload } => self.subscribe(id, payload),
            Command::Stop(id) => {
                if let Some((_, task)) = id.and_then(|id| self.running.remove(&id)) {
                    task.abort();
                }
                Ok(())
            }
            Command::Fault(fault) => self.fault(fault),
        }
    }

    /// Answers `fault` as the protocol says: a message, or the close.
    fn fault(&self, fault: Fault) -> Result<(), Violation> {
        match self.out.protocol.reply(fault) {
            Reply::Close(code, reason) => Err((code, reason)),
            Reply::Send(text) => {
                self.out.push(text);
                Ok(())
            }
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
                match verifier.verify(token).await {
                    Ok(claims) => self.user = Some(claims.sub),
                    Err(e) => return Err(self.refuse(&e.to_string())),
                }
            }
            let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) else {
                return Err(self.refuse("the token is not a header value"));
            };
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
        for message in self.out.protocol.acknowledgement() {
            self.out.push((*message).into());
        }
        Ok(())
    }

    /// Refuses `connection_init` (its token did not verify) as the protocol does.
    fn refuse(&self, why: &str) -> Violation {
        let (message, close) = self.out.protocol.refusal(why);
        if let Some(message) = message {
            self.out.push(message);
        }
        close
    }

    fn subscribe(&mut self, id: Option<String>, payload: Option<Value>) -> Result<(), Violation> {
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            return self.fault(Fault::NoId);
        };
        let Some(headers) = self.headers.clone() else {
            return self.fault(Fault::NotAcknowledged(id));
        };
        if let Some((_, running)) = self.running.get(&id) {
            if !self.out.protocol.restarts_a_running_id() {
                return Err((4409, format!("Subscriber for {id} already exists")));
            }
            running.abort();
            self.running.remove(&id);
        }
        let request: GraphqlRequest = match payload.map(serde_json::from_value).transpose() {
            Ok(request) => request.unwrap_or_default(),
            Err(e) => {
                let why = e.to_string();
                return self.fault(Fault::BadPayload { id, why });
            }
        };
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
            {
                let mut emit = |frame| out.frame(&task_id, frame);
                operate(&subs, headers, peer, request, Some(slot), &mut emit).await;
            }
            finished.push(task_id, generation);
        });
        self.running.insert(id, (generation, task.abort_handle()));
        Ok(())
    }
}
