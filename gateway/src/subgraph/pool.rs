//! Keep-alive HTTP/1.1 connections to subgraphs, one exchange at a time on
//! each, pooled per serving thread.
//!
//! A fetch takes an idle connection to the subgraph's address (the one used
//! last, whose buffers are warm), writes its request in one `write`, reads
//! the answer into one buffer and puts the connection back once the answer
//! is whole. No task drives a connection: the fetch does, so an answer
//! wakes the request that waits for it and nothing else. A connection is
//! pooled by the thread that opened it (its socket is registered with that
//! thread's runtime) and goes back there, whichever request finished with
//! it; with the gateway's thread per core ([`crate::server::threads`]) that is the
//! thread that used it.
//!
//! A pooled connection the subgraph has closed (a keep-alive timeout, a
//! restart) is recognised before use when the close has arrived, and when
//! it is seen only after the request was written, a query is sent again once
//! on a new connection: it cannot have been answered. A mutation is not: it
//! may have been carried out.

use std::{
    sync::{Arc, Mutex, Weak},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use hyper::{Uri, header::HeaderValue};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use rustc_hash::FxHashMap;

use crate::{
    framing::{self, Framing},
    subgraph::error::{FetchError, MAX_RESPONSE_BYTES},
};

/// How long a connection may rest in the pool before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The most connections resting per subgraph address on one thread.
pub const MAX_IDLE: usize = 64;

/// The largest read buffer a resting connection keeps (one that read a
/// larger answer starts its next one afresh).
const RESTING_BUFFER: usize = 64 * 1024;

/// A subgraph's answer: its status, media type, `Cache-Control` and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<HeaderValue>,
    /// What the subgraph says about keeping it (the entity cache reads it).
    pub cache_control: Option<HeaderValue>,
    pub body: Bytes,
}

/// One thread's resting connections, by address.
#[derive(Default)]
struct Pool {
    idle: Mutex<FxHashMap<Box<str>, Vec<Conn>>>,
}

thread_local! {
    static POOL: Arc<Pool> = Arc::default();
}

/// A connection to a subgraph.
struct Conn {
    stream: TcpStream,
    /// The subgraph's address, as its URLs give it.
    authority: Box<str>,
    /// Bytes read and not yet taken.
    buf: BytesMut,
    /// The size of the last answer: the next one's buffer is sized from it.
    last: usize,
    /// When it was put back.
    rested: Instant,
    /// The pool of the thread that opened it (weakly: the pool holds its
    /// connections, and ends with its thread).
    home: Weak<Pool>,
}

/// Why an exchange on one connection failed.
enum Failure {
    /// Before any byte of an answer came: the request may not have been
    /// read (`written`: it was at least written whole).
    Silent { written: bool, error: FetchError },
    /// During the answer.
    Broken(FetchError),
}

impl Failure {
    fn error(self) -> FetchError {
        match self {
            Failure::Silent { error, .. } | Failure::Broken(error) => error,
        }
    }
}

/// Where a subgraph URL points, as a request names it.
struct Target<'u> {
    /// The host as the URL writes it (an IPv6 address in brackets).
    host: &'u str,
    port: Option<u16>,
    /// The path and query.
    path: &'u str,
    /// The URL's authority: what the pool knows the subgraph by.
    authority: &'u str,
}

impl<'u> Target<'u> {
    fn of(url: &'u Uri) -> Result<Self, FetchError> {
        if url.scheme_str() != Some("http") {
            return Err(FetchError::Unreachable(format!(
                "{url}: only http:// subgraph URLs are supported"
            )));
        }
        let (Some(authority), Some(host)) = (url.authority(), url.host()) else {
            return Err(FetchError::Unreachable(format!("{url}: no host")));
        };
        Ok(Self {
            host,
            port: url.port_u16(),
            path: url.path_and_query().map_or("/", |p| p.as_str()),
            authority: authority.as_str(),
        })
    }

    /// The address to connect to: the host (without an IPv6 address's
    /// brackets) and the port, 80 unless the URL gives one.
    fn address(&self) -> (&'u str, u16) {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port.unwrap_or(80))
    }
}

/// The head of a POST of `body_len` bytes to `url`, with `headers` (name,
/// value) added: everything of the request but its body.
pub fn post_head<'h>(
    url: &Uri,
    body_len: usize,
    headers: impl Iterator<Item = (&'h str, &'h HeaderValue)>,
) -> Result<Vec<u8>, FetchError> {
    let target = Target::of(url)?;
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"POST ");
    head.extend_from_slice(target.path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    // The host and port only: user information never goes in `host`.
    head.extend_from_slice(target.host.as_bytes());
    if let Some(port) = target.port {
        head.push(b':');
        framing::write_decimal(&mut head, usize::from(port));
    }
    head.extend_from_slice(
        b"\r\ncontent-type: application/json\r\n\
          accept: application/graphql-response+json, application/json;q=0.9\r\n\
          content-length: ",
    );
    framing::write_decimal(&mut head, body_len);
    head.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Ok(head)
}

/// Sends a request, its `head` (see [`post_head`]) and `body` written
/// together in one `writev`, to the subgraph at `url` and reads its answer.
/// `idempotent`: it may be sent again when a pooled connection turns out to
/// have been closed.
pub async fn exchange(
    url: &Uri,
    head: Bytes,
    body: Bytes,
    idempotent: bool,
) -> Result<Answer, FetchError> {
    let target = Target::of(url)?;
    if let Some(conn) = take(target.authority) {
        match conn.exchange(head.clone(), body.clone()).await {
            Ok(answer) => return Ok(answer),
            // Closed while it rested, seen only now: a new connection
            // carries it, if sending it again cannot do anything twice.
            Err(Failure::Silent { written, .. }) if idempotent || !written => {}
            Err(failure) => return Err(failure.error()),
        }
    }
    let conn = Conn::open(&target).await?;
    conn.exchange(head, body).await.map_err(Failure::error)
}

/// A resting connection to `authority`, the last one put back, if any is
/// still open.
fn take(authority: &str) -> Option<Conn> {
    POOL.with(|pool| {
        let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        let resting = idle.get_mut(authority)?;
        let now = Instant::now();
        while let Some(conn) = resting.pop() {
            if now.duration_since(conn.rested) < IDLE_TIMEOUT && conn.is_open() {
                return Some(conn);
            }
        }
        None
    })
}

impl Conn {
    async fn open(target: &Target<'_>) -> Result<Conn, FetchError> {
        let (host, port) = target.address();
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| FetchError::Unreachable(format!("connecting to {host}:{port}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        Ok(Conn {
            stream,
            authority: target.authority.into(),
            buf: BytesMut::new(),
            last: 0,
            rested: Instant::now(),
            home: POOL.with(Arc::downgrade),
        })
    }

    /// Whether the connection can carry a request: nothing came on it while
    /// it rested (a subgraph that closed it sent its end, or a reset).
    fn is_open(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readiness may be left over from the last answer (when its
            // last read filled the buffer): the socket says.
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(
                    self.stream.try_read(&mut probe),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                )
            }
        }
    }

    /// Writes `request`, reads the answer and, when the connection stays
    /// open, puts it back in its pool.
    async fn exchange(mut self, head: Bytes, body: Bytes) -> Result<Answer, Failure> {
        let mut request = bytes::Buf::chain(head, body);
        if let Err(e) = self.stream.write_all_buf(&mut request).await {
            return Err(Failure::Silent {
                written: false,
                error: FetchError::Unreachable(format!("sending the request: {e}")),
            });
        }
        let (answer, reusable) = self.read_answer().await?;
        if reusable {
            self.rest();
        }
        Ok(answer)
    }

    /// Reads more of the answer into the buffer, with room for `more`
    /// bytes; `Ok(false)` at the end of the stream.
    async fn fill(&mut self, more: usize) -> std::io::Result<bool> {
        framing::room(&mut self.buf, more);
        Ok(self.stream.read_buf(&mut self.buf).await? > 0)
    }

    /// Reads one answer; with it, whether the connection may carry another.
    async fn read_answer(&mut self) -> Result<(Answer, bool), Failure> {
        let broken = |e: String| Failure::Broken(FetchError::Body(e));
        let mut expect = self.last.max(1024);
        // The head, past any interim (1xx) answers.
        let (status, (content_type, cache_control), head_len, framing, keep_alive) = loop {
            let parsed = {
                let mut headers = [httparse::EMPTY_HEADER; framing::MAX_HEADERS];
                let mut response = httparse::Response::new(&mut headers);
                match response.parse(&self.buf) {
                    Ok(httparse::Status::Complete(len)) => {
                        let status = response.code.unwrap_or(0);
                        let framing = if status == 204 || status == 304 {
                            Ok(Framing::Length(0))
                        } else {
                            framing::framing(response.headers, Framing::Close)
                        };
                        let content_type = response
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case("content-type"))
                            .and_then(|h| HeaderValue::from_bytes(h.value).ok());
                        let cache_control = crate::framing::joined(
                            response
                                .headers
                                .iter()
                                .filter(|h| h.name.eq_ignore_ascii_case("cache-control"))
                                .map(|h| h.value),
                        );
                        Some((
                            status,
                            (content_type, cache_control),
                            len,
                            framing.map_err(|e| broken(e.to_string()))?,
                            framing::keeps_alive(response.version.unwrap_or(1), response.headers),
                        ))
                    }
                    Ok(httparse::Status::Partial) => None,
                    Err(e) => return Err(broken(format!("malformed HTTP answer: {e}"))),
                }
            };
            match parsed {
                Some((100..=199, _, len, _, _)) => {
                    let _ = self.buf.split_to(len);
                }
                Some(head) => break head,
                None if self.buf.len() > framing::MAX_HEAD_BYTES => {
                    return Err(broken(framing::FramingError::HeadTooLarge.to_string()));
                }
                None => {
                    let read = self.fill(expect).await;
                    let silent = self.buf.is_empty();
                    match read {
                        Ok(true) => {}
                        Ok(false) if silent => {
                            return Err(Failure::Silent {
                                written: true,
                                error: FetchError::Unreachable(
                                    "the subgraph closed the connection without answering".into(),
                                ),
                            });
                        }
                        Ok(false) => return Err(broken("the answer's head was cut off".into())),
                        Err(e) if silent => {
                            return Err(Failure::Silent {
                                written: true,
                                error: FetchError::Unreachable(format!("reading the answer: {e}")),
                            });
                        }
                        Err(e) => return Err(broken(format!("reading the answer: {e}"))),
                    }
                }
            }
        };
        let cut_off = || broken("the answer's body was cut off".into());
        let too_large = || {
            broken(format!(
                "the answer is larger than {MAX_RESPONSE_BYTES} bytes"
            ))
        };
        let (body, reusable) = match framing {
            Framing::Length(len) => {
                if len > MAX_RESPONSE_BYTES {
                    return Err(too_large());
                }
                while self.buf.len() < head_len + len {
                    let missing = head_len + len - self.buf.len();
                    if !self
                        .fill(missing)
                        .await
                        .map_err(|e| broken(e.to_string()))?
                    {
                        return Err(cut_off());
                    }
                }
                let _ = self.buf.split_to(head_len);
                let body = self.buf.split_to(len).freeze();
                // Bytes past the answer were never asked for: the
                // connection is out of step.
                (body, keep_alive && self.buf.is_empty())
            }
            Framing::Chunked => {
                let mut chunked = framing::Chunked::new(head_len);
                let end = loop {
                    match chunked
                        .advance(&self.buf, MAX_RESPONSE_BYTES)
                        .map_err(|e| broken(e.to_string()))?
                    {
                        Some(end) => break end,
                        // Chunk sizes, extensions and trailers count too:
                        // the raw answer is bounded, not only its body.
                        None if self.buf.len() - head_len
                            > MAX_RESPONSE_BYTES + framing::MAX_HEAD_BYTES =>
                        {
                            return Err(too_large());
                        }
                        None => {
                            expect = expect.max(self.buf.len());
                            if !self.fill(expect).await.map_err(|e| broken(e.to_string()))? {
                                return Err(cut_off());
                            }
                        }
                    }
                };
                let _ = self.buf.split_to(end);
                (Bytes::from(chunked.body), keep_alive && self.buf.is_empty())
            }
            Framing::Close => {
                while self.fill(expect).await.map_err(|e| broken(e.to_string()))? {
                    if self.buf.len() - head_len > MAX_RESPONSE_BYTES {
                        return Err(too_large());
                    }
                    expect = self.buf.len();
                }
                let _ = self.buf.split_to(head_len);
                (self.buf.split().freeze(), false)
            }
        };
        self.last = head_len + body.len();
        Ok((
            Answer {
                status,
                content_type,
                cache_control,
                body,
            },
            reusable,
        ))
    }

    /// Puts the connection back in the pool of its thread. The oldest
    /// resting ones (at the bottom: connections are taken from the top) are
    /// closed when there are [`MAX_IDLE`] or they rested [`IDLE_TIMEOUT`]:
    /// after a burst, the connections it opened do not stay open for good.
    fn rest(mut self) {
        let now = Instant::now();
        self.rested = now;
        // A resting connection keeps no more than a small buffer.
        if self.buf.capacity() > RESTING_BUFFER {
            self.buf = BytesMut::new();
        }
        let Some(home) = self.home.upgrade() else {
            return;
        };
        let mut idle = home.idle.lock().unwrap_or_else(|e| e.into_inner());
        let resting = match idle.get_mut(&*self.authority) {
            Some(resting) => resting,
            None => idle.entry(self.authority.clone()).or_default(),
        };
        let stale = resting
            .iter()
            .take_while(|conn| now.duration_since(conn.rested) >= IDLE_TIMEOUT)
            .count()
            .max((resting.len() + 1).saturating_sub(MAX_IDLE));
        resting.drain(..stale);
        resting.push(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(url: &str) -> String {
        let url: Uri = url.parse().unwrap();
        String::from_utf8(post_head(&url, 2, std::iter::empty()).unwrap()).unwrap()
    }

    #[test]
    fn a_request_names_host_and_port_and_never_user_information() {
        let with_port = head("http://products:4002/graphql?x=1");
        assert!(
            with_port.starts_with("POST /graphql?x=1 HTTP/1.1\r\nhost: products:4002\r\n"),
            "{with_port}"
        );
        assert!(
            with_port.ends_with("content-length: 2\r\n\r\n"),
            "{with_port}"
        );
        assert!(head("http://products/").contains("\r\nhost: products\r\n"));
        assert!(head("http://user:secret@h:81/g").contains("\r\nhost: h:81\r\n"));
        assert!(head("http://[::1]:9/g").contains("\r\nhost: [::1]:9\r\n"));
        assert!(matches!(
            post_head(&"https://h/g".parse().unwrap(), 0, std::iter::empty()),
            Err(FetchError::Unreachable(_))
        ));
    }

    #[test]
    fn a_subgraph_is_reached_on_port_80_unless_its_url_says_otherwise() {
        let address = |url: &str| {
            let url: Uri = url.parse().unwrap();
            let target = Target::of(&url).unwrap();
            let (host, port) = target.address();
            (host.to_owned(), port)
        };
        assert_eq!(address("http://products/graphql"), ("products".into(), 80));
        assert_eq!(address("http://products:4002/"), ("products".into(), 4002));
        assert_eq!(address("http://[::1]:4002/"), ("::1".into(), 4002));
        assert_eq!(address("http://u:p@10.0.0.1/"), ("10.0.0.1".into(), 80));
    }
}
