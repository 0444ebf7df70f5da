//! What the gateway's errors carry: never more than the cap (the last one
//! saying how many were dropped), and never a subgraph's address, host name,
//! transport error or answer text.

mod support;

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};
use serde_json::{Value, json};

struct Query;

#[derive(SimpleObject)]
#[graphql(complex)]
struct Item {
    n: i32,
}

#[async_graphql::ComplexObject]
impl Item {
    /// Fails for every item: one error each.
    async fn bad(&self) -> async_graphql::Result<Option<i32>> {
        Err("this item is broken".into())
    }
}

#[Object]
impl Query {
    async fn items(&self, n: i32) -> Vec<Item> {
        (0..n).map(|n| Item { n }).collect()
    }

    /// Refused as the users subgraph refuses a throttled login.
    async fn throttled(&self) -> async_graphql::Result<Option<i32>> {
        use async_graphql::ErrorExtensions;
        Err(
            async_graphql::Error::new("too many failed logins; retry in 7 s").extend_with(
                |_, e| {
                    e.set("code", "RATE_LIMITED");
                    e.set("retryAfter", 7);
                },
            ),
        )
    }
}

async fn items_subgraph() -> support::Served {
    support::serve(
        "items",
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await
}

fn gateway_over(sdl: &str, max_errors: usize) -> Arc<gateway::Gateway> {
    Arc::new(
        gateway::Gateway::new(
            sdl,
            None,
            &gateway::GatewayOptions {
                max_errors,
                ..Default::default()
            },
        )
        .unwrap(),
    )
}

fn errors(body: &Value) -> &Vec<Value> {
    body["errors"].as_array().unwrap()
}

/// The last error stands for `dropped` others.
fn assert_dropped(body: &Value, kept: usize, dropped: u64) {
    let errors = errors(body);
    assert_eq!(errors.len(), kept, "{body}");
    let last = errors.last().unwrap();
    assert_eq!(last["extensions"]["code"], "TOO_MANY_ERRORS", "{last}");
    assert_eq!(last["extensions"]["dropped"], dropped, "{last}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{dropped} more errors")),
        "{last}"
    );
}

#[tokio::test]
async fn an_answer_carries_at_most_the_cap_of_errors_and_says_how_many_were_dropped() {
    let subgraph = items_subgraph().await;
    let sdl = support::supergraph(&[&subgraph]);
    let query = "{ items(n: 250) { n bad } }";
    let gw = gateway_over(&sdl, gateway::pipeline::DEFAULT_MAX_ERRORS);
    let (status, body, _) = support::post_with_status(&gw, query, json!({}), &[]).await;
    assert_eq!(status, 200);
    // 250 failed fields: 99 of them, then one for the other 151.
    assert_dropped(&body, 100, 151);
    assert_eq!(errors(&body)[0]["message"], "this item is broken");
    assert_eq!(body["data"]["items"][249]["n"], 249, "the data is whole");

    let gw = gateway_over(&sdl, 5);
    let (_, body, _) = support::post_with_status(&gw, query, json!({}), &[]).await;
    assert_dropped(&body, 5, 246);
    // At the cap exactly, nothing is dropped.
    let (_, body, _) =
        support::post_with_status(&gw, "{ items(n: 5) { bad } }", json!({}), &[]).await;
    assert_eq!(errors(&body).len(), 5, "{body}");
    assert!(
        errors(&body)
            .iter()
            .all(|e| e["message"] == "this item is broken")
    );
}

#[tokio::test]
async fn refusals_carry_at_most_the_cap_of_errors() {
    let subgraph = items_subgraph().await;
    let sdl = support::supergraph(&[&subgraph]);
    let unknown: String = (0..300).map(|i| format!(" nope{i}")).collect();
    let query = format!("{{ items(n: 1) {{{unknown} }} }}");
    let gw = gateway_over(&sdl, 7);
    let (status, body, _) = support::post_with_status(&gw, &query, json!({}), &[]).await;
    assert_eq!(status, 200, "application/json keeps GraphQL errors at 200");
    assert_dropped(&body, 7, 294);
    assert_eq!(
        errors(&body)[0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert!(subgraph.requests().is_empty(), "nothing ran");
    // Hostile: the same mistake repeated thousands of times in 180 KB.
    let repeated = "__typename @include(if: 1) ".repeat(6_500);
    let (_, body, _) = support::post_with_status(
        &gateway_over(&sdl, gateway::pipeline::DEFAULT_MAX_ERRORS),
        &format!("{{ {repeated} }}"),
        json!({}),
        &[],
    )
    .await;
    let errors = errors(&body);
    assert!(
        !errors.is_empty() && errors.len() <= 100,
        "{} errors",
        errors.len()
    );
    assert!(body.to_string().len() < 64 * 1024, "a small answer");
}

/// Every way a subgraph can fail, and nothing of where it is in the answer.
#[tokio::test]
async fn subgraph_failures_never_show_their_address_or_transport_error() {
    let subgraph = items_subgraph().await;
    let sdl = support::supergraph(&[&subgraph]);
    let dead = support::unreachable_url();
    // A subgraph that answers an internal error page, and one that answers junk.
    let leaky = leaky_server(
        500,
        "text/plain",
        "db at 10.9.8.7:5432 refused: FATAL password",
    )
    .await;
    let junk = leaky_server(200, "application/json", "{\"data\": [unterminated 10.9.8.7").await;
    // The junk server's `/ready` answers 200: it counts as ready.
    for (what, url, ready) in [
        ("down", &dead, false),
        ("error page", &leaky, false),
        ("junk", &junk, true),
    ] {
        let gw = gateway_over(&sdl.replace(&subgraph.url, url), 100);
        let (status, body, _) =
            support::post_with_status(&gw, "{ items(n: 1) { n } }", json!({}), &[]).await;
        assert_eq!(status, 200, "{what}: {body}");
        let error = &errors(&body)[0];
        assert_eq!(
            error["extensions"]["code"], "SUBGRAPH_ERROR",
            "{what}: {body}"
        );
        let text = body.to_string();
        let port = url.rsplit(':').next().unwrap().trim_end_matches("/graphql");
        for secret in [
            "127.0.0.1",
            port,
            "10.9.8.7",
            "onnect",
            "refused",
            "os error",
            "FATAL",
            "unterminated",
        ] {
            assert!(!text.contains(secret), "{what}: {secret:?} in {text}");
        }
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("subgraph items failed: "),
            "{what}: {error}"
        );
        // /ready says which subgraph, not where it is.
        let (status, answer) = get_ready(&gw).await;
        if ready {
            assert_eq!(status, 200, "{what}: {answer}");
            continue;
        }
        assert_eq!(status, 503, "{what}: {answer}");
        assert!(answer["subgraphs"]["items"].is_string(), "{what}: {answer}");
        let text = answer.to_string();
        for secret in ["127.0.0.1", port, "10.9.8.7", "onnect", "os error"] {
            assert!(!text.contains(secret), "{what}: {secret:?} in {text}");
        }
    }
}

/// A server on 127.0.0.1 that answers every request with `status`,
/// `content_type` and `body`; its `/graphql` URL.
async fn leaky_server(status: u16, content_type: &'static str, body: &'static str) -> String {
    let app = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            [("content-type", content_type)],
            body,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
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

#[tokio::test]
async fn a_subgraphs_rate_limit_reaches_the_client_as_retry_after() {
    let sg = items_subgraph().await;
    let gw = gateway_over(&support::supergraph(&[&sg]), 100);
    let (body, headers) = support::post(&gw, "{ throttled }", json!({}), &[]).await;
    assert_eq!(
        errors(&body)[0]["extensions"]["code"],
        "RATE_LIMITED",
        "{body}"
    );
    assert_eq!(headers["retry-after"], "7");
    let (_, headers) = support::post(&gw, "{ items(n: 1) { n } }", json!({}), &[]).await;
    assert!(headers.get("retry-after").is_none());
}
