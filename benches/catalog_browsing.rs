//! Catalog browsing through the gateway, entity cache off and on:
//! `cargo bench --bench catalog_browsing`.
//!
//! `grocery dev` runs the subgraphs (Postgres, the demo catalog); two
//! `grocery serve gateway`s front them, one with `ENTITY_CACHE=off`, one with
//! `ENTITY_CACHE=on` (in the bench's own Redis, as replicas share it). `BENCH_CONCURRENCY` (default 16) clients
//! browse as a shop front does: the products list (20 products with their
//! price and stock, which inventory adds), then each product's page. The two
//! gateways take turns `BENCH_ROUNDS` times (default 3) for `BENCH_SECONDS`
//! each in all (default 10), so the machine's drift falls on both; prints
//! requests/s and p50 of each and the ratio. Both answer the same.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const LIST: &str = "{ products(first: 20) { edges { node { sku name category unitPrice \
                    stock { available } } } } }";
const PAGE: &str = "query($s: String!) { product(sku: $s) { sku name description category \
                    imageUrls unitPrice stock { onHand reserved available } } }";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

/// One keep-alive HTTP/1.1 connection to a gateway.
struct Connection {
    stream: BufReader<tokio::net::TcpStream>,
}

impl Connection {
    async fn open(port: u16) -> Self {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// POSTs a GraphQL request; its answer's `data`, which must have no errors.
    async fn graphql(&mut self, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        );
        self.stream
            .get_mut()
            .write_all(head.as_bytes())
            .await
            .unwrap();
        self.stream
            .get_mut()
            .write_all(body.as_bytes())
            .await
            .unwrap();
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
        let mut bytes = vec![0; length];
        self.stream.read_exact(&mut bytes).await.unwrap();
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(answer.get("errors").is_none(), "{answer}");
        answer["data"].clone()
    }
}

/// One shopper's visit: the list, then every listed product's page.
async fn browse(connection: &mut Connection) -> (usize, Value) {
    let list = connection.graphql(LIST, json!({})).await;
    let skus: Vec<String> = list["products"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["sku"].as_str().unwrap().to_owned())
        .collect();
    let mut pages = Vec::new();
    for sku in &skus {
        pages.push(connection.graphql(PAGE, json!({ "s": sku })).await);
    }
    (1 + skus.len(), json!({ "list": list, "pages": pages }))
}

#[derive(Default)]
struct Tally {
    requests: usize,
    seconds: f64,
    /// Each visit's time per request.
    latencies: Vec<Duration>,
}

impl Tally {
    async fn add(&mut self, port: u16, concurrency: usize, slice: Duration) {
        let started = Instant::now();
        let until = started + slice;
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                tokio::spawn(async move {
                    let mut connection = Connection::open(port).await;
                    let (mut requests, mut latencies) = (0, Vec::new());
                    while Instant::now() < until {
                        let sent = Instant::now();
                        let (n, _) = browse(&mut connection).await;
                        latencies.push(sent.elapsed() / n as u32);
                        requests += n;
                    }
                    (requests, latencies)
                })
            })
            .collect();
        for task in tasks {
            let (requests, latencies) = task.await.unwrap();
            self.requests += requests;
            self.latencies.extend(latencies);
        }
        self.seconds += started.elapsed().as_secs_f64();
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn print(&mut self, who: &str) {
        self.latencies.sort();
        let p50 = self.latencies[self.latencies.len() / 2];
        println!(
            "{who:<22} {:>7.0} req/s  p50 {:>6.2} ms per request  ({} requests)",
            self.rps(),
            p50.as_secs_f64() * 1000.0,
            self.requests
        );
    }
}

async fn run() {
    let seconds = env_or("BENCH_SECONDS", 10) as u64;
    let concurrency = env_or("BENCH_CONCURRENCY", 16);
    let rounds = env_or("BENCH_ROUNDS", 3).max(1) as u32;
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:bench:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(
        &db.config.url,
        &redis.url(),
        &stream,
        &[("RATE_LIMITS", "off")],
    );
    let subgraph_urls = dev
        .urls
        .iter()
        .filter(|(name, _)| {
            ["users", "catalog", "inventory", "orders", "logistics"].contains(&name.as_str())
        })
        .map(|(name, url)| format!("{name}={url}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut gateways = Vec::new();
    for cache in ["off", "on"] {
        let port = support::free_port();
        let process = support::start(
            &["serve", "gateway"],
            &[
                ("GATEWAY_PORT", port.to_string()),
                ("GATEWAY_HOST", "127.0.0.1".into()),
                ("SUBGRAPH_URLS", subgraph_urls.clone()),
                ("ENTITY_CACHE", cache.into()),
                ("RATE_LIMITS", "off".into()),
                ("REST_DIR", "off".into()),
                // The cache in Redis, as replicas share it (the bench's own Redis).
                ("REDIS_URL", redis.url()),
            ],
            &dev.home,
        );
        support::until_ok(&format!("http://127.0.0.1:{port}/health"), &process).await;
        gateways.push((
            format!("entity cache {cache}"),
            port,
            process,
            Tally::default(),
        ));
    }
    // Both answer the same.
    let (_, off) = browse(&mut Connection::open(gateways[0].1).await).await;
    let (_, on) = browse(&mut Connection::open(gateways[1].1).await).await;
    assert_eq!(off, on, "the cache changes the answer");
    println!(
        "catalog browsing: the list and every page, {concurrency} shoppers, {seconds} s per gateway in {rounds} turns, {} cores shared by the stack and the load",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let slice = Duration::from_secs(seconds) / rounds;
    for _ in 0..rounds {
        for (_, port, _, tally) in &mut gateways {
            tally.add(*port, concurrency, slice).await;
        }
    }
    for (who, _, _, tally) in &mut gateways {
        tally.print(who);
    }
    println!(
        "entity cache on / off: {:.2}× requests/s",
        gateways[1].3.rps() / gateways[0].3.rps()
    );
}
