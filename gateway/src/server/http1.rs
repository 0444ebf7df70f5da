//! A client connection as a serving thread takes it: `POST /graphql`
//! answered here, everything else by hyper.
//!
//! Nearly all of a gateway's traffic is `POST /graphql` with a small JSON
//! body on a keep-alive connection. For those the lane reads the head in
//! place ([`crate::framing`]), the body into the same buffer, runs the request
//! as the router would ([`crate::server::routes::serve_post`]: CORS, request id, span
//! and log line included) and writes the answer in one `writev`. The first
//! request it does not take (any other method or path, a query string, an
//! upgrade, `Expect`, a chunked or oversized body, an event stream,
//! HTTP/1.0, a head it cannot read) hands the connection, with what was
//! read of it, to hyper and the router for good, so every other route and
//! every refusal is exactly as before.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderName, HeaderValue, Response, header},
};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
    sync::watch,
};

use crate::{
    framing,
    pipeline::MAX_BODY_BYTES,
    server::{
        gateway::Gateway,
        routes::{Edge, PostBody},
        threads::ConnectionTimeouts,
    },
};

/// What serves the requests the lane leaves to hyper: the router, or any
/// service like it.
pub trait Routes:
    tower_service::Service<
        axum::extract::Request,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone
    + Send
    + 'static
{
}

impl<S> Routes for S where
    S: tower_service::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send,
        > + Clone
        + Send
        + 'static
{
}

/// What a serving thread answers without hyper: the gateway whose
/// `POST /graphql` it serves, if any.
pub trait Lanes {
    /// The gateway, when `POST /graphql` is to be taken by the lane.
    fn gateway(&self) -> Option<&Arc<Gateway>> {
        None
    }
}

impl Lanes for axum::Router {}

impl Lanes for Edge {
    fn gateway(&self) -> Option<&Arc<Gateway>> {
        Some(self.gateway())
    }
}

/// Serves the connection `stream` from `peer` until it closes: `POST
/// /graphql` on the lane when `gateway` is given, the rest with `router`
/// over hyper. Once `stop` turns true, an idle connection is closed and a
/// busy one after its answer.
pub async fn serve<S: Routes>(
    stream: TcpStream,
    peer: SocketAddr,
    gateway: Option<Arc<Gateway>>,
    router: S,
    stop: watch::Receiver<bool>,
    timeouts: ConnectionTimeouts,
) {
    let mut lane = Lane {
        stream,
        buf: BytesMut::new(),
        peer,
        stop,
        timeouts,
    };
    if let Some(gw) = gateway {
        match lane.run(&gw).await {
            Next::Close => return,
            Next::Hyper => {}
        }
    }
    hand_over(lane, router).await;
}

/// The largest buffer an idle connection keeps.
const IDLE_BUFFER: usize = 64 * 1024;

/// What becomes of a connection the lane lets go.
enum Next {
    Close,
    Hyper,
}

/// A `POST /graphql` the lane takes: its headers, where its body starts and
/// how long it is, and whether the connection stays open after it.
struct Post {
    headers: HeaderMap,
    body_at: usize,
    body_len: usize,
    keep_alive: bool,
}

/// What the head at the start of the buffer is.
enum Head {
    Partial,
    Post(Post),
    /// Anything the lane leaves to hyper (whose answer to a bad head is a
    /// proper 400 or 431).
    Other,
}

struct Lane {
    stream: TcpStream,
    buf: BytesMut,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    timeouts: ConnectionTimeouts,
}

impl Lane {
    /// Serves `POST /graphql` requests until the connection closes or a
    /// request for hyper comes.
    async fn run(&mut self, gw: &Arc<Gateway>) -> Next {
        use tokio::time::{Instant, timeout_at};
        // A new connection owes its first head at once; a kept-alive one
        // may rest until its next request starts.
        let mut head_due = Some(Instant::now() + self.timeouts.head);
        loop {
            let idle_until = Instant::now() + self.timeouts.idle;
            let post = loop {
                match read_head(&self.buf) {
                    Head::Post(post) => break post,
                    Head::Other => return Next::Hyper,
                    Head::Partial if self.buf.len() > framing::MAX_HEAD_BYTES => {
                        return Next::Hyper;
                    }
                    // As hyper's graceful shutdown: a connection waiting
                    // for a head is closed at the stop; one whose request
                    // has come (its body still arriving) is answered.
                    Head::Partial => {
                        let due = match head_due {
                            None if self.buf.is_empty() => idle_until,
                            None => *head_due.insert(Instant::now() + self.timeouts.head),
                            Some(due) => due,
                        };
                        if !timeout_at(due, self.fill(1024, true))
                            .await
                            .unwrap_or(false)
                        {
                            return Next::Close;
                        }
                    }
                }
            };
            let end = post.body_at + post.body_len;
            let body_due = Instant::now() + self.timeouts.head;
            while self.buf.len() < end {
                let missing = end - self.buf.len();
                if !timeout_at(body_due, self.fill(missing, false))
                    .await
                    .unwrap_or(false)
                {
                    return Next::Close;
                }
            }
            head_due = None;
            gw.pipeline.metrics.lane_request();
            let request = self.buf.split_to(end).freeze();
            let body = request.slice(post.body_at..);
            drop(request);
            let answer = crate::server::routes::serve_post(
                gw.clone(),
                Some(self.peer.ip()),
                post.headers,
                "/graphql",
                PostBody::Read(body),
            );
            let Some(response) = self.unless_abandoned(answer).await else {
                return Next::Close;
            };
            let keep_alive = post.keep_alive && !*self.stop.borrow();
            if write_response(&mut self.stream, response, keep_alive)
                .await
                .is_err()
                || !keep_alive
            {
                let _ = self.stream.shutdown().await;
                return Next::Close;
            }
            // An idle connection keeps no more than a small buffer (one
            // that posted a large body gets a new one).
            if self.buf.is_empty() && self.buf.capacity() > IDLE_BUFFER {
                self.buf = BytesMut::new();
            }
        }
    }

    /// `answer`, unless the client goes away first (its end of the
    /// connection closed, or reset): then the request is dropped, its
    /// subgraph fetches with it, as hyper drops a request whose client left.
    /// What a client sends meanwhile (its next request) is kept.
    async fn unless_abandoned<F: std::future::Future>(&mut self, answer: F) -> Option<F::Output> {
        tokio::pin!(answer);
        let mut watching = true;
        loop {
            tokio::select! {
                biased;
                output = &mut answer => return Some(output),
                readable = self.stream.readable(), if watching => {
                    if readable.is_err() {
                        return None;
                    }
                    framing::room(&mut self.buf, 1024);
                    match self.stream.try_read_buf(&mut self.buf) {
                        Ok(0) => return None,
                        Ok(_) => watching = false,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return None,
                    }
                }
            }
        }
    }

    /// Reads more of the connection, with room for `more` bytes; `false`
    /// when it ended or failed, or, when `stoppable`, the stop came first.
    async fn fill(&mut self, more: usize, stoppable: bool) -> bool {
        framing::room(&mut self.buf, more);
        tokio::select! {
            read = self.stream.read_buf(&mut self.buf) => matches!(read, Ok(n) if n > 0),
            _ = self.stop.wait_for(|stopped| *stopped), if stoppable => false,
        }
    }
}

/// Reads the head at the start of `buf`.
fn read_head(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; framing::MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        // A head past the bound is hyper's to refuse (431), as one that is partial.
        Ok(httparse::Status::Complete(len)) if len > framing::MAX_HEAD_BYTES => return Head::Other,
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Other,
    };
    // A query string is hyper's too: it may carry an SSE reservation's
    // token, which the lane does not look for.
    let path = request.path.unwrap_or_default();
    if request.method != Some("POST") || path != "/graphql" || request.version != Some(1) {
        return Head::Other;
    }
    let mut body_len = None;
    for h in request.headers.iter() {
        let name = h.name;
        let refused = name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
            // Subscriptions over SSE or multipart stream their answer.
            || (name.eq_ignore_ascii_case("accept")
                && (contains(h.value, b"text/event-stream") || contains(h.value, b"multipart")));
        if refused {
            return Head::Other;
        }
    }
    if let Ok(framing::Framing::Length(len)) =
        framing::framing(request.headers, framing::Framing::Close)
    {
        body_len = Some(len);
    }
    let Some(body_len) = body_len.filter(|len| *len <= MAX_BODY_BYTES) else {
        return Head::Other;
    };
    let mut map = HeaderMap::with_capacity(request.headers.len());
    for h in request.headers.iter() {
        match (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => return Head::Other,
        }
    }
    Head::Post(Post {
        keep_alive: framing::keeps_alive(1, request.headers),
        headers: map,
        body_at: head_len,
        body_len,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Writes `response`: its head and body in one `writev` when its body's
/// length is known (the lane's answers), else the body chunked as it comes.
async fn write_response(
    stream: &mut TcpStream,
    response: Response<Body>,
    keep_alive: bool,
) -> std::io::Result<()> {
    let (parts, body) = response.into_parts();
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or_default()
            .as_bytes(),
    );
    head.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        head.extend_from_slice(b"connection: close\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        head.extend_from_slice(b"date: ");
        framing::write_date(&mut head);
        head.extend_from_slice(b"\r\n");
    }
    if axum::body::HttpBody::size_hint(&body).exact().is_some() {
        let body = body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        head.extend_from_slice(b"content-length: ");
        framing::write_decimal(&mut head, body.len());
        head.extend_from_slice(b"\r\n\r\n");
        let mut message = Bytes::from(head).chain(body);
        return stream.write_all_buf(&mut message).await;
    }
    head.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    stream.write_all(&head).await?;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(std::io::Error::other)?.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        let mut size = format!("{:x}\r\n", data.len()).into_bytes();
        size.extend_from_slice(&data);
        size.extend_from_slice(b"\r\n");
        stream.write_all(&size).await?;
    }
    stream.write_all(b"0\r\n\r\n").await
}

/// Serves the rest of the connection with hyper: what the lane read of it
/// first, then the socket.
async fn hand_over<S: Routes>(lane: Lane, router: S) {
    let Lane {
        stream,
        buf,
        peer,
        mut stop,
        timeouts,
    } = lane;
    let io = hyper_util::rt::TokioIo::new(Prefixed {
        read: buf.freeze(),
        stream,
    });
    // As axum::serve serves: the peer's address for handlers (rate limits by IP).
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(Body::new);
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let mut router = router.clone();
            async move {
                std::future::poll_fn(|cx| router.poll_ready(cx)).await?;
                router.call(request).await
            }
        });
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeouts.head)
        .max_buf_size(framing::MAX_HEAD_BYTES.max(8192));
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_header_list_size(framing::MAX_HEAD_BYTES as u32);
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = stop.wait_for(|stopped| *stopped), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A socket whose first bytes were read already.
struct Prefixed {
    read: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.read.is_empty() {
            return Pin::new(&mut self.stream).poll_read(cx, buf);
        }
        let n = self.read.len().min(buf.remaining());
        buf.put_slice(&self.read.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
