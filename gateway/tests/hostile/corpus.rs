//! The hostile corpus: requests an attacker sends, each with the outcome the
//! gateway must give. Shared by the test (`tests/hostile.rs`, which asserts
//! every outcome) and the bench (`benches/hostile.rs`, which prints what each
//! costs the gateway in CPU and memory).
//!
//! Every entry goes over a real socket to a gateway serving the project's
//! own supergraph, its subgraphs replaced by one stub that counts what
//! reaches it, so an entry can assert that nothing was planned or fetched.

#![allow(dead_code)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// What the gateway must do with an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Refused with this status and `extensions.code`; nothing planned or fetched.
    Refused(u16, &'static str),
    /// Refused with this status and code once planned (variables are
    /// coerced to the plan's definitions); nothing fetched.
    Invalid(u16, &'static str),
    /// Refused with this status before any GraphQL (no code to check).
    Status(u16),
    /// Answered 200 (the operation is within every limit).
    Answered,
    /// The connection is closed without an answer.
    Closed,
}

/// One hostile request.
pub struct Entry {
    pub name: &'static str,
    /// The bytes sent; `pause` after the first `split` bytes (a slow client).
    pub bytes: Vec<u8>,
    pub outcome: Outcome,
}

/// A `POST /graphql` with a JSON body.
fn post(body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
         accept: application/graphql-response+json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A request without a body: `method path` with `headers`.
fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn query(text: &str) -> Vec<u8> {
    post(&serde_json::to_vec(&serde_json::json!({ "query": text })).unwrap())
}

fn with_variables(text: &str, variables: serde_json::Value) -> Vec<u8> {
    post(
        &serde_json::to_vec(&serde_json::json!({ "query": text, "variables": variables })).unwrap(),
    )
}

/// `fragment F{i} on Query { ...F{i-1} ...F{i-1} }`, `levels` deep.
fn fragment_bomb(levels: usize) -> String {
    let mut text = format!(
        "query {{ ...F{} }} fragment F0 on Query {{ __typename }}",
        levels - 1
    );
    for i in 1..levels {
        text.push_str(&format!(
            " fragment F{i} on Query {{ ...F{p} ...F{p} }}",
            p = i - 1
        ));
    }
    text
}

fn nested(open: &str, close: &str, levels: usize, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
}

/// Every entry of the corpus.
pub fn entries() -> Vec<Entry> {
    use Outcome::*;
    let products =
        |fields: &str| format!("{{ products(first: 1) {{ edges {{ node {{ {fields} }} }} }} }}");
    let mut deep_json = String::from("1");
    for _ in 0..100 {
        deep_json = format!("[{deep_json}]");
    }
    let mut very_deep_json = String::from("1");
    for _ in 0..5_000 {
        very_deep_json = format!("[{very_deep_json}]");
    }
    vec![
        Entry {
            name: "fragment bomb 2^40 (1.6 KB)",
            bytes: query(&fragment_bomb(40)),
            outcome: Refused(400, "MAX_FIELDS_LIMIT"),
        },
        Entry {
            name: "fragment bomb 2^20",
            bytes: query(&fragment_bomb(20)),
            outcome: Refused(400, "MAX_FIELDS_LIMIT"),
        },
        Entry {
            name: "fragment bomb through nested selections",
            bytes: query(&{
                let mut text = String::from("{ ...N29 } fragment N0 on Query { products(first: 1) { totalCount } }");
                for i in 1..30 {
                    text.push_str(&format!(
                        " fragment N{i} on Query {{ products(first: 1) {{ edges {{ node {{ sku }} }} }} ...N{p} ...N{p} }}",
                        p = i - 1
                    ));
                }
                text
            }),
            outcome: Refused(400, "MAX_FIELDS_LIMIT"),
        },
        Entry {
            name: "aliased fragment bomb",
            bytes: query(&{
                let mut text = String::from("{ ...A24 } fragment A0 on Query { a: __typename }");
                for i in 1..25 {
                    text.push_str(&format!(" fragment A{i} on Query {{ ...A{p} ...A{p} }}", p = i - 1));
                }
                text
            }),
            outcome: Refused(400, "MAX_FIELDS_LIMIT"),
        },
        Entry {
            name: "inline fragments 10,000 deep",
            bytes: query(&nested("{ ... on Query ", "}", 10_000, "{ __typename }")),
            outcome: Refused(400, "GRAPHQL_PARSE_FAILED"),
        },
        Entry {
            name: "inline fragments 60 deep",
            bytes: query(&format!("{{ {} }}", nested("... on Query { ", "} ", 60, "__typename "))),
            outcome: Refused(400, "GRAPHQL_PARSE_FAILED"),
        },
        Entry {
            name: "selections 40 deep",
            bytes: query(&nested("{ me ", "}", 40, "{ id }")),
            outcome: Refused(400, "MAX_DEPTH_LIMIT"),
        },
        Entry {
            name: "selections 18 deep through fragments",
            bytes: query(&{
                let mut text = String::from("{ me { ...C4 } } fragment C0 on User { id }");
                for i in 1..5 {
                    text.push_str(&format!(
                        " fragment C{i} on User {{ orders {{ edges {{ node {{ customer {{ ...C{p} }} }} }} }} }}",
                        p = i - 1
                    ));
                }
                text
            }),
            outcome: Refused(400, "MAX_DEPTH_LIMIT"),
        },
        Entry {
            name: "one field 20,000 times (80 KB)",
            bytes: query(&products(&"sku ".repeat(20_000))),
            outcome: Refused(400, "MAX_TOKENS_LIMIT"),
        },
        Entry {
            name: "one field 4,900 times (within the limits)",
            bytes: query(&products(&"sku ".repeat(4_900))),
            outcome: Answered,
        },
        Entry {
            name: "conflicting arguments 1,000 times",
            bytes: query(&format!(
                "{{ me {{ {} }} }}",
                (0..1_000).map(|i| format!("orders(first: {i}) {{ totalCount }}")).collect::<Vec<_>>().join(" ")
            )),
            outcome: Refused(400, "GRAPHQL_VALIDATION_FAILED"),
        },
        Entry {
            name: "1,000 aliases",
            bytes: query(&products(&(0..1_000).map(|i| format!("a{i}: sku")).collect::<Vec<_>>().join(" "))),
            outcome: Refused(400, "MAX_ALIASES_LIMIT"),
        },
        Entry {
            name: "1,000 directives",
            bytes: query(&products(&"sku @include(if: true) ".repeat(1_000))),
            outcome: Refused(400, "MAX_DIRECTIVES_LIMIT"),
        },
        Entry {
            name: "180 KB of @include",
            bytes: query(&products(&"sku @include(if: false) ".repeat(7_000))),
            outcome: Refused(400, "MAX_TOKENS_LIMIT"),
        },
        Entry {
            name: "100 root fields",
            bytes: query(&format!("{{ {} }}", "me { id } ".repeat(100))),
            outcome: Refused(400, "MAX_ROOT_FIELDS_LIMIT"),
        },
        Entry {
            name: "introspection cycle 14 deep",
            bytes: query(&format!(
                "{{ __schema {{ types {{ {} }} }} }}",
                nested("fields { type { ", "} } ", 6, "name ")
            )),
            outcome: Answered,
        },
        Entry {
            name: "2,000 operations in one document",
            bytes: query(&(0..2_000).map(|i| format!("query Q{i} {{ __typename }}")).collect::<Vec<_>>().join(" ")),
            outcome: Refused(400, "GRAPHQL_VALIDATION_FAILED"),
        },
        Entry {
            name: "1,500 operations sharing one 3,000-field fragment",
            bytes: post(
                &serde_json::to_vec(&serde_json::json!({
                    "query": (0..1_500)
                        .map(|i| format!("query Q{i} {{ ...F }}"))
                        .chain([format!("fragment F on Query {{ me {{ {} }} }}", "id ".repeat(3_000))])
                        .collect::<Vec<_>>()
                        .join(" "),
                    "operationName": "Q0",
                }))
                .unwrap(),
            ),
            outcome: Refused(400, "MAX_FIELDS_LIMIT"),
        },
        Entry {
            name: "100 operations sharing one 40-field fragment (within the limits)",
            bytes: post(
                &serde_json::to_vec(&serde_json::json!({
                    "query": (0..100)
                        .map(|i| format!("query Q{i} {{ ...F }}"))
                        .chain([format!("fragment F on Query {{ me {{ {} }} }}", "id ".repeat(40))])
                        .collect::<Vec<_>>()
                        .join(" "),
                    "operationName": "Q7",
                }))
                .unwrap(),
            ),
            outcome: Answered,
        },
        Entry {
            name: "list literal 10,000 deep",
            bytes: query(&format!("{{ product(sku: {}) {{ sku }} }}", nested("[", "]", 10_000, "\"A\""))),
            outcome: Refused(400, "GRAPHQL_PARSE_FAILED"),
        },
        Entry {
            name: "list literal 60 deep",
            bytes: query(&format!("{{ product(sku: {}) {{ sku }} }}", nested("[", "]", 60, "\"A\""))),
            outcome: Refused(400, "GRAPHQL_PARSE_FAILED"),
        },
        Entry {
            name: "200 KB string literal",
            bytes: query(&format!("{{ product(sku: \"{}\") {{ sku }} }}", "A".repeat(200_000))),
            outcome: Answered,
        },
        Entry {
            name: "variables with 50,000 values",
            bytes: with_variables(
                "query($items: [OrderLineInput!]) { previewOrder(items: $items) { id } }",
                serde_json::json!({ "items": vec![0; 50_000] }),
            ),
            outcome: Refused(400, "MAX_VARIABLES_LIMIT"),
        },
        Entry {
            name: "variables nested 100 deep",
            bytes: post(format!("{{\"query\":\"query($v: String) {{ product(sku: $v) {{ sku }} }}\",\"variables\":{{\"v\":{deep_json}}}}}").as_bytes()),
            outcome: Refused(400, "MAX_VARIABLES_LIMIT"),
        },
        Entry {
            name: "variables nested 5,000 deep",
            bytes: post(format!("{{\"query\":\"{{ __typename }}\",\"variables\":{{\"v\":{very_deep_json}}}}}").as_bytes()),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "variables of the wrong type",
            bytes: with_variables("query($n: Int) { products(first: $n) { totalCount } }", serde_json::json!({ "n": "ten" })),
            outcome: Invalid(400, "BAD_USER_INPUT"),
        },
        Entry {
            name: "a batch of 1,000 operations",
            bytes: post(&serde_json::to_vec(&vec![serde_json::json!({ "query": "{ __typename }" }); 1_000]).unwrap()),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "query of the wrong type",
            bytes: post(br#"{"query": {"a": 1}}"#),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "malformed JSON",
            bytes: post(br#"{"query": "{ __typename }""#),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "invalid UTF-8 in the body",
            bytes: post(b"{\"query\": \"{ __typ\xff\xfeename }\"}"),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "NUL byte in the document",
            bytes: post(b"{\"query\": \"{ __typename \\u0000 }\"}"),
            outcome: Refused(400, "GRAPHQL_PARSE_FAILED"),
        },
        Entry {
            name: "body over 256 KiB",
            bytes: query(&format!("{{ product(sku: \"{}\") {{ sku }} }}", "A".repeat(300_000))),
            outcome: Status(413),
        },
        Entry {
            name: "Content-Length and Transfer-Encoding both (smuggling)",
            bytes: b"POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
                     content-length: 4\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
                     0\r\n\r\nGET /health HTTP/1.1\r\nhost: gateway\r\n\r\n"
                .to_vec(),
            outcome: Status(400),
        },
        Entry {
            name: "two different Content-Lengths (smuggling)",
            bytes: b"POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
                     content-length: 26\r\ncontent-length: 5\r\nconnection: close\r\n\r\n\
                     {\"query\":\"{ __typename }\"}"
                .to_vec(),
            outcome: Status(400),
        },
        Entry {
            name: "150 headers",
            bytes: {
                let mut head = String::from("GET /health HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n");
                for i in 0..150 {
                    head.push_str(&format!("x-h{i}: {i}\r\n"));
                }
                head.push_str("\r\n");
                head.into_bytes()
            },
            outcome: Status(431),
        },
        Entry {
            name: "a 100 KB header",
            bytes: format!(
                "POST /graphql HTTP/1.1\r\nhost: gateway\r\nx-big: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                "a".repeat(100_000)
            )
            .into_bytes(),
            outcome: Status(431),
        },
        Entry {
            name: "a head that never ends (slowloris, lane)",
            bytes: b"POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n".to_vec(),
            outcome: Closed,
        },
        Entry {
            name: "a head that never ends (slowloris, hyper)",
            bytes: b"GET /health HTTP/1.1\r\nhost: gateway\r\nx-a: b\r\n".to_vec(),
            outcome: Closed,
        },
        Entry {
            name: "a body that never ends",
            bytes: b"POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"query\"".to_vec(),
            outcome: Closed,
        },
        Entry {
            name: "SSE: a stream opened with a 10 KB token",
            bytes: request("GET", "/graphql", &[("x-graphql-event-stream-token", &"a".repeat(10_000)), ("accept", "text/event-stream")]),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "SSE: a token with a NUL in it",
            bytes: request("GET", &format!("/graphql?token=%00{}", "a".repeat(31)), &[("accept", "text/event-stream")]),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "SSE: a token that is not hex",
            bytes: request("DELETE", "/graphql?operationId=1", &[("x-graphql-event-stream-token", &"z".repeat(32))]),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "SSE: an operation POSTed to an unknown token",
            bytes: {
                let body = br#"{"query":"{ __typename }","extensions":{"operationId":"1"}}"#;
                let mut bytes = format!(
                    "POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
                     x-graphql-event-stream-token: {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
                    "0".repeat(32),
                    body.len()
                )
                .into_bytes();
                bytes.extend_from_slice(body);
                bytes
            },
            outcome: Refused(404, "NOT_FOUND"),
        },
        Entry {
            name: "SSE: a stream opened with an unknown token",
            bytes: request("GET", &format!("/graphql?token={}", "f".repeat(32)), &[("accept", "text/event-stream")]),
            outcome: Refused(404, "NOT_FOUND"),
        },
        Entry {
            name: "SSE: DELETE on an unknown token",
            bytes: request("DELETE", &format!("/graphql?operationId=x&token={}", "1".repeat(32)), &[]),
            outcome: Refused(404, "NOT_FOUND"),
        },
        Entry {
            name: "a connection that sends nothing",
            bytes: Vec::new(),
            outcome: Closed,
        },
    ]
}

/// The gateway under attack and what reached its stub subgraph.
pub struct Harness {
    pub addr: std::net::SocketAddr,
    pub gateway: Arc<gateway::Gateway>,
    pub fetches: Arc<AtomicUsize>,
}

/// How long a head may take in the harness: slow clients are cut off after it.
pub const HEAD_TIMEOUT: Duration = Duration::from_millis(400);

impl Harness {
    /// The project's supergraph served on 127.0.0.1, every subgraph a stub
    /// that counts requests and answers `{"data": null}`.
    pub async fn start() -> Self {
        let fetches = Arc::new(AtomicUsize::new(0));
        let counted = fetches.clone();
        let stub = axum::Router::new().route(
            "/graphql",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { axum::Json(serde_json::json!({ "data": null })) }
            }),
        );
        let stub_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stub_url = format!("http://{}/graphql", stub_listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(stub_listener, stub).await });
        let sdl = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schema/supergraph.graphql"
        ))
        .unwrap();
        let names = gateway::Supergraph::load(&sdl)
            .unwrap()
            .subgraphs()
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        let options = gateway::GatewayOptions {
            introspection: true,
            subgraph_urls: names
                .into_iter()
                .map(|name| (name, stub_url.clone()))
                .collect(),
            ..Default::default()
        };
        let gateway = Arc::new(gateway::Gateway::new(&sdl, None, &options).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = gateway::server::Serving {
            threads: 1,
            timeouts: gateway::server::ConnectionTimeouts {
                head: HEAD_TIMEOUT,
                idle: HEAD_TIMEOUT,
            },
            ..Default::default()
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let edge = gateway::edge(gateway.clone());
        tokio::spawn(async move {
            let _stop = stop;
            gateway::server::serve(listener, edge, serving, stopped).await
        });
        Self {
            addr,
            gateway,
            fetches,
        }
    }

    /// Sends `entry` and reads what comes back until the gateway closes
    /// the connection (at most 10 s).
    pub async fn send(&self, entry: &Entry) -> Answer {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        // The peer may refuse early and close: a failed write is an answer too.
        let _ = stream.write_all(&entry.bytes).await;
        let mut raw = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
        Answer::parse(&raw, read.is_ok())
    }
}

/// What the gateway answered.
#[derive(Debug)]
pub struct Answer {
    pub status: Option<u16>,
    pub body: serde_json::Value,
    /// The gateway closed the connection (within the harness's wait).
    pub closed: bool,
    pub bytes: usize,
}

impl Answer {
    fn parse(raw: &[u8], closed: bool) -> Self {
        let text = String::from_utf8_lossy(raw);
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok());
        let body = text
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .unwrap_or_default();
        Self {
            status,
            body,
            closed,
            bytes: raw.len(),
        }
    }

    /// The first error's `extensions.code`.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }
}
