//! Partner usage and quotas at the gateway's edge: two replicas over one
//! real Redis share a client's quota on a trusted document and its hourly
//! usage; one replica without Redis counts in memory; the per-client
//! series stay bounded whatever client names are sent.

mod support;

use std::{path::Path, sync::Arc};

use auth::{KeyRing, RoleName, SigningKey, TokenSettings, Verifier};
use axum::http::{HeaderMap, StatusCode};
use gateway::pipeline::usage::{HourUsage, Period, admin};
use serde_json::{Value, json};
use testing::{RedisServer, code};

struct Query;

#[async_graphql::Object]
impl Query {
    async fn hello(&self) -> String {
        "hello".into()
    }

    async fn bye(&self) -> String {
        "bye".into()
    }
}

const HELLO: &str = "query Hello { hello }";
const BYE: &str = "query Bye { bye }";

fn sha256(text: &str) -> String {
    gateway::pipeline::persisted::sha256_hex(text)
}

/// The `acme` client's manifest: `Hello` and `Bye`, with `quotas`.
fn manifest(dir: &Path, quotas: Value) {
    let operations: Vec<Value> = [("Hello", HELLO), ("Bye", BYE)]
        .iter()
        .map(|(name, body)| json!({ "id": sha256(body), "name": name, "type": "query", "body": body }))
        .collect();
    let text = json!({
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": operations,
        "quotas": quotas,
    });
    std::fs::write(dir.join("acme.json"), text.to_string()).unwrap();
}

struct Edge {
    keys: KeyRing,
    served: support::Served,
    dir: std::path::PathBuf,
}

impl Edge {
    async fn new(quotas: Value) -> Self {
        let dir = std::env::temp_dir().join(format!("usage-manifests-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        manifest(&dir, quotas);
        let schema = async_graphql::Schema::build(
            Query,
            async_graphql::EmptyMutation,
            async_graphql::EmptySubscription,
        )
        .enable_federation()
        .finish();
        Self {
            keys: KeyRing::with_signing_key(SigningKey::generate().unwrap().0),
            served: support::serve("greeter", schema).await,
            dir,
        }
    }

    /// A replica; with `redis`, it shares usage and quotas through it.
    fn replica(&self, redis: Option<String>) -> Arc<gateway::Gateway> {
        let verifier = Verifier::new(&self.keys, &TokenSettings::default()).unwrap();
        let options = gateway::GatewayOptions {
            metrics_on_api: true,
            persisted: gateway::pipeline::persisted::PersistedOptions {
                manifests: Some(self.dir.clone()),
                only_roles: vec![RoleName::from_static("PARTNER")],
                admin_roles: vec![RoleName::from_static("ADMIN")],
                redis_url: redis,
                ..Default::default()
            },
            ..Default::default()
        };
        Arc::new(
            gateway::Gateway::new(
                &self.supergraph(),
                Some(Arc::new(gateway::pipeline::auth::EdgeAuth::Keys(Arc::new(
                    verifier,
                )))),
                &options,
            )
            .unwrap(),
        )
    }

    /// The greeter and the gateway's own usage subgraph, composed.
    fn supergraph(&self) -> String {
        let admin = gateway::SubgraphSource {
            name: admin::NAME.into(),
            url: admin::URL.into(),
            sdl: admin::sdl(),
        };
        let greeter = gateway::SubgraphSource {
            name: self.served.name.clone(),
            url: self.served.url.clone(),
            sdl: self.served.sdl.clone(),
        };
        gateway::compose(&[greeter, admin]).unwrap()
    }

    fn partner(&self) -> String {
        self.bearer("PARTNER")
    }

    fn bearer(&self, role: &'static str) -> String {
        format!(
            "Bearer {}",
            testing::access_token(
                &self.keys,
                uuid::Uuid::new_v4(),
                RoleName::from_static(role)
            )
        )
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the trusted document `body` on `gw` as client `client`.
async fn run(
    gw: &Arc<gateway::Gateway>,
    token: &str,
    client: &str,
    body: &str,
) -> (StatusCode, Value, HeaderMap) {
    use tower::ServiceExt;
    let request = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .header("authorization", token)
        .header("graphql-client-name", client)
        .body(axum::body::Body::from(
            json!({ "documentId": sha256(body) }).to_string(),
        ))
        .unwrap();
    let response = gateway::router(gw.clone()).oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap(), headers)
}

async fn metrics(gw: &Arc<gateway::Gateway>) -> String {
    use tower::ServiceExt;
    let response = gateway::metrics_router(gw.clone())
        .oneshot(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Seconds from now to the end of today (UTC), as the quota's window sees it.
fn seconds_to_midnight() -> u64 {
    let now = chrono::Utc::now();
    Period::Day.window(now).remaining(now)
}

/// The `RateLimit` field's `t` of the day quota.
fn reset_of(headers: &HeaderMap) -> u64 {
    header(headers, "ratelimit")
        .split(";t=")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no t= in {headers:?}"))
}

async fn allowed(gw: &Arc<gateway::Gateway>, token: &str, remaining: u64) {
    let (status, body, headers) = run(gw, token, "acme", HELLO).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["hello"], "hello", "{body}");
    assert!(
        header(&headers, "ratelimit-policy").starts_with("\"day\";q="),
        "{headers:?}"
    );
    assert!(
        header(&headers, "ratelimit").starts_with(&format!("\"day\";r={remaining};t=")),
        "{headers:?}"
    );
}

async fn refused(gw: &Arc<gateway::Gateway>, token: &str, limit: u64) {
    let before = seconds_to_midnight();
    let (status, body, headers) = run(gw, token, "acme", HELLO).await;
    let after = seconds_to_midnight();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    let retry: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!(
        (after..=before).contains(&retry),
        "{retry} not in {after}..={before}"
    );
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], retry);
    assert_eq!(
        header(&headers, "ratelimit-policy"),
        format!("\"day\";q={limit};w=86400")
    );
    assert_eq!(
        header(&headers, "ratelimit"),
        format!("\"day\";r=0;t={}", reset_of(&headers))
    );
}

async fn usage_of(gw: &Arc<gateway::Gateway>) -> Vec<HourUsage> {
    let now = chrono::Utc::now();
    gw.pipeline
        .usage
        .hours(
            "acme",
            now - chrono::Duration::hours(1),
            now + chrono::Duration::hours(1),
        )
        .await
        .unwrap()
}

/// Requests and errors of `document` over the rows (the test may straddle an hour).
fn totals(rows: &[HourUsage], document: &str) -> (u64, u64) {
    rows.iter()
        .filter(|r| r.document == document)
        .fold((0, 0), |(r, e), row| (r + row.requests, e + row.errors))
}

async fn set(gw: &Arc<gateway::Gateway>, limit: Option<u32>) {
    let manifests = gw.pipeline.documents.manifests();
    gw.pipeline
        .usage
        .set_quota(&manifests, "acme", "Hello", Period::Day, limit)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_daily_quota_is_shared_by_two_replicas_through_redis() {
    let redis = RedisServer::start();
    let edge = Edge::new(json!({ "Hello": { "day": 3 } })).await;
    let (a, b) = (
        edge.replica(Some(redis.url())),
        edge.replica(Some(redis.url())),
    );
    let token = edge.partner();

    // Three requests spread over both replicas use the quota up ...
    allowed(&a, &token, 2).await;
    allowed(&b, &token, 1).await;
    allowed(&a, &token, 0).await;
    // ... and the fourth is refused by either, until midnight UTC.
    refused(&b, &token, 3).await;
    refused(&a, &token, 3).await;
    // Another document of the client has no quota and no headers.
    let (status, bye, headers) = run(&b, &token, "acme", BYE).await;
    assert_eq!(status, StatusCode::OK, "{bye}");
    assert!(headers.get("ratelimit").is_none(), "{headers:?}");

    // ADMIN raises the quota on one replica; both see it at once.
    set(&a, Some(5)).await;
    allowed(&b, &token, 1).await;
    allowed(&a, &token, 0).await;
    refused(&b, &token, 5).await;
    // Removing ADMIN's quota puts the manifest's back.
    set(&b, None).await;
    refused(&a, &token, 3).await;

    // Usage per hour is the same from either replica: every request of
    // Hello (9), of which the 4 refused are errors; Bye once, cleanly.
    let rows = usage_of(&a).await;
    assert_eq!(rows, usage_of(&b).await);
    assert_eq!(totals(&rows, "Hello"), (9, 4), "{rows:?}");
    assert_eq!(totals(&rows, "Bye"), (1, 0), "{rows:?}");
    assert!(
        rows.iter().all(|r| r.hour.timestamp() % 3600 == 0),
        "{rows:?}"
    );

    // Each replica's series count what it served.
    let text = metrics(&a).await;
    for line in [
        r#"grocery_gateway_client_requests_total{client="acme",document="Hello",outcome="ok"} 3"#,
        r#"grocery_gateway_client_requests_total{client="acme",document="Hello",outcome="refused"} 2"#,
        r#"grocery_gateway_client_request_duration_seconds_count{client="acme",document="Hello"} 5"#,
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    let text = metrics(&b).await;
    for line in [
        r#"grocery_gateway_client_requests_total{client="acme",document="Hello",outcome="ok"} 2"#,
        r#"grocery_gateway_client_requests_total{client="acme",document="Hello",outcome="refused"} 2"#,
        r#"grocery_gateway_client_requests_total{client="acme",document="Bye",outcome="ok"} 1"#,
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
}

#[tokio::test]
async fn without_redis_one_replica_counts_usage_and_quotas_in_memory() {
    let edge = Edge::new(json!({ "*": { "day": 2 } })).await;
    let gw = edge.replica(None);
    let token = edge.partner();
    allowed(&gw, &token, 1).await;
    allowed(&gw, &token, 0).await;
    refused(&gw, &token, 2).await;
    set(&gw, Some(3)).await;
    allowed(&gw, &token, 0).await;
    refused(&gw, &token, 3).await;
    let rows = usage_of(&gw).await;
    assert_eq!(totals(&rows, "Hello"), (5, 2), "{rows:?}");
    assert_eq!(totals(&rows, "Bye"), (0, 0), "{rows:?}");
}

#[tokio::test]
async fn admin_changes_and_usage_questions_are_checked() {
    let edge = Edge::new(json!({})).await;
    let gw = edge.replica(None);
    let manifests = gw.pipeline.documents.manifests();
    let usage = &gw.pipeline.usage;
    let bad = [
        ("nobody", "Hello", Some(1)),
        ("acme", "Nope", Some(1)),
        ("acme", "", Some(1)),
        ("acme", "Hello\0", Some(1)),
        ("acme", &"H".repeat(100_000), Some(1)),
        ("acme", "Hello", Some(u32::MAX)),
    ];
    for (client, document, limit) in bad {
        let err = usage
            .set_quota(&manifests, client, document, Period::Day, limit)
            .await
            .unwrap_err();
        assert_eq!(err.code, "BAD_USER_INPUT", "{client} {document:.20}");
        assert!(err.message.len() < 300, "{}", err.message);
    }
    // By id as well as by name.
    usage
        .set_quota(&manifests, "acme", &sha256(HELLO), Period::Month, Some(1))
        .await
        .unwrap();
    let token = edge.partner();
    let (status, _, headers) = run(&gw, &token, "acme", HELLO).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        header(&headers, "ratelimit-policy").starts_with("\"month\";q=1;w="),
        "{headers:?}"
    );
    let (status, _, _) = run(&gw, &token, "acme", HELLO).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    let now = chrono::Utc::now();
    for (from, to) in [
        (now, now - chrono::Duration::hours(1)),
        (now - chrono::Duration::days(41), now),
    ] {
        let err = usage.hours("acme", from, to).await.unwrap_err();
        assert_eq!(err.code, "BAD_USER_INPUT");
    }
    // An unknown client has no usage, not an error.
    assert_eq!(usage.hours("nobody", now, now).await.unwrap(), Vec::new());
}

#[tokio::test]
async fn client_names_without_a_manifest_are_one_series() {
    let edge = Edge::new(json!({})).await;
    let gw = edge.replica(None);
    let token = edge.partner();
    // Their manifests do not hold the document: not found, and not a new series.
    for i in 0..500 {
        let (_, body, _) = run(&gw, &token, &format!("client-{i}"), HELLO).await;
        assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    }
    let text = metrics(&gw).await;
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("grocery_gateway_client_requests_total{"))
        .collect();
    assert_eq!(
        series,
        [
            r#"grocery_gateway_client_requests_total{client="other",document="other",outcome="persisted_query_not_found"} 500"#
        ],
    );
}

/// POSTs the GraphQL `query` with `variables` as `token` (no client name).
async fn graphql(
    gw: &Arc<gateway::Gateway>,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    use tower::ServiceExt;
    let mut request = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json");
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    let request = request
        .body(axum::body::Body::from(
            json!({ "query": query, "variables": variables }).to_string(),
        ))
        .unwrap();
    let response = gateway::router(gw.clone()).oneshot(request).await.unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

const SET_QUOTA: &str = "mutation Set($client: String!, $document: String!, $limit: Int) {
  setPartnerQuota(client: $client, document: $document, period: DAY, limit: $limit)
}";

const USAGE: &str = "query Usage($client: String!, $from: DateTime!, $to: DateTime!) {
  partnerUsage(client: $client, from: $from, to: $to) { document hour requests errors }
}";

#[tokio::test]
async fn admin_reads_usage_and_raises_quotas_through_the_supergraph() {
    let redis = RedisServer::start();
    let edge = Edge::new(json!({ "Hello": { "day": 1 } })).await;
    let (a, b) = (
        edge.replica(Some(redis.url())),
        edge.replica(Some(redis.url())),
    );
    let (partner, admin, customer) = (
        edge.partner(),
        edge.bearer("ADMIN"),
        edge.bearer("CUSTOMER"),
    );
    allowed(&a, &partner, 0).await;
    refused(&b, &partner, 1).await;

    // ADMIN raises the quota through one replica; the other applies it.
    let set = graphql(
        &a,
        Some(&admin),
        SET_QUOTA,
        json!({ "client": "acme", "document": "Hello", "limit": 3 }),
    )
    .await;
    assert_eq!(set, json!({ "data": { "setPartnerQuota": 3 } }));
    allowed(&b, &partner, 1).await;

    let now = chrono::Utc::now();
    let window = json!({
        "client": "acme",
        "from": (now - chrono::Duration::hours(1)).to_rfc3339(),
        "to": (now + chrono::Duration::hours(1)).to_rfc3339(),
    });
    let asked = graphql(&b, Some(&admin), USAGE, window.clone()).await;
    let rows = asked["data"]["partnerUsage"]
        .as_array()
        .unwrap_or_else(|| panic!("{asked}"));
    let direct = usage_of(&a).await;
    assert_eq!(totals(&direct, "Hello"), (3, 1), "{direct:?}");
    assert_eq!(rows.len(), direct.len(), "{asked}");
    for (row, expected) in rows.iter().zip(&direct) {
        let hour = chrono::DateTime::parse_from_rfc3339(row["hour"].as_str().unwrap()).unwrap();
        assert_eq!(hour, expected.hour, "{asked}");
        assert_eq!(row["document"], expected.document.as_str());
        assert_eq!(row["requests"], expected.requests);
        assert_eq!(row["errors"], expected.errors);
    }

    // Nobody else may ask or change.
    for (token, wanted) in [
        (Some(customer.as_str()), "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ] {
        let denied = graphql(&a, token, USAGE, window.clone()).await;
        assert_eq!(code(&denied), wanted, "{denied}");
        assert_eq!(denied["data"], Value::Null, "{denied}");
        let denied = graphql(
            &b,
            token,
            SET_QUOTA,
            json!({ "client": "acme", "document": "Hello", "limit": 100 }),
        )
        .await;
        assert_eq!(code(&denied), wanted, "{denied}");
    }
    allowed(&a, &partner, 0).await;
    refused(&a, &partner, 3).await;

    // Bad arguments are refused with what is wrong, nothing changed.
    for variables in [
        json!({ "client": "acme", "document": "Hello", "limit": -1 }),
        json!({ "client": "acme", "document": "Nope", "limit": 5 }),
        json!({ "client": "nobody", "document": "Hello", "limit": 5 }),
        json!({ "client": "acme", "document": "Hello\0", "limit": 5 }),
        json!({ "client": "acme", "document": "H".repeat(50_000), "limit": 5 }),
    ] {
        let bad = graphql(&a, Some(&admin), SET_QUOTA, variables.clone()).await;
        assert_eq!(code(&bad), "BAD_USER_INPUT", "{variables:.80}: {bad:.300}");
    }
    for variables in [
        json!({ "client": "acme", "document": "Hello", "limit": "5" }),
        json!({ "client": ["acme"], "document": "Hello", "limit": 5 }),
        json!({ "client": "acme", "document": "Hello", "limit": 1e12 }),
    ] {
        let bad = graphql(&a, Some(&admin), SET_QUOTA, variables.clone()).await;
        assert!(
            bad["errors"].is_array() && bad.get("data").is_none_or(Value::is_null),
            "{bad}"
        );
    }
    let mut backwards = window.clone();
    backwards["from"] = window["to"].clone();
    backwards["to"] = window["from"].clone();
    let bad = graphql(&a, Some(&admin), USAGE, backwards).await;
    assert_eq!(code(&bad), "BAD_USER_INPUT", "{bad}");
    let mut not_a_date = window.clone();
    not_a_date["from"] = json!("yesterday\0");
    let bad = graphql(&a, Some(&admin), USAGE, not_a_date).await;
    assert!(bad["errors"].is_array(), "{bad}");
    refused(&b, &partner, 3).await;
}
