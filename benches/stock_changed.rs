//! `stockChanged` benchmark: `cargo bench --bench stock_changed`.
//!
//! `grocery dev` runs every subgraph (its own PostgreSQL database, its own
//! Redis); one `grocery serve gateway` in front of them is the gateway
//! measured. The catalog grows to `BENCH_SKUS` (default 50) stocked products;
//! `BENCH_SUBSCRIBERS` (default 5,000) anonymous WebSocket clients each
//! subscribe to `stockChanged` of one of them, with the product's name
//! (catalog) and price (inventory) resolved per event. Then `BENCH_BUYERS`
//! (default 4) customers check out one unit of a random product each, back
//! to back, for `BENCH_SECONDS` (default 10).
//!
//! Printed: checkouts per second; change → client latency p50/p99/max over
//! every delivery, where a change's time is its outbox row's `created_at`
//! (the start of the transaction that committed it, so a few milliseconds
//! are counted too many) and a delivery is matched to the newest row of its
//! SKU and value written before it arrived; and, once everything is quiet,
//! whether the last value each client saw equals the database's (the bench
//! fails when one does not). The soft open-file limit is raised to the hard
//! one (`prlimit`) before anything starts; every client is one descriptor
//! here and one in the gateway.

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use futures::{SinkExt, StreamExt};
use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use support::{PASSWORD, gql};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, protocol::WebSocketConfig,
};

const WATCH: &str = "subscription($skus: [String!]) { stockChanged(skus: $skus) { \
    sku available product { name unitPrice } } }";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one client saw: (available, when), in order.
type Seen = Arc<Mutex<Vec<(i64, SystemTime)>>>;

fn main() {
    raise_open_files();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

/// Raises this process's soft open-file limit to its hard limit; the
/// processes it starts inherit it.
fn raise_open_files() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let hard = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .unwrap_or("unlimited")
        .to_owned();
    let raised = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={hard}:{hard}"))
        .status();
    println!(
        "open-file limit: raised to {hard} ({})",
        match raised {
            Ok(s) if s.success() => "ok".to_owned(),
            other => format!("failed: {other:?}"),
        }
    );
}

async fn run() {
    let subscribers = env_or("BENCH_SUBSCRIBERS", 5_000);
    let sku_count = env_or("BENCH_SKUS", 50).max(1);
    let buyers = env_or("BENCH_BUYERS", 4).max(1);
    let seconds = env_or("BENCH_SECONDS", 10) as u64;
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
    let (_gateway, port) = support::gateway_over(
        &dev,
        &redis.url(),
        &stream,
        "bench-service-token",
        &[
            // Every client is anonymous and on one address.
            ("SUBSCRIPTIONS_PER_USER", (subscribers + 1).to_string()),
            ("RATE_LIMITS", "off".into()),
            ("RUST_LOG", "warn".into()),
        ],
    )
    .await;

    // The products: the demo's, then more until there are `sku_count`, each
    // with plenty of stock.
    let admin = support::login(port, "admin", PASSWORD).await;
    let truck = support::login(port, "truck-1", PASSWORD).await;
    let demo = [
        "APPLE", "BANANA", "MILK", "EGGS", "BREAD", "CHEESE", "YOGURT", "TOMATO", "CARROT",
        "COFFEE",
    ];
    let skus: Vec<String> = (0..sku_count)
        .map(|i| match demo.get(i) {
            Some(sku) => (*sku).to_owned(),
            None => format!("BENCH-{i}"),
        })
        .collect();
    for sku in &skus {
        if !demo.contains(&sku.as_str()) {
            settled(
                port,
                &admin,
                "mutation($k: String!) { createProduct(input: { sku: $k, name: $k }) { sku } }",
                json!({ "k": sku }),
            )
            .await;
        }
        settled(
            port,
            &truck,
            "mutation($k: String!, $t: String!) { restock(input: { truckId: \"truck-1\", \
             supplierId: \"bench\", idempotencyKey: $t, items: [{ sku: $k, quantity: 100000, \
             unitCost: \"1.00\" }] }) { status } }",
            json!({ "k": sku, "t": format!("bench-{sku}") }),
        )
        .await;
    }

    // Everyone connects, 200 at a time, and subscribes to one product.
    let gate = Arc::new(Semaphore::new(200));
    let started = Instant::now();
    let mut connecting = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let permit = gate.clone().acquire_owned().await.unwrap();
        connecting.push(tokio::spawn(async move {
            let ws = connect(port).await;
            drop(permit);
            ws
        }));
    }
    let mut clients = Vec::with_capacity(subscribers);
    let mut seen_by: Vec<(usize, Seen)> = Vec::with_capacity(subscribers);
    for (i, connected) in connecting.into_iter().enumerate() {
        let mut ws = connected.await.unwrap();
        let sku = i % skus.len();
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
            "query": WATCH, "variables": { "skus": [skus[sku]] } } });
        ws.send(Message::Text(subscribe.to_string().into()))
            .await
            .unwrap();
        let seen: Seen = Arc::default();
        seen_by.push((sku, seen.clone()));
        clients.push(tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let value: Value = serde_json::from_str(&text).unwrap();
                match value["type"].as_str() {
                    Some("next") => {
                        let event = &value["payload"]["data"]["stockChanged"];
                        let resolved = event["product"]["name"].is_string();
                        let available = match (resolved, event["available"].as_i64()) {
                            (true, Some(n)) => n,
                            _ => -1,
                        };
                        seen.lock().unwrap().push((available, SystemTime::now()));
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
    println!(
        "stockChanged benchmark: {subscribers} anonymous WebSocket subscribers on {} products, \
         {buyers} buyers for {seconds} s; connect + subscribe, everyone: {:.2} s",
        skus.len(),
        started.elapsed().as_secs_f64()
    );
    // Subscriptions are live once inventory follows the bus for each upstream.
    let inventory = dev.urls["inventory"].clone();
    let wanted = skus.len().min(subscribers);
    let deadline = Instant::now() + Duration::from_secs(60);
    while support::bus_followers(&inventory).await < wanted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Checkouts: each buyer previews and confirms one unit of a random product, again and again.
    let mut tokens = Vec::new();
    for b in 0..buyers {
        tokens.push(support::customer(port, &format!("bench-buyer-{b}")).await);
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut buying = Vec::new();
    for (b, token) in tokens.into_iter().enumerate() {
        let skus = skus.clone();
        buying.push(tokio::spawn(async move {
            let mut done = 0usize;
            let mut pick = b;
            while Instant::now() < until {
                pick = (pick * 31 + 17) % skus.len();
                let preview = gql(
                    port,
                    Some(&token),
                    "mutation($k: String!) { previewOrder(items: [{ sku: $k, quantity: 1 }]) { id } }",
                    json!({ "k": skus[pick] }),
                )
                .await;
                let Some(id) = preview["data"]["previewOrder"]["id"].as_str() else {
                    continue;
                };
                let confirmed = gql(
                    port,
                    Some(&token),
                    "mutation($id: ID!) { confirmOrder(orderId: $id) { status } }",
                    json!({ "id": id }),
                )
                .await;
                if confirmed["data"]["confirmOrder"]["status"] == "CONFIRMED" {
                    done += 1;
                }
            }
            done
        }));
    }
    let mut checkouts = 0;
    for buyer in buying {
        checkouts += buyer.await.unwrap();
    }
    println!(
        "  checkouts: {checkouts} in {seconds} s ({:.1}/s)",
        checkouts as f64 / seconds as f64
    );
    // Quiet: every held change has gone out.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Every change, with when it was made (microseconds since the epoch), and
    // each product's availability now.
    let pool = db.pool().await;
    let changes: Vec<(String, i64, i64)> = serde_json::from_str(
        &kit::testing::text(
            &pool,
            "SELECT COALESCE(json_agg(json_build_array(key, (payload->>'available')::int8, \
             (extract(epoch FROM created_at) * 1000000)::int8) ORDER BY id), '[]')::text AS v \
             FROM inventory.outbox WHERE topic = 'stock.changed'",
        )
        .await,
    )
    .unwrap();
    let mut by_value: HashMap<(String, i64), Vec<SystemTime>> = HashMap::new();
    for (sku, available, micros) in &changes {
        by_value
            .entry((sku.clone(), *available))
            .or_default()
            .push(SystemTime::UNIX_EPOCH + Duration::from_micros(*micros as u64));
    }
    let current: HashMap<String, i64> = serde_json::from_str(
        &kit::testing::text(
            &pool,
            "SELECT COALESCE(json_object_agg(i.sku, GREATEST(i.on_hand - i.reserved \
             - COALESCE((SELECT SUM(b.remaining) FROM inventory.batches b WHERE b.sku = i.sku \
             AND NOT b.sold_out AND b.expiry_date < CURRENT_DATE), 0), 0)), '{}')::text AS v \
             FROM inventory.items i",
        )
        .await,
    )
    .unwrap();

    let mut latencies = Vec::new();
    let (mut deliveries, mut unresolved, mut unmatched, mut stale, mut silent) = (0, 0, 0, 0, 0);
    for (sku, seen) in &seen_by {
        let seen = seen.lock().unwrap();
        let sku = &skus[*sku];
        deliveries += seen.len();
        for (available, at) in seen.iter() {
            if *available < 0 {
                unresolved += 1;
                continue;
            }
            let made = by_value
                .get(&(sku.clone(), *available))
                .and_then(|times| times.iter().rev().find(|t| *t <= at));
            match made {
                Some(made) => latencies.push(at.duration_since(*made).unwrap_or_default()),
                None => unmatched += 1,
            }
        }
        match seen.last() {
            None => silent += 1,
            Some((last, _)) if Some(last) != current.get(sku) => stale += 1,
            Some(_) => {}
        }
    }
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    };
    println!(
        "  {deliveries} deliveries of {} changes; change → client p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms; {unresolved} without their product resolved, {unmatched} unmatched",
        changes.len(),
        pick(0.50),
        pick(0.99),
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    println!(
        "  last value = the database's: {} of {subscribers} clients ({stale} differ, \
         {silent} saw nothing: their product did not change)",
        subscribers - stale - silent
    );
    for client in clients {
        client.abort();
    }
    assert_eq!(stale, 0, "a client's last value is not the database's");
    assert_eq!(unresolved, 0, "an event came without its product");
}

/// Runs an idempotent set-up mutation until it answers without errors (a
/// subgraph may still be loading its token revocations).
async fn settled(port: u16, token: &str, query: &str, variables: Value) {
    support::eventually(query, async || {
        let answer = gql(port, Some(token), query, variables.clone()).await;
        if let Some(errors) = answer.get("errors") {
            eprintln!("set-up not yet: {errors}");
            return None;
        }
        Some(())
    })
    .await
}

/// An anonymous subscriber with small socket buffers (thousands share this process).
async fn connect(port: u16) -> support::Socket {
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
    let init = json!({ "type": "connection_init", "payload": {} });
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
