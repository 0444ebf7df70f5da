//! The subgraph client against real HTTP servers on loopback.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::ConnectInfo,
    http::{HeaderMap, header},
    response::IntoResponse,
    routing::post,
};
use gateway::fetch::{FetchError, SubgraphClient, SubgraphRequest};
use serde_json::{Value, json};

/// Serves `router` on a free loopback port; returns its /graphql URL.
async fn serve(router: Router) -> hyper::Uri {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}/graphql").parse().unwrap()
}

fn request(headers: HeaderMap) -> SubgraphRequest<'static> {
    SubgraphRequest {
        query: "query Q($n: Int) { n }",
        operation_name: Some("Q"),
        variables: gateway::value::Value::from(json!({ "n": 7 })),
        headers,
    }
}

#[tokio::test]
async fn sends_the_operation_and_forwards_only_the_request_context_headers() {
    let seen_ports = Arc::new(Mutex::new(BTreeSet::new()));
    let ports = seen_ports.clone();
    let url = serve(Router::new().route(
        "/graphql",
        post(
            move |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                  headers: HeaderMap,
                  Json(body): Json<Value>| {
                ports.lock().unwrap().insert(peer.port());
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    (
                        [(header::CONTENT_TYPE, "application/graphql-response+json")],
                        Json(json!({ "data": {
                        "body": body,
                        "authorization": header("authorization"),
                        "requestId": header("x-request-id"),
                        "traceparent": header("traceparent"),
                        "cookie": header("cookie"),
                    } })),
                    )
                        .into_response()
                }
            },
        ),
    ))
    .await;
    let client = SubgraphClient::new(Duration::from_secs(5));
    let mut headers = HeaderMap::new();
    headers.insert("authorization", "Bearer abc".parse().unwrap());
    headers.insert("x-request-id", "req-1".parse().unwrap());
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    headers.insert("cookie", "session=secret".parse().unwrap());
    let response = client.fetch(&url, request(headers.clone())).await.unwrap();
    assert!(response.errors.is_empty());
    let data = &Value::from(&response.data);
    assert_eq!(
        data["body"],
        json!({ "query": "query Q($n: Int) { n }", "operationName": "Q", "variables": { "n": 7 } })
    );
    assert_eq!(data["authorization"], "Bearer abc");
    assert_eq!(data["requestId"], "req-1");
    assert!(data["traceparent"].as_str().unwrap().starts_with("00-4bf9"));
    assert_eq!(
        data["cookie"], "",
        "only the request-context headers are forwarded"
    );
    // Keep-alive: sequential requests reuse the pooled connection.
    for _ in 0..20 {
        client.fetch(&url, request(headers.clone())).await.unwrap();
    }
    assert_eq!(
        seen_ports.lock().unwrap().len(),
        1,
        "one connection for 21 requests"
    );
}

#[tokio::test]
async fn a_slow_subgraph_times_out_and_a_missing_one_is_unreachable() {
    let slow = serve(Router::new().route(
        "/graphql",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Json(json!({ "data": null }))
        }),
    ))
    .await;
    let client = SubgraphClient::new(Duration::from_millis(200));
    let started = std::time::Instant::now();
    assert_eq!(
        client.fetch(&slow, request(HeaderMap::new())).await,
        Err(FetchError::Timeout(Duration::from_millis(200)))
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    let gone = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let url: hyper::Uri = format!("http://{gone}/graphql").parse().unwrap();
    assert!(matches!(
        client.fetch(&url, request(HeaderMap::new())).await,
        Err(FetchError::Unreachable(_))
    ));
}

#[tokio::test]
async fn a_subgraph_answering_html_is_an_error_not_data() {
    let html = serve(Router::new().route(
        "/graphql",
        post(|| async {
            (
                [(header::CONTENT_TYPE, "text/html")],
                "<h1>maintenance</h1>",
            )
                .into_response()
        }),
    ))
    .await;
    let client = SubgraphClient::new(Duration::from_secs(5));
    assert_eq!(
        client.fetch(&html, request(HeaderMap::new())).await,
        Err(FetchError::MediaType("text/html".into()))
    );
}
