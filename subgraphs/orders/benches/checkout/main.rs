//! Checkout throughput on real PostgreSQL, a real inventory (gRPC) and
//! catalog, straight to the orders subgraph over HTTP on loopback, measured
//! against the database's own ceiling in the same run.
//!
//! - `TPC-B`: pgbench's built-in TPC-B (scale 10, 16 clients, prepared) on the
//!   same server for the same seconds ([`ceiling::tpcb`]). Every checkout rate
//!   below is also printed as a ratio to it (issue #27's goal: ≥ 0.15 through
//!   the gateway, p99 ≤ 150 ms at 32 customers).
//! - `A checkout`: `--concurrency` customers (default 32) each loop
//!   previewOrder (two random lines of 50 well-stocked SKUs) → confirmOrder
//!   for `--seconds` (default 10). Prints checkouts/s and latency percentiles,
//!   then the same through the federation gateway (catalog + orders composed).
//! - `H hot SKU`: the same, every customer buying one line of the same SKU.
//! - `B oversell`: the same customers race for one SKU with 500 units until
//!   refused, confirming everything they reserved; sold units must equal what
//!   inventory lost, and never exceed 500.
//! - `C double-charge`: 20 orders, each confirmed by 16 concurrent calls with
//!   different keys; exactly 20 charges must reach the provider.
//!
//! Orders' and inventory's relays publish their outboxes and mark what they
//! published, as in `grocery dev`, but to the in-process bus (no Redis),
//! which makes a checkout here a little cheaper than in `grocery dev`.
//! Every confirmation gives the customer's contact and both addresses, as a
//! checkout form does, so it needs nothing from the customer's profile and
//! no users subgraph runs.
//!
//! Each turn prints the cores this process and PostgreSQL used. `--profile`
//! adds, for the gateway turn, the WAL written per checkout (bytes, records,
//! flushes, full-page images), PostgreSQL's statements by total time with
//! the WAL each writes (`pg_stat_statements`, when preloaded) and what its
//! backends waited on.
//!
//! After the run every confirmed order must have exactly one payment and the
//! provider must have seen exactly one charge per confirmed order.
//!
//! Run: `cargo bench -p grocery-orders --bench checkout [-- --seconds 10 --concurrency 32 --profile]`
//! against `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).

mod ceiling;

#[allow(dead_code, unused_imports)]
#[path = "../../tests/api/support.rs"]
mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};
use support::{CONFIRM, PREVIEW, Shop};

// The allocator `grocery` ships with (src/main.rs): orders, inventory and
// catalog run in this process as they do in `grocery dev`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Http = Client<HttpConnector, Full<Bytes>>;

struct Api {
    http: Http,
    url: String,
}

impl Api {
    async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let request = hyper::Request::post(self.url.as_str())
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let response = self.http.request(request).await.expect("orders answers");
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("JSON")
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Previews `lines` and confirms the order; the order's id and status, or the error code.
async fn checkout(
    api: &Api,
    token: &str,
    lines: Value,
    key: &str,
) -> Result<(String, String), String> {
    let preview = api.gql(token, &PREVIEW, json!({ "items": lines })).await;
    if let Some(code) = preview["errors"][0]["extensions"]["code"].as_str() {
        return Err(code.to_owned());
    }
    let id = preview["data"]["previewOrder"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let confirm = api
        .gql(
            token,
            &CONFIRM,
            json!({ "id": id, "key": key, "payment": "tok_visa", "customer": &*CUSTOMER }),
        )
        .await;
    match confirm["errors"][0]["extensions"]["code"].as_str() {
        Some(code) => Err(code.to_owned()),
        None => {
            let confirmed = &confirm["data"]["confirmOrder"];
            // The order keeps what the call gave.
            assert_eq!(
                confirmed["customerSnapshot"]["shippingAddress"]["city"], "Bern",
                "{confirm}"
            );
            Ok((id, confirmed["status"].as_str().unwrap().to_owned()))
        }
    }
}

/// Who the order is for, in full, as a shop's checkout form sends it: the
/// confirmation then needs nothing from the customer's profile, so no
/// users subgraph runs here (a call leaving details out asks users, which
/// this bench does not measure).
static CUSTOMER: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    let address =
        json!({ "line1": "Bundesplatz 3", "city": "Bern", "postalCode": "3005", "country": "CH" });
    json!({
        "email": "bench@example.com",
        "phone": "+41 31 000 00 00",
        "shippingAddress": address,
        "billingAddress": address,
    })
});

#[tokio::main]
async fn main() {
    // Tuned as `grocery` tunes it.
    kit::alloc::give_pages_back_late();
    let seconds = arg("--seconds", 10);
    let concurrency = arg("--concurrency", 32) as usize;
    let shop = Arc::new(Shop::new().await);
    let skus: Vec<String> = (0..50).map(|i| format!("BENCH{i:02}")).collect();
    for sku in &skus {
        shop.product(sku, &format!("Bench item {sku}"), 1_000_000, "1.00")
            .await;
    }
    shop.product("LAST", "The last crates", 500, "2.00").await;
    let api = Arc::new(Api {
        http: Client::builder(TokioExecutor::new()).build({
            let mut http = HttpConnector::new();
            http.set_nodelay(true);
            http
        }),
        url: format!("{}/graphql", support::serve(shop.router.clone()).await),
    });
    let customers: Vec<String> = (0..concurrency).map(|_| shop.customer().1).collect();

    let profile = std::env::args().any(|a| a == "--profile");

    // The database's own ceiling, then checkouts per second, straight to
    // orders and through the gateway, each as a share of it.
    // (No cores here: pgbench's backends have exited, and their CPU with them,
    // by the time it reports.)
    let tpcb = ceiling::tpcb(seconds).await;
    println!(
        "TPC-B              pgbench scale 10, 16 clients, prepared, {seconds}s: {tpcb:.0} tps"
    );
    let gateway_api = Arc::new(Api {
        http: Client::builder(TokioExecutor::new()).build({
            let mut http = HttpConnector::new();
            http.set_nodelay(true);
            http
        }),
        url: serve_gateway(&shop, &api.url).await,
    });
    let turns: [(&str, &Arc<Api>, Option<&str>); 4] = [
        ("A checkout        ", &api, None),
        ("A via gateway     ", &gateway_api, None),
        ("H hot SKU         ", &api, Some("BENCH00")),
        ("H hot via gateway ", &gateway_api, Some("BENCH00")),
    ];
    for (label, target, hot) in turns {
        let recording = (profile && label.starts_with("A via")).then(ceiling::Profile::start);
        let recording = match recording {
            Some(started) => Some(started.await),
            None => None,
        };
        let figures = run_checkouts(label, target, &customers, &skus, hot, seconds).await;
        println!(
            "{label}ratio to TPC-B {:.3} (p50 {:.1} ms, p99 {:.1} ms)",
            figures.rate / tpcb,
            figures.p50,
            figures.p99
        );
        if let Some(recording) = recording {
            recording.print(label.trim(), figures.done).await;
        }
    }

    // B: nothing oversold.
    let tasks: Vec<_> = customers
        .iter()
        .enumerate()
        .map(|(c, token)| {
            let (api, token) = (api.clone(), token.clone());
            tokio::spawn(async move {
                let mut bought = 0i64;
                for i in 0.. {
                    let quantity = 1 + (c + i) % 3;
                    let lines = json!([{ "sku": "LAST", "quantity": quantity }]);
                    match checkout(&api, &token, lines, &format!("last-{c}-{i}")).await {
                        Ok(_) => bought += quantity as i64,
                        Err(code) if code == "INSUFFICIENT_STOCK" => break,
                        Err(code) => panic!("oversell round: {code}"),
                    }
                }
                bought
            })
        })
        .collect();
    let mut sold = 0;
    for task in tasks {
        sold += task.await.unwrap();
    }
    let (on_hand, reserved, _) = shop.levels("LAST").await;
    println!(
        "B oversell         sold {sold} of 500; inventory on hand {on_hand}, reserved {reserved}"
    );
    assert!((498..=500).contains(&sold), "sold {sold}");
    assert_eq!(
        (i64::from(on_hand), reserved),
        (500 - sold, 0),
        "oversold or leaked"
    );

    // C: concurrent confirmations of one order charge once.
    let owner = &customers[0];
    let before = shop.provider.charge_calls();
    for round in 0..20 {
        let preview = api
            .gql(
                owner,
                &PREVIEW,
                json!({ "items": [{ "sku": "BENCH00", "quantity": 1 }] }),
            )
            .await;
        let id = preview["data"]["previewOrder"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let racers: Vec<_> = (0..16)
            .map(|r| {
                let (api, owner, id) = (api.clone(), owner.clone(), id.clone());
                tokio::spawn(async move {
                    api.gql(
                        &owner,
                        &CONFIRM,
                        json!({ "id": id, "key": format!("race-{round}-{r}"), "customer": &*CUSTOMER }),
                    )
                    .await
                })
            })
            .collect();
        let mut winners = 0;
        for racer in racers {
            if racer.await.unwrap().get("errors").is_none() {
                winners += 1;
            }
        }
        assert_eq!(
            winners, 1,
            "one confirmation wins, the others are told it is paid"
        );
    }
    let charges = shop.provider.charge_calls() - before;
    println!("C double-charge    20 orders × 16 concurrent confirmations: {charges} charges");
    assert_eq!(charges, 20);

    let confirmed = shop
        .scalar("SELECT count(*) FROM orders WHERE status = 'CONFIRMED'")
        .await;
    let payments = shop.scalar("SELECT count(*) FROM payments").await;
    let per_order = shop.scalar("SELECT count(*) FROM (SELECT order_id FROM payments GROUP BY order_id HAVING count(*) > 1) x").await;
    println!(
        "checks             {confirmed} confirmed orders, {payments} payments, {} provider charges, {per_order} orders charged twice",
        shop.provider.charge_calls()
    );
    assert_eq!(payments, confirmed);
    assert_eq!(shop.provider.charge_calls() as i64, confirmed);
    assert_eq!(per_order, 0);
}

/// The gateway in front of catalog and orders (as `grocery dev` composes
/// them); returns its `/graphql` URL.
async fn serve_gateway(shop: &Shop, orders_url: &str) -> String {
    let sources = vec![
        gateway::SubgraphSource {
            name: "catalog".into(),
            url: shop.config.catalog_url.clone(),
            sdl: catalog::sdl(),
        },
        gateway::SubgraphSource {
            name: "orders".into(),
            url: orders_url.to_owned(),
            sdl: orders::sdl(),
        },
    ];
    let supergraph = gateway::compose(&sources).expect("catalog and orders compose");
    // Tokens are checked again by orders; the edge passes them on.
    let edge = Arc::new(
        gateway::Gateway::new(&supergraph, None, &Default::default())
            .expect("gateway over catalog and orders"),
    );
    format!("{}/graphql", support::serve(gateway::router(edge)).await)
}

/// What one turn of checkouts measured.
struct Figures {
    /// Checkouts done.
    done: u64,
    /// Checkouts per second.
    rate: f64,
    /// Latency percentiles, ms.
    p50: f64,
    p99: f64,
}

/// Runs checkouts from every customer for `seconds` (two random lines, or one
/// line of `hot` for everyone) and prints the figures.
async fn run_checkouts(
    label: &str,
    api: &Arc<Api>,
    customers: &[String],
    skus: &[String],
    hot: Option<&str>,
    seconds: u64,
) -> Figures {
    let cpu = ceiling::Cpu::now();
    let hot = hot.map(str::to_owned);
    let concurrency = customers.len();
    // Idempotency keys are per customer: each run uses its own.
    let run: String = label.split_whitespace().collect::<Vec<_>>().join("-");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = customers
        .iter()
        .enumerate()
        .map(|(c, token)| {
            let (api, token, skus, run, hot) = (
                api.clone(),
                token.clone(),
                skus.to_vec(),
                run.clone(),
                hot.clone(),
            );
            tokio::spawn(async move {
                let (mut done, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
                let mut n = c as u64;
                while Instant::now() < deadline {
                    n = n
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let a = &skus[(n >> 33) as usize % skus.len()];
                    let b = &skus[(n >> 40) as usize % skus.len()];
                    let lines = match &hot {
                        Some(sku) => json!([{ "sku": sku, "quantity": 1 }]),
                        None => json!([
                            { "sku": a, "quantity": 1 + (n % 3) },
                            { "sku": b, "quantity": 1 }
                        ]),
                    };
                    let began = Instant::now();
                    match checkout(&api, &token, lines, &format!("{run}-c{c}-{done}-{failed}"))
                        .await
                    {
                        Ok((_, status)) if status == "CONFIRMED" => done += 1,
                        _ => failed += 1,
                    }
                    latencies.push(began.elapsed().as_micros() as u64);
                }
                (done, failed, latencies)
            })
        })
        .collect();
    let (mut done, mut failed, mut latencies) = (0, 0, Vec::new());
    for task in tasks {
        let (d, f, l) = task.await.unwrap();
        done += d;
        failed += f;
        latencies.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let figures = Figures {
        done,
        rate: done as f64 / elapsed,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    };
    println!(
        "{label}{concurrency} customers, {seconds}s: {done} checkouts, {failed} failed, {:.0} checkouts/s; latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}; {}",
        figures.rate,
        figures.p50,
        percentile(&latencies, 0.9),
        figures.p99,
        percentile(&latencies, 1.0),
        cpu.since(done),
    );
    assert_eq!(failed, 0, "checkouts failed");
    figures
}
