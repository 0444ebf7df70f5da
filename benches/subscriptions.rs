//! Subscription benchmark: `cargo bench --bench subscriptions`.
//!
//! `grocery dev` runs every subgraph (on its own PostgreSQL database and its
//! own Redis); one `grocery serve gateway` in front of them is the gateway
//! measured, in a process of its own so its memory is its own. This process
//! opens `BENCH_SUBSCRIBERS` (default 10,000) WebSocket connections to that
//! gateway, each subscribing to `orderStatusChanged` of one of
//! `BENCH_ORDERS` (default 100) orders of one customer, with a field the
//! users subgraph resolves per event. Then every order is confirmed, and
//! later cancelled, through the gateway: each change reaches its
//! subscribers.
//!
//! Printed: time to connect and subscribe everyone; the gateway's memory
//! before and with every subscriber, per connection; and per round the time
//! from sending the mutation to each delivery (p50/p99/max over every
//! subscriber), and how many deliveries arrived. Figures depend on the
//! machine: the subgraphs, the gateway and the 10,000 clients share its cores.

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use support::{gql, ok};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, protocol::WebSocketConfig,
};

const WATCH: &str = "subscription($id: ID!) { orderStatusChanged(orderId: $id) { \
    status order { number customer { deviceId } } } }";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One delivery: which order, which status, when.
type Delivery = (usize, String, Instant);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let subscribers = env_or("BENCH_SUBSCRIBERS", 10_000);
    let orders = env_or("BENCH_ORDERS", 100).max(1);
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:bench:{}", uuid::Uuid::new_v4().simple());
    // One service token for dev and the gateway: the gateway loads users' access changes with it.
    let dev = support::start_dev(
        &db.config.url,
        &redis.url(),
        &stream,
        &[("INTERNAL_RPC_TOKEN", "bench-service-token")],
    );

    // The gateway measured: its own process, the committed supergraph.
    let (gateway, port) = support::gateway_over(
        &dev,
        &redis.url(),
        &stream,
        "bench-service-token",
        &[
            ("SUBSCRIPTIONS_PER_USER", (subscribers + 1).to_string()),
            // One customer opens every subscription, from one address.
            ("RATE_LIMITS", "off".into()),
            ("RUST_LOG", "warn".into()),
        ],
    )
    .await;

    let token = support::customer(port, "fridge-bench").await;
    let mut ids = Vec::with_capacity(orders);
    for _ in 0..orders {
        let data = ok(gql(
            port,
            Some(&token),
            "mutation { previewOrder(items: [{ sku: \"APPLE\", quantity: 1 }]) { id } }",
            json!({}),
        )
        .await);
        ids.push(data["previewOrder"]["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = gateway.rss_kib();

    // Everyone connects (and is acknowledged), 200 at a time; then everyone
    // subscribes. Memory is read after each step, so the cost of a bare
    // connection and of a subscription on it show apart.
    let deliveries: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let gate = Arc::new(Semaphore::new(200));
    let started = Instant::now();
    let mut connecting = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let token = token.clone();
        connecting.push(tokio::spawn(async move {
            let ws = connect(port, &token).await;
            drop(permit);
            ws
        }));
    }
    let mut sockets = Vec::with_capacity(subscribers);
    for connected in connecting {
        sockets.push(connected.await.unwrap());
    }
    let connect_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected = gateway.rss_kib();

    let started = Instant::now();
    let mut clients = Vec::with_capacity(subscribers);
    for (i, mut ws) in sockets.into_iter().enumerate() {
        let (order, id) = (i % orders, ids[i % orders].clone());
        let deliveries = deliveries.clone();
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
            "query": WATCH, "variables": { "id": id } } });
        ws.send(Message::Text(subscribe.to_string().into()))
            .await
            .unwrap();
        clients.push(tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let value: Value = serde_json::from_str(&text).unwrap();
                match value["type"].as_str() {
                    Some("next") => {
                        let status = value["payload"]["data"]["orderStatusChanged"]["status"]
                            .as_str()
                            .unwrap_or("ERROR")
                            .to_owned();
                        deliveries
                            .lock()
                            .unwrap()
                            .push((order, status, Instant::now()));
                    }
                    Some("ping") => {
                        let pong = Message::Text(r#"{"type":"pong"}"#.into());
                        let _ = ws.send(pong).await;
                    }
                    _ => {}
                }
            }
        }));
    }
    let subscribe_time = started.elapsed();
    // Subscriptions are live once the orders subgraph follows the bus for them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_with = gateway.rss_kib();
    let per = |kib: u64| kib as f64 / subscribers as f64;
    println!(
        "subscription benchmark: {subscribers} WebSocket subscribers on {orders} orders, one gateway"
    );
    println!(
        "  connect + connection_init, everyone: {:.2} s ({:.0}/s); subscribe, everyone: {:.2} s",
        connect_time.as_secs_f64(),
        subscribers as f64 / connect_time.as_secs_f64(),
        subscribe_time.as_secs_f64(),
    );
    println!(
        "  gateway RSS: {:.1} MiB idle, {:.1} MiB connected, {:.1} MiB subscribed: \
         {:.1} KiB per connection ({:.1} KiB of it the subscription)",
        rss_before as f64 / 1024.0,
        rss_connected as f64 / 1024.0,
        rss_with as f64 / 1024.0,
        per(rss_with.saturating_sub(rss_before)),
        per(rss_with.saturating_sub(rss_connected)),
    );

    for (round, mutation, status) in [
        (
            "confirm",
            "mutation($id: ID!) { confirmOrder(orderId: $id) { status } }",
            "CONFIRMED",
        ),
        (
            "cancel",
            "mutation($id: ID!) { cancelOrder(orderId: $id) { status } }",
            "CANCELLED",
        ),
    ] {
        let mut sent = Vec::with_capacity(orders);
        let mut answered = Vec::with_capacity(orders);
        for id in &ids {
            let at = Instant::now();
            sent.push(at);
            let data = ok(gql(port, Some(&token), mutation, json!({ "id": id })).await);
            assert!(data.to_string().contains(status), "{data}");
            answered.push(at.elapsed());
            // One change every 20 ms: 50 changes/s, each to its subscribers.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let expected = subscribers;
        let deadline = Instant::now() + Duration::from_secs(30);
        let latencies = loop {
            let got: Vec<Duration> = deliveries
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, s, _)| s == status)
                .map(|(order, _, at)| at.saturating_duration_since(sent[*order]))
                .collect();
            if got.len() >= expected || Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut latencies = latencies;
        latencies.sort();
        answered.sort();
        let pick = |v: &[Duration], q: f64| {
            v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "  {round}: {} of {expected} deliveries; mutation sent → delivered p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (the mutation itself answered in p50 {:.1} ms)",
            latencies.len(),
            pick(&latencies, 0.50).as_secs_f64() * 1e3,
            pick(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            pick(&answered, 0.50).as_secs_f64() * 1e3,
        );
    }
    println!(
        "  gateway RSS after both rounds: {:.1} MiB",
        gateway.rss_kib() as f64 / 1024.0
    );
    for client in clients {
        client.abort();
    }
}

/// A subscriber with small socket buffers (10,000 of them share this process).
async fn connect(port: u16, token: &str) -> support::Socket {
    let mut request = format!("ws://127.0.0.1:{port}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = loop {
        match tokio_tungstenite::connect_async_with_config(request.clone(), Some(config), true)
            .await
        {
            Ok(connected) => break connected,
            // The accept queue overflowed for a moment: try again.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    loop {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            panic!("no connection_ack");
        };
        if text.contains("connection_ack") {
            break;
        }
    }
    ws
}
