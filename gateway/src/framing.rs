//! HTTP/1.1 framing for the gateway's two hottest exchanges: a client's
//! `POST /graphql` ([`crate::server::http1`]) and the gateway's fetches from
//! subgraphs ([`crate::subgraph::pool`]).
//!
//! Both are one request and one answer at a time on a keep-alive
//! connection, with small JSON bodies. hyper frames them well, but its
//! machinery around them (a task per client connection driving a
//! dispatcher, channels to and from it, a body stream read frame by frame,
//! header maps built and copied on both sides) was most of the gateway's
//! own work on a one-subgraph query. Here a head is parsed in place with
//! `httparse`, a body is read into the same buffer and handed on without a
//! copy, and a message is written with one `write`. Anything unusual (an
//! upgrade, `Expect`, a chunked request) is left to hyper by the lane.

use bytes::BytesMut;

/// The most header lines a head may carry (hyper's default too).
pub const MAX_HEADERS: usize = 100;

/// The largest head read before giving up on a message.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the peer closes the connection (an answer with neither).
    Close,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("malformed HTTP head: {0}")]
    Head(String),
    #[error("HTTP head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("invalid Content-Length")]
    Length,
    #[error("the body is larger than allowed")]
    TooLarge,
    #[error("malformed chunked body")]
    Chunk,
}

/// The framing `headers` give a body: chunked when `Transfer-Encoding` ends
/// in `chunked`, read to the close when it names anything else, else
/// `Content-Length` (repeated values must agree), else `otherwise`.
pub fn framing(
    headers: &[httparse::Header<'_>],
    otherwise: Framing,
) -> Result<Framing, FramingError> {
    let mut length: Option<usize> = None;
    let mut encoding: Option<&[u8]> = None;
    for header in headers {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            encoding = Some(header.value);
        } else if header.name.eq_ignore_ascii_case("content-length") {
            for part in header.value.split(|b| *b == b',') {
                let n = parse_decimal(part.trim_ascii()).ok_or(FramingError::Length)?;
                if length.is_some_and(|l| l != n) {
                    return Err(FramingError::Length);
                }
                length = Some(n);
            }
        }
    }
    Ok(match (encoding, length) {
        (Some(coding), _) => {
            let last = coding.rsplit(|b| *b == b',').next().unwrap_or_default();
            if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                Framing::Chunked
            } else {
                Framing::Close
            }
        }
        (None, Some(n)) => Framing::Length(n),
        (None, None) => otherwise,
    })
}

fn parse_decimal(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    digits.iter().try_fold(0usize, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0'))
    })
}

/// Whether the connection stays open after a message with `headers` in
/// HTTP/1.`minor`: `Connection: close` closes an HTTP/1.1 one, and an
/// HTTP/1.0 one stays only with `Connection: keep-alive`.
pub fn keeps_alive(minor: u8, headers: &[httparse::Header<'_>]) -> bool {
    let mut close = false;
    let mut keep = false;
    for header in headers {
        if header.name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if minor == 0 { keep && !close } else { !close }
}

/// A `Transfer-Encoding: chunked` body decoded as it arrives: each
/// [`Chunked::advance`] takes what the buffer holds past what was decoded.
#[derive(Debug, Default)]
pub struct Chunked {
    /// Where in the buffer decoding goes on.
    at: usize,
    state: ChunkState,
    /// The body so far.
    pub body: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// At a chunk's size line.
    #[default]
    Size,
    /// Inside a chunk, this many bytes to go.
    Data(usize),
    /// After a chunk's data, at its CRLF.
    DataEnd,
    /// After the last chunk, at the trailer lines.
    Trailers,
}

impl Chunked {
    /// Decodes from `start` in the buffer on (where the body begins).
    pub fn new(start: usize) -> Self {
        Self {
            at: start,
            ..Self::default()
        }
    }

    /// Decodes what `buf` holds; `Ok(Some(end))` once the body ended at
    /// `end`, with the body in [`Chunked::body`] (at most `limit` bytes).
    pub fn advance(&mut self, buf: &[u8], limit: usize) -> Result<Option<usize>, FramingError> {
        loop {
            let rest = &buf[self.at..];
            match self.state {
                ChunkState::Size => {
                    let Some(line) = line_end(rest) else {
                        return if rest.len() > 1024 {
                            Err(FramingError::Chunk)
                        } else {
                            Ok(None)
                        };
                    };
                    let text = &rest[..line];
                    let size = text.split(|b| *b == b';').next().unwrap_or_default();
                    let size = parse_hex(size.trim_ascii()).ok_or(FramingError::Chunk)?;
                    self.at += line + 2;
                    if size == 0 {
                        self.state = ChunkState::Trailers;
                    } else {
                        if self.body.len() + size > limit {
                            return Err(FramingError::TooLarge);
                        }
                        self.body.reserve(size);
                        self.state = ChunkState::Data(size);
                    }
                }
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    let take = left.min(rest.len());
                    self.body.extend_from_slice(&rest[..take]);
                    self.at += take;
                    self.state = if take == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    };
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(None);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(FramingError::Chunk);
                    }
                    self.at += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(line) = line_end(rest) else {
                        return if rest.len() > MAX_HEAD_BYTES {
                            Err(FramingError::Chunk)
                        } else {
                            Ok(None)
                        };
                    };
                    self.at += line + 2;
                    if line == 0 {
                        return Ok(Some(self.at));
                    }
                }
            }
        }
    }
}

/// Where the first CRLF of `bytes` starts.
fn line_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

fn parse_hex(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    digits.iter().try_fold(0usize, |n, d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        Some(n * 16 + usize::from(v))
    })
}

/// Makes room in `buf` for at least `more` bytes, and then some: a read
/// into it is then shorter than its room, which tells tokio the socket is
/// drained (it clears the socket's readiness only on such a short read, or
/// on a read that would block, one more system call).
pub fn room(buf: &mut BytesMut, more: usize) {
    buf.reserve(more.max(1024) + 1024);
}

/// Appends `n` in decimal to `out`.
pub fn write_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

thread_local! {
    /// The `Date` header's value, rewritten at most once a second.
    static DATE: std::cell::RefCell<(u64, [u8; 29])> = const { std::cell::RefCell::new((0, [0; 29])) };
}

/// Appends the current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn write_date(out: &mut Vec<u8>) {
    let now = std::time::SystemTime::now();
    let second = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == 29 {
                date.1.copy_from_slice(text.as_bytes());
                date.0 = second;
            }
        }
        out.extend_from_slice(&date.1);
    });
}

/// The values of a header sent more than once, as one list (`a, b`), as
/// HTTP reads a repeated list header: a `Cache-Control: private` on a line of
/// its own counts as much as one beside `max-age`. `None` when absent or not
/// a header value.
pub fn joined<'v>(values: impl Iterator<Item = &'v [u8]>) -> Option<hyper::header::HeaderValue> {
    let mut all: Option<Vec<u8>> = None;
    for value in values {
        match &mut all {
            None => all = Some(value.to_vec()),
            Some(all) => {
                all.extend_from_slice(b", ");
                all.extend_from_slice(value);
            }
        }
    }
    hyper::header::HeaderValue::from_bytes(&all?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&'static str, &'static str)]) -> Vec<httparse::Header<'static>> {
        lines
            .iter()
            .map(|(name, value)| httparse::Header {
                name,
                value: value.as_bytes(),
            })
            .collect()
    }

    #[test]
    fn bodies_are_framed_by_transfer_encoding_then_content_length() {
        let frame =
            |lines: &[(&'static str, &'static str)]| framing(&headers(lines), Framing::Close);
        assert_eq!(frame(&[("Content-Length", "12")]), Ok(Framing::Length(12)));
        assert_eq!(frame(&[("content-length", "5, 5")]), Ok(Framing::Length(5)));
        assert_eq!(
            frame(&[("content-length", "5"), ("Content-Length", "6")]),
            Err(FramingError::Length)
        );
        assert_eq!(
            frame(&[("content-length", "-1")]),
            Err(FramingError::Length)
        );
        assert_eq!(frame(&[("content-length", "")]), Err(FramingError::Length));
        assert_eq!(
            frame(&[
                ("transfer-encoding", "gzip, Chunked"),
                ("content-length", "3")
            ]),
            Ok(Framing::Chunked)
        );
        assert_eq!(frame(&[("transfer-encoding", "gzip")]), Ok(Framing::Close));
        assert_eq!(frame(&[]), Ok(Framing::Close));
        assert_eq!(
            framing(&[], Framing::Length(0)),
            Ok(Framing::Length(0)),
            "a request with neither has no body"
        );
    }

    #[test]
    fn connections_close_as_the_version_and_connection_header_say() {
        assert!(keeps_alive(1, &headers(&[])));
        assert!(!keeps_alive(1, &headers(&[("Connection", "Close")])));
        assert!(!keeps_alive(1, &headers(&[("connection", "te, close")])));
        assert!(!keeps_alive(0, &headers(&[])));
        assert!(keeps_alive(0, &headers(&[("connection", "Keep-Alive")])));
    }

    #[test]
    fn a_chunked_body_is_decoded_as_it_arrives_in_pieces() {
        let wire = b"HEAD4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for split in 0..wire.len() {
            let mut chunked = Chunked::new(4);
            let mut end = None;
            for upto in [split.max(4), wire.len()] {
                if end.is_none() {
                    end = chunked.advance(&wire[..upto], 1 << 20).unwrap();
                }
            }
            assert_eq!(end, Some(wire.len() - 4), "split at {split}");
            assert_eq!(chunked.body, b"Wikipedia in \r\n\r\nchunks.");
        }
        let mut bad = Chunked::new(0);
        assert_eq!(bad.advance(b"zz\r\n", 100), Err(FramingError::Chunk));
        let mut missing_crlf = Chunked::new(0);
        assert_eq!(
            missing_crlf.advance(b"2\r\nabXY", 100),
            Err(FramingError::Chunk)
        );
        let mut too_long = Chunked::new(0);
        assert_eq!(
            too_long.advance(b"10\r\n", 15),
            Err(FramingError::TooLarge),
            "over the limit before any of it is read"
        );
    }

    #[test]
    fn numbers_and_dates_are_written_as_http_wants_them() {
        let mut out = Vec::new();
        for n in [0, 7, 10, 4096, usize::MAX] {
            out.clear();
            write_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        out.clear();
        write_date(&mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(httpdate::parse_http_date(text).is_ok(), "{text}");
        assert!(text.ends_with(" GMT"), "{text}");
    }
}
