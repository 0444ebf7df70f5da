//! Gateway benchmark: `cargo bench -p grocery-gateway --bench federation`.
//!
//! A fixture shaped like the public gateways benchmark: four async-graphql
//! subgraphs (accounts, products, reviews with `@provides`, inventory with
//! `@requires`) in a child process, the gateway in another child process
//! (so its peak RSS is its own), and a load generator here: 50 concurrent
//! connections posting the benchmark's nested `users … reviews … product …
//! topProducts` query for a fixed time. Prints requests/s, p50/p95/p99 and
//! the gateway's peak RSS; then the one-subgraph overhead (the same query
//! through the gateway and straight to its subgraph, one connection, taking
//! turns too) and the gateway's CPU per request at that pace. When a
//! `hive-router` binary is on PATH it runs on the same fixture in the same
//! run and the ratio is printed.
//!
//! `BENCH_GATEWAY_CPUS` (say `1`) runs the gateway under a CPU quota of
//! that many cores, as a container limit would (a cgroup of its own).
//! `BENCH_SECONDS` (default 10), `BENCH_CONCURRENCY` (default 50) and
//! `BENCH_ROUNDS` (default 3: grocery and hive-router take turns that many
//! times, each running its share of the seconds) tune it.
//! A second grocery gateway with the entity cache on (the subgraphs send
//! async-graphql's `Cache-Control`, every entity type hinted 60 s) takes
//! turns with the first; its requests/s against the first's are printed.
//! `BENCH_TRACING=grpc` (or `http/protobuf`) adds a second gateway that
//! exports every trace (ratio 1.0) to a receiver in this process that
//! counts and drops the spans; the two take turns (the traced one first
//! every other round) and the cost of tracing is printed in requests/s,
//! over the whole run and as the median of each round's pair.
//! `BENCH_DEDUP=compare` adds a second gateway with in-flight deduplication
//! of identical subgraph queries off (`SUBGRAPH_DEDUPLICATION=false`); the
//! two take turns and each prints its subgraphs' CPU per client request.
//! Every gateway's fetch line says how many subgraph requests one client
//! request cost and which share of fetches an identical one in flight
//! answered (`grocery_gateway_subgraph_fetches_deduplicated_total`).
//!
//! The fixture's data are this file's own (its answer is 106.9 KB, the
//! public one's 87.6 KB: other reviews and authors). To run the public
//! fixture itself beside this one: in a clone of
//! graphql-hive/graphql-gateways-benchmark, start each of
//! `federation/subgraphs/{accounts,inventory,products,reviews}` with
//! `HOST=127.0.0.1 PORT=<port> cargo run --release`, compose their `/sdl`
//! into a supergraph with `gateway::compose` (as [`serve_subgraphs`] does
//! for `BENCH_SUPERGRAPH_OUT`), serve it with `grocery serve gateway`
//! (`SUPERGRAPH_PATH`), load it with `wrk -c 50` posting [`QUERY`], and
//! read `subgraph_fetch_duration_seconds_count` and
//! `grocery_gateway_subgraph_fetches_deduplicated_total` from `/metrics`:
//! sent requests per client request = (fetches − deduplicated) / requests.
//! Figures depend on the machine's load: the subgraphs, the gateway and the
//! load generator share its cores.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

#[path = "federation/fixture.rs"]
mod fixture;
#[path = "federation/load.rs"]
mod load;

use fixture::fixture;
use load::*;

// The allocator `grocery` ships with (src/main.rs), so the figures are its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The benchmark's query, as the public gateways benchmark sends it.
const QUERY: &str = r#"
fragment User on User { id username name }
fragment Review on Review { id body }
fragment Product on Product { inStock name price shippingEstimate upc weight }
query TestQuery {
  users { ...User reviews { ...Review product { ...Product reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } } } } }
  topProducts { ...Product reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } } }
}"#;

/// The one-subgraph query for the overhead figure.
const SIMPLE: &str = "{ topProducts(first: 5) { upc name price weight } }";

/// Child role: serve the four subgraphs, print `name=url` lines, then "ready".
/// With `BENCH_SUPERGRAPH_OUT=path`, also writes their supergraph there (to
/// profile a gateway against them by hand).
async fn serve_subgraphs() {
    let mut sources = Vec::new();
    for (name, sdl, router) in fixture() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/graphql", listener.local_addr().unwrap());
        println!("{name}={url}");
        sources.push(gateway::SubgraphSource {
            name: name.to_owned(),
            url,
            sdl,
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
    if let Ok(out) = std::env::var("BENCH_SUPERGRAPH_OUT") {
        std::fs::write(out, gateway::compose(&sources).unwrap()).unwrap();
    }
    println!("ready");
    std::future::pending::<()>().await;
}

/// Child role: serve the gateway over the supergraph file at `path`, print its URL.
async fn serve_gateway(path: &str) {
    if let Some(cpus) = std::env::var("BENCH_GATEWAY_CPUS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        limit_cpu(cpus);
    }
    let sdl = std::fs::read_to_string(path).unwrap();
    // `/metrics` on the API port: the fetch figures below are read from it.
    // Traced when the bench gave it `OTEL_*` (`BENCH_TRACING`).
    let tracing =
        settings::from_env(|env| telemetry::otel::Config::read(env, "grocery-gateway")).unwrap();
    let options = gateway::GatewayOptions {
        metrics_on_api: true,
        tracer: telemetry::otel::Tracer::start(&tracing),
        // The subgraphs' entity answers kept in memory (`BENCH_ENTITY_CACHE=on`).
        entity_cache: gateway::entity_cache::EntityCacheOptions {
            enabled: std::env::var("BENCH_ENTITY_CACHE").is_ok_and(|v| v == "on"),
            ..Default::default()
        },
        // Off for the second gateway of `BENCH_DEDUP=compare`.
        deduplicate_queries: std::env::var("SUBGRAPH_DEDUPLICATION").as_deref() != Ok("false"),
        ..Default::default()
    };
    let gw = Arc::new(gateway::Gateway::new(&sdl, None, &options).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("http://{}/graphql", listener.local_addr().unwrap());
    // Served as `grocery serve gateway` serves it.
    fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
        std::env::var(name).ok().and_then(|n| n.parse().ok())
    }
    let mut serving = gateway::server::Serving::default();
    serving.threads = env("GATEWAY_THREADS").unwrap_or(serving.threads);
    serving.poll = env("GATEWAY_POLL_US").map_or(serving.poll, Duration::from_micros);
    serving.executions = env("GATEWAY_EXECUTIONS").unwrap_or(serving.executions);
    let (_stop, stop) = tokio::sync::watch::channel(false);
    gateway::server::serve(listener, gateway::edge(gw), serving, stop)
        .await
        .unwrap();
}

/// Puts this process (the gateway's, before its serving threads start) under
/// a CPU quota of `cpus` cores, as a container's CPU limit does: a cgroup of
/// its own with a CFS quota (cgroup v1's `cpu` controller or v2's
/// `cpu.max`). Fails loudly where cgroups are not writable.
fn limit_cpu(cpus: f64) {
    let period = 100_000u64;
    let quota = (cpus * period as f64).round() as u64;
    let pid = std::process::id();
    let v1 = std::path::Path::new("/sys/fs/cgroup/cpu");
    let (dir, files): (std::path::PathBuf, Vec<(&str, String)>) =
        if v1.join("cpu.cfs_quota_us").exists() {
            (
                v1.join(format!("grocery-bench-{pid}")),
                vec![
                    ("cpu.cfs_period_us", period.to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ],
            )
        } else {
            (
                std::path::PathBuf::from(format!("/sys/fs/cgroup/grocery-bench-{pid}")),
                vec![("cpu.max", format!("{quota} {period}"))],
            )
        };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
        panic!(
            "BENCH_GATEWAY_CPUS needs a writable cgroup ({}): {e}",
            dir.display()
        )
    });
    for (file, value) in files {
        std::fs::write(dir.join(file), value)
            .unwrap_or_else(|e| panic!("writing {file} in {}: {e}", dir.display()));
    }
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
        .unwrap_or_else(|e| panic!("moving the gateway into {}: {e}", dir.display()));
    eprintln!("gateway limited to {cpus} CPUs ({})", dir.display());
}

/// Child role: relay bytes between each connection and the subgraph at
/// `upstream` (host:port) on one single-threaded runtime, understanding
/// nothing of HTTP or GraphQL; with `polling`, the thread does not sleep
/// while a connection is open, as the gateway's threads do not while
/// nearly idle. Through the sleeping one a request costs what the extra hop
/// alone does, before any gateway's own work. The polling one tells what
/// keeping a CPU awake is worth: on a virtual machine whose idle vCPUs are
/// slow to wake, it can come out faster than going straight to the
/// subgraph, and the work a polling gateway does is then paid on top of
/// that more than once over, as it lengthens everybody else's sleep (with
/// 6 µs of busy work per request added to the polling relay its requests
/// took 9–13 µs longer; with 20 µs, 40–58 µs).
fn serve_relay(upstream: &str, polling: bool) {
    let upstream = upstream.to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("http://{}/graphql", listener.local_addr().unwrap());
        // Connections open; while there are any, a polling relay's yielding
        // task keeps the runtime asking epoll with a zero timeout.
        let open = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let opened = std::rc::Rc::new(tokio::sync::Notify::new());
        if polling {
            let (open, opened) = (open.clone(), opened.clone());
            tokio::task::spawn_local(async move {
                loop {
                    opened.notified().await;
                    while open.get() > 0 {
                        tokio::task::yield_now().await;
                        std::thread::yield_now();
                    }
                }
            });
        }
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let upstream = upstream.clone();
            let open = open.clone();
            open.set(open.get() + 1);
            opened.notify_one();
            tokio::task::spawn_local(async move {
                if let Ok(mut subgraph) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = client.set_nodelay(true);
                    let _ = subgraph.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut subgraph).await;
                }
                open.set(open.get() - 1);
            });
        }
    });
}

/// A child process of this benchmark in `role`, and the lines it printed until `until`.
/// The caller kills and waits for it.
fn spawn_role(args: &[&str], until: &str) -> (Child, Vec<String>) {
    spawn_role_with(args, &[], until)
}

/// [`spawn_role`] with `env` set for the child.
#[allow(clippy::zombie_processes)]
fn spawn_role_with(args: &[&str], env: &[(&str, &str)], until: &str) -> (Child, Vec<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} ended before printing {until:?}");
        }
        let line = line.trim().to_owned();
        let done = line.starts_with(until);
        lines.push(line);
        if done {
            return (child, lines);
        }
    }
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The full answer of `query` at `url`, checked to carry data and no errors.
async fn answer(url: &str, query: &str) -> serde_json::Value {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let body = Bytes::from(serde_json::json!({ "query": query }).to_string());
    let (status, bytes) = post(&client, url, &body).await;
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, 200, "{value}");
    assert!(
        value.get("errors").is_none(),
        "{url} answered errors: {}",
        value["errors"]
    );
    assert!(value["data"].is_object(), "{value}");
    value
}

/// How many bytes `url` answers `query` with: a full answer, as load() checks.
async fn answer_len(url: &str, query: &str) -> usize {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let body = Bytes::from(serde_json::json!({ "query": query }).to_string());
    post(&client, url, &body).await.1.len()
}

/// Where the gateway's time went: fetches per subgraph, their mean latency
/// and the share an identical fetch in flight answered, from `/metrics`.
async fn fetch_breakdown(who: &str, gw_url: &str) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let url = gw_url.replace("/graphql", "/metrics");
    let request = hyper::Request::get(url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let body = client
        .request(request)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let requests =
        value("graphql_request_duration_seconds_count{operation=\"TestQuery\",outcome=\"ok\"}");
    let mut parts = Vec::new();
    let (mut fetches, mut merged) = (0.0, 0.0);
    for name in ["accounts", "products", "reviews", "inventory"] {
        let count = value(&format!(
            "subgraph_fetch_duration_seconds_count{{subgraph=\"{name}\"}}"
        ));
        let sum = value(&format!(
            "subgraph_fetch_duration_seconds_sum{{subgraph=\"{name}\"}}"
        ));
        // No line until the first merge.
        let deduplicated = value(&format!(
            "grocery_gateway_subgraph_fetches_deduplicated_total{{subgraph=\"{name}\"}}"
        ));
        let deduplicated = if deduplicated.is_nan() {
            0.0
        } else {
            deduplicated
        };
        fetches += count;
        merged += deduplicated;
        parts.push(format!(
            "{name} {:.1}/req ({:.2} sent), {:.2} ms mean",
            count / requests,
            (count - deduplicated) / requests,
            sum / count * 1000.0
        ));
    }
    println!(
        "{who:<14} fetches: {}; plan cache {} hits, {} misses",
        parts.join("; "),
        value("plan_cache_hits_total"),
        value("plan_cache_misses_total")
    );
    println!(
        "{who:<14} deduplicated {:.1}% of {:.0} fetches; {:.2} subgraph requests per client request ({:.2} fetches)",
        merged / fetches * 100.0,
        fetches,
        (fetches - merged) / requests,
        fetches / requests,
    );
}

async fn wait_healthy(url: &str) -> bool {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    for _ in 0..100 {
        let request = hyper::Request::get(url)
            .body(Full::new(Bytes::new()))
            .unwrap();
        if let Ok(Ok(r)) =
            tokio::time::timeout(Duration::from_millis(500), client.request(request)).await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// A gateway's runs, added up over the rounds.
#[derive(Default)]
struct Tally {
    run: Run,
    gateway_cpu: f64,
    subgraphs_cpu: f64,
    /// Requests/s of each turn, in order.
    turns: Vec<f64>,
}

impl Tally {
    async fn add(
        &mut self,
        url: &str,
        gateway: u32,
        subgraphs: u32,
        concurrency: usize,
        duration: Duration,
        expected_len: usize,
    ) {
        let run = load(
            url,
            QUERY,
            concurrency,
            duration,
            expected_len,
            &[gateway, subgraphs],
        )
        .await;
        self.gateway_cpu += run.cpu[0];
        self.subgraphs_cpu += run.cpu[1];
        self.turns.push(run.rps());
        self.run.absorb(run);
    }

    /// The subgraphs' CPU milliseconds per client request.
    fn subgraphs_cpu_per_request(&self) -> f64 {
        self.subgraphs_cpu / (self.run.requests as f64) * 1000.0
    }

    fn print(&self, name: &str, pid: u32) {
        self.run.print(name);
        let per_request = |cpu: f64| cpu / (self.run.requests as f64) * 1000.0;
        println!(
            "{name:<14} CPU per request: gateway {:.2} ms, subgraphs {:.2} ms",
            per_request(self.gateway_cpu),
            per_request(self.subgraphs_cpu),
        );
        println!("{name:<14} peak RSS {:.1} MB", peak_rss_mb(pid));
    }
}

/// hive-router serving the supergraph at `path`: the child, its URL and the
/// length of its full answer; `None` (said why) when it does not come up.
async fn start_hive(
    binary: &std::path::Path,
    path: &std::path::Path,
    dir: &std::path::Path,
    expected: &serde_json::Value,
) -> Option<(Child, String, usize)> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(binary)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("SUPERGRAPH_FILE_PATH", path)
        .env("HIVE_SUPERGRAPH_SOURCE", "file")
        .env("HIVE_SUPERGRAPH_PATH", path)
        .env("LOG_LEVEL", "error")
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/graphql");
    if !wait_healthy(&format!("http://127.0.0.1:{port}/health")).await {
        println!("hive-router did not become healthy on port {port}; no comparison");
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    if answer(&url, QUERY).await != *expected {
        println!("hive-router answers differently from grocery on the fixture!");
    }
    let len = answer_len(&url, QUERY).await;
    Some((child, url, len))
}

async fn bench() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let rounds: u32 = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let duration = Duration::from_secs(seconds);

    let (mut subgraphs, lines) = spawn_role(&["--serve-subgraphs"], "ready");
    let urls: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(n, u)| (n.to_owned(), u.to_owned()))
        .collect();
    let sources: Vec<_> = fixture()
        .into_iter()
        .map(|(name, sdl, _)| gateway::SubgraphSource {
            name: name.to_owned(),
            url: urls.iter().find(|(n, _)| n == name).unwrap().1.clone(),
            sdl,
        })
        .collect();
    let supergraph = gateway::compose(&sources).unwrap();
    let dir = std::env::temp_dir().join(format!("grocery-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("supergraph.graphql");
    std::fs::write(&path, &supergraph).unwrap();

    let (mut gw, lines) = spawn_role(&["--serve-gateway", path.to_str().unwrap()], "http://");
    let gw_url = lines.last().unwrap().clone();
    let expected = answer(&gw_url, QUERY).await;
    let expected_text = serde_json::to_vec(&expected).unwrap();
    println!(
        "fixture: 4 subgraphs, response {:.1} KB; {concurrency} connections, {seconds} s per gateway in {rounds} turns, {} cores shared by subgraphs, gateway and load",
        expected_text.len() as f64 / 1024.0,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // The gateway's own bytes for the same answer.
    let expected_len = answer_len(&gw_url, QUERY).await;
    // hive-router, when on PATH, serves the same supergraph beside ours.
    let hive = match find_on_path("hive-router").or_else(|| find_on_path("hive_router")) {
        None => {
            println!(
                "hive-router: not on PATH (cargo install hive-router --version 0.0.71 --locked --features graphiql), no comparison"
            );
            None
        }
        Some(binary) => start_hive(&binary, &path, &dir, &expected).await,
    };
    // The same gateway exporting every trace to a sink here, when asked.
    let traced = match std::env::var("BENCH_TRACING") {
        Ok(protocol) if !protocol.is_empty() => {
            let sink = telemetry::otel::receiver::Receiver::sink().await.unwrap();
            let endpoint = match protocol.as_str() {
                "grpc" => format!("http://{}", sink.grpc),
                _ => format!("http://{}", sink.http),
            };
            let (child, lines) = spawn_role_with(
                &["--serve-gateway", path.to_str().unwrap()],
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", &protocol),
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "1.0"),
                ],
                "http://",
            );
            let url = lines.last().unwrap().clone();
            let len = answer_len(&url, QUERY).await;
            Some((child, url, len, sink, protocol))
        }
        _ => None,
    };
    // The same gateway with the entity cache on (in memory): every entity
    // fetch of the query is answered from it once warm.
    let (mut cached, lines) = spawn_role_with(
        &["--serve-gateway", path.to_str().unwrap()],
        &[("BENCH_ENTITY_CACHE", "on")],
        "http://",
    );
    let cached_url = lines.last().unwrap().clone();
    assert_eq!(
        answer(&cached_url, QUERY).await,
        expected,
        "the entity cache changes the answer"
    );
    let cached_len = answer_len(&cached_url, QUERY).await;
    let mut cached_tally = Tally::default();
    // The same gateway without deduplication, when asked.
    let undeduplicated = match std::env::var("BENCH_DEDUP").as_deref() {
        Ok("compare") => {
            let (child, lines) = spawn_role_with(
                &["--serve-gateway", path.to_str().unwrap()],
                &[("SUBGRAPH_DEDUPLICATION", "false")],
                "http://",
            );
            let url = lines.last().unwrap().clone();
            let len = answer_len(&url, QUERY).await;
            Some((child, url, len))
        }
        _ => None,
    };
    let mut undeduplicated_tally = Tally::default();
    let mut traced_tally = Tally::default();
    // The two take turns, round after round, so that the machine's drift
    // (its speed wanders by tens of percent over minutes) falls on both.
    let mut ours = Tally::default();
    let mut theirs = Tally::default();
    let slice = duration / rounds;
    for round in 0..rounds {
        // The traced gateway goes first every other round: whatever the
        // machine does over a round falls on each side as often.
        let traced_first = round % 2 == 1;
        if let (true, Some((child, url, len, _, _))) = (traced_first, &traced) {
            traced_tally
                .add(url, child.id(), subgraphs.id(), concurrency, slice, *len)
                .await;
        }
        ours.add(
            &gw_url,
            gw.id(),
            subgraphs.id(),
            concurrency,
            slice,
            expected_len,
        )
        .await;
        cached_tally
            .add(
                &cached_url,
                cached.id(),
                subgraphs.id(),
                concurrency,
                slice,
                cached_len,
            )
            .await;
        if let Some((child, url, len)) = &undeduplicated {
            undeduplicated_tally
                .add(url, child.id(), subgraphs.id(), concurrency, slice, *len)
                .await;
        }
        if let Some((child, url, len)) = &hive {
            theirs
                .add(url, child.id(), subgraphs.id(), concurrency, slice, *len)
                .await;
        }
        if let (false, Some((child, url, len, _, _))) = (traced_first, &traced) {
            traced_tally
                .add(url, child.id(), subgraphs.id(), concurrency, slice, *len)
                .await;
        }
    }
    ours.print("grocery", gw.id());
    cached_tally.print("entity cache", cached.id());
    println!(
        "entity cache on / off: {:.2}× requests/s ({:.0} vs {:.0})",
        cached_tally.run.rps() / ours.run.rps(),
        cached_tally.run.rps(),
        ours.run.rps(),
    );
    fetch_breakdown("entity cache", &cached_url).await;
    let _ = cached.kill();
    let _ = cached.wait();
    if let Some((mut child, _, _, sink, protocol)) = traced {
        traced_tally.print("traced", child.id());
        let _ = child.kill();
        let _ = child.wait();
        println!(
            "tracing at ratio 1.0 over {protocol}: {:+.1}% requests/s ({:.0} vs {:.0}), {} spans received ({:.1} per request)",
            (traced_tally.run.rps() / ours.run.rps() - 1.0) * 100.0,
            traced_tally.run.rps(),
            ours.run.rps(),
            sink.count(),
            sink.count() as f64 / traced_tally.run.requests.max(1) as f64,
        );
        // Each round's pair compared: the machine's drift between rounds cancels.
        let mut costs: Vec<f64> = traced_tally
            .turns
            .iter()
            .zip(&ours.turns)
            .map(|(traced, off)| (traced / off - 1.0) * 100.0)
            .collect();
        costs.sort_by(f64::total_cmp);
        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "tracing per round: median {:+.1}% requests/s (rounds from {:+.1}% to {:+.1}%; median {:.0} traced vs {:.0} off); each round {}",
            costs[costs.len() / 2],
            costs[0],
            costs[costs.len() - 1],
            median(&traced_tally.turns),
            median(&ours.turns),
            traced_tally
                .turns
                .iter()
                .zip(&ours.turns)
                .map(|(t, o)| format!("{t:.0}/{o:.0}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    fetch_breakdown("grocery", &gw_url).await;
    if let Some((mut child, url, _)) = undeduplicated {
        undeduplicated_tally.print("no dedup", child.id());
        fetch_breakdown("no dedup", &url).await;
        println!(
            "deduplication: subgraphs CPU per client request {:.3} ms on, {:.3} ms off ({:+.1}%)",
            ours.subgraphs_cpu_per_request(),
            undeduplicated_tally.subgraphs_cpu_per_request(),
            (ours.subgraphs_cpu_per_request() / undeduplicated_tally.subgraphs_cpu_per_request()
                - 1.0)
                * 100.0
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    let overhead_time = Duration::from_secs(seconds.div_ceil(2).max(2));
    if let Some((child, _, _)) = &hive {
        theirs.print("hive-router", child.id());
        println!(
            "grocery / hive-router: {:.2}× requests/s",
            ours.run.rps() / theirs.run.rps()
        );
    }

    // Overhead: one subgraph's query through the gateway and straight to it,
    // one connection; in turns, as above, so drift falls on all of them.
    let products = urls
        .iter()
        .find(|(n, _)| n == "products")
        .unwrap()
        .1
        .clone();
    let direct_answer = answer(&products, SIMPLE).await;
    let via_answer = answer(&gw_url, SIMPLE).await;
    assert_eq!(
        direct_answer["data"], via_answer["data"],
        "the gateway changes the answer"
    );
    let direct_len = answer_len(&products, SIMPLE).await;
    let via_len = answer_len(&gw_url, SIMPLE).await;
    let hive_simple_len = match &hive {
        Some((_, url, _)) => answer_len(url, SIMPLE).await,
        None => 0,
    };
    // The hop alone: the same query through relays that copy bytes and parse nothing.
    let upstream = products
        .parse::<hyper::Uri>()
        .unwrap()
        .authority()
        .unwrap()
        .to_string();
    let mut relays: Vec<(&str, Child, String, Run)> = [
        ("relay, sleeping", "sleeping"),
        ("relay, polling", "polling"),
    ]
    .into_iter()
    .map(|(who, mode)| {
        let (child, lines) = spawn_role(&["--serve-relay", &upstream, mode], "http://");
        (who, child, lines.last().unwrap().clone(), Run::default())
    })
    .collect();
    let (mut direct, mut via, mut via_hive) = (Run::default(), Run::default(), Run::default());
    let slice = (overhead_time / rounds).max(Duration::from_secs(1));
    for _ in 0..rounds {
        direct.absorb(load_alone(&products, SIMPLE, slice, direct_len, &[]).await);
        via.absorb(load_alone(&gw_url, SIMPLE, slice, via_len, &[gw.id()]).await);
        for (_, child, url, run) in &mut relays {
            run.absorb(load_alone(url, SIMPLE, slice, direct_len, &[child.id()]).await);
        }
        if let Some((child, url, _)) = &hive {
            via_hive.absorb(load_alone(url, SIMPLE, slice, hive_simple_len, &[child.id()]).await);
        }
    }
    direct.print("subgraph");
    via.print("via gateway");
    let overhead = |run: &Run, who: &str| {
        println!(
            "{who}one-subgraph overhead: {:.2}× p50 ({:+.0} µs), gateway CPU {:.0} µs per request",
            run.percentile(0.5) / direct.percentile(0.5),
            (run.percentile(0.5) - direct.percentile(0.5)) * 1000.0,
            run.cpu.first().copied().unwrap_or(f64::NAN) / run.requests as f64 * 1e6,
        )
    };
    overhead(&via, "");
    for (who, mut child, _, run) in relays {
        println!(
            "{who:<15} {:+.0} µs p50 over the subgraph: the hop alone, nothing parsed",
            (run.percentile(0.5) - direct.percentile(0.5)) * 1000.0
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some((mut child, _, _)) = hive {
        via_hive.print("via hive-router");
        overhead(&via_hive, "hive-router ");
        let _ = child.kill();
        let _ = child.wait();
    }

    for child in [&mut gw, &mut subgraphs] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    if ours.run.failures > 0 {
        eprintln!("{} responses were not the full answer", ours.run.failures);
        std::process::exit(1);
    }
}

/// mimalloc's `purge_delay` option, set to 100 ms as `grocery` sets it
/// (`kit::alloc`, which the gateway crate does not depend on).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // SAFETY: setting an option is thread-safe and takes plain integers.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 100)
    };
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve-relay") {
        return serve_relay(&args[2], args.get(3).is_some_and(|a| a == "polling"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match args.get(1).map(String::as_str) {
        Some("--serve-subgraphs") => runtime.block_on(serve_subgraphs()),
        Some("--serve-gateway") => runtime.block_on(serve_gateway(&args[2])),
        _ => runtime.block_on(bench()),
    }
}
