//! Traces of one checkout through `grocery dev`, exported over OTLP to a
//! receiver of the test's own: the gateway's request span in the client's
//! trace, its plan and fetch spans under it, each subgraph's server span
//! under the fetch that called it, and the SQL it ran below that. Once over
//! gRPC with every trace kept, once over HTTP/protobuf with a sampling
//! ratio of 0, where only a trace the client marked sampled is exported.

mod support;

use std::collections::HashMap;

use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use support::{customer, eventually, ok, post};
use telemetry::otel::receiver::{Received, Receiver};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Previews and confirms an order as a new customer, the confirmation sent
/// with the client's `traceparent`; the confirmation's answer.
async fn checkout(gateway: u16, device: &str) -> Value {
    let token = customer(gateway, device).await;
    let bearer = format!("Bearer {token}");
    let (_, preview) = post(
        gateway,
        &json!({ "query": "mutation { previewOrder(items: [{ sku: \"APPLE\", quantity: 2 }]) { id } }" }),
        &[("authorization", &bearer)],
    )
    .await;
    let id = ok(preview)["previewOrder"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, confirmed) = post(
        gateway,
        &json!({
            "query": "mutation Checkout($id: ID!) { confirmOrder(orderId: $id, idempotencyKey: \"trace-1\", customer: { phone: \"+41 79 111 11 11\", shippingAddress: { line1: \"1 Cold Lane\", city: \"Bern\", postalCode: \"3000\", country: \"CH\" } }) { status customer { email } items { product { name } } } }",
            "operationName": "Checkout",
            "variables": { "id": id },
        }),
        &[
            ("authorization", &bearer),
            ("traceparent", &format!("00-{TRACE}-{CLIENT_SPAN}-01")),
        ],
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    ok(confirmed)
}

/// The spans of the checkout's trace once every subgraph the gateway
/// fetched from has exported its server span and its SQL.
async fn checkout_trace(receiver: &Receiver) -> Vec<Received> {
    eventually("the checkout's spans from every component", async || {
        let spans: Vec<Received> = receiver
            .spans()
            .into_iter()
            .filter(|r| hex(&r.span.trace_id) == TRACE)
            .collect();
        let fetched: Vec<String> = spans
            .iter()
            .filter(|r| r.span.name.starts_with("fetch "))
            .filter_map(|r| r.span.attribute("subgraph.name")?.text().map(str::to_owned))
            .collect();
        let request_done = spans
            .iter()
            .any(|r| r.service == "grocery-gateway" && r.span.kind == 2);
        let all_served = !fetched.is_empty()
            && fetched.iter().all(|name| {
                let service = format!("grocery-{name}");
                spans
                    .iter()
                    .any(|r| r.service == service && r.span.kind == 2)
                    && spans.iter().any(|r| {
                        r.service == service && r.span.attribute("db.system.name").is_some()
                    })
            });
        (request_done && all_served).then_some(spans)
    })
    .await
}

/// Checks the tree: one trace; the gateway's request span under the
/// client's; plan and fetches under it; each subgraph's server span under
/// the fetch that called it; GraphQL and SQL spans below those.
fn assert_checkout_tree(spans: &[Received]) {
    let by_id: HashMap<Vec<u8>, &Received> =
        spans.iter().map(|r| (r.span.span_id.clone(), r)).collect();
    assert_eq!(by_id.len(), spans.len(), "span ids are unique");
    let requests: Vec<&Received> = spans
        .iter()
        .filter(|r| r.service == "grocery-gateway" && r.span.kind == 2)
        .collect();
    assert_eq!(requests.len(), 1, "one gateway request span: {spans:#?}");
    let request = &requests[0].span;
    assert_eq!(hex(&request.parent_span_id), CLIENT_SPAN);
    assert_eq!(request.name, "POST /graphql");
    assert_eq!(
        request
            .attribute("http.request.method")
            .and_then(|a| a.text()),
        Some("POST")
    );
    assert_eq!(
        request
            .attribute("http.response.status_code")
            .and_then(|a| a.int()),
        Some(200)
    );

    let plan = spans
        .iter()
        .find(|r| r.service == "grocery-gateway" && r.span.name == "plan")
        .expect("a plan span");
    assert_eq!(plan.span.parent_span_id, request.span_id);
    assert_eq!(
        plan.span
            .attribute("graphql.operation.name")
            .and_then(|a| a.text()),
        Some("Checkout")
    );
    assert_eq!(
        plan.span
            .attribute("graphql.operation.type")
            .and_then(|a| a.text()),
        Some("mutation")
    );

    let fetches: Vec<&Received> = spans
        .iter()
        .filter(|r| r.service == "grocery-gateway" && r.span.kind == 3)
        .collect();
    let mut subgraphs: Vec<&str> = fetches
        .iter()
        .map(|f| {
            f.span
                .attribute("subgraph.name")
                .and_then(|a| a.text())
                .unwrap()
        })
        .collect();
    subgraphs.sort();
    subgraphs.dedup();
    assert_eq!(subgraphs, ["catalog", "orders", "users"], "{fetches:#?}");
    for fetch in &fetches {
        assert_eq!(
            fetch.span.parent_span_id, request.span_id,
            "fetches are the request's"
        );
        assert!(fetch.span.attribute("server.address").is_some());
    }

    // Every span of a subgraph reaches, through its parents, a server span
    // of that subgraph whose parent is one of the gateway's fetches to it.
    for span in spans.iter().filter(|r| r.service != "grocery-gateway") {
        let mut at = span;
        while at.span.kind != 2 {
            at = by_id.get(&at.span.parent_span_id).unwrap_or_else(|| {
                panic!("{} has its parent in the trace: {span:#?}", at.span.name)
            });
            assert_eq!(at.service, span.service, "a subgraph's spans stay in it");
        }
        let fetch = by_id
            .get(&at.span.parent_span_id)
            .expect("a subgraph's server span is under a gateway fetch");
        assert_eq!(fetch.span.kind, 3);
        let called = fetch
            .span
            .attribute("subgraph.name")
            .and_then(|a| a.text())
            .unwrap();
        assert_eq!(format!("grocery-{called}"), span.service);
    }
    let orders_sql: Vec<&Received> = spans
        .iter()
        .filter(|r| r.service == "grocery-orders" && r.span.attribute("db.system.name").is_some())
        .collect();
    assert!(!orders_sql.is_empty());
    for sql in orders_sql {
        let text = sql
            .span
            .attribute("db.query.text")
            .and_then(|a| a.text())
            .unwrap();
        assert!(!text.contains("-- binds"), "bind values stay home: {text}");
        let parent = by_id[&sql.span.parent_span_id];
        assert_ne!(parent.span.kind, 3, "SQL runs under the subgraph's spans");
    }
    assert!(
        spans.iter().any(|r| r.service == "grocery-orders"
            && r.span.attribute("graphql.operation.type").is_some()),
        "an operation span in orders"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_is_one_trace_from_the_gateway_to_the_sql_over_grpc() {
    let receiver = Receiver::start().await.unwrap();
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:e2e:{}", uuid::Uuid::new_v4().simple());
    let endpoint = format!("http://{}", receiver.grpc);
    let dev = support::start_dev(
        &db.config.url,
        &redis.url(),
        &stream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
    );
    checkout(dev.gateway, "fridge-traced").await;
    let spans = checkout_trace(&receiver).await;
    assert_checkout_tree(&spans);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_ratio_zero_only_a_trace_the_client_sampled_is_exported_over_http() {
    let receiver = Receiver::start().await.unwrap();
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:e2e:{}", uuid::Uuid::new_v4().simple());
    let endpoint = format!("http://{}", receiver.http);
    let dev = support::start_dev(
        &db.config.url,
        &redis.url(),
        &stream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
    );
    // Registering, signing in and previewing carry no traceparent: at ratio
    // 0 none of them is recorded, by the gateway or by any subgraph.
    checkout(dev.gateway, "fridge-sampled").await;
    let spans = checkout_trace(&receiver).await;
    assert_checkout_tree(&spans);
    let others: Vec<String> = receiver
        .spans()
        .into_iter()
        .filter(|r| hex(&r.span.trace_id) != TRACE)
        .map(|r| format!("{} {}", r.service, r.span.name))
        .collect();
    assert_eq!(
        others,
        Vec::<String>::new(),
        "only the sampled trace is exported"
    );
}
