//! In `grocery dev` every subgraph shares one process, yet each one's
//! `/metrics` shows its own series: the GraphQL requests its router served,
//! by operation and outcome, and the event counters of its own consumers.

mod support;

use kit::testing::{RedisServer, TestDatabase};
use support::{customer, eventually, metrics};

fn port_of(url: &str) -> u16 {
    url.trim_start_matches("http://")
        .split(['/', ':'])
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_subgraph_in_dev_reports_its_own_requests_and_consumers() {
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:e2e:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(&db.config.url, &redis.url(), &stream, &[]);
    let (orders, users) = (dev.urls["orders"].clone(), dev.urls["users"].clone());

    // Through the gateway: registering and signing in reach users, whose
    // fetches the gateway sends without an operation name.
    customer(dev.gateway, "fridge-metrics").await;
    // Straight to orders: a named operation, and one refused for its media type.
    let probe =
        br#"{"query":"query ComponentProbe { __typename }","operationName":"ComponentProbe"}"#;
    let port = port_of(&orders);
    let answered = support::http(
        port,
        "POST",
        "/graphql",
        &[("content-type", "application/json")],
        probe,
    )
    .await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    let refused = support::http(
        port,
        "POST",
        "/graphql",
        &[("content-type", "text/plain")],
        probe,
    )
    .await;
    assert_eq!(refused.status, 415, "{}", refused.body);

    // Consumers register as they start, which may be just after dev is ready.
    let orders_text = eventually("orders' consumer in its /metrics", async || {
        let text = metrics(&orders).await;
        text.contains("grocery_events_processed_total{group=\"orders.shipments\"}")
            .then_some(text)
    })
    .await;
    for line in [
        "graphql_requests_total{operation=\"ComponentProbe\",outcome=\"ok\"} 1\n",
        "graphql_requests_total{operation=\"ComponentProbe\",outcome=\"refused\"} 1\n",
        "graphql_request_duration_seconds_count{operation=\"ComponentProbe\",outcome=\"ok\"} 1\n",
        "grocery_events_followers ",
    ] {
        assert!(orders_text.contains(line), "{line} not in:\n{orders_text}");
    }
    assert!(!orders_text.contains("group=\"users."), "{orders_text}");
    assert!(!orders_text.contains("group=\"logistics."), "{orders_text}");

    let users_text = eventually("users' consumer in its /metrics", async || {
        let text = metrics(&users).await;
        text.contains("grocery_events_processed_total{group=\"users.notifications\"}")
            .then_some(text)
    })
    .await;
    assert!(
        users_text.contains("graphql_requests_total{operation=\"\",outcome=\"ok\"}"),
        "the gateway's fetches for registering and signing in:\n{users_text}"
    );
    assert!(!users_text.contains("ComponentProbe"), "{users_text}");
    assert!(!users_text.contains("group=\"orders."), "{users_text}");
    assert!(
        users_text.contains("grocery_events_followers "),
        "{users_text}"
    );
}
