//! Hostile conversations, beside the corpus's single requests: many SSE
//! reservations and the older `graphql-ws` WebSocket subprotocol abused
//! message by message. Each runs against the corpus's [`Harness`] and says
//! what went wrong, if anything.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use serde_json::{Value, json};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use super::corpus::Harness;

/// A conversation and its verdict.
pub struct Scenario {
    pub name: &'static str,
    pub run: for<'a> fn(&'a Harness) -> futures::future::BoxFuture<'a, Result<(), String>>,
}

/// Every conversation.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "SSE: DELETE of an operation id no stream runs",
            run: |h| Box::pin(delete_unknown_operation(h)),
        },
        Scenario {
            name: "SSE: 10,000 reservations from one client",
            run: |h| Box::pin(many_reservations(h)),
        },
        Scenario {
            name: "graphql-ws: malformed, unknown and binary messages",
            run: |h| Box::pin(legacy_malformed(h)),
        },
        Scenario {
            name: "graphql-ws: a 300 KB message",
            run: |h| Box::pin(legacy_huge(h)),
        },
        Scenario {
            name: "graphql-ws: start before connection_init",
            run: |h| Box::pin(legacy_start_before_init(h)),
        },
        Scenario {
            name: "graphql-ws: one id started 1,000 times",
            run: |h| Box::pin(legacy_duplicate_ids(h)),
        },
        Scenario {
            name: "graphql-ws: 10,000 starts",
            run: |h| Box::pin(legacy_many_starts(h)),
        },
    ]
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Empty<Bytes>,
>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// `method /graphql<query>` with `headers`; the status and the body.
async fn call(
    harness: &Harness,
    client: &Client,
    method: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{}/graphql{query}", harness.addr));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client
        .request(request.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn many_reservations(harness: &Harness) -> Result<(), String> {
    let client = client();
    let limit = gateway::subscriptions::SubscriptionOptions::default().reservations_per_client;
    let before = harness.gateway.subscriptions.reservations.len();
    let mut created = 0;
    for _ in 0..10_000 {
        match call(harness, &client, "PUT", "", &[]).await {
            (201, _) => created += 1,
            (429, body) if body.contains("SUBSCRIPTION_LIMIT") => {}
            (status, body) => return Err(format!("{status}: {body}")),
        }
    }
    let held = harness.gateway.subscriptions.reservations.len();
    if before + created != limit || held != limit {
        return Err(format!(
            "{created} created, {held} held; at most {limit} per client"
        ));
    }
    Ok(())
}

async fn delete_unknown_operation(harness: &Harness) -> Result<(), String> {
    let client = client();
    let (status, token) = call(harness, &client, "PUT", "", &[]).await;
    if status != 201 {
        return Err(format!("PUT: {status} {token}"));
    }
    let header = [("x-graphql-event-stream-token", token.as_str())];
    let (status, body) = call(harness, &client, "DELETE", "?operationId=nothing", &header).await;
    if status != 200 {
        return Err(format!("DELETE of an unknown id: {status} {body}"));
    }
    let (status, body) = call(harness, &client, "DELETE", "", &header).await;
    if status != 400 || !body.contains("BAD_REQUEST") {
        return Err(format!("DELETE without an id: {status} {body}"));
    }
    Ok(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A `graphql-ws` connection, acknowledged unless `init` is false.
async fn legacy(harness: &Harness, init: bool) -> Result<Socket, String> {
    let mut request = format!("ws://{}/graphql", harness.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-ws"),
    );
    let (mut ws, _) = connect_async(request).await.map_err(|e| e.to_string())?;
    if init {
        send(&mut ws, json!({ "type": "connection_init" })).await?;
        expect(&mut ws, "connection_ack").await?;
    }
    Ok(ws)
}

async fn send(ws: &mut Socket, message: Value) -> Result<(), String> {
    ws.send(Message::text(message.to_string()))
        .await
        .map_err(|e| e.to_string())
}

/// The next message but keep-alives: its JSON, or `{"close": code}`,
/// or `{"closed": true}` when the connection ended without a frame.
async fn next(ws: &mut Socket) -> Result<Value, String> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .map_err(|_| "nothing within 10 s".to_owned())?;
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                if value["type"] != "ka" {
                    return Ok(value);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return Ok(json!({ "close": frame.map(|f| u16::from(f.code)) }));
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return Ok(json!({ "closed": true })),
        }
    }
}

/// The next message, which must be of type `kind`.
async fn expect(ws: &mut Socket, kind: &str) -> Result<Value, String> {
    let message = next(ws).await?;
    if message["type"] != kind {
        return Err(format!("expected {kind}, got {message}"));
    }
    Ok(message)
}

/// The connection still answers: a query started as `id` completes.
async fn still_served(ws: &mut Socket, id: &str) -> Result<(), String> {
    send(
        ws,
        json!({ "id": id, "type": "start", "payload": { "query": "{ __typename }" } }),
    )
    .await?;
    loop {
        let message = next(ws).await?;
        if message["type"] == "complete" && message["id"] == id {
            return Ok(());
        }
        if message.get("close").is_some() || message.get("closed").is_some() {
            return Err(format!("closed instead: {message}"));
        }
    }
}

async fn legacy_malformed(harness: &Harness) -> Result<(), String> {
    let mut ws = legacy(harness, true).await?;
    ws.send(Message::text("{\"type\": \u{0}"))
        .await
        .map_err(|e| e.to_string())?;
    expect(&mut ws, "connection_error").await?;
    ws.send(Message::binary(vec![0u8; 64]))
        .await
        .map_err(|e| e.to_string())?;
    expect(&mut ws, "connection_error").await?;
    send(
        &mut ws,
        json!({ "id": "u", "type": "nonsense", "payload": [1, 2, 3] }),
    )
    .await?;
    let unknown = expect(&mut ws, "error").await?;
    if unknown["payload"]["extensions"]["code"] != "BAD_REQUEST" {
        return Err(format!("no code: {unknown}"));
    }
    send(
        &mut ws,
        json!({ "id": "p", "type": "start", "payload": [1] }),
    )
    .await?;
    expect(&mut ws, "error").await?;
    send(&mut ws, json!({ "type": "start", "payload": {} })).await?;
    expect(&mut ws, "connection_error").await?;
    still_served(&mut ws, "after").await
}

async fn legacy_huge(harness: &Harness) -> Result<(), String> {
    let mut ws = legacy(harness, true).await?;
    let query = format!("{{ __typename }} # {}", "x".repeat(300_000));
    // The peer may close while the message is still being written.
    let _ = send(
        &mut ws,
        json!({ "id": "h", "type": "start", "payload": { "query": query } }),
    )
    .await;
    let answer = next(&mut ws).await?;
    if answer.get("close").is_none() && answer.get("closed").is_none() {
        return Err(format!("a message over the limit was read: {answer}"));
    }
    Ok(())
}

async fn legacy_start_before_init(harness: &Harness) -> Result<(), String> {
    let mut ws = legacy(harness, false).await?;
    let planned = harness.gateway.current().supergraph.planner_runs();
    send(
        &mut ws,
        json!({ "id": "1", "type": "start", "payload": { "query": "{ me { id } }" } }),
    )
    .await?;
    let refused = expect(&mut ws, "error").await?;
    if refused["id"] != "1" || harness.gateway.current().supergraph.planner_runs() != planned {
        return Err(format!("ran or misaddressed: {refused}"));
    }
    Ok(())
}

async fn legacy_duplicate_ids(harness: &Harness) -> Result<(), String> {
    let mut ws = legacy(harness, true).await?;
    for _ in 0..1_000 {
        let start =
            json!({ "id": "same", "type": "start", "payload": { "query": "{ __typename }" } });
        send(&mut ws, start).await?;
    }
    still_served(&mut ws, "other").await?;
    settled(harness).await
}

async fn legacy_many_starts(harness: &Harness) -> Result<(), String> {
    let ws = legacy(harness, true).await?;
    let (mut sink, mut stream) = ws.split();
    let planned = harness.gateway.current().supergraph.planner_runs();
    let writer = tokio::spawn(async move {
        for i in 0..10_000 {
            let start = json!({ "id": i.to_string(), "type": "start", "payload": { "query": "{ __typename }" } });
            if sink.send(Message::text(start.to_string())).await.is_err() {
                return;
            }
        }
    });
    // Every start ends with complete (answered, or refused over the
    // connection's limit), unless the gateway gives up on a reader that
    // falls behind (1008; the flood may reset the socket before the client
    // reads that frame): either way it holds a bounded amount for it.
    let (mut completed, mut limited) = (0, 0);
    let ended = loop {
        let message = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .map_err(|_| format!("stuck after {completed} completes"))?;
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => break None,
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        match value["type"].as_str() {
            Some("complete") => {
                completed += 1;
                if completed == 10_000 {
                    break Some(1000);
                }
            }
            Some("data")
                if value["payload"]["errors"][0]["extensions"]["code"] == "SUBSCRIPTION_LIMIT" =>
            {
                limited += 1
            }
            Some("data" | "ka") => {}
            _ => return Err(format!("unexpected {value}")),
        }
    };
    writer.abort();
    if !matches!(ended, Some(1000) | Some(1008) | None) {
        return Err(format!("ended with {ended:?} after {completed} completes"));
    }
    let planned = harness.gateway.current().supergraph.planner_runs() - planned;
    if planned > 1 {
        return Err(format!("one document planned {planned} times"));
    }
    println!(
        "10,000 starts: {completed} completed, {limited} over the connection's limit, ended {ended:?}"
    );
    settled(harness).await?;
    still_served(&mut legacy(harness, true).await?, "next").await
}

/// Nothing is left running once the conversation is over.
async fn settled(harness: &Harness) -> Result<(), String> {
    for _ in 0..200 {
        if harness.gateway.subscriptions.open() == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "{} operations still open",
        harness.gateway.subscriptions.open()
    ))
}
