//! `/ready` follows the subgraphs' own readiness: a subgraph whose `/ready`
//! says 503 (its database is down) makes the gateway's 503 too, named in
//! the body; answers are reused for a short while; a subgraph without a
//! readiness page is asked `{ __typename }`.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use serde_json::Value;
use testing::eventually_within;

struct Query;

#[Object]
impl Query {
    /// Every test subgraph has it.
    #[graphql(shareable)]
    async fn ping(&self) -> bool {
        true
    }
}

/// A subgraph like ours: GraphQL on `/graphql`, and `/ready` beside it
/// answering 200 or 503 as `ready` says, counting the probes in `probed`.
struct Subgraph {
    served: support::Served,
    ready: Arc<AtomicBool>,
    probed: Arc<AtomicUsize>,
}

async fn subgraph(name: &str) -> Subgraph {
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish();
    let (ready, probed) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (flag, count) = (ready.clone(), probed.clone());
    let page = axum::Router::new().route(
        "/ready",
        axum::routing::get(move || {
            count.fetch_add(1, Ordering::SeqCst);
            let up = flag.load(Ordering::SeqCst);
            async move {
                if up {
                    (axum::http::StatusCode::OK, "{\"status\":\"ready\"}")
                } else {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "{\"status\":\"database unreachable at 10.1.1.1:5432\"}",
                    )
                }
            }
        }),
    );
    Subgraph {
        served: support::serve_beside(name, schema, page).await,
        ready,
        probed,
    }
}

fn gateway(sdl: &str, cache: Duration, ready_urls: &[(&str, String)]) -> Arc<gateway::Gateway> {
    Arc::new(
        gateway::Gateway::new(
            sdl,
            None,
            &gateway::GatewayOptions {
                ready_cache: cache,
                subgraph_ready_urls: ready_urls
                    .iter()
                    .map(|(n, u)| (n.to_string(), u.clone()))
                    .collect(),
                ..Default::default()
            },
        )
        .unwrap(),
    )
}

async fn get_ready(gw: &Arc<gateway::Gateway>) -> (u16, Value) {
    use tower::ServiceExt;
    let response = gateway::router(gw.clone())
        .oneshot(
            axum::http::Request::get("/ready")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Polls `/ready` until it answers `status`, for at most 5 s.
async fn until_ready_is(gw: &Arc<gateway::Gateway>, status: u16) -> Value {
    let what = format!("/ready to answer {status}");
    eventually_within(Duration::from_secs(5), &what, async || {
        let (now, body) = get_ready(gw).await;
        if now == status {
            Ok(body)
        } else {
            Err((now, body))
        }
    })
    .await
}

#[tokio::test]
async fn ready_follows_each_subgraphs_own_readiness() {
    let (users, orders) = (subgraph("users").await, subgraph("orders").await);
    let sdl = support::supergraph(&[&users.served, &orders.served]);
    let gw = gateway(&sdl, Duration::from_millis(100), &[]);
    let (status, body) = get_ready(&gw).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &Value::from("ready")),
        "{body}"
    );
    assert!(
        users.probed.load(Ordering::SeqCst) >= 1,
        "its /ready was asked"
    );

    // Its database goes: users' /ready says 503, and so does the gateway's.
    users.ready.store(false, Ordering::SeqCst);
    let body = until_ready_is(&gw, 503).await;
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["subgraphs"]["users"], "not ready (HTTP 503)", "{body}");
    assert!(body["subgraphs"].get("orders").is_none(), "{body}");
    assert!(!body.to_string().contains("10.1.1.1"), "{body}");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");

    users.ready.store(true, Ordering::SeqCst);
    until_ready_is(&gw, 200).await;
}

#[tokio::test]
async fn ready_answers_are_reused_for_the_cache_interval() {
    let users = subgraph("users").await;
    let sdl = support::supergraph(&[&users.served]);
    let gw = gateway(&sdl, Duration::from_secs(60), &[]);
    let answers = futures::future::join_all((0..20).map(|_| get_ready(&gw))).await;
    assert!(answers.iter().all(|(status, _)| *status == 200));
    assert_eq!(
        users.probed.load(Ordering::SeqCst),
        1,
        "one probe for 20 calls"
    );
    users.ready.store(false, Ordering::SeqCst);
    assert_eq!(get_ready(&gw).await.0, 200, "still the kept answer");
}

#[tokio::test]
async fn a_subgraph_without_a_ready_page_is_asked_graphql_and_a_configured_url_wins() {
    // The shared support's subgraphs have no `/ready` (404): `{ __typename }`.
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish();
    let plain = support::serve("plain", schema).await;
    let users = subgraph("users").await;
    let sdl = support::supergraph(&[&plain, &users.served]);
    let gw = gateway(&sdl, Duration::ZERO, &[]);
    assert_eq!(get_ready(&gw).await.0, 200);
    assert_eq!(plain.requests().len(), 1, "asked {{ __typename }} once");

    // Configured: plain's readiness is users' page; a 404 there is not ready.
    let users_ready = users.served.url.replace("/graphql", "/ready");
    let gw = gateway(&sdl, Duration::ZERO, &[("plain", users_ready)]);
    users.ready.store(false, Ordering::SeqCst);
    let (status, body) = get_ready(&gw).await;
    assert_eq!(status, 503);
    assert_eq!(body["subgraphs"]["plain"], "not ready (HTTP 503)", "{body}");
    let missing = users.served.url.replace("/graphql", "/nothing-here");
    let gw = gateway(&sdl, Duration::ZERO, &[("plain", missing)]);
    users.ready.store(true, Ordering::SeqCst);
    let (status, body) = get_ready(&gw).await;
    assert_eq!(status, 503);
    assert_eq!(body["subgraphs"]["plain"], "not ready (HTTP 404)", "{body}");
}
