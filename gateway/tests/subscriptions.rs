//! Subscriptions through the gateway, over real sockets: a subgraph that owns
//! a subscription, another that owns the entity its events point at, and the
//! gateway between them and the client, over `graphql-transport-ws` and SSE
//! (`subscriptions/sse.rs`) and the older `graphql-ws`
//! (`subscriptions/legacy_ws.rs`).

mod support;
mod subscriptions {
    pub mod legacy_ws;
    pub mod sse;
}

use std::{sync::Arc, time::Duration};

use async_graphql::{EmptyMutation, ErrorExtensions, ID, Object, SimpleObject, Subscription};
use futures::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use testing::wait_until;
use tokio::{net::TcpStream, sync::broadcast};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(SimpleObject, Clone)]
#[graphql(unresolvable = "id")]
struct Item {
    id: ID,
}

#[derive(SimpleObject, Clone)]
struct Tick {
    n: i32,
    item: Item,
    /// Filler, to make events as large as a test needs.
    blob: String,
}

/// Events pushed by the test.
#[derive(Clone)]
struct Pushed(broadcast::Sender<i32>);

struct FeedQuery;

#[Object(name = "Query")]
impl FeedQuery {
    async fn hello(&self) -> &str {
        "hi"
    }
}

struct FeedSubscription;

#[Subscription(name = "Subscription")]
impl FeedSubscription {
    /// `count` ticks, `every_ms` apart, then the end.
    async fn ticks(&self, count: i32, every_ms: Option<i32>) -> impl Stream<Item = Tick> {
        let every = Duration::from_millis(every_ms.unwrap_or(5) as u64);
        futures::stream::iter(1..=count).then(move |n| async move {
            // Kept: a subgraph that sends at its own pace is the fixture.
            tokio::time::sleep(every).await;
            Tick {
                n,
                item: Item {
                    id: ID(format!("item-{}", n % 2)),
                },
                blob: String::new(),
            }
        })
    }

    /// One tick for every number the test pushes.
    async fn pushed(
        &self,
        ctx: &async_graphql::Context<'_>,
        size: Option<i32>,
    ) -> impl Stream<Item = Tick> + use<> {
        let rx = ctx.data_unchecked::<Pushed>().0.subscribe();
        let blob = "x".repeat(size.unwrap_or(0) as usize);
        futures::stream::unfold(rx, move |mut rx| {
            let blob = blob.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(n) => {
                            let tick = Tick {
                                n,
                                item: Item {
                                    id: ID(format!("item-{}", n % 2)),
                                },
                                blob: blob.clone(),
                            };
                            return Some((tick, rx));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
    }

    /// Refuses at once, as a subgraph refuses a caller it does not know.
    async fn refused(&self) -> async_graphql::Result<futures::stream::Empty<Tick>> {
        Err(async_graphql::Error::new("not yours").extend_with(|_, e| e.set("code", "FORBIDDEN")))
    }
}

struct ItemsQuery;

#[Object(name = "Query")]
impl ItemsQuery {
    #[graphql(entity)]
    async fn find_item_by_id(&self, id: ID) -> Item2 {
        Item2 { id }
    }
}

/// The items subgraph's `Item`: it owns `name`.
struct Item2 {
    id: ID,
}

#[Object(name = "Item")]
impl Item2 {
    async fn id(&self) -> &ID {
        &self.id
    }
    async fn name(&self) -> String {
        format!("name of {}", self.id.0)
    }
}

struct Stack {
    base: String,
    pushed: Pushed,
    feed: support::Process,
    _items: support::Process,
    gateway: Arc<gateway::Gateway>,
}

async fn stack(options: gateway::GatewayOptions) -> Stack {
    stack_with(options, None).await
}

async fn stack_with(
    options: gateway::GatewayOptions,
    verifier: Option<Arc<gateway::pipeline::auth::EdgeAuth>>,
) -> Stack {
    let (tx, _) = broadcast::channel(1024);
    let pushed = Pushed(tx);
    let feed_schema = async_graphql::Schema::build(FeedQuery, EmptyMutation, FeedSubscription)
        .data(pushed.clone())
        .enable_subscription_in_federation()
        .finish();
    let items_schema =
        async_graphql::Schema::build(ItemsQuery, EmptyMutation, async_graphql::EmptySubscription)
            .finish();
    let (feed, feed_process) = support::serve_with_subscriptions("feed", feed_schema);
    let (items, items_process) = support::serve_with_subscriptions("items", items_schema);
    let sdl = support::supergraph(&[&feed, &items]);
    let gateway = Arc::new(gateway::Gateway::new(&sdl, verifier, &options).unwrap());
    let base = support::listen(gateway.clone()).await;
    Stack {
        base,
        pushed,
        feed: feed_process,
        _items: items_process,
        gateway,
    }
}

async fn connect(base: &str) -> Socket {
    let mut request = format!("{}/graphql", base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (socket, response) = connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    socket
}

async fn send(ws: &mut Socket, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

/// The next protocol message (pings answered and skipped), or the close frame as `{"close": code, "reason": …}`.
async fn recv(ws: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("the socket ended")
            .expect("socket error");
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" {
                    send(ws, json!({ "type": "pong" })).await;
                    continue;
                }
                return value;
            }
            Message::Close(frame) => {
                let frame = frame.expect("a close frame with a code");
                return json!({ "close": u16::from(frame.code), "reason": frame.reason.as_str() });
            }
            _ => continue,
        }
    }
}

async fn ready_socket(base: &str) -> Socket {
    let mut ws = connect(base).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(recv(&mut ws).await, json!({ "type": "connection_ack" }));
    ws
}

const TICKS: &str = "subscription($count: Int!) { ticks(count: $count) { n item { id name } } }";

#[tokio::test]
async fn a_websocket_subscription_gets_every_event_with_fields_of_other_subgraphs() {
    let stack = stack(Default::default()).await;
    let mut ws = ready_socket(&stack.base).await;
    send(
        &mut ws,
        json!({ "id": "a", "type": "subscribe", "payload": { "query": TICKS, "variables": { "count": 3 } } }),
    )
    .await;
    for n in 1..=3 {
        let message = recv(&mut ws).await;
        assert_eq!(
            message,
            json!({ "id": "a", "type": "next", "payload": { "data": { "ticks": {
                "n": n,
                "item": { "id": format!("item-{}", n % 2), "name": format!("name of item-{}", n % 2) },
            } } } }),
        );
    }
    assert_eq!(
        recv(&mut ws).await,
        json!({ "id": "a", "type": "complete" })
    );
    // The slot is given back.
    wait_until("0 client subscription(s) open", async || {
        stack.gateway.subscriptions.open() == 0
    })
    .await;
}

#[tokio::test]
async fn queries_run_over_the_websocket_too_and_bad_operations_get_an_error_message() {
    let stack = stack(Default::default()).await;
    let mut ws = ready_socket(&stack.base).await;
    send(
        &mut ws,
        json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ hello }" } }),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({ "id": "q", "type": "next", "payload": { "data": { "hello": "hi" } } })
    );
    assert_eq!(
        recv(&mut ws).await,
        json!({ "id": "q", "type": "complete" })
    );
    send(
        &mut ws,
        json!({ "id": "bad", "type": "subscribe", "payload": { "query": "subscription { nope }" } }),
    )
    .await;
    let error = recv(&mut ws).await;
    assert_eq!(error["id"], "bad");
    assert_eq!(error["type"], "error");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    // A refusal by the subgraph reaches the client as its error.
    send(
        &mut ws,
        json!({ "id": "r", "type": "subscribe", "payload": { "query": "subscription { refused { n } }" } }),
    )
    .await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["id"], "r");
    let errors = if refused["type"] == "error" {
        refused["payload"].clone()
    } else {
        assert_eq!(refused["type"], "next", "{refused}");
        refused["payload"]["errors"].clone()
    };
    assert_eq!(errors[0]["message"], "not yours", "{refused}");
    assert_eq!(errors[0]["extensions"]["serviceName"], "feed");
}

#[tokio::test]
async fn the_client_can_stop_a_subscription_and_the_id_can_be_reused() {
    let stack = stack(Default::default()).await;
    let mut ws = ready_socket(&stack.base).await;
    let pushed = json!({ "query": "subscription { pushed { n } }" });
    send(
        &mut ws,
        json!({ "id": "p", "type": "subscribe", "payload": pushed }),
    )
    .await;
    wait_until("1 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 1
    })
    .await;
    stack.pushed.0.send(7).unwrap();
    assert_eq!(recv(&mut ws).await["payload"]["data"]["pushed"]["n"], 7);
    send(&mut ws, json!({ "id": "p", "type": "complete" })).await;
    // The upstream subscription is closed too.
    wait_until("0 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 0
    })
    .await;
    assert_eq!(stack.gateway.subscriptions.open(), 0);
    send(
        &mut ws,
        json!({ "id": "p", "type": "subscribe", "payload": pushed }),
    )
    .await;
    wait_until("1 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 1
    })
    .await;
    stack.pushed.0.send(8).unwrap();
    assert_eq!(recv(&mut ws).await["payload"]["data"]["pushed"]["n"], 8);
}

#[tokio::test]
async fn protocol_violations_close_with_the_protocols_codes() {
    let stack = stack(gateway::GatewayOptions {
        subscriptions: gateway::subscriptions::SubscriptionOptions {
            init_timeout: Duration::from_millis(300),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ hello }" } });

    let mut ws = connect(&stack.base).await;
    send(&mut ws, subscribe.clone()).await;
    assert_eq!(recv(&mut ws).await["close"], 4401);

    let mut ws = ready_socket(&stack.base).await;
    send(&mut ws, json!({ "type": "connection_init" })).await;
    assert_eq!(recv(&mut ws).await["close"], 4429);

    let mut ws = connect(&stack.base).await;
    let silent = recv(&mut ws).await;
    assert_eq!(silent["close"], 4408, "{silent}");

    let mut ws = ready_socket(&stack.base).await;
    send(&mut ws, json!({ "type": "what" })).await;
    assert_eq!(recv(&mut ws).await["close"], 4400);

    let mut ws = ready_socket(&stack.base).await;
    let pushed = json!({ "id": "x", "type": "subscribe", "payload": { "query": "subscription { pushed { n } }" } });
    send(&mut ws, pushed.clone()).await;
    send(&mut ws, pushed).await;
    let duplicate = recv(&mut ws).await;
    assert_eq!(duplicate["close"], 4409);
    assert_eq!(duplicate["reason"], "Subscriber for x already exists");
}

#[tokio::test]
async fn subscriptions_are_limited_per_connection_and_per_user() {
    use auth::{KeyRing, RoleName, SigningKey, TokenSettings, Verifier};
    let keys = KeyRing::with_signing_key(SigningKey::generate().unwrap().0);
    let verifier = Verifier::new(&keys, &TokenSettings::default()).unwrap();
    let stack = stack_with(
        gateway::GatewayOptions {
            subscriptions: gateway::subscriptions::SubscriptionOptions {
                per_connection: 2,
                per_user: 3,
                ..Default::default()
            },
            ..Default::default()
        },
        Some(Arc::new(gateway::pipeline::auth::EdgeAuth::Keys(Arc::new(
            verifier,
        )))),
    )
    .await;
    let user = uuid::Uuid::new_v4();
    let token = testing::access_token(&keys, user, RoleName::from_static("CUSTOMER"));
    let pushed = |id: &str| json!({ "id": id, "type": "subscribe", "payload": { "query": "subscription { pushed { n } }" } });

    let mut first = connect(&stack.base).await;
    send(&mut first, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    assert_eq!(recv(&mut first).await["type"], "connection_ack");
    send(&mut first, pushed("1")).await;
    send(&mut first, pushed("2")).await;
    send(&mut first, pushed("3")).await;
    let refused = recv(&mut first).await;
    assert_eq!(refused["id"], "3");
    assert_eq!(refused["type"], "error");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "SUBSCRIPTION_LIMIT"
    );

    let mut second = connect(&stack.base).await;
    send(&mut second, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    assert_eq!(recv(&mut second).await["type"], "connection_ack");
    send(&mut second, pushed("a")).await;
    send(&mut second, pushed("b")).await;
    let refused = recv(&mut second).await;
    assert_eq!(refused["id"], "b");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "SUBSCRIPTION_LIMIT"
    );
    assert!(
        refused["payload"][0]["message"]
            .as_str()
            .unwrap()
            .contains("per user")
    );
    assert_eq!(stack.gateway.subscriptions.open(), 3);

    // A refused token never gets an ack.
    let mut third = connect(&stack.base).await;
    send(
        &mut third,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer nonsense" } }),
    )
    .await;
    assert_eq!(recv(&mut third).await["close"], 4403);

    // Closing a connection frees its user's slots.
    drop(first);
    wait_until("1 client subscription(s) open", async || {
        stack.gateway.subscriptions.open() == 1
    })
    .await;
    send(&mut second, pushed("c")).await;
    wait_until("2 client subscription(s) open", async || {
        stack.gateway.subscriptions.open() == 2
    })
    .await;
}

#[tokio::test]
async fn identical_subscriptions_share_one_upstream_subscription() {
    let stack = stack(Default::default()).await;
    let subscribe = |id: &str, size: i32| {
        json!({ "id": id, "type": "subscribe", "payload": {
        "query": "subscription($size: Int) { pushed(size: $size) { n item { name } } }",
        "variables": { "size": size } } })
    };
    let mut first = ready_socket(&stack.base).await;
    let mut second = ready_socket(&stack.base).await;
    send(&mut first, subscribe("1", 0)).await;
    send(&mut second, subscribe("2", 0)).await;
    wait_until("2 client subscription(s) open", async || {
        stack.gateway.subscriptions.open() == 2
    })
    .await;
    wait_until("1 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 1
    })
    .await;
    assert_eq!(stack.gateway.subscriptions.upstream(), 1);
    // Other variables: another upstream subscription.
    send(&mut second, subscribe("3", 1)).await;
    wait_until("2 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 2
    })
    .await;
    assert_eq!(stack.gateway.subscriptions.upstream(), 2);

    stack.pushed.0.send(5).unwrap();
    let expected = |id: &str| {
        json!({ "id": id, "type": "next", "payload": { "data": { "pushed": {
        "n": 5, "item": { "name": "name of item-1" } } } } })
    };
    assert_eq!(recv(&mut first).await, expected("1"));
    let mut on_second = [recv(&mut second).await, recv(&mut second).await];
    on_second.sort_by_key(|m| m["id"].as_str().unwrap().to_owned());
    assert_eq!(on_second, [expected("2"), expected("3")]);

    // One leaves: the other still gets events from the same upstream.
    send(&mut first, json!({ "id": "1", "type": "complete" })).await;
    wait_until("2 client subscription(s) open", async || {
        stack.gateway.subscriptions.open() == 2
    })
    .await;
    assert_eq!(stack.pushed.0.receiver_count(), 2);
    stack.pushed.0.send(6).unwrap();
    let mut on_second = [recv(&mut second).await, recv(&mut second).await];
    on_second.sort_by_key(|m| m["id"].as_str().unwrap().to_owned());
    assert_eq!(on_second[0]["payload"]["data"]["pushed"]["n"], 6);
    assert_eq!(on_second[1]["payload"]["data"]["pushed"]["n"], 6);
    assert!(
        quiet(&mut first).await,
        "the client that left gets nothing more"
    );
    // The last one leaves: the upstream subscriptions close.
    drop(second);
    wait_until("0 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 0
    })
    .await;
    assert_eq!(stack.gateway.subscriptions.upstream(), 0);
}

/// Whether nothing arrives within 300 ms.
async fn quiet(ws: &mut Socket) -> bool {
    tokio::time::timeout(Duration::from_millis(300), ws.next())
        .await
        .is_err()
}

#[tokio::test]
async fn a_lost_subgraph_ends_the_subscription_with_an_error_and_complete() {
    let mut stack = stack(Default::default()).await;
    let mut ws = ready_socket(&stack.base).await;
    send(
        &mut ws,
        json!({ "id": "p", "type": "subscribe", "payload": { "query": "subscription { pushed { n } }" } }),
    )
    .await;
    wait_until("1 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 1
    })
    .await;
    stack.feed.kill();
    let started = std::time::Instant::now();
    let message = recv(&mut ws).await;
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"],
        "SUBREQUEST_HTTP_ERROR"
    );
    assert_eq!(
        recv(&mut ws).await,
        json!({ "id": "p", "type": "complete" })
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_instead_of_buffered_forever() {
    let stack = stack(gateway::GatewayOptions {
        subscriptions: gateway::subscriptions::SubscriptionOptions {
            buffer: 8,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut ws = ready_socket(&stack.base).await;
    send(
        &mut ws,
        json!({ "id": "p", "type": "subscribe", "payload": { "query": "subscription { pushed(size: 65536) { n blob } }" } }),
    )
    .await;
    wait_until("1 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 1
    })
    .await;
    // Far more than socket buffers hold, while the client reads nothing.
    let mut pushed = 0;
    let closed_at = loop {
        for _ in 0..20 {
            let _ = stack.pushed.0.send(pushed);
            pushed += 1;
        }
        // Kept: paces the producer so the gateway's writer runs; the bound
        // on `pushed` below fails the test if the gateway never gives up.
        tokio::time::sleep(Duration::from_millis(10)).await;
        if stack.pushed.0.receiver_count() == 0 {
            break pushed;
        }
        assert!(
            pushed < 2_000_000,
            "the gateway never gave up on the client"
        );
    };
    // Reading again: what was buffered, then the close frame.
    let mut received = 0;
    let code = loop {
        let message = recv(&mut ws).await;
        if let Some(code) = message.get("close") {
            break code.clone();
        }
        received += 1;
    };
    assert_eq!(code, 1008);
    assert!(received < closed_at, "{received} of {closed_at}");
}

#[tokio::test]
async fn graphql_over_sse_streams_events_then_complete() {
    let stack = stack(Default::default()).await;
    let client = http_client(&stack.base).await;
    let body = client
        .post_sse(json!({ "query": TICKS, "variables": { "count": 2 } }))
        .await;
    let events: Vec<(String, String)> = body
        .split("\n\n")
        .filter(|e| !e.trim().is_empty() && !e.starts_with(':'))
        .map(|e| {
            let mut name = String::new();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v.to_owned();
                } else if line == "data:" {
                    data.clear();
                }
            }
            (name, data)
        })
        .collect();
    assert_eq!(events.len(), 3, "{body}");
    for (n, (name, data)) in events.iter().take(2).enumerate() {
        let n = n as i64 + 1;
        assert_eq!(name, "next");
        let data: Value = serde_json::from_str(data).unwrap();
        assert_eq!(data["data"]["ticks"]["n"], n);
        assert_eq!(
            data["data"]["ticks"]["item"]["name"],
            format!("name of item-{}", n % 2)
        );
    }
    assert_eq!(events[2].0, "complete");

    // Without text/event-stream, a subscription is refused, not hung.
    let (status, refused) = client
        .post_json(json!({ "query": TICKS, "variables": { "count": 1 } }))
        .await;
    assert_eq!(status, 406);
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}

/// A tiny HTTP/1.1 client over hyper for the SSE test.
struct Http {
    base: String,
}

async fn http_client(base: &str) -> Http {
    Http {
        base: base.to_owned(),
    }
}

impl Http {
    async fn request(&self, body: Value, accept: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.base.trim_start_matches("http://"))
            .await
            .unwrap();
        let body = body.to_string();
        let request = format!(
            "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\naccept: {accept}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
            .await
            .expect("the response did not end")
            .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, body)
    }

    async fn post_sse(&self, body: Value) -> String {
        let (status, body) = self.request(body, "text/event-stream").await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn post_json(&self, body: Value) -> (u16, Value) {
        let (status, body) = self.request(body, "application/json").await;
        (status, serde_json::from_str(&body).unwrap())
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((size, rest)) = body.split_once("\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

#[tokio::test]
async fn subscribing_is_rate_limited_and_partners_subscribe_with_trusted_documents_only() {
    use auth::{KeyRing, RoleName, SigningKey, TokenSettings, Verifier};
    let keys = KeyRing::with_signing_key(SigningKey::generate().unwrap().0);
    let verifier = Verifier::new(&keys, &TokenSettings::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("grocery-ws-manifests-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let trusted = "subscription Trusted { pushed { n } }";
    let manifest = json!({
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{ "id": "trusted-1", "name": "Trusted", "type": "subscription", "body": trusted }],
    });
    std::fs::write(dir.join("partner.json"), manifest.to_string()).unwrap();
    let stack = stack_with(
        gateway::GatewayOptions {
            persisted: gateway::pipeline::persisted::PersistedOptions {
                manifests: Some(dir.clone()),
                only_roles: vec![RoleName::from_static("PARTNER")],
                ..Default::default()
            },
            rate_limits: gateway::pipeline::ratelimit::RateLimits::parse(
                "ip.*=off,user.subscription=1/m:2",
            )
            .unwrap(),
            ..Default::default()
        },
        Some(Arc::new(gateway::pipeline::auth::EdgeAuth::Keys(Arc::new(
            verifier,
        )))),
    )
    .await;
    let token = testing::access_token(
        &keys,
        uuid::Uuid::new_v4(),
        RoleName::from_static("PARTNER"),
    );
    let mut ws = connect(&stack.base).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");

    send(&mut ws, json!({ "id": "free", "type": "subscribe", "payload": { "query": "subscription { pushed { n } }" } })).await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["id"], "free");
    assert_eq!(refused["type"], "error");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "PERSISTED_QUERY_REQUIRED"
    );

    send(
        &mut ws,
        json!({ "id": "ok", "type": "subscribe", "payload": { "documentId": "trusted-1" } }),
    )
    .await;
    wait_until("1 client subscription(s) open", async || {
        stack.gateway.subscriptions.open() == 1
    })
    .await;
    // The refused attempt used no rate; the second subscription is the burst's last.
    send(
        &mut ws,
        json!({ "id": "ok2", "type": "subscribe", "payload": { "documentId": "trusted-1" } }),
    )
    .await;
    wait_until("2 client subscription(s) open", async || {
        stack.gateway.subscriptions.open() == 2
    })
    .await;
    send(
        &mut ws,
        json!({ "id": "over", "type": "subscribe", "payload": { "documentId": "trusted-1" } }),
    )
    .await;
    let limited = recv(&mut ws).await;
    assert_eq!(limited["id"], "over", "{limited}");
    assert_eq!(limited["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(
        limited["payload"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
