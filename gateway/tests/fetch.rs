//! The subgraph client against real HTTP servers on loopback.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::ConnectInfo,
    http::{HeaderMap, header},
    response::IntoResponse,
    routing::post,
};
use gateway::subgraph::{Endpoint, FetchError, SubgraphClient, SubgraphRequest};
use serde_json::{Value, json};
use testing::wait_until;

/// Serves `router` on a free loopback port; returns its /graphql URL.
async fn serve(router: Router) -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}/graphql").parse().unwrap()
}

fn request(headers: HeaderMap) -> SubgraphRequest<'static> {
    SubgraphRequest {
        query: "query Q($n: Int) { n }",
        operation_name: Some("Q"),
        variables: gateway::value::Value::from(json!({ "n": 7 })),
        headers,
        shareable: true,
        idempotent: true,
    }
}

#[tokio::test]
async fn sends_the_operation_and_forwards_only_the_request_context_headers() {
    let seen_ports = Arc::new(Mutex::new(BTreeSet::new()));
    let ports = seen_ports.clone();
    let url = serve(Router::new().route(
        "/graphql",
        post(
            move |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                  headers: HeaderMap,
                  Json(body): Json<Value>| {
                ports.lock().unwrap().insert(peer.port());
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    (
                        [(header::CONTENT_TYPE, "application/graphql-response+json")],
                        Json(json!({ "data": {
                        "body": body,
                        "authorization": header("authorization"),
                        "requestId": header("x-request-id"),
                        "traceparent": header("traceparent"),
                        "cookie": header("cookie"),
                    } })),
                    )
                        .into_response()
                }
            },
        ),
    ))
    .await;
    let client = SubgraphClient::new(Duration::from_secs(5));
    let mut headers = HeaderMap::new();
    headers.insert("authorization", "Bearer abc".parse().unwrap());
    headers.insert("x-request-id", "req-1".parse().unwrap());
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    headers.insert("cookie", "session=secret".parse().unwrap());
    let response = client.fetch(&url, request(headers.clone())).await.unwrap();
    assert!(response.errors.is_empty());
    let data = &Value::from(&response.data);
    assert_eq!(
        data["body"],
        json!({ "query": "query Q($n: Int) { n }", "operationName": "Q", "variables": { "n": 7 } })
    );
    assert_eq!(data["authorization"], "Bearer abc");
    assert_eq!(data["requestId"], "req-1");
    assert!(data["traceparent"].as_str().unwrap().starts_with("00-4bf9"));
    assert_eq!(
        data["cookie"], "",
        "only the request-context headers are forwarded"
    );
    // Keep-alive: sequential requests reuse the pooled connection.
    for _ in 0..20 {
        client.fetch(&url, request(headers.clone())).await.unwrap();
    }
    assert_eq!(
        seen_ports.lock().unwrap().len(),
        1,
        "one connection for 21 requests"
    );
}

#[tokio::test]
async fn a_slow_subgraph_times_out_and_a_missing_one_is_unreachable() {
    let slow = serve(Router::new().route(
        "/graphql",
        post(|| async {
            // Kept: a subgraph slower than the client's timeout is the fixture.
            tokio::time::sleep(Duration::from_secs(3)).await;
            Json(json!({ "data": null }))
        }),
    ))
    .await;
    let client = SubgraphClient::new(Duration::from_millis(200));
    let started = std::time::Instant::now();
    assert_eq!(
        client.fetch(&slow, request(HeaderMap::new())).await,
        Err(FetchError::Timeout(Duration::from_millis(200)))
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    let gone = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let url: Endpoint = format!("http://{gone}/graphql").parse().unwrap();
    assert!(matches!(
        client.fetch(&url, request(HeaderMap::new())).await,
        Err(FetchError::Unreachable(_))
    ));
}

#[tokio::test]
async fn a_subgraph_answering_html_is_an_error_not_data() {
    let html = serve(Router::new().route(
        "/graphql",
        post(|| async {
            (
                [(header::CONTENT_TYPE, "text/html")],
                "<h1>maintenance</h1>",
            )
                .into_response()
        }),
    ))
    .await;
    let client = SubgraphClient::new(Duration::from_secs(5));
    assert_eq!(
        client.fetch(&html, request(HeaderMap::new())).await,
        Err(FetchError::MediaType("text/html".into()))
    );
}

/// A subgraph that answers after `delay`, counting the requests it got;
/// it answers with the count at the time and the caller's token.
async fn counting(delay: Duration) -> (Endpoint, Arc<std::sync::atomic::AtomicUsize>) {
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    let url = serve(Router::new().route(
        "/graphql",
        post(move |headers: HeaderMap| {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                // Kept: a subgraph that takes `delay` is the fixture.
                tokio::time::sleep(delay).await;
                let token = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                Json(json!({ "data": { "n": n, "token": token } }))
            }
        }),
    ))
    .await;
    (url, count)
}

fn query(token: &str, shareable: bool) -> SubgraphRequest<'static> {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", token.parse().unwrap());
    headers.insert(
        "x-request-id",
        uuid::Uuid::new_v4().to_string().parse().unwrap(),
    );
    SubgraphRequest {
        shareable,
        ..request(headers)
    }
}

#[tokio::test]
async fn identical_queries_in_flight_share_one_fetch_and_nothing_else_does() {
    use std::sync::atomic::Ordering::SeqCst;
    let (url, count) = counting(Duration::from_millis(150)).await;
    let client = SubgraphClient::new(Duration::from_secs(5)).deduplicating(true);
    let fetch = |token: &'static str, shareable: bool| {
        let (client, url) = (client.clone(), url.clone());
        async move { client.fetch(&url, query(token, shareable)).await.unwrap() }
    };
    // Ten identical queries at once (request ids differ): one fetch, ten answers.
    let answers = futures::future::join_all((0..10).map(|_| fetch("Bearer a", true))).await;
    assert_eq!(count.load(SeqCst), 1);
    assert!(
        answers
            .iter()
            .all(|a| a.data["n"] == gateway::value::Value::from(json!(1)))
    );
    // Another caller's token is another request.
    let (a, b) = tokio::join!(fetch("Bearer a", true), fetch("Bearer b", true));
    assert_eq!(
        count.load(SeqCst),
        3,
        "one per token, and the first batch is over"
    );
    assert_eq!(Value::from(&b.data)["token"], "Bearer b");
    assert_eq!(Value::from(&a.data)["token"], "Bearer a");
    // What is not shareable (a mutation) always goes out.
    futures::future::join_all((0..4).map(|_| fetch("Bearer a", false))).await;
    assert_eq!(count.load(SeqCst), 7);
    // Without deduplication every query goes out.
    let plain = SubgraphClient::new(Duration::from_secs(5));
    futures::future::join_all((0..3).map(|_| plain.fetch(&url, query("Bearer a", true)))).await;
    assert_eq!(count.load(SeqCst), 10);
}

#[tokio::test]
async fn a_shared_fetch_nobody_waits_for_any_more_is_not_handed_to_a_newcomer() {
    use std::sync::atomic::Ordering::SeqCst;
    let (url, count) = counting(Duration::from_millis(300)).await;
    let client = SubgraphClient::new(Duration::from_secs(5)).deduplicating(true);
    // Its only caller gives up before the answer.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        client.fetch(&url, query("Bearer a", true)),
    )
    .await;
    assert!(gave_up.is_err());
    let answer = client.fetch(&url, query("Bearer a", true)).await.unwrap();
    assert_eq!(
        count.load(SeqCst),
        2,
        "the newcomer's request went out anew"
    );
    assert_eq!(answer.data["n"], gateway::value::Value::from(json!(2)));
}

/// A subgraph speaking raw HTTP/1.1 that answers each connection's first
/// request and then closes it, having said so (`Connection: close`) or
/// without a word (as a keep-alive timeout does). Counts the connections,
/// and those it has closed.
async fn one_answer_per_connection(
    announce_close: bool,
) -> (
    Endpoint,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let closed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (counted, closes_counted) = (connections.clone(), closed.clone());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let closes = closes_counted.clone();
            tokio::spawn(async move {
                // The head is enough: the body is not read.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&buf[..read]),
                    }
                }
                let body = format!(r#"{{"data":{{"connection":{n}}}}}"#);
                let close = if announce_close {
                    "connection: close\r\n"
                } else {
                    ""
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{close}content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
                let _ = socket.shutdown().await;
                closes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
    });
    (
        format!("http://{addr}/graphql").parse().unwrap(),
        connections,
        closed,
    )
}

#[tokio::test]
async fn a_connection_the_subgraph_closed_is_never_sent_on_again() {
    for announce_close in [true, false] {
        let (url, connections, closed) = one_answer_per_connection(announce_close).await;
        let client = SubgraphClient::new(Duration::from_secs(5));
        for i in 1..=4 {
            let answer = client
                .fetch(&url, request(HeaderMap::new()))
                .await
                .unwrap_or_else(|e| panic!("fetch {i} (close announced: {announce_close}): {e}"));
            assert_eq!(
                answer.data,
                gateway::value::Value::from(json!({ "connection": i })),
                "each fetch on a fresh connection"
            );
            // The close is on its way to the pooled connection.
            wait_until("the subgraph to close its end", async || {
                closed.load(std::sync::atomic::Ordering::SeqCst) == i
            })
            .await;
        }
        assert_eq!(
            connections.load(std::sync::atomic::Ordering::SeqCst),
            4,
            "one connection per answer (close announced: {announce_close})"
        );
    }
}

#[tokio::test]
async fn a_fetch_cut_off_by_its_timeout_leaves_no_connection_behind() {
    // Slow the first time only: the connection the timed-out fetch used
    // must not be taken up again by the next one.
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let url = serve(Router::new().route(
        "/graphql",
        post(
            move |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    // Kept: a first answer slower than the fetch's timeout is the fixture.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Json(json!({ "data": { "port": peer.port() } }))
            },
        ),
    ))
    .await;
    let client = SubgraphClient::new(Duration::from_millis(200));
    assert_eq!(
        client.fetch(&url, request(HeaderMap::new())).await,
        Err(FetchError::Timeout(Duration::from_millis(200)))
    );
    let answer = client.fetch(&url, request(HeaderMap::new())).await.unwrap();
    let again = client.fetch(&url, request(HeaderMap::new())).await.unwrap();
    assert_eq!(
        answer.data, again.data,
        "after the timeout, one new connection, kept alive"
    );
}

/// What a scripted subgraph does with one request: the bytes it writes
/// (each written on its own, a few milliseconds apart), and whether it
/// closes the connection afterwards.
struct Script {
    writes: Vec<Vec<u8>>,
    close: bool,
}

/// A subgraph speaking raw HTTP/1.1: for the `n`th request (from 1, over
/// all connections) it does what `script(n)` says. Reads each request
/// whole (head and `content-length` body). Counts connections and requests.
async fn scripted(
    script: impl Fn(usize) -> Script + Send + Sync + 'static,
) -> (
    Endpoint,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (conns, reqs) = (connections.clone(), requests.clone());
    let script = Arc::new(script);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            conns.fetch_add(1, SeqCst);
            let (reqs, script) = (reqs.clone(), script.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request: its head, then its content-length body.
                    let head_end = loop {
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + length);
                    let Script { writes, close } = script(reqs.fetch_add(1, SeqCst) + 1);
                    for write in writes {
                        if socket.write_all(&write).await.is_err() {
                            return;
                        }
                        // Kept: each write arrives on its own, which is the point of the script.
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                    if close {
                        let _ = socket.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    (
        format!("http://{addr}/graphql").parse().unwrap(),
        connections,
        requests,
    )
}

fn bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

#[tokio::test]
async fn chunked_answers_and_interim_answers_are_read_whole_on_a_kept_connection() {
    use std::sync::atomic::Ordering::SeqCst;
    let (url, connections, _) = scripted(|n| Script {
        writes: vec![
            bytes("HTTP/1.1 100 Continue\r\n\r\n"),
            bytes("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"),
            bytes("b\r\n{\"data\":{\"n\r\n"),
            format!("3;x=y\r\n\":{n}\r\n2\r\n}}}}\r\n0\r\n\r\n").into_bytes(),
        ],
        close: false,
    })
    .await;
    let client = SubgraphClient::new(Duration::from_secs(5));
    for n in 1..=3 {
        let answer = client.fetch(&url, request(HeaderMap::new())).await.unwrap();
        assert_eq!(
            answer.data,
            gateway::value::Value::from(json!({ "n": n })),
            "answer {n}"
        );
    }
    assert_eq!(connections.load(SeqCst), 1, "one connection kept alive");
}

#[tokio::test]
async fn an_answer_without_a_length_ends_with_its_connection() {
    use std::sync::atomic::Ordering::SeqCst;
    let (url, connections, _) = scripted(|n| Script {
        writes: vec![
            bytes("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"data\":"),
            format!("{{\"n\":{n}}}}}").into_bytes(),
        ],
        close: true,
    })
    .await;
    let client = SubgraphClient::new(Duration::from_secs(5));
    for n in 1..=2 {
        let answer = client.fetch(&url, request(HeaderMap::new())).await.unwrap();
        assert_eq!(answer.data, gateway::value::Value::from(json!({ "n": n })));
    }
    assert_eq!(
        connections.load(SeqCst),
        2,
        "such a connection is not reused"
    );
}

#[tokio::test]
async fn a_query_the_subgraph_dropped_with_its_connection_is_sent_again_a_mutation_is_not() {
    use std::sync::atomic::Ordering::SeqCst;
    // The second request reaches a connection the subgraph then closes
    // without a word, as one whose keep-alive ran out at that moment.
    let answer = |n: usize| Script {
        writes: if n == 2 {
            vec![]
        } else {
            let body = format!(r#"{{"data":{{"n":{n}}}}}"#);
            vec![format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()]
        },
        close: n == 2,
    };
    for idempotent in [true, false] {
        let (url, connections, requests) = scripted(answer).await;
        let client = SubgraphClient::new(Duration::from_secs(5));
        let first = client.fetch(&url, request(HeaderMap::new())).await.unwrap();
        assert_eq!(first.data, gateway::value::Value::from(json!({ "n": 1 })));
        let again = client
            .fetch(
                &url,
                SubgraphRequest {
                    idempotent,
                    ..request(HeaderMap::new())
                },
            )
            .await;
        if idempotent {
            assert_eq!(
                again.unwrap().data,
                gateway::value::Value::from(json!({ "n": 3 })),
                "sent again, on a new connection"
            );
            assert_eq!(connections.load(SeqCst), 2);
        } else {
            assert!(
                matches!(again, Err(FetchError::Unreachable(_))),
                "a mutation may have been carried out: {again:?}"
            );
            assert_eq!(requests.load(SeqCst), 2, "sent once only");
        }
    }
}

#[tokio::test]
async fn a_malformed_or_oversized_answer_is_an_error() {
    let cases = [
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\n",
            "larger than",
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\n",
            "Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            "chunked",
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{\"data\"",
            "cut off",
        ),
        ("HTTP/1.1 two hundred\r\n\r\n", "malformed"),
    ];
    for (wire, expected) in cases {
        let (url, _, _) = scripted(move |_| Script {
            writes: vec![bytes(wire)],
            close: true,
        })
        .await;
        let client = SubgraphClient::new(Duration::from_secs(5));
        match client.fetch(&url, request(HeaderMap::new())).await {
            Err(FetchError::Body(message)) => {
                assert!(message.contains(expected), "{wire:?}: {message}")
            }
            other => panic!("{wire:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn no_more_connections_rest_after_a_burst_than_the_pool_keeps() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Answers each request after 100 ms; counts the connections the client closed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let closed = Arc::new(AtomicUsize::new(0));
    let counted = closed.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let closed = counted.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => {
                            closed.fetch_add(1, SeqCst);
                            return;
                        }
                        // A request fits one read here (small, on loopback).
                        Ok(_) => {
                            // Kept: answers that take a while make the burst overlap.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            let body = r#"{"data":{"n":1}}"#;
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            socket.write_all(answer.as_bytes()).await.unwrap();
                        }
                    }
                }
            });
        }
    });
    let url: Endpoint = format!("http://{addr}/graphql").parse().unwrap();
    let client = SubgraphClient::new(Duration::from_secs(5));
    let burst = gateway::subgraph::pool::MAX_IDLE + 6;
    let answers = futures::future::join_all((0..burst).map(|_| {
        client.fetch(
            &url,
            SubgraphRequest {
                shareable: false,
                ..request(HeaderMap::new())
            },
        )
    }))
    .await;
    assert!(answers.iter().all(Result::is_ok));
    wait_until("the pool to close what it does not keep", async || {
        closed.load(SeqCst) >= 6
    })
    .await;
    assert_eq!(
        closed.load(SeqCst),
        6,
        "{burst} connections opened, {} kept",
        gateway::subgraph::pool::MAX_IDLE
    );
}

#[tokio::test]
async fn one_url_with_different_static_headers_is_two_subgraphs_never_merged() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    // Held at a gate until the test opens it: both first fetches are in flight at once.
    let (open, gate) = tokio::sync::watch::channel(false);
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let url = serve(Router::new().route(
        "/graphql",
        post(move |headers: HeaderMap| {
            seen.fetch_add(1, SeqCst);
            let mut gate = gate.clone();
            async move {
                let _ = gate.wait_for(|open| *open).await;
                let tenant = headers
                    .get("x-tenant")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                Json(json!({ "data": { "tenant": tenant } }))
            }
        }),
    ))
    .await;
    let at = |tenant: &str| {
        let options = gateway::subgraph::SubgraphOptions {
            headers: vec![gateway::subgraph::options::static_header("x-tenant", tenant).unwrap()],
            ..Default::default()
        };
        Endpoint::new(url.url().clone(), &options)
            .unwrap()
            .named(tenant)
    };
    let (north, south) = (at("north"), at("south"));
    let metrics = Arc::new(gateway::metrics::Metrics::default());
    let client = SubgraphClient::new(Duration::from_secs(5))
        .deduplicating(true)
        .counting(metrics.clone());
    let joined = |tenant: &str| {
        metrics.render().contains(&format!(
            "grocery_gateway_subgraph_fetches_deduplicated_total{{subgraph=\"{tenant}\"}} 1\n"
        ))
    };
    let fetch = |to: &Endpoint| {
        let (client, to) = (client.clone(), to.clone());
        tokio::spawn(async move { client.fetch(&to, query("Bearer a", true)).await.unwrap() })
    };
    let running = [fetch(&north), fetch(&south), fetch(&north), fetch(&south)];
    wait_until(
        "one fetch per static header sent, the other joined",
        async || count.load(SeqCst) == 2 && joined("north") && joined("south"),
    )
    .await;
    open.send(true).unwrap();
    for (running, tenant) in running
        .into_iter()
        .zip(["north", "south", "north", "south"])
    {
        let answer = running.await.unwrap();
        assert_eq!(Value::from(&answer.data)["tenant"], tenant);
    }
    assert_eq!(count.load(SeqCst), 2, "the second of each joined its first");
}
