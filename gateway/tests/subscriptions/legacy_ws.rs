//! The older `graphql-ws` subprotocol (subscriptions-transport-ws) on the
//! same `/graphql` WebSocket, spoken message by message as its reference
//! client does: the same auth, limits, keep-alive and fan-out as
//! `graphql-transport-ws`, in the legacy protocol's messages.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use serde_json::{Value, json};
use testing::wait_until;
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::{Socket, TICKS, send, stack, stack_with};

/// A WebSocket to the gateway offering only `graphql-ws`.
async fn connect(base: &str) -> Socket {
    let mut request = format!("{}/graphql", base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-ws"),
    );
    let (socket, response) = connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-ws");
    socket
}

/// The next message but keep-alives, or the close as `{"close": code, "reason": …}`.
async fn recv(ws: &mut Socket) -> Value {
    loop {
        let message = next(ws).await;
        if message["type"] != "ka" {
            return message;
        }
    }
}

/// The next message, keep-alives included.
async fn next(ws: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("the socket ended")
            .expect("socket error");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(frame) => {
                let frame = frame.expect("a close frame with a code");
                return json!({ "close": u16::from(frame.code), "reason": frame.reason.as_str() });
            }
            _ => continue,
        }
    }
}

/// A connection acknowledged with `payload` as its `connection_init`.
async fn ready(base: &str, payload: Value) -> Socket {
    let mut ws = connect(base).await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    assert_eq!(next(&mut ws).await, json!({ "type": "connection_ack" }));
    // The first keep-alive right after the ack: the client starts watching then.
    assert_eq!(next(&mut ws).await, json!({ "type": "ka" }));
    ws
}

fn start(id: &str, query: &str, variables: Value) -> Value {
    json!({ "id": id, "type": "start", "payload": { "query": query, "variables": variables } })
}

#[tokio::test]
async fn a_legacy_client_queries_subscribes_stops_and_terminates() {
    let stack = stack(gateway::GatewayOptions {
        subscriptions: gateway::subscriptions::SubscriptionOptions {
            keepalive: Duration::from_millis(200),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut ws = ready(&stack.base, json!({})).await;

    send(&mut ws, start("1", "{ hello }", json!({}))).await;
    assert_eq!(
        recv(&mut ws).await,
        json!({ "id": "1", "type": "data", "payload": { "data": { "hello": "hi" } } })
    );
    assert_eq!(
        recv(&mut ws).await,
        json!({ "id": "1", "type": "complete" })
    );

    send(&mut ws, start("2", TICKS, json!({ "count": 2 }))).await;
    for n in 1..=2 {
        let data = recv(&mut ws).await;
        assert_eq!(data["id"], "2");
        assert_eq!(data["type"], "data");
        assert_eq!(data["payload"]["data"]["ticks"]["n"], n);
        assert_eq!(
            data["payload"]["data"]["ticks"]["item"]["name"],
            format!("name of item-{}", n % 2)
        );
    }
    assert_eq!(
        recv(&mut ws).await,
        json!({ "id": "2", "type": "complete" })
    );

    // A validation error is data with errors, then complete, as the reference server sends it.
    send(&mut ws, start("3", "subscription { nope }", json!({}))).await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["type"], "data");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(
        recv(&mut ws).await,
        json!({ "id": "3", "type": "complete" })
    );

    // stop ends a subscription, upstream too.
    send(
        &mut ws,
        start("4", "subscription { pushed { n } }", json!({})),
    )
    .await;
    wait_until("1 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 1
    })
    .await;
    stack.pushed.0.send(9).unwrap();
    assert_eq!(recv(&mut ws).await["payload"]["data"]["pushed"]["n"], 9);
    send(&mut ws, json!({ "id": "4", "type": "stop" })).await;
    wait_until("0 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 0
    })
    .await;

    // What the protocol does not know is answered, and the connection stays.
    send(
        &mut ws,
        json!({ "id": "5", "type": "subscribe", "payload": {} }),
    )
    .await;
    let unknown = recv(&mut ws).await;
    assert_eq!(unknown["type"], "error");
    assert_eq!(unknown["id"], "5");
    assert_eq!(unknown["payload"]["extensions"]["code"], "BAD_REQUEST");
    ws.send_text("{ not json").await;
    let unreadable = recv(&mut ws).await;
    assert_eq!(unreadable["type"], "connection_error");
    assert_eq!(unreadable["payload"]["extensions"]["code"], "BAD_REQUEST");

    // Quiet connections get keep-alives.
    assert_eq!(next(&mut ws).await, json!({ "type": "ka" }));

    send(&mut ws, json!({ "type": "connection_terminate" })).await;
    assert_eq!(recv(&mut ws).await["close"], 1000);
    wait_until("0 client subscription(s) open", async || {
        stack.gateway.subscriptions.open() == 0
    })
    .await;
}

/// Sends a text message as it is.
trait SendText {
    async fn send_text(&mut self, text: &str);
}

impl SendText for Socket {
    async fn send_text(&mut self, text: &str) {
        use futures::SinkExt;
        self.send(Message::text(text)).await.unwrap();
    }
}

#[tokio::test]
async fn a_legacy_client_gets_the_same_auth_limits_and_fan_out() {
    use auth::{KeyRing, RoleName, SigningKey, TokenSettings, Verifier};
    let keys = KeyRing::with_signing_key(SigningKey::generate().unwrap().0);
    let verifier = Verifier::new(&keys, &TokenSettings::default()).unwrap();
    let stack = stack_with(
        gateway::GatewayOptions {
            subscriptions: gateway::subscriptions::SubscriptionOptions {
                per_connection: 2,
                ..Default::default()
            },
            ..Default::default()
        },
        Some(Arc::new(gateway::pipeline::auth::EdgeAuth::Keys(Arc::new(
            verifier,
        )))),
    )
    .await;

    // A refused token: connection_error, then the close.
    let mut ws = connect(&stack.base).await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "authorization": "Bearer nonsense" } }),
    )
    .await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["type"], "connection_error");
    assert_eq!(refused["payload"]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(recv(&mut ws).await["close"], 4403);

    // start before connection_init: an error for that operation, nothing runs.
    let mut early = connect(&stack.base).await;
    send(&mut early, start("0", "{ hello }", json!({}))).await;
    let error = recv(&mut early).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["id"], "0");
    assert_eq!(stack.gateway.subscriptions.open(), 0);

    let token = testing::access_token(
        &keys,
        uuid::Uuid::new_v4(),
        RoleName::from_static("CUSTOMER"),
    );
    let mut first = ready(
        &stack.base,
        json!({ "Authorization": format!("Bearer {token}") }),
    )
    .await;
    let mut second = ready(
        &stack.base,
        json!({ "authorization": format!("Bearer {token}") }),
    )
    .await;
    let pushed = "subscription { pushed { n } }";
    send(&mut first, start("a", pushed, json!({}))).await;
    // An id started again is restarted, as the reference server does.
    send(&mut first, start("a", pushed, json!({}))).await;
    send(&mut first, start("b", pushed, json!({}))).await;
    send(&mut first, start("c", pushed, json!({}))).await;
    let limited = recv(&mut first).await;
    assert_eq!(limited["id"], "c", "{limited}");
    assert_eq!(
        limited["payload"]["errors"][0]["extensions"]["code"],
        "SUBSCRIPTION_LIMIT"
    );
    assert_eq!(
        recv(&mut first).await,
        json!({ "id": "c", "type": "complete" })
    );
    send(&mut second, start("x", pushed, json!({}))).await;
    wait_until("3 client subscription(s) open", async || {
        stack.gateway.subscriptions.open() == 3
    })
    .await;
    // Same operation, same token: one upstream subscription for all.
    wait_until("1 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 1
    })
    .await;
    assert_eq!(stack.gateway.subscriptions.upstream(), 1);
    stack.pushed.0.send(1).unwrap();
    let mut on_first = [recv(&mut first).await, recv(&mut first).await];
    on_first.sort_by_key(|m| m["id"].as_str().unwrap().to_owned());
    assert_eq!(on_first[0]["id"], "a");
    assert_eq!(on_first[1]["id"], "b");
    assert_eq!(
        recv(&mut second).await,
        json!({ "id": "x", "type": "data", "payload": { "data": { "pushed": { "n": 1 } } } })
    );
}
