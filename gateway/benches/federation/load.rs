//! The load generator: connections posting a query for a while, and what
//! one run measured (requests, failures, latencies, CPU of watched processes).

use super::*;

pub(crate) type HttpClient =
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub(crate) async fn post(client: &HttpClient, url: &str, body: &Bytes) -> (u16, Bytes) {
    let request = hyper::Request::post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

#[derive(Default)]
pub(crate) struct Run {
    pub(crate) requests: usize,
    pub(crate) failures: usize,
    pub(crate) seconds: f64,
    pub(crate) latencies: Vec<Duration>,
    /// CPU seconds the watched processes used while it was measured.
    pub(crate) cpu: Vec<f64>,
}

impl Run {
    pub(crate) fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i =
            ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    pub(crate) fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// Adds `other`'s requests, time and CPU to these.
    pub(crate) fn absorb(&mut self, other: Run) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.seconds += other.seconds;
        self.latencies.extend(other.latencies);
        self.latencies.sort();
        if self.cpu.len() < other.cpu.len() {
            self.cpu.resize(other.cpu.len(), 0.0);
        }
        for (sum, cpu) in self.cpu.iter_mut().zip(other.cpu) {
            *sum += cpu;
        }
    }

    pub(crate) fn print(&self, who: &str) {
        println!(
            "{who:<14} {:>9.0} req/s  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  ({} requests, {} failed)",
            self.rps(),
            self.percentile(0.50),
            self.percentile(0.95),
            self.percentile(0.99),
            self.requests,
            self.failures
        );
    }
}

/// Posts `query` to `url` from `concurrency` connections for `duration`
/// (after a second of warm-up), measuring the CPU time the processes
/// `watch` use meanwhile. A response counts as failed unless it is 200 with
/// exactly `expected_len` bytes (the full answer, checked once beforehand).
pub(crate) async fn load(
    url: &str,
    query: &str,
    concurrency: usize,
    duration: Duration,
    expected_len: usize,
    watch: &[u32],
) -> Run {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .build_http();
    let body = Bytes::from(serde_json::json!({ "query": query }).to_string());
    // Warm up: connections opened, plans cached.
    let warm_until = Instant::now() + Duration::from_secs(1);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, body, url) = (client.clone(), body.clone(), url.to_owned());
            tokio::spawn(async move {
                while Instant::now() < warm_until {
                    post(&client, &url, &body).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let cpu_at_start: Vec<f64> = watch.iter().map(|&pid| cpu_seconds(pid)).collect();
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, body, url) = (client.clone(), body.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0;
                while Instant::now() < until {
                    let sent = Instant::now();
                    let (status, bytes) = post(&client, &url, &body).await;
                    latencies.push(sent.elapsed());
                    if status != 200 || bytes.len() != expected_len {
                        failures += 1;
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut run = Run::default();
    for t in tasks {
        let (latencies, failures) = t.await.unwrap();
        run.failures += failures;
        run.latencies.extend(latencies);
    }
    run.seconds = started.elapsed().as_secs_f64();
    run.cpu = watch
        .iter()
        .zip(cpu_at_start)
        .map(|(&pid, at_start)| cpu_seconds(pid) - at_start)
        .collect();
    run.requests = run.latencies.len();
    run.latencies.sort();
    run
}

/// [`load`] from one connection on a thread of its own with a
/// single-threaded runtime, as a lean load generator (wrk, say) sends: the
/// latency is then the server's, not the wake-ups of this process's
/// worker threads.
pub(crate) async fn load_alone(
    url: &str,
    query: &str,
    duration: Duration,
    expected_len: usize,
    watch: &[u32],
) -> Run {
    let (url, query, watch) = (url.to_owned(), query.to_owned(), watch.to_vec());
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(load(&url, &query, 1, duration, expected_len, &watch))
    })
    .await
    .unwrap()
}
