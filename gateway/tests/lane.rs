//! The gateway served as `grocery serve gateway` serves it, spoken to over
//! raw sockets: `POST /graphql` answered by the lane, everything else by
//! hyper on the same connection, and the stop.

mod support;

use std::{sync::Arc, time::Duration};

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use serde_json::{Value, json};
use testing::wait_until;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

struct Query;

#[Object]
impl Query {
    async fn echo(&self, text: String) -> String {
        text
    }
    /// Answers after `ms` milliseconds, counted in [`SLOW_STARTED`] from the start.
    async fn slow(&self, ms: u64) -> u64 {
        SLOW_STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Kept: a request still being worked on is the fixture.
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
    /// Answers after `ms` milliseconds, counted in [`LEFT_STARTED`] from the
    /// start and in [`LEFT_RUNNING`] once it has.
    async fn left(&self, ms: u64) -> u64 {
        LEFT_STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Kept: a request still being worked on is the fixture.
        tokio::time::sleep(Duration::from_millis(ms)).await;
        LEFT_RUNNING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ms
    }
}

/// How many `left` fields were answered.
static LEFT_RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// `slow` and `left` calls started, so that a test can wait until its request is in flight.
static SLOW_STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static LEFT_STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A gateway over one subgraph, with CORS for `https://shop.example`:
/// served until `stop` is sent true; its address.
async fn gateway() -> (std::net::SocketAddr, tokio::sync::watch::Sender<bool>) {
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish();
    let served = support::serve("echo", schema).await;
    let sdl = support::supergraph(&[&served]);
    let gw = gateway::Gateway::new(
        &sdl,
        None,
        &gateway::GatewayOptions {
            cors: gateway::server::cors::CorsPolicy::parse("https://shop.example", false),
            metrics_on_api: true,
            ..Default::default()
        },
    )
    .unwrap();
    std::mem::forget(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = gateway::server::Serving {
        threads: 1,
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(gateway::server::serve(
        listener,
        gateway::edge(Arc::new(gw)),
        serving,
        stopped,
    ));
    (addr, stop)
}

/// A POST of `query` to `/graphql`, with `extra` header lines.
fn post(query: &str, extra: &str) -> Vec<u8> {
    let body = json!({ "query": query }).to_string();
    format!(
        "POST /graphql HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One response read off a connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Reads responses off a connection (content-length or chunked bodies).
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more; false at the end of the stream.
    async fn more(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn answer(&mut self) -> Answer {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = response.parse(&self.buf).unwrap() {
                let status = response.code.unwrap();
                let headers: Vec<(String, String)> = response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let length = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map(|(_, v)| v.parse::<usize>().unwrap());
                let chunked = headers
                    .iter()
                    .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
                if status == 100 {
                    self.buf.drain(..head);
                    return Answer {
                        status,
                        headers,
                        body: Vec::new(),
                    };
                }
                let body = if let Some(length) = length {
                    while self.buf.len() < head + length {
                        assert!(self.more().await, "cut off");
                    }
                    let body = self.buf[head..head + length].to_vec();
                    self.buf.drain(..head + length);
                    body
                } else {
                    assert!(chunked, "neither length nor chunks: {headers:?}");
                    let mut body = Vec::new();
                    let mut at = head;
                    loop {
                        while !self.buf[at..].windows(2).any(|w| w == b"\r\n") {
                            assert!(self.more().await, "cut off");
                        }
                        let line = self.buf[at..]
                            .windows(2)
                            .position(|w| w == b"\r\n")
                            .unwrap();
                        let size = usize::from_str_radix(
                            std::str::from_utf8(&self.buf[at..at + line]).unwrap(),
                            16,
                        )
                        .unwrap();
                        at += line + 2;
                        while self.buf.len() < at + size + 2 {
                            assert!(self.more().await, "cut off");
                        }
                        body.extend_from_slice(&self.buf[at..at + size]);
                        at += size + 2;
                        if size == 0 {
                            break;
                        }
                    }
                    self.buf.drain(..at);
                    body
                };
                return Answer {
                    status,
                    headers,
                    body,
                };
            }
            assert!(self.more().await, "the connection closed before an answer");
        }
    }

    /// Whether the gateway closed the connection (nothing more comes).
    async fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.more().await
    }
}

#[tokio::test]
async fn posts_are_answered_in_order_on_one_connection_even_pipelined_or_in_pieces() {
    let (addr, _stop) = gateway().await;
    let mut conn = Reader::connect(addr).await;
    // Three at once.
    let mut three = Vec::new();
    for i in 0..3 {
        three.extend(post(
            &format!(r#"{{ echo(text: "n{i}") }}"#),
            &format!("x-request-id: id-{i}\r\norigin: https://shop.example\r\n"),
        ));
    }
    conn.send(&three).await;
    for i in 0..3 {
        let answer = conn.answer().await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.json(),
            json!({ "data": { "echo": format!("n{i}") } })
        );
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(
            answer.header("x-request-id"),
            Some(format!("id-{i}").as_str())
        );
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some("https://shop.example")
        );
        assert!(answer.header("date").is_some());
    }
    // One in pieces: the head split, the body late.
    let request = post(
        r#"{ echo(text: "pieces") }"#,
        "accept: application/graphql-response+json\r\n",
    );
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    for piece in [&request[..10], &request[10..head_end], &request[head_end..]] {
        conn.send(piece).await;
        // Kept: each piece arrives on its own, which is the point.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = conn.answer().await;
    assert_eq!(answer.json(), json!({ "data": { "echo": "pieces" } }));
    assert_eq!(
        answer.header("content-type"),
        Some("application/graphql-response+json")
    );
    assert!(
        answer
            .header("x-request-id")
            .is_some_and(|id| !id.is_empty()),
        "a new id when none was sent"
    );
    conn.send(b"GET /metrics HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await;
    let metrics = String::from_utf8(conn.answer().await.body).unwrap();
    assert!(
        metrics.contains("\ngrocery_gateway_lane_requests_total 4\n"),
        "all four went by the lane: {metrics}"
    );
}

#[tokio::test]
async fn what_the_lane_leaves_is_served_by_hyper_on_the_same_connection() {
    let (addr, _stop) = gateway().await;
    let mut conn = Reader::connect(addr).await;
    conn.send(&post(r#"{ echo(text: "lane") }"#, "")).await;
    assert_eq!(conn.answer().await.json()["data"]["echo"], "lane");
    // Another route: hyper from here on.
    conn.send(b"GET /health HTTP/1.1\r\nhost: gw\r\n\r\n").await;
    let health = conn.answer().await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({ "status": "ok" }));
    conn.send(&post(r#"{ echo(text: "hyper") }"#, "")).await;
    assert_eq!(conn.answer().await.json()["data"]["echo"], "hyper");
    conn.send(b"GET /metrics HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await;
    let metrics = String::from_utf8(conn.answer().await.body).unwrap();
    assert!(
        metrics.contains("\ngrocery_gateway_lane_requests_total 1\n"),
        "the first POST only went by the lane: {metrics}"
    );

    // A chunked body and an `Expect: 100-continue` are hyper's to read.
    let body = json!({ "query": r#"{ echo(text: "chunked") }"# }).to_string();
    let mut conn = Reader::connect(addr).await;
    conn.send(
        format!(
            "POST /graphql HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(conn.answer().await.json()["data"]["echo"], "chunked");
    let mut conn = Reader::connect(addr).await;
    let request = post(r#"{ echo(text: "expect") }"#, "expect: 100-continue\r\n");
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    conn.send(&request[..head_end]).await;
    assert_eq!(conn.answer().await.status, 100);
    conn.send(&request[head_end..]).await;
    assert_eq!(conn.answer().await.json()["data"]["echo"], "expect");
}

#[tokio::test]
async fn oversized_malformed_and_closing_requests_get_their_answers() {
    let (addr, _stop) = gateway().await;
    // Over the body cap: the GraphQL error hyper's path gives.
    let mut conn = Reader::connect(addr).await;
    conn.send(
        b"POST /graphql HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: 300000\r\n\r\n",
    )
    .await;
    let answer = conn.answer().await;
    assert_eq!(answer.status, 413);
    assert_eq!(
        answer.json()["errors"][0]["extensions"]["code"],
        "BAD_REQUEST"
    );
    // Not HTTP.
    let mut conn = Reader::connect(addr).await;
    conn.send(b"HELLO THERE\r\n\r\n").await;
    assert_eq!(conn.answer().await.status, 400);
    // `Connection: close`: answered, then closed.
    let mut conn = Reader::connect(addr).await;
    conn.send(&post(r#"{ echo(text: "bye") }"#, "connection: close\r\n"))
        .await;
    let answer = conn.answer().await;
    assert_eq!(answer.json()["data"]["echo"], "bye");
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(conn.closed().await, "closed after the answer");
    // Bad JSON: refused by the same code as before the lane.
    let mut conn = Reader::connect(addr).await;
    conn.send(
        b"POST /graphql HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: 5\r\n\r\n{nope",
    )
    .await;
    let answer = conn.answer().await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json()["errors"][0]["extensions"]["code"],
        "BAD_REQUEST"
    );
}

#[tokio::test]
async fn the_stop_closes_idle_connections_and_lets_the_busy_one_answer_first() {
    let (addr, stop) = gateway().await;
    let mut idle = Reader::connect(addr).await;
    idle.send(&post(r#"{ echo(text: "warm") }"#, "")).await;
    assert_eq!(idle.answer().await.json()["data"]["echo"], "warm");
    let mut busy = Reader::connect(addr).await;
    busy.send(&post("{ slow(ms: 300) }", "")).await;
    wait_until("the busy request in flight", async || {
        SLOW_STARTED.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    stop.send(true).unwrap();
    assert!(
        idle.closed().await,
        "an idle connection is closed at the stop"
    );
    let answer = busy.answer().await;
    assert_eq!(answer.json()["data"]["slow"], 300);
    assert_eq!(
        answer.header("connection"),
        Some("close"),
        "the last answer says so"
    );
    assert!(busy.closed().await);
}

#[tokio::test]
async fn a_request_whose_client_left_is_dropped_with_its_fetches() {
    use std::sync::atomic::Ordering::SeqCst;
    let (addr, _stop) = gateway().await;
    let mut conn = Reader::connect(addr).await;
    conn.send(&post("{ left(ms: 300) }", "")).await;
    wait_until("the request in flight", async || {
        LEFT_STARTED.load(SeqCst) == 1
    })
    .await;
    drop(conn);
    // Kept: proves the subgraph's work does not finish, twice as long as it takes.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        LEFT_RUNNING.load(SeqCst),
        0,
        "the subgraph's work was cancelled with the request"
    );
    // A client that stays gets its answer, and its next request, sent
    // while the first was running, is answered too.
    let mut conn = Reader::connect(addr).await;
    conn.send(&post("{ left(ms: 100) }", "")).await;
    wait_until("the first request in flight", async || {
        LEFT_STARTED.load(SeqCst) == 2
    })
    .await;
    conn.send(&post(r#"{ echo(text: "next") }"#, "")).await;
    assert_eq!(conn.answer().await.json()["data"]["left"], 100);
    assert_eq!(conn.answer().await.json()["data"]["echo"], "next");
}

#[tokio::test]
async fn a_request_whose_body_is_arriving_at_the_stop_is_answered() {
    let (addr, stop) = gateway().await;
    let mut conn = Reader::connect(addr).await;
    let request = post(r#"{ echo(text: "late") }"#, "");
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    conn.send(&request[..head_end]).await;
    // Kept, both: nothing outside the lane tells when it has read the head
    // or taken the stop, and each must come before what follows.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.send(&request[head_end..]).await;
    let answer = conn.answer().await;
    assert_eq!(answer.json()["data"]["echo"], "late");
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(conn.closed().await);
}
