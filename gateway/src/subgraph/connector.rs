//! [`Connector`]: the connections hyper drives to a subgraph that the
//! HTTP/1.1 lane ([`crate::subgraph::pool`]) does not reach: one over TLS
//! (HTTP/2 or HTTP/1.1, as ALPN settles, see [`crate::subgraph::tls`]) or
//! one spoken to in HTTP/2 with prior knowledge (h2c).
//!
//! Connections are kept per serving thread, like the lane's and for the same
//! reason (see [`crate::server::threads`]): a connection's socket, TLS work
//! and driving task stay on the thread whose requests use it, and a busy
//! thread never holds up another's fetches. Per thread and subgraph there is
//! one multiplexed HTTP/2 connection, opened by the first request that needs
//! it (requests meanwhile wait for it rather than open their own) and
//! replaced once it closes (GOAWAY, a connection error, a restart); pings
//! find a silently dead one. A TLS subgraph that picks HTTP/1.1 gets
//! keep-alive connections carrying one exchange at a time, as the lane's do.
//!
//! A request a connection did not carry is sent again once on a new
//! connection: always when hyper hands it back unsent, and for a query when
//! a reused connection failed before answering (a mutation may have been
//! carried out, so it is not).

use std::{
    cell::RefCell,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{
    HeaderMap, Method, Request, Response, Uri,
    body::Incoming,
    client::conn::{TrySendError, http1, http2},
    header::{self, HeaderValue},
};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use thread_local::ThreadLocal;
use tokio::net::TcpStream;

use crate::subgraph::{
    error::{FetchError, MAX_RESPONSE_BYTES},
    pool::{Answer, IDLE_TIMEOUT, MAX_IDLE},
    tls::H2,
};

/// How often an HTTP/2 connection is pinged, and how long a ping may go
/// unanswered before the connection counts as dead.
const PING_INTERVAL: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// The connections to one subgraph address beyond the HTTP/1.1 lane.
pub struct Connector {
    /// `https` or `http`: what an HTTP/2 request's `:scheme` says.
    scheme: hyper::http::uri::Scheme,
    /// The host and port as the URL writes them, without user information:
    /// an HTTP/2 request's `:authority`, an HTTP/1.1 request's `host`.
    authority: hyper::http::uri::Authority,
    /// Where to connect: the host (an IPv6 address without brackets) and port.
    host: Box<str>,
    port: u16,
    /// TLS for an `https://` subgraph; `None`: HTTP/2 with prior knowledge.
    tls: Option<tokio_rustls::TlsConnector>,
    /// HTTP/2 whatever ALPN says (h2c, or a TLS subgraph offered only `h2`).
    http2_only: bool,
    /// The subgraph picked HTTP/1.1 at the last handshake: opening a
    /// connection then waits for no other.
    picks_http1: AtomicBool,
    /// Each serving thread's connections.
    threads: ThreadLocal<RefCell<Conns>>,
}

/// One thread's connections to the subgraph.
#[derive(Default)]
struct Conns {
    /// The multiplexed HTTP/2 connection, once opened.
    h2: Option<http2::SendRequest<Full<Bytes>>>,
    /// Resting HTTP/1.1 connections (over TLS), the last put back last.
    h1: Vec<(http1::SendRequest<Full<Bytes>>, Instant)>,
    /// Held while a connection that may turn out HTTP/2 is opened.
    opening: Arc<tokio::sync::Mutex<()>>,
}

/// A connection ready for a request.
enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// A request to send, whichever HTTP version carries it.
pub struct Outgoing<'a> {
    pub method: Method,
    /// The path and query.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

impl Connector {
    /// The connections to the subgraph at `url` (`https://`, or `http://`
    /// with prior knowledge when `tls` is `None`).
    pub fn new(url: &Uri, tls: Option<Arc<rustls::ClientConfig>>, http2_only: bool) -> Self {
        let secure = tls.is_some();
        let host = url.host().unwrap_or_default();
        // The host and port only: user information is never sent.
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Self {
            scheme: if secure {
                hyper::http::uri::Scheme::HTTPS
            } else {
                hyper::http::uri::Scheme::HTTP
            },
            authority: authority
                .parse()
                .unwrap_or_else(|_| hyper::http::uri::Authority::from_static("invalid")),
            host: host.trim_start_matches('[').trim_end_matches(']').into(),
            port: url.port_u16().unwrap_or(if secure { 443 } else { 80 }),
            tls: tls.map(tokio_rustls::TlsConnector::from),
            http2_only,
            picks_http1: AtomicBool::new(false),
            threads: ThreadLocal::new(),
        }
    }

    /// Sends `outgoing` and reads the answer. `idempotent`: it may be sent
    /// again when a reused connection failed before answering.
    pub async fn exchange(
        &self,
        outgoing: Outgoing<'_>,
        idempotent: bool,
    ) -> Result<Answer, FetchError> {
        let (mut sender, reused) = self.sender().await?;
        let response = match sender.send(self.request(&outgoing, &sender)).await {
            Ok(response) => response,
            Err(mut failed) => {
                // Before any answer: a closed connection (a GOAWAY, a
                // keep-alive timeout) or a refused stream.
                let unsent = failed.take_message().is_some();
                let again = unsent || (reused && idempotent);
                if !again {
                    return Err(sending(failed.into_error()));
                }
                tracing::debug!(error = %failed.error(), "a subgraph connection closed; sending again on a new one");
                sender = self.open().await?;
                let request = self.request(&outgoing, &sender);
                sender
                    .send(request)
                    .await
                    .map_err(|failed| sending(failed.into_error()))?
            }
        };
        let answer = read(response).await?;
        if let Sender::H1(connection) = sender {
            self.rest(connection);
        }
        Ok(answer)
    }

    /// `outgoing` as `sender`'s HTTP version writes it.
    fn request(&self, outgoing: &Outgoing<'_>, sender: &Sender) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(outgoing.body.clone()));
        *request.method_mut() = outgoing.method.clone();
        *request.headers_mut() = outgoing.headers.clone();
        let mut uri = hyper::http::uri::Parts::default();
        uri.path_and_query = outgoing.path.parse().ok();
        match sender {
            // `:scheme` and `:authority` come from an absolute URI.
            Sender::H2(_) => {
                uri.scheme = Some(self.scheme.clone());
                uri.authority = Some(self.authority.clone());
            }
            Sender::H1(_) => {
                if let Ok(host) = HeaderValue::from_str(self.authority.as_str()) {
                    request.headers_mut().insert(header::HOST, host);
                }
            }
        }
        *request.uri_mut() = Uri::from_parts(uri).unwrap_or_default();
        request
    }

    /// A connection for a request, and whether it carried requests before.
    async fn sender(&self) -> Result<(Sender, bool), FetchError> {
        if let Some(reused) = self.reusable().await {
            return Ok((reused, true));
        }
        if self.picks_http1.load(Relaxed) {
            return Ok((self.open().await?, false));
        }
        // Perhaps HTTP/2: one connection opens at a time on this thread,
        // and whoever waited for it multiplexes on it.
        let opening = self.conns(|conns| conns.opening.clone());
        let _turn = opening.lock().await;
        if let Some(reused) = self.reusable().await {
            return Ok((reused, true));
        }
        Ok((self.open().await?, false))
    }

    /// This thread's HTTP/2 connection, or its last resting HTTP/1.1 one,
    /// if one is still open.
    async fn reusable(&self) -> Option<Sender> {
        loop {
            let (h2, h1) = self.conns(|conns| {
                if conns.h2.as_ref().is_some_and(|h2| h2.is_closed()) {
                    conns.h2 = None;
                }
                match &conns.h2 {
                    Some(h2) => (Some(h2.clone()), None),
                    None => (None, conns.h1.pop()),
                }
            });
            if let Some(h2) = h2 {
                return Some(Sender::H2(h2));
            }
            let (mut h1, rested) = h1?;
            // Ready once its connection has read the end of the last answer.
            if rested.elapsed() < IDLE_TIMEOUT && !h1.is_closed() && h1.ready().await.is_ok() {
                return Some(Sender::H1(h1));
            }
        }
    }

    /// Opens a new connection; an HTTP/2 one is kept for this thread's
    /// requests at once.
    async fn open(&self) -> Result<Sender, FetchError> {
        let (host, port) = (&*self.host, self.port);
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| FetchError::Unreachable(format!("connecting to {host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
        let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
        let sender = match &self.tls {
            None => Sender::H2(handshake_h2(tcp).await?),
            Some(tls) => {
                let name = ServerName::try_from(host.to_owned()).map_err(|e| {
                    FetchError::Unreachable(format!("{host}: not a TLS server name: {e}"))
                })?;
                let stream = tls.connect(name, tcp).await.map_err(|e| {
                    FetchError::Unreachable(format!("TLS handshake with {host}:{port}: {e}"))
                })?;
                let h2 = self.http2_only || stream.get_ref().1.alpn_protocol() == Some(H2);
                self.picks_http1.store(!h2, Relaxed);
                if h2 {
                    Sender::H2(handshake_h2(stream).await?)
                } else {
                    Sender::H1(handshake_h1(stream).await?)
                }
            }
        };
        if let Sender::H2(h2) = &sender {
            let h2 = h2.clone();
            self.conns(|conns| conns.h2 = Some(h2));
        }
        Ok(sender)
    }

    /// Puts an HTTP/1.1 connection back for this thread's next request. The
    /// oldest resting ones are closed when there are [`MAX_IDLE`], or when
    /// they rested [`IDLE_TIMEOUT`].
    fn rest(&self, connection: http1::SendRequest<Full<Bytes>>) {
        if connection.is_closed() {
            return;
        }
        self.conns(|conns| {
            let now = Instant::now();
            let stale = conns
                .h1
                .iter()
                .take_while(|(_, rested)| now.duration_since(*rested) >= IDLE_TIMEOUT)
                .count()
                .max((conns.h1.len() + 1).saturating_sub(MAX_IDLE));
            conns.h1.drain(..stale);
            conns.h1.push((connection, now));
        });
    }

    /// Runs `f` on this thread's connections.
    fn conns<T>(&self, f: impl FnOnce(&mut Conns) -> T) -> T {
        f(&mut self.threads.get_or_default().borrow_mut())
    }
}

impl Sender {
    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, TrySendError<Request<Full<Bytes>>>> {
        match self {
            Sender::H1(h1) => h1.try_send_request(request).await,
            Sender::H2(h2) => h2.try_send_request(request).await,
        }
    }
}

/// An HTTP/2 connection over `io`, driven by a task of this thread.
async fn handshake_h2<T>(io: T) -> Result<http2::SendRequest<Full<Bytes>>, FetchError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(PING_INTERVAL)
        .keep_alive_timeout(PING_TIMEOUT)
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| FetchError::Unreachable(format!("HTTP/2 handshake: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "an HTTP/2 subgraph connection ended");
        }
    });
    Ok(sender)
}

/// An HTTP/1.1 connection over `io`, driven by a task of this thread.
async fn handshake_h1<T>(io: T) -> Result<http1::SendRequest<Full<Bytes>>, FetchError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| FetchError::Unreachable(format!("HTTP/1.1 handshake: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "an HTTP/1.1 subgraph connection ended");
        }
    });
    Ok(sender)
}

fn sending(error: hyper::Error) -> FetchError {
    FetchError::Unreachable(format!("sending the request: {error}"))
}

/// The status, media type and whole body of `response`, at most
/// [`MAX_RESPONSE_BYTES`] of it.
async fn read(response: Response<Incoming>) -> Result<Answer, FetchError> {
    let (head, body) = response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| {
            FetchError::Body(
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes")
                } else {
                    format!("reading the answer: {e}")
                },
            )
        })?
        .to_bytes();
    Ok(Answer {
        status: head.status.as_u16(),
        content_type: head.headers.get(header::CONTENT_TYPE).cloned(),
        cache_control: crate::framing::joined(
            head.headers
                .get_all(header::CACHE_CONTROL)
                .iter()
                .map(HeaderValue::as_bytes),
        ),
        body,
    })
}
