//! The gateway as operators see it: the supergraph file reloaded under load,
//! request ids and trace context passed to subgraphs, and `/metrics`.

mod support;

use std::time::Duration;

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use serde_json::json;
use testing::wait_until;

struct Query {
    version: &'static str,
}

#[Object]
impl Query {
    async fn version(&self) -> &str {
        self.version
    }

    /// Answers after `ms` milliseconds: a request still in flight.
    async fn slow(&self, ms: u64) -> String {
        SLOW_STARTED.lock().unwrap().push(ms);
        // Kept: a subgraph still working is the fixture.
        tokio::time::sleep(Duration::from_millis(ms)).await;
        format!("{} after {ms} ms", self.version)
    }
}

/// The `ms` of every `slow` call that has started, so that a test can wait
/// until its request (with an `ms` of its own) is in flight.
static SLOW_STARTED: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

async fn subgraph(version: &'static str) -> support::Served {
    support::serve(
        "sg",
        Schema::build(Query { version }, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await
}

#[tokio::test]
async fn the_supergraph_file_is_reloaded_without_dropping_requests_and_a_broken_one_is_ignored() {
    let (one, two) = (subgraph("one").await, subgraph("two").await);
    let dir = std::env::temp_dir().join(format!("grocery-reload-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("supergraph.graphql");
    let first = support::supergraph(&[&one]);
    std::fs::write(&path, &first).unwrap();
    let gw = support::gateway(&first);
    let watcher = tokio::spawn(gateway::watch(
        gw.clone(),
        path.clone(),
        Duration::from_millis(20),
    ));

    let in_flight = tokio::spawn({
        let gw = gw.clone();
        async move {
            support::post(&gw, "{ slow(ms: 700) }", json!({}), &[])
                .await
                .0
        }
    });
    wait_until("the slow request in flight", async || {
        SLOW_STARTED.lock().unwrap().contains(&700)
    })
    .await;
    std::fs::write(&path, support::supergraph(&[&two])).unwrap();
    wait_until("the new supergraph serves", async || {
        support::post(&gw, "{ version }", json!({}), &[]).await.0
            == json!({ "data": { "version": "two" } })
    })
    .await;
    let finished = in_flight.await.unwrap();
    assert_eq!(
        finished,
        json!({ "data": { "slow": "one after 700 ms" } }),
        "the request that started on the old supergraph finishes on it"
    );

    std::fs::write(&path, "type Query { this is not a supergraph").unwrap();
    wait_until("the broken file is counted", async || {
        gw.pipeline
            .metrics
            .render()
            .contains(r#"supergraph_reloads_total{result="failed"} 1"#)
    })
    .await;
    let (still, _) = support::post(&gw, "{ version }", json!({}), &[]).await;
    assert_eq!(
        still,
        json!({ "data": { "version": "two" } }),
        "the old one keeps serving"
    );
    assert!(
        gw.pipeline
            .metrics
            .render()
            .contains(r#"supergraph_reloads_total{result="ok"} 1"#)
    );
    watcher.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn request_ids_and_trace_context_reach_the_subgraph() {
    let sg = subgraph("one").await;
    let gw = support::gateway(&support::supergraph(&[&sg]));
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (body, headers) = support::post(
        &gw,
        "{ version }",
        json!({}),
        &[("x-request-id", "req-42"), ("traceparent", incoming)],
    )
    .await;
    assert_eq!(body, json!({ "data": { "version": "one" } }));
    assert_eq!(headers["x-request-id"], "req-42");
    let seen = sg.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen["x-request-id"], "req-42");
    let forwarded = seen["traceparent"].to_str().unwrap().to_owned();
    let parts: Vec<_> = forwarded.split('-').collect();
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
    assert_ne!(parts[2], "00f067aa0ba902b7", "the gateway's own span");
    assert_eq!(parts[2].len(), 16);

    // Without either, both are made up, and the id comes back to the caller.
    let (_, headers) =
        support::post(&gw, "{ version }", json!({}), &[("traceparent", "garbage")]).await;
    let id = headers["x-request-id"].to_str().unwrap().to_owned();
    let seen = sg.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen["x-request-id"].to_str().unwrap(), id);
    let made = seen["traceparent"].to_str().unwrap().to_owned();
    let parts: Vec<_> = made.split('-').collect();
    assert_eq!(
        (parts.len(), parts[0], parts[1].len(), parts[3]),
        (4, "00", 32, "01"),
        "{made}"
    );
    // A v4 UUID for the id, lowercase hex for the trace; new ones each time.
    let parsed = uuid::Uuid::parse_str(&id).unwrap();
    assert_eq!(
        (parsed.get_version_num(), parsed.hyphenated().to_string()),
        (4, id.clone())
    );
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert!(hex(parts[1]) && hex(parts[2]), "{made}");
    let (_, again) = support::post(&gw, "{ version }", json!({}), &[]).await;
    assert_ne!(again["x-request-id"].to_str().unwrap(), id);
    let remade = sg.seen.lock().unwrap().last().cloned().unwrap()["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(remade.split('-').nth(1), Some(parts[1]), "a new trace");
}

#[tokio::test]
async fn metrics_count_requests_fetches_and_plan_cache() {
    use tower::ServiceExt;
    let sg = subgraph("one").await;
    let gw = support::gateway(&support::supergraph(&[&sg]));
    for _ in 0..3 {
        let (body, _) = support::post(&gw, "query Version { version }", json!({}), &[]).await;
        assert_eq!(body["data"]["version"], "one");
    }
    let (body, _) = support::post(&gw, "{ nope }", json!({}), &[]).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    let response = gateway::router(gw.clone())
        .oneshot(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    let line = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        line(r#"graphql_requests_total{operation="Version",outcome="ok"}"#),
        3.0
    );
    assert_eq!(
        line(r#"graphql_requests_total{operation="",outcome="refused"}"#),
        1.0
    );
    assert_eq!(
        line(r#"subgraph_fetch_duration_seconds_count{subgraph="sg"}"#),
        3.0
    );
    assert_eq!(line(r#"subgraph_fetch_errors_total{subgraph="sg"}"#), 0.0);
    assert_eq!(line("plan_cache_hits_total"), 2.0);
    assert_eq!(line("plan_cache_misses_total"), 2.0);
}

struct LateQuery;

#[Object(name = "Query")]
impl LateQuery {
    /// Like `slow`, from another subgraph.
    async fn late(&self, ms: u64) -> Option<String> {
        // Kept: a subgraph still working is the fixture.
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Some(format!("late after {ms} ms"))
    }
}

#[tokio::test]
async fn a_subgraph_with_its_own_timeout_is_cut_off_and_the_rest_answers() {
    let sg = subgraph("one").await;
    let late = support::serve(
        "late",
        Schema::build(LateQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await;
    let sdl = support::supergraph(&[&sg, &late]);
    let options = |timeouts: &[(&str, u64)]| gateway::GatewayOptions {
        subgraph_timeout: Duration::from_secs(5),
        subgraph_timeouts: timeouts
            .iter()
            .map(|(name, ms)| (name.to_string(), Duration::from_millis(*ms)))
            .collect(),
        ..Default::default()
    };
    let gw =
        std::sync::Arc::new(gateway::Gateway::new(&sdl, None, &options(&[("late", 100)])).unwrap());
    let started = std::time::Instant::now();
    let (body, _) = support::post(&gw, "{ slow(ms: 300) late(ms: 300) }", json!({}), &[]).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(body["data"]["slow"], "one after 300 ms", "{body}");
    assert_eq!(body["data"]["late"], serde_json::Value::Null, "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "SUBGRAPH_ERROR", "{body}");
    assert_eq!(error["extensions"]["serviceName"], "late", "{body}");
    assert!(
        error["message"].as_str().unwrap().contains("100ms"),
        "{body}"
    );
    // Within its timeout the same subgraph answers.
    let (body, _) = support::post(&gw, "{ late(ms: 20) }", json!({}), &[]).await;
    assert_eq!(body, json!({ "data": { "late": "late after 20 ms" } }));
    // A timeout for a subgraph the supergraph does not have is a mistake.
    let unknown = gateway::Gateway::new(&sdl, None, &options(&[("lat", 100)]));
    assert!(
        unknown
            .err()
            .unwrap()
            .to_string()
            .contains("SUBGRAPH_TIMEOUTS names \"lat\"")
    );
}

#[tokio::test]
async fn subgraphs_hear_the_clients_address_from_the_gateway_not_from_the_client() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sg = subgraph("one").await;
    let gw = support::gateway(&support::supergraph(&[&sg]));
    // Over a socket: the peer's address, whatever the client claimed.
    let base = support::listen(gw.clone()).await;
    let addr = base.trim_start_matches("http://");
    let body = r#"{"query":"{ version }"}"#;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n\
         x-forwarded-for: 6.6.6.6\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = sg.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    // Without a peer (in-process), the claim is dropped, not passed on.
    support::post(
        &gw,
        "{ version }",
        json!({}),
        &[("x-forwarded-for", "6.6.6.6")],
    )
    .await;
    let seen = sg.seen.lock().unwrap().last().cloned().unwrap();
    assert!(seen.get("x-forwarded-for").is_none(), "{seen:?}");
}
