//! `stockChanged` end to end: `grocery dev` with events through Redis, two
//! anonymous subscribers through the gateway (one over `graphql-transport-ws`,
//! one over GraphQL over SSE) see a product's availability drop when a
//! customer checks out and rise when the order is cancelled, with the
//! product's name (catalog) and price (inventory) resolved for every event.

mod support;

use std::time::Duration;

use futures::SinkExt;
use kit::testing::{TestDatabase, redis_url};
use serde_json::{Value, json};
use support::{PATIENCE, Socket, eventually, gql, next_message, ok};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const WATCH: &str = "subscription($skus: [String!]) { stockChanged(skus: $skus) { \
    sku available product { name unitPrice } } }";

/// A `graphql-transport-ws` subscription without any token.
async fn anonymous_ws(port: u16, skus: Value) -> Socket {
    let mut request = format!("ws://127.0.0.1:{port}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": {} });
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_message(&mut ws).await["type"], "connection_ack");
    let subscribe = json!({ "id": "1", "type": "subscribe",
        "payload": { "query": WATCH, "variables": { "skus": skus } } });
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    ws
}

/// A GraphQL over SSE subscription (distinct connection mode) without any token.
struct Sse {
    stream: tokio::net::TcpStream,
    buffer: String,
}

impl Sse {
    async fn open(port: u16, skus: Value) -> Self {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let body = json!({ "query": WATCH, "variables": { "skus": skus } }).to_string();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             accept: text/event-stream\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        Self {
            stream,
            buffer: String::new(),
        }
    }

    /// The next `next` event's payload.
    async fn next(&mut self) -> Value {
        loop {
            // Chunk framing aside, every event is `event: next\ndata: {json}\n\n`.
            if let Some(at) = self.buffer.find("data: {") {
                let rest = &self.buffer[at + 6..];
                if let Some(end) = rest.find('\n') {
                    let value: Value = serde_json::from_str(rest[..end].trim()).unwrap();
                    self.buffer = rest[end..].to_owned();
                    return value;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
                .await
                .expect("an SSE event in time")
                .unwrap();
            assert!(n > 0, "the SSE stream ended: {}", self.buffer);
            self.buffer.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }
}

/// Checks one `stockChanged` result and answers its availability.
fn available(result: &Value) -> i64 {
    assert!(result.get("errors").is_none(), "{result}");
    let event = &result["data"]["stockChanged"];
    assert_eq!(event["sku"], "APPLE", "{result}");
    assert_eq!(event["product"]["name"], "Gala Apples", "{result}");
    assert!(event["product"]["unitPrice"].is_string(), "{result}");
    event["available"].as_i64().unwrap()
}

async fn ws_available(ws: &mut Socket) -> i64 {
    let message = next_message(ws).await;
    assert_eq!(message["type"], "next", "{message}");
    available(&message["payload"])
}

/// Reads `next` until the availability is `want`; every value seen on the way
/// lies between where it was and `want` (nothing stale after the newest).
async fn until(mut next: impl AsyncFnMut() -> i64, from: i64, want: i64) {
    loop {
        let seen = next().await;
        assert!(
            (seen - from) * (want - from) >= 0 && (want - seen) * (want - from) >= 0,
            "{seen} is not between {from} and {want}"
        );
        if seen == want {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_subscribers_see_availability_drop_on_checkout_and_rise_on_cancel() {
    let db = TestDatabase::empty("public").await;
    let stream = format!("grocery:e2e:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(&db.config.url, &redis_url(), &stream, &[]);
    let gw = dev.gateway;
    let inventory = dev.urls.get("inventory").cloned().unwrap();
    let customer = support::customer(gw, "fridge-stock").await;
    let level = async || {
        let data = ok(gql(
            gw,
            None,
            "{ product(sku: \"APPLE\") { stock { available } } }",
            json!({}),
        )
        .await);
        data["product"]["stock"]["available"].as_i64().unwrap()
    };
    let before = level().await;

    let followers = support::bus_followers(&inventory).await;
    // Different arguments: two upstream subscriptions, one per transport.
    let mut ws = anonymous_ws(gw, json!(["APPLE"])).await;
    let mut sse = Sse::open(gw, json!(["APPLE", "MILK"])).await;
    eventually("both subscriptions follow the bus", async || {
        (support::bus_followers(&inventory).await >= followers + 2).then_some(())
    })
    .await;

    let preview = ok(gql(
        gw,
        Some(&customer),
        "mutation { previewOrder(items: [{ sku: \"APPLE\", quantity: 3 }]) { id } }",
        json!({}),
    )
    .await);
    let id = preview["previewOrder"]["id"].as_str().unwrap().to_owned();
    let confirmed = ok(gql(
        gw,
        Some(&customer),
        "mutation($id: ID!) { confirmOrder(orderId: $id) { status } }",
        json!({ "id": id }),
    )
    .await);
    assert_eq!(confirmed["confirmOrder"]["status"], "CONFIRMED");
    let bought = level().await;
    assert_eq!(bought, before - 3);
    until(async || ws_available(&mut ws).await, before, bought).await;
    until(async || available(&sse.next().await), before, bought).await;

    let cancelled = ok(gql(
        gw,
        Some(&customer),
        "mutation($id: ID!) { cancelOrder(orderId: $id) { status } }",
        json!({ "id": id }),
    )
    .await);
    assert_eq!(cancelled["cancelOrder"]["status"], "CANCELLED");
    assert_eq!(level().await, before);
    until(async || ws_available(&mut ws).await, bought, before).await;
    until(async || available(&sse.next().await), bought, before).await;

    // Nothing older arrives after the newest value.
    assert!(
        support::quiet_for(&mut ws, Duration::from_millis(500))
            .await
            .is_ok()
    );
}
