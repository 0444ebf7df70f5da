//! The REST edge's cost: `cargo bench --bench ordering_api`.
//!
//! `grocery dev` runs everything. For each endpoint of the Ordering API v1,
//! this process sends `BENCH_CALLS` (default 200) REST requests and as many
//! equivalent GraphQL requests (the route's own document, by `documentId`,
//! as a client of the manifest would), taking turns, one at a time over
//! one keep-alive connection each, and prints p50 and mean latency of both
//! and what the REST edge adds. The goal: at most 10 % at p50.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use support::{PASSWORD, gql, login, ok};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    async fn open(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// POSTs `body` to `path`; the status and JSON answer.
    async fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
        let body = body.to_string();
        let extra: String = headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\r\n"))
            .collect();
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line).await.unwrap();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {status_line:?}"));
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).await.unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn mean(all: &[Duration]) -> Duration {
    all.iter().sum::<Duration>() / all.len().max(1) as u32
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

/// One call of an endpoint, REST or GraphQL, given its index.
struct Call {
    rest_path: &'static str,
    rest_body: Value,
    document: &'static str,
    variables: Value,
    /// The bearer token, if any.
    token: Option<String>,
    headers: Vec<(&'static str, String)>,
}

async fn run() {
    let calls = env_or("BENCH_CALLS", 200).max(10);
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:bench:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(
        &db.config.url,
        &redis.url(),
        &stream,
        &[("RATE_LIMITS", "off")],
    );
    let port = dev.gateway;
    let docs = support::manifest_ids("ordering-v1");
    let truck = login(port, "truck-1", PASSWORD).await;
    // Enough APPLE for every preview of the run.
    ok(gql(
        port,
        Some(&truck),
        "mutation($n: Int!) { restock(input: { truckId: \"T\", supplierId: \"S\", items: [{ sku: \"APPLE\", quantity: $n, unitCost: \"0.40\", mfdDate: \"2026-12-01\", expiryDate: \"2027-01-30\" }] }) { status } }",
        json!({ "n": 1_000_000 }),
    )
    .await);
    let customer = support::customer(port, "bench-fridge").await;

    println!(
        "REST edge against the same document over GraphQL, {calls} calls each, taking turns, one at a time"
    );
    println!(
        "{:<32} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "endpoint", "REST p50", "GQL p50", "REST mean", "GQL mean", "p50 +%"
    );
    let mut rest = Connection::open(port).await;
    let mut graphql = Connection::open(port).await;
    let preview = |i: usize| Call {
        rest_path: "/api/client/order/preview",
        rest_body: json!({ "items": [{ "sku": "APPLE", "qty": 1 + i % 3 }] }),
        document: "OrderingPreview",
        variables: json!({ "items": [{ "sku": "APPLE", "quantity": 1 + i % 3 }] }),
        token: Some(customer.clone()),
        headers: vec![],
    };
    // Orders to confirm and cancel, made beforehand (two per call: one per side).
    let mut reserved = Vec::new();
    for i in 0..calls * 4 {
        let (status, body) = rest
            .post(
                "/api/client/order/preview",
                &[("authorization", &format!("Bearer {customer}"))],
                &preview(i).rest_body,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        reserved.push(body["order_id"].as_str().unwrap().to_owned());
    }
    let (to_confirm, to_cancel) = reserved.split_at(calls * 2);
    type Make<'a> = Box<dyn Fn(usize) -> Call + 'a>;
    let endpoints: Vec<(&str, Make)> = vec![
        (
            "POST /api/client/login",
            Box::new(|_| Call {
                rest_path: "/api/client/login",
                rest_body: json!({ "device_id": "bench-fridge", "password": "cold-storage-1" }),
                document: "OrderingLogin",
                variables: json!({ "deviceId": "bench-fridge", "password": "cold-storage-1" }),
                token: None,
                headers: vec![],
            }),
        ),
        (
            "POST /api/client/register",
            Box::new(|i| Call {
                rest_path: "/api/client/register",
                rest_body: json!({ "device_id": format!("bench-r-{i}"), "password": "cold-storage-1" }),
                document: "OrderingRegister",
                variables: json!({ "deviceId": format!("bench-g-{i}"), "password": "cold-storage-1" }),
                token: None,
                headers: vec![],
            }),
        ),
        ("POST /api/client/order/preview", Box::new(preview)),
        (
            "POST /api/client/order/confirm",
            Box::new(|i| Call {
                rest_path: "/api/client/order/confirm",
                rest_body: json!({ "order_id": to_confirm[2 * (i / 2)] }),
                document: "OrderingConfirm",
                variables: json!({ "orderId": to_confirm[2 * (i / 2) + 1] }),
                token: Some(customer.clone()),
                headers: vec![],
            }),
        ),
        (
            "POST /api/client/order/cancel",
            Box::new(|i| Call {
                rest_path: "/api/client/order/cancel",
                rest_body: json!({ "order_id": to_cancel[2 * (i / 2)] }),
                document: "OrderingCancel",
                variables: json!({ "orderId": to_cancel[2 * (i / 2) + 1] }),
                token: Some(customer.clone()),
                headers: vec![],
            }),
        ),
        (
            "POST /api/truck/restock",
            Box::new(|i| Call {
                rest_path: "/api/truck/restock",
                rest_body: json!({ "truck_id": "T", "supplier_id": "S", "items": [
                    { "sku": "MILK", "quantity": 1, "unit_cost": 0.5, "mfd_date": "2026-12-01", "expiry_date": "2026-12-30" }] }),
                document: "OrderingRestock",
                variables: json!({ "truckId": "T", "supplierId": "S", "items": [
                    { "sku": "MILK", "quantity": 1, "unitCost": "0.5", "mfdDate": "2026-12-01", "expiryDate": "2026-12-30" }] }),
                token: Some(truck.clone()),
                headers: vec![("idempotency-key", format!("bench-{i}"))],
            }),
        ),
    ];
    let mut worst: f64 = f64::MIN;
    for (name, make) in &endpoints {
        // Login is throttled after failures only; register and login are
        // dominated by password hashing: fewer calls keep the run short.
        let n = if name.contains("login") || name.contains("register") {
            calls / 4
        } else {
            calls
        };
        let mut rest_times = Vec::with_capacity(n);
        let mut graphql_times = Vec::with_capacity(n);
        for i in 0..n * 2 {
            let call = make(i);
            let auth = call.token.as_ref().map(|t| format!("Bearer {t}"));
            let mut headers: Vec<(&str, &str)> =
                call.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            if let Some(auth) = &auth {
                headers.push(("authorization", auth));
            }
            if i % 2 == 0 {
                let started = Instant::now();
                let (status, body) = rest.post(call.rest_path, &headers, &call.rest_body).await;
                rest_times.push(started.elapsed());
                assert!((200..300).contains(&status), "{name}: {status} {body}");
            } else {
                let mut variables = call.variables.clone();
                if let Some((_, key)) = call.headers.iter().find(|(n, _)| *n == "idempotency-key") {
                    variables["idempotencyKey"] = json!(format!("g-{key}"));
                }
                headers.push(("graphql-client-name", "ordering-v1"));
                let started = Instant::now();
                let (status, body) = graphql
                    .post(
                        "/graphql",
                        &headers,
                        &json!({ "documentId": docs[call.document], "variables": variables }),
                    )
                    .await;
                graphql_times.push(started.elapsed());
                assert!(
                    status == 200 && body.get("errors").is_none(),
                    "{name}: {status} {body}"
                );
            }
        }
        rest_times.sort();
        graphql_times.sort();
        let (r50, g50) = (
            percentile(&rest_times, 0.5),
            percentile(&graphql_times, 0.5),
        );
        let added = (r50.as_secs_f64() / g50.as_secs_f64() - 1.0) * 100.0;
        worst = worst.max(added);
        println!(
            "{name:<32} {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>+7.1}%",
            r50.as_secs_f64() * 1e3,
            g50.as_secs_f64() * 1e3,
            mean(&rest_times).as_secs_f64() * 1e3,
            mean(&graphql_times).as_secs_f64() * 1e3,
            added
        );
    }
    println!("the REST edge adds at most {worst:+.1}% at p50 (goal: at most +10%)");
}
