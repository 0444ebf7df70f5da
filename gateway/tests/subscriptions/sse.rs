//! GraphQL over SSE through the gateway, as graphql-sse's protocol says:
//! distinct connections (every answer an event stream, refusals included)
//! and the single-connection mode's reservations.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use testing::wait_until;

use crate::{TICKS, stack, stack_with};

/// An HTTP/1.1 client of the gateway at `base`.
pub struct Client {
    base: String,
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http(),
        }
    }

    /// `method path` with `headers` and a JSON `body`, if any.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> hyper::Response<Incoming> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = Full::new(Bytes::from(body.unwrap_or_default().to_owned()));
        tokio::time::timeout(
            Duration::from_secs(10),
            self.http.request(request.body(body).unwrap()),
        )
        .await
        .expect("no answer within 10 s")
        .unwrap()
    }

    /// POSTs `body` asking for an event stream; the whole stream.
    pub async fn post_sse(&self, body: Value, headers: &[(&str, &str)]) -> Answer {
        let mut headers = headers.to_vec();
        headers.push(("accept", "text/event-stream"));
        let response = self
            .call("POST", "/graphql", &headers, Some(&body.to_string()))
            .await;
        Answer::read(response).await
    }
}

/// A response read to its end.
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub events: Vec<(String, Value)>,
    pub text: String,
}

impl Answer {
    pub async fn read(response: hyper::Response<Incoming>) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut stream = Events::of(response);
        let mut events = Vec::new();
        while let Some(event) = stream.next().await {
            events.push(event);
        }
        let text = String::from_utf8(stream.seen).unwrap();
        Self {
            status,
            headers,
            events,
            text,
        }
    }

    fn media(&self) -> &str {
        self.headers["content-type"].to_str().unwrap()
    }

    /// The first error's code of the stream's one result, checking the
    /// stream is that result then `complete`.
    fn code(&self) -> &str {
        assert_eq!(self.status, 200, "{}", self.text);
        assert!(
            self.media().starts_with("text/event-stream"),
            "{}",
            self.media()
        );
        assert_eq!(self.events.len(), 2, "{}", self.text);
        assert_eq!(self.events[0].0, "next");
        assert_eq!(self.events[1].0, "complete");
        self.events[0].1["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.text))
    }
}

/// The events of a response, as they arrive.
pub struct Events {
    body: Incoming,
    buf: Vec<u8>,
    /// Everything read so far.
    seen: Vec<u8>,
}

impl Events {
    pub fn of(response: hyper::Response<Incoming>) -> Self {
        Self {
            body: response.into_body(),
            buf: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// The next event (comments skipped): its name and its data (JSON;
    /// `Null` when empty); `None` once the stream ended.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let block = String::from_utf8(block).unwrap();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.strip_prefix(' ').unwrap_or(value));
                    }
                }
                let Some(name) = name else { continue };
                let data = if data.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"))
                };
                return Some((name, data));
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("no event within 10 s")?
                .expect("the stream failed");
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
                self.seen.extend_from_slice(&data);
            }
        }
    }
}

fn keys() -> (auth::KeyRing, Arc<gateway::pipeline::auth::EdgeAuth>) {
    use auth::{KeyRing, SigningKey, TokenSettings, Verifier};
    let keys = KeyRing::with_signing_key(SigningKey::generate().unwrap().0);
    let verifier = Verifier::new(&keys, &TokenSettings::default()).unwrap();
    let edge = gateway::pipeline::auth::EdgeAuth::Keys(Arc::new(verifier));
    (keys, Arc::new(edge))
}

fn bearer(keys: &auth::KeyRing, role: &'static str) -> String {
    let token = testing::access_token(
        keys,
        uuid::Uuid::new_v4(),
        auth::RoleName::from_static(role),
    );
    format!("Bearer {token}")
}

#[tokio::test]
async fn distinct_mode_answers_queries_and_every_refusal_as_an_event_stream() {
    let (keys, verifier) = keys();
    let dir = std::env::temp_dir().join(format!("grocery-sse-manifests-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let stack = stack_with(
        gateway::GatewayOptions {
            persisted: gateway::pipeline::persisted::PersistedOptions {
                manifests: Some(dir.clone()),
                only_roles: vec![auth::RoleName::from_static("PARTNER")],
                ..Default::default()
            },
            rate_limits: gateway::pipeline::ratelimit::RateLimits::parse(
                "ip.*=off,user.query=1/m:1",
            )
            .unwrap(),
            ..Default::default()
        },
        Some(verifier),
    )
    .await;
    let client = Client::new(&stack.base);

    let answer = client.post_sse(json!({ "query": "{ hello }" }), &[]).await;
    assert_eq!(answer.status, 200);
    assert!(answer.media().starts_with("text/event-stream"));
    assert_eq!(
        answer.events,
        [
            ("next".to_owned(), json!({ "data": { "hello": "hi" } })),
            ("complete".to_owned(), Value::Null),
        ]
    );

    let refused = client
        .post_sse(
            json!({ "query": "{ hello }" }),
            &[("authorization", "Bearer nonsense")],
        )
        .await;
    assert_eq!(refused.code(), "UNAUTHENTICATED");
    let invalid = client
        .post_sse(json!({ "query": "subscription { nope }" }), &[])
        .await;
    assert_eq!(invalid.code(), "GRAPHQL_VALIDATION_FAILED");
    let response = client
        .call(
            "POST",
            "/graphql",
            &[("accept", "text/event-stream")],
            Some("{\"query\": "),
        )
        .await;
    assert_eq!(Answer::read(response).await.code(), "BAD_REQUEST");
    let partner = bearer(&keys, "PARTNER");
    let not_trusted = client
        .post_sse(
            json!({ "query": "{ hello }" }),
            &[("authorization", &partner)],
        )
        .await;
    assert_eq!(not_trusted.code(), "PERSISTED_QUERY_REQUIRED");
    let customer = bearer(&keys, "CUSTOMER");
    let first = client
        .post_sse(
            json!({ "query": "{ hello }" }),
            &[("authorization", &customer)],
        )
        .await;
    assert_eq!(first.events[0].1["data"]["hello"], "hi", "{}", first.text);
    let limited = client
        .post_sse(
            json!({ "query": "{ hello }" }),
            &[("authorization", &customer)],
        )
        .await;
    assert_eq!(limited.code(), "RATE_LIMITED");
    assert!(limited.headers.contains_key("retry-after"));

    // A GET query as well.
    let response = client
        .call(
            "GET",
            "/graphql?query=%7B%20hello%20%7D",
            &[("accept", "text/event-stream")],
            None,
        )
        .await;
    let by_get = Answer::read(response).await;
    assert_eq!(
        by_get.events[0].1,
        json!({ "data": { "hello": "hi" } }),
        "{}",
        by_get.text
    );

    // JSON listed first: a query's answer stays JSON.
    let response = client
        .call(
            "POST",
            "/graphql",
            &[("accept", "application/json, text/event-stream")],
            Some(&json!({ "query": "{ hello }" }).to_string()),
        )
        .await;
    assert_eq!(response.headers()["content-type"], "application/json");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Reserves a stream; its token.
async fn reserve(client: &Client) -> String {
    let response = client.call("PUT", "/graphql", &[], None).await;
    assert_eq!(response.status(), 201);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let token = response.into_body().collect().await.unwrap().to_bytes();
    let token = String::from_utf8(token.to_vec()).unwrap();
    assert_eq!(token.len(), 32, "{token}");
    token
}

/// POSTs operation `id` on the stream of `token`; the status.
async fn start(client: &Client, token: &str, id: &str, request: Value) -> u16 {
    let mut request = request;
    request["extensions"] = json!({ "operationId": id });
    let response = client
        .call(
            "POST",
            "/graphql",
            &[("x-graphql-event-stream-token", token)],
            Some(&request.to_string()),
        )
        .await;
    response.status().as_u16()
}

#[tokio::test]
async fn single_connection_mode_carries_every_operation_tagged_with_its_id() {
    let stack = stack(Default::default()).await;
    let client = Client::new(&stack.base);
    let token = reserve(&client).await;
    let stream_headers = [
        ("x-graphql-event-stream-token", token.as_str()),
        ("accept", "text/event-stream"),
    ];
    let response = client.call("GET", "/graphql", &stream_headers, None).await;
    assert_eq!(response.status(), 200);
    let mut events = Events::of(response);
    // One stream per reservation.
    let again = client.call("GET", "/graphql", &stream_headers, None).await;
    assert_eq!(again.status(), 409);

    assert_eq!(
        start(
            &client,
            &token,
            "s1",
            json!({ "query": TICKS, "variables": { "count": 2 } })
        )
        .await,
        202
    );
    for n in 1..=2 {
        let (name, data) = events.next().await.unwrap();
        assert_eq!(name, "next");
        assert_eq!(data["id"], "s1");
        assert_eq!(data["payload"]["data"]["ticks"]["n"], n);
        assert_eq!(
            data["payload"]["data"]["ticks"]["item"]["name"],
            format!("name of item-{}", n % 2)
        );
    }
    assert_eq!(
        events.next().await.unwrap(),
        ("complete".to_owned(), json!({ "id": "s1" }))
    );

    assert_eq!(
        start(&client, &token, "q1", json!({ "query": "{ hello }" })).await,
        202
    );
    assert_eq!(
        events.next().await.unwrap(),
        (
            "next".to_owned(),
            json!({ "id": "q1", "payload": { "data": { "hello": "hi" } } })
        )
    );
    assert_eq!(events.next().await.unwrap().1, json!({ "id": "q1" }));

    // A refusal is accepted and arrives as the operation's errors.
    assert_eq!(
        start(&client, &token, "e1", json!({ "query": "{ nope }" })).await,
        202
    );
    let (name, refused) = events.next().await.unwrap();
    assert_eq!(name, "next");
    assert_eq!(refused["id"], "e1");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(events.next().await.unwrap().1, json!({ "id": "e1" }));

    // A running operation is stopped by DELETE; its id cannot run twice at once.
    let pushed = json!({ "query": "subscription { pushed { n } }" });
    assert_eq!(start(&client, &token, "p1", pushed.clone()).await, 202);
    wait_until("1 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 1
    })
    .await;
    assert_eq!(start(&client, &token, "p1", pushed).await, 409);
    stack.pushed.0.send(3).unwrap();
    assert_eq!(
        events.next().await.unwrap().1,
        json!({ "id": "p1", "payload": { "data": { "pushed": { "n": 3 } } } })
    );
    let token_header = [("x-graphql-event-stream-token", token.as_str())];
    let stopped = client
        .call("DELETE", "/graphql?operationId=p1", &token_header, None)
        .await;
    assert_eq!(stopped.status(), 200);
    wait_until("0 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 0
    })
    .await;
    // Stopping what is not running is no error (it may have just ended).
    let unknown = client
        .call(
            "DELETE",
            "/graphql?operationId=nothing",
            &token_header,
            None,
        )
        .await;
    assert_eq!(unknown.status(), 200);

    // Not an operation of the stream: refused over HTTP.
    let response = client
        .call(
            "POST",
            "/graphql",
            &token_header,
            Some(r#"{"query":"{ hello }"}"#),
        )
        .await;
    assert_eq!(response.status(), 400);
    // The token may come as a query parameter too.
    let by_param = client
        .call(
            "POST",
            &format!("/graphql?token={token}"),
            &[],
            Some(r#"{"query":"{ hello }","extensions":{"operationId":"q2"}}"#),
        )
        .await;
    assert_eq!(by_param.status(), 202);
    assert_eq!(events.next().await.unwrap().1["id"], "q2");
    assert_eq!(events.next().await.unwrap().1, json!({ "id": "q2" }));

    // The client leaves: its reservation and operations go with it.
    assert_eq!(
        start(
            &client,
            &token,
            "p2",
            json!({ "query": "subscription { pushed { n } }" })
        )
        .await,
        202
    );
    wait_until("1 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 1
    })
    .await;
    drop(events);
    wait_until("the reservation to be forgotten", async || {
        stack.gateway.subscriptions.reservations.is_empty()
    })
    .await;
    wait_until("0 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 0
    })
    .await;
    assert_eq!(
        start(&client, &token, "q3", json!({ "query": "{ hello }" })).await,
        404
    );
}

#[tokio::test]
async fn reservations_are_bounded_per_client_and_in_all() {
    let (keys, verifier) = keys();
    let stack = stack_with(
        gateway::GatewayOptions {
            subscriptions: gateway::subscriptions::SubscriptionOptions {
                reservations_per_client: 2,
                max_waiting_reservations: 3,
                ..Default::default()
            },
            ..Default::default()
        },
        Some(verifier),
    )
    .await;
    let client = Client::new(&stack.base);
    // Anonymous: counted by address.
    reserve(&client).await;
    reserve(&client).await;
    let over = Answer::read(client.call("PUT", "/graphql", &[], None).await).await;
    assert_eq!(over.status, 429, "{}", over.text);
    let body: Value = serde_json::from_str(&over.text).unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "SUBSCRIPTION_LIMIT"
    );

    // A user counts on its own, until the gateway's waiting ones are full.
    let user = bearer(&keys, "CUSTOMER");
    let first = client
        .call("PUT", "/graphql", &[("authorization", &user)], None)
        .await;
    assert_eq!(first.status(), 201);
    let full = Answer::read(
        client
            .call("PUT", "/graphql", &[("authorization", &user)], None)
            .await,
    )
    .await;
    assert_eq!(full.status, 503, "{}", full.text);
    assert!(full.headers.contains_key("retry-after"));
    assert_eq!(stack.gateway.subscriptions.reservations.waiting(), 3);
}

#[tokio::test]
async fn event_streams_end_when_the_gateway_stops() {
    let stack = stack(Default::default()).await;
    let client = Client::new(&stack.base);
    let distinct = client
        .call(
            "POST",
            "/graphql",
            &[("accept", "text/event-stream")],
            Some(&json!({ "query": "subscription { pushed { n } }" }).to_string()),
        )
        .await;
    let mut distinct = Events::of(distinct);
    let token = reserve(&client).await;
    let headers = [
        ("x-graphql-event-stream-token", token.as_str()),
        ("accept", "text/event-stream"),
    ];
    let mut single = Events::of(client.call("GET", "/graphql", &headers, None).await);
    wait_until("1 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 1
    })
    .await;

    // Without this, a graceful shutdown would wait for them for ever.
    stack.gateway.subscriptions.end_streams();
    assert_eq!(distinct.next().await, None);
    assert_eq!(single.next().await, None);
    wait_until("the reservation to be forgotten", async || {
        stack.gateway.subscriptions.reservations.is_empty()
    })
    .await;
    wait_until("0 upstream(s) following the pushed feed", async || {
        stack.pushed.0.receiver_count() == 0
    })
    .await;
}
