//! Cross-site requests: an operation a browser could send from another site
//! without asking the CORS policy first is refused before anything runs, on
//! the lane and on hyper, for POST and GET; bodies that are not JSON get 415.

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use async_graphql::{EmptySubscription, Object, Schema};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How many times `order` ran, in every test of this file.
static ORDERED: AtomicUsize = AtomicUsize::new(0);

struct Query;

#[Object]
impl Query {
    async fn stock(&self) -> i32 {
        7
    }
}

struct Mutation;

#[Object]
impl Mutation {
    /// A side effect a forged request would want.
    async fn order(&self) -> bool {
        ORDERED.fetch_add(1, Ordering::SeqCst);
        true
    }
}

/// A gateway over a subgraph with a mutation, served on a socket with
/// `options` (GraphiQL on); its address and the subgraph.
async fn served(options: gateway::GatewayOptions) -> (String, support::Served) {
    let schema = Schema::build(Query, Mutation, EmptySubscription)
        .enable_federation()
        .finish();
    let subgraph = support::serve("shop", schema).await;
    let sdl = support::supergraph(&[&subgraph]);
    let gw = gateway::Gateway::new(
        &sdl,
        None,
        &gateway::GatewayOptions {
            graphiql: true,
            ..options
        },
    )
    .unwrap();
    let base = support::listen(Arc::new(gw)).await;
    (base.trim_start_matches("http://").to_owned(), subgraph)
}

/// An answer read off the socket: status, head, JSON body (`Null` if none).
struct Answer {
    status: u16,
    head: String,
    body: Value,
}

/// Sends `head` (request line and headers, no blank line) and `body` as they
/// are, on a connection closed after the answer.
async fn raw(addr: &str, head: &str, body: &[u8]) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{head}\r\nhost: gw\r\nconnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head[9..12].parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // One chunk is all these small answers take.
        body.split_once("\r\n")
            .map_or("", |(_, rest)| {
                rest.rsplit_once("\r\n0\r\n").map_or(rest, |r| r.0)
            })
            .to_owned()
    } else {
        body.to_owned()
    };
    Answer {
        status,
        head: head.to_owned(),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    }
}

/// POSTs `body` with `headers` (each a `name: value` line), with a length
/// (served by the lane) or chunked (served by hyper).
async fn post(addr: &str, headers: &[&str], body: &str, chunked: bool) -> Answer {
    let mut head = String::from("POST /graphql HTTP/1.1");
    for h in headers {
        head.push_str("\r\n");
        head.push_str(h);
    }
    if chunked {
        head.push_str("\r\ntransfer-encoding: chunked");
        let framed = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
        raw(addr, &head, framed.as_bytes()).await
    } else {
        head.push_str(&format!("\r\ncontent-length: {}", body.len()));
        raw(addr, &head, body.as_bytes()).await
    }
}

fn code(answer: &Answer) -> &str {
    answer.body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

const MUTATION: &str = r#"{"query":"mutation { order }"}"#;

#[tokio::test]
async fn a_simple_cross_site_mutation_is_refused_before_it_runs() {
    let (addr, subgraph) = served(Default::default()).await;
    let before = ORDERED.load(Ordering::SeqCst);
    for chunked in [false, true] {
        for content_type in [
            Some("content-type: text/plain"),
            Some("content-type: text/plain;charset=UTF-8"),
            Some("content-type: application/x-www-form-urlencoded"),
            Some("content-type: multipart/form-data; boundary=----x"),
            None,
        ] {
            let mut headers = vec!["origin: http://evil.example"];
            headers.extend(content_type);
            let answer = post(&addr, &headers, MUTATION, chunked).await;
            let context = format!("{content_type:?}, chunked {chunked}: {}", answer.body);
            assert_eq!(answer.status, 400, "{context}");
            assert_eq!(code(&answer), "CSRF_ERROR", "{context}");
            let message = answer.body["errors"][0]["message"].as_str().unwrap();
            assert!(
                message.contains("apollo-require-preflight")
                    && message.contains("x-apollo-operation-name")
                    && message.contains("graphql-preflight")
                    && message.contains("'content-type'"),
                "the refusal says what to add: {message}"
            );
            assert!(answer.body.get("data").is_none(), "{context}");
        }
    }
    assert_eq!(ORDERED.load(Ordering::SeqCst), before, "nothing ran");
    assert!(subgraph.requests().is_empty(), "no subgraph was asked");
}

#[tokio::test]
async fn json_or_a_mark_only_a_script_can_add_lets_an_operation_through() {
    let (addr, subgraph) = served(Default::default()).await;
    for chunked in [false, true] {
        let answer = post(
            &addr,
            &[
                "content-type: application/json",
                "origin: http://evil.example",
            ],
            r#"{"query":"{ stock }"}"#,
            chunked,
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["data"]["stock"], 7);
        // Marked, but still not JSON: the media type is refused, nothing runs.
        let answer = post(
            &addr,
            &["content-type: text/plain", "apollo-require-preflight: true"],
            MUTATION,
            chunked,
        )
        .await;
        assert_eq!(answer.status, 415, "{}", answer.body);
        assert_eq!(code(&answer), "UNSUPPORTED_MEDIA_TYPE", "{}", answer.body);
    }
    for marked in ["x-apollo-operation-name: Stock", "graphql-preflight:"] {
        let answer = post(
            &addr,
            &["content-type: application/json; charset=utf-8", marked],
            r#"{"query":"query Stock { stock }"}"#,
            false,
        )
        .await;
        assert_eq!(answer.status, 200, "{marked}: {}", answer.body);
    }
    let requests = subgraph.requests();
    assert!(
        requests
            .iter()
            .all(|r| !r["query"].as_str().unwrap().contains("order")),
        "the mutation never reached the subgraph: {requests:?}"
    );
}

#[tokio::test]
async fn get_queries_from_another_site_need_the_mark_but_others_and_the_graphiql_page_do_not() {
    let (addr, _subgraph) = served(Default::default()).await;
    let query = "/graphql?query=%7B%20stock%20%7D";
    // A browser that says the query comes from another site: refused unmarked.
    for site in ["cross-site", "same-site"] {
        let sent = raw(
            &addr,
            &format!("GET {query} HTTP/1.1\r\nsec-fetch-site: {site}"),
            b"",
        )
        .await;
        assert_eq!(sent.status, 400, "{site}: {}", sent.body);
        assert_eq!(code(&sent), "CSRF_ERROR", "{}", sent.body);
    }
    let marked = raw(
        &addr,
        &format!(
            "GET {query} HTTP/1.1\r\nsec-fetch-site: cross-site\r\napollo-require-preflight: true"
        ),
        b"",
    )
    .await;
    assert_eq!(marked.status, 200, "{}", marked.body);
    assert_eq!(marked.body["data"]["stock"], 7);
    // A GET with a JSON content type could only come from a script.
    let typed = raw(
        &addr,
        &format!(
            "GET {query} HTTP/1.1\r\nsec-fetch-site: cross-site\r\ncontent-type: application/json"
        ),
        b"",
    )
    .await;
    assert_eq!(typed.status, 200, "{}", typed.body);
    // The page's own origin, a typed URL, or a client that is not a browser.
    for extra in [
        "\r\nsec-fetch-site: same-origin",
        "\r\nsec-fetch-site: none",
        "",
    ] {
        let sent = raw(&addr, &format!("GET {query} HTTP/1.1{extra}"), b"").await;
        assert_eq!(sent.status, 200, "{extra:?}: {}", sent.body);
    }
    let page = raw(&addr, "GET /graphql HTTP/1.1\r\naccept: text/html", b"").await;
    assert_eq!(page.status, 200);
    assert!(page.head.contains("text/html"), "{}", page.head);
}

#[tokio::test]
async fn preflights_allow_the_marks() {
    let (addr, _subgraph) = served(gateway::GatewayOptions {
        cors: gateway::server::cors::CorsPolicy::parse("https://shop.example", false),
        ..Default::default()
    })
    .await;
    let answer = raw(
        &addr,
        "OPTIONS /graphql HTTP/1.1\r\norigin: https://shop.example\r\n\
         access-control-request-method: POST\r\n\
         access-control-request-headers: apollo-require-preflight",
        b"",
    )
    .await;
    assert_eq!(answer.status, 204);
    let allowed = answer
        .head
        .lines()
        .find_map(|l| l.strip_prefix("access-control-allow-headers: "))
        .unwrap_or_default();
    for mark in [
        "apollo-require-preflight",
        "x-apollo-operation-name",
        "graphql-preflight",
    ] {
        assert!(allowed.contains(mark), "{allowed}");
    }
}

#[tokio::test]
async fn the_marks_are_configurable_and_the_check_can_be_switched_off() {
    let (addr, _subgraph) = served(gateway::GatewayOptions {
        csrf: gateway::server::csrf::CsrfPolicy::with_headers("x-requested-by").unwrap(),
        ..Default::default()
    })
    .await;
    let query = "GET /graphql?query=%7B%20stock%20%7D HTTP/1.1\r\nsec-fetch-site: cross-site";
    let theirs = raw(
        &addr,
        &format!("{query}\r\napollo-require-preflight: 1"),
        b"",
    )
    .await;
    assert_eq!(code(&theirs), "CSRF_ERROR", "{}", theirs.body);
    let refusal = theirs.body["errors"][0]["message"].as_str().unwrap();
    assert!(refusal.ends_with("headers: x-requested-by"), "{refusal}");
    let ours = raw(&addr, &format!("{query}\r\nx-requested-by: app"), b"").await;
    assert_eq!(ours.status, 200, "{}", ours.body);

    let (addr, _subgraph) = served(gateway::GatewayOptions {
        csrf: gateway::server::csrf::CsrfPolicy::disabled(),
        ..Default::default()
    })
    .await;
    let open = raw(&addr, query, b"").await;
    assert_eq!(open.status, 200, "{}", open.body);
    // Off, a text/plain POST is still not JSON.
    let answer = post(&addr, &["content-type: text/plain"], MUTATION, false).await;
    assert_eq!(answer.status, 415, "{}", answer.body);
}

/// Hostile heads: what an attacker can put in the headers CSRF reads.
#[tokio::test]
async fn hostile_content_types_are_refused_cleanly() {
    let (addr, subgraph) = served(Default::default()).await;
    let long = format!("content-type: application/{}", "x".repeat(6000));
    let repeated: Vec<String> = (0..50).map(|_| "content-type: text/plain".into()).collect();
    let mut cases: Vec<(String, Vec<String>, u16, &str)> = vec![
        // Not one media type: not trusted, as if it were a form's.
        (
            "two types on one line".into(),
            vec!["content-type: application/json, text/plain".into()],
            400,
            "CSRF_ERROR",
        ),
        (
            "two lines".into(),
            vec![
                "content-type: application/json".into(),
                "content-type: text/plain".into(),
            ],
            400,
            "CSRF_ERROR",
        ),
        ("repeated".into(), repeated, 400, "CSRF_ERROR"),
        (
            "malformed".into(),
            vec!["content-type: /;;==".into()],
            400,
            "CSRF_ERROR",
        ),
        (
            "empty".into(),
            vec!["content-type:".into()],
            400,
            "CSRF_ERROR",
        ),
        (
            "non-ASCII".into(),
            vec!["content-type: text/pl\u{e4}in".into()],
            400,
            "CSRF_ERROR",
        ),
        // Preflighted, but not a body the gateway reads.
        ("huge".into(), vec![long], 415, "UNSUPPORTED_MEDIA_TYPE"),
        (
            "wrong charset".into(),
            vec!["content-type: application/json; charset=latin1".into()],
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "xml".into(),
            vec!["content-type: application/xml".into()],
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    ];
    cases.push((
        "a huge mark on a form type".into(),
        vec![
            "content-type: text/plain".into(),
            format!("apollo-require-preflight: {}", "y".repeat(6000)),
        ],
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ));
    for (what, headers, status, expected) in cases {
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let answer = post(&addr, &headers, MUTATION, false).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        assert_eq!(code(&answer), expected, "{what}: {}", answer.body);
    }
    // A NUL in a header is no HTTP: refused before the gateway sees it.
    let answer = raw(
        &addr,
        "POST /graphql HTTP/1.1\r\ncontent-type: text/plain\0\r\ncontent-length: 2",
        b"{}",
    )
    .await;
    assert_eq!(answer.status, 400);
    assert!(subgraph.requests().is_empty(), "no subgraph was asked");
}

#[tokio::test]
async fn extensions_that_are_not_a_map_are_malformed() {
    let (addr, subgraph) = served(Default::default()).await;
    for extensions in [json!("string"), json!(0), json!(false), json!(["array"])] {
        let body = json!({ "query": "{ stock }", "extensions": extensions }).to_string();
        let answer = post(&addr, &["content-type: application/json"], &body, false).await;
        assert_eq!(answer.status, 400, "{extensions}: {}", answer.body);
        assert_eq!(code(&answer), "BAD_REQUEST", "{}", answer.body);
        let get = raw(
            &addr,
            &format!(
                "GET /graphql?query=%7Bstock%7D&extensions={} HTTP/1.1\r\ngraphql-preflight: 1",
                urlencode(&extensions.to_string())
            ),
            b"",
        )
        .await;
        assert_eq!(get.status, 400, "GET {extensions}: {}", get.body);
    }
    // Hostile maps: deeper than the JSON reader goes, or odd but harmless.
    let deep = format!(
        r#"{{"query":"{{ stock }}","extensions":{}1{}}}"#,
        r#"{"a":"#.repeat(5_000),
        "}".repeat(5_000)
    );
    let answer = post(&addr, &["content-type: application/json"], &deep, false).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(code(&answer), "BAD_REQUEST", "{}", answer.body);
    for harmless in [
        json!(null),
        json!({ "\u{0}": "\u{0}" }),
        json!({ "k": "x".repeat(100_000) }),
    ] {
        let body = json!({ "query": "{ stock }", "extensions": harmless }).to_string();
        let answer = post(&addr, &["content-type: application/json"], &body, false).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert_eq!(subgraph.requests().len(), 3);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
