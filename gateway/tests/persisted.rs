//! Persisted documents (APQ and trusted manifests) and rate limits at the
//! gateway's edge, over a small in-repo subgraph, with a real Redis where
//! replicas share state.

mod support;

use std::{path::Path, sync::Arc, time::Duration};

use auth::{KeyRing, RoleName, SigningKey, TokenSettings, Verifier};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use testing::{RedisServer, assert_no_errors, code, eventually, wait_until};

struct Query;

#[async_graphql::Object]
impl Query {
    async fn hello(&self, name: Option<String>) -> String {
        format!("hello {}", name.as_deref().unwrap_or("world"))
    }
}

struct Mutation;

#[async_graphql::Object]
impl Mutation {
    async fn bump(&self) -> i32 {
        1
    }
}

async fn subgraph() -> support::Served {
    support::serve(
        "greeter",
        async_graphql::Schema::build(Query, Mutation, async_graphql::EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await
}

const HELLO: &str = "query Hello($name: String) { hello(name: $name) }";

fn sha256(text: &str) -> String {
    gateway::pipeline::persisted::sha256_hex(text)
}

fn apq(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

struct Edge {
    keys: KeyRing,
    served: support::Served,
}

impl Edge {
    async fn new() -> Self {
        Self {
            keys: KeyRing::with_signing_key(SigningKey::generate().unwrap().0),
            served: subgraph().await,
        }
    }

    fn gateway(&self, options: gateway::GatewayOptions) -> Arc<gateway::Gateway> {
        let verifier = Verifier::new(&self.keys, &TokenSettings::default()).unwrap();
        Arc::new(
            gateway::Gateway::new(
                &support::supergraph(&[&self.served]),
                Some(Arc::new(gateway::pipeline::auth::EdgeAuth::Keys(Arc::new(
                    verifier,
                )))),
                &options,
            )
            .unwrap(),
        )
    }

    /// An access token of a new user whose role is `role`.
    fn token(&self, role: &'static str) -> String {
        testing::access_token(
            &self.keys,
            uuid::Uuid::new_v4(),
            RoleName::from_static(role),
        )
    }
}

/// POSTs `body` (a whole GraphQL request) with `headers`.
async fn call(
    gw: &Arc<gateway::Gateway>,
    body: Value,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, HeaderMap) {
    use tower::ServiceExt;
    let mut builder = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = gateway::router(gw.clone())
        .oneshot(
            builder
                .body(axum::body::Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap(), headers)
}

async fn get(gw: &Arc<gateway::Gateway>, query_string: &str) -> (StatusCode, Value) {
    use tower::ServiceExt;
    let response = gateway::router(gw.clone())
        .oneshot(
            axum::http::Request::get(format!("/graphql?{query_string}"))
                .header("accept", "application/json")
                // A GET is an operation a browser could send cross-site: marked as a script's.
                .header("apollo-require-preflight", "true")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn apq_answers_a_miss_then_keeps_the_document_once_it_validates() {
    let edge = Edge::new().await;
    let gw = edge.gateway(Default::default());
    let hash = sha256(HELLO);

    let (status, miss, _) = call(&gw, json!({ "extensions": apq(&hash) }), &[]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "APQ clients expect the miss in a 200"
    );
    assert_eq!(code(&miss), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(
        edge.served.requests().len(),
        0,
        "no subgraph call on a miss"
    );

    // A document that does not match its hash is refused and not kept.
    let (status, wrong, _) = call(
        &gw,
        json!({ "query": "{ hello }", "extensions": apq(&hash) }),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&wrong), "PERSISTED_QUERY_HASH_MISMATCH");

    // An invalid document with its right hash is refused and not kept either.
    let invalid = "{ nope }";
    let (_, refused, _) = call(
        &gw,
        json!({ "query": invalid, "extensions": apq(&sha256(invalid)) }),
        &[],
    )
    .await;
    assert_eq!(code(&refused), "GRAPHQL_VALIDATION_FAILED");
    let (_, still_missing, _) =
        call(&gw, json!({ "extensions": apq(&sha256(invalid)) }), &[]).await;
    assert_eq!(code(&still_missing), "PERSISTED_QUERY_NOT_FOUND");

    let (_, registered, _) = call(
        &gw,
        json!({ "query": HELLO, "variables": { "name": "a" }, "extensions": apq(&hash) }),
        &[],
    )
    .await;
    assert_no_errors(&registered);
    assert_eq!(registered["data"]["hello"], "hello a");

    // From now on the hash alone runs it, over POST and GET; hashes are case-blind.
    let (_, by_hash, _) = call(
        &gw,
        json!({ "variables": { "name": "b" }, "extensions": apq(&hash.to_uppercase()) }),
        &[],
    )
    .await;
    assert_no_errors(&by_hash);
    assert_eq!(by_hash["data"]["hello"], "hello b");
    let (status, by_get) = get(
        &gw,
        &format!(
            "variables={}&extensions={}",
            encode(r#"{"name":"c"}"#),
            encode(&apq(&hash).to_string())
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_get["data"]["hello"], "hello c");

    // A persisted mutation is still no GET.
    let bump = "mutation { bump }";
    let (_, _, _) = call(
        &gw,
        json!({ "query": bump, "extensions": apq(&sha256(bump)) }),
        &[],
    )
    .await;
    let (status, _) = get(
        &gw,
        &format!("extensions={}", encode(&apq(&sha256(bump)).to_string())),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    let (_, bad_version, _) = call(
        &gw,
        json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash } } }),
        &[],
    )
    .await;
    assert_eq!(code(&bad_version), "PERSISTED_QUERY_NOT_SUPPORTED");

    let metrics = support_metrics(&gw).await;
    assert!(
        metrics.contains("grocery_gateway_persisted_queries_total{outcome=\"registered\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_apq_miss_is_counted_as_its_own_outcome_not_as_a_refusal() {
    let edge = Edge::new().await;
    let gw = edge.gateway(Default::default());
    let hash = sha256(HELLO);
    let named = |extra: Value| {
        let mut body = json!({ "operationName": "Hello", "extensions": apq(&hash) });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };

    let (_, miss, _) = call(&gw, named(json!({})), &[]).await;
    assert_eq!(code(&miss), "PERSISTED_QUERY_NOT_FOUND");
    // A wrong hash is a refusal like any other.
    let (_, wrong, _) = call(&gw, named(json!({ "query": "{ hello }" })), &[]).await;
    assert_eq!(code(&wrong), "PERSISTED_QUERY_HASH_MISMATCH");
    let (_, ran, _) = call(&gw, named(json!({ "query": HELLO })), &[]).await;
    assert_no_errors(&ran);

    let metrics = support_metrics(&gw).await;
    for line in [
        r#"graphql_requests_total{operation="Hello",outcome="persisted_query_not_found"} 1"#,
        r#"graphql_requests_total{operation="Hello",outcome="refused"} 1"#,
        r#"graphql_requests_total{operation="Hello",outcome="ok"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
}

async fn support_metrics(gw: &Arc<gateway::Gateway>) -> String {
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

#[tokio::test]
async fn apq_documents_are_shared_through_redis_and_memory_carries_on_without_it() {
    let mut redis = RedisServer::start();
    let edge = Edge::new().await;
    let url = redis.url();
    let options = || gateway::GatewayOptions {
        persisted: gateway::pipeline::persisted::PersistedOptions {
            redis_url: Some(url.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    let (a, b) = (edge.gateway(options()), edge.gateway(options()));
    let hash = sha256(HELLO);
    let (_, registered, _) =
        call(&a, json!({ "query": HELLO, "extensions": apq(&hash) }), &[]).await;
    assert_no_errors(&registered);

    // Replica B never saw the document: Redis has it.
    let (_, on_b, _) = call(&b, json!({ "extensions": apq(&hash) }), &[]).await;
    assert_no_errors(&on_b);
    assert_eq!(on_b["data"]["hello"], "hello world");

    // Without Redis, what a replica saw stays in its memory; a replica that
    // never saw the document gets a plain miss (the client re-sends it).
    redis.stop();
    let (_, still_on_b, _) = call(&b, json!({ "extensions": apq(&hash) }), &[]).await;
    assert_no_errors(&still_on_b);
    let c = edge.gateway(options());
    let (status, on_c, _) = call(&c, json!({ "extensions": apq(&hash) }), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(code(&on_c), "PERSISTED_QUERY_NOT_FOUND");
    let (_, resent, _) = call(&c, json!({ "query": HELLO, "extensions": apq(&hash) }), &[]).await;
    assert_no_errors(&resent);
}

/// Registers `query` on `gw` by APQ (document and hash), then asks `other`
/// for it by hash only: what `other` answered.
async fn register_then_ask(
    gw: &Arc<gateway::Gateway>,
    other: &Arc<gateway::Gateway>,
    query: &str,
) -> Value {
    let hash = sha256(query);
    let (_, registered, _) =
        call(gw, json!({ "query": query, "extensions": apq(&hash) }), &[]).await;
    assert_no_errors(&registered);
    call(other, json!({ "extensions": apq(&hash) }), &[])
        .await
        .1
}

#[tokio::test]
async fn apq_documents_are_shared_again_once_redis_is_back_from_a_restart() {
    let mut redis = RedisServer::start();
    let edge = Edge::new().await;
    let url = redis.url();
    let options = || gateway::GatewayOptions {
        persisted: gateway::pipeline::persisted::PersistedOptions {
            redis_url: Some(url.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    let (a, b) = (edge.gateway(options()), edge.gateway(options()));
    let before = "query Before { hello }";
    assert_no_errors(&register_then_ask(&a, &b, before).await);

    // Same port, same append-only file: a crash and a restart.
    redis.stop();
    redis.spawn();
    // A replica may find its connection broken at its first Redis command
    // after the restart; that request is answered as without Redis ...
    let unknown = sha256("query Unknown { hello }");
    let (status, miss, _) = call(&b, json!({ "extensions": apq(&unknown) }), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(code(&miss), "PERSISTED_QUERY_NOT_FOUND");
    let probe = "query Probe { hello }";
    let (_, probed, _) = call(
        &a,
        json!({ "query": probe, "extensions": apq(&sha256(probe)) }),
        &[],
    )
    .await;
    assert_no_errors(&probed);

    // ... and the next ones go through Redis again, both ways.
    for (from, to, query) in [
        (&a, &b, "query AtoB { hello }"),
        (&b, &a, "query BtoA { hello }"),
    ] {
        let answer = register_then_ask(from, to, query).await;
        assert_no_errors(&answer);
        assert_eq!(answer["data"]["hello"], "hello world");
    }
    // What was registered before the restart is still there for a new replica.
    let c = edge.gateway(options());
    let (_, kept, _) = call(&c, json!({ "extensions": apq(&sha256(before)) }), &[]).await;
    assert_no_errors(&kept);
}

fn manifest(dir: &Path, client: &str, documents: &[&str]) {
    let operations: Vec<Value> = documents
        .iter()
        .map(|body| json!({ "id": sha256(body), "name": "Op", "type": "query", "body": body }))
        .collect();
    let text = json!({
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": operations,
    });
    std::fs::write(dir.join(format!("{client}.json")), text.to_string()).unwrap();
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("grocery-manifests-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Manifests from `dir`, for every caller when `only`, else for PARTNER tokens.
fn trusted(dir: &Path, only: bool) -> gateway::GatewayOptions {
    gateway::GatewayOptions {
        persisted: gateway::pipeline::persisted::PersistedOptions {
            manifests: Some(dir.to_owned()),
            only,
            only_roles: vec![RoleName::from_static("PARTNER")],
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn partner_tokens_run_only_documents_of_their_clients_manifest() {
    let dir = temp_dir();
    manifest(&dir, "acme", &[HELLO]);
    manifest(&dir, "other", &["{ __typename }"]);
    let edge = Edge::new().await;
    let gw = edge.gateway(trusted(&dir, false));
    let partner = format!("Bearer {}", edge.token("PARTNER"));
    let as_acme = [
        ("authorization", partner.as_str()),
        ("graphql-client-name", "acme"),
    ];
    let id = sha256(HELLO);

    let (status, free, _) = call(&gw, json!({ "query": "{ hello }" }), &as_acme).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&free), "PERSISTED_QUERY_REQUIRED");
    assert_eq!(edge.served.requests().len(), 0);

    for request in [
        json!({ "documentId": id, "variables": { "name": "acme" } }),
        json!({ "documentId": format!("sha256:{id}"), "variables": { "name": "acme" } }),
        json!({ "extensions": apq(&id), "variables": { "name": "acme" } }),
        // The trusted document itself, sent in full, is the same document.
        json!({ "query": HELLO, "variables": { "name": "acme" } }),
    ] {
        let (status, ran, _) = call(&gw, request.clone(), &as_acme).await;
        assert_eq!(status, StatusCode::OK, "{request}: {ran}");
        assert_eq!(ran["data"]["hello"], "hello acme", "{request}");
    }

    // Another client's manifest does not hold it; APQ cannot sneak it in.
    let as_other = [
        ("authorization", partner.as_str()),
        ("graphql-client-name", "other"),
    ];
    let (_, elsewhere, _) = call(&gw, json!({ "documentId": id }), &as_other).await;
    assert_eq!(code(&elsewhere), "PERSISTED_QUERY_NOT_FOUND");
    let sneaky = "{ hello(name: \"x\") }";
    let (_, registering, _) = call(
        &gw,
        json!({ "query": sneaky, "extensions": apq(&sha256(sneaky)) }),
        &as_acme,
    )
    .await;
    assert_eq!(code(&registering), "PERSISTED_QUERY_REQUIRED");

    // Everyone else may still send documents of their own.
    let customer = format!("Bearer {}", edge.token("CUSTOMER"));
    let (_, free_for_customer, _) = call(
        &gw,
        json!({ "query": "{ hello }" }),
        &[("authorization", customer.as_str())],
    )
    .await;
    assert_no_errors(&free_for_customer);
    // ... and name trusted documents without a client (any manifest counts).
    let (_, by_id, _) = call(&gw, json!({ "documentId": id }), &[]).await;
    assert_no_errors(&by_id);

    // Which roles are held to manifests is configuration, not the gateway's.
    let mut options = trusted(&dir, false);
    options.persisted.only_roles.clear();
    let unrestricted = edge.gateway(options);
    let (_, free_for_partner, _) =
        call(&unrestricted, json!({ "query": "{ hello }" }), &as_acme).await;
    assert_no_errors(&free_for_partner);
}

#[tokio::test]
async fn persisted_only_applies_the_manifests_to_every_caller() {
    let dir = temp_dir();
    manifest(&dir, "web", &[HELLO]);
    let edge = Edge::new().await;
    let gw = edge.gateway(trusted(&dir, true));
    let (_, anonymous, _) = call(&gw, json!({ "query": "{ hello }" }), &[]).await;
    assert_eq!(code(&anonymous), "PERSISTED_QUERY_REQUIRED");
    let admin = format!("Bearer {}", edge.token("ADMIN"));
    let (_, as_admin, _) = call(
        &gw,
        json!({ "query": "{ hello }" }),
        &[("authorization", admin.as_str())],
    )
    .await;
    assert_eq!(code(&as_admin), "PERSISTED_QUERY_REQUIRED");
    let (_, by_id, _) = call(&gw, json!({ "documentId": sha256(HELLO) }), &[]).await;
    assert_no_errors(&by_id);
}

#[tokio::test]
async fn manifests_reload_when_their_directory_changes_and_a_broken_one_is_ignored() {
    let dir = temp_dir();
    manifest(&dir, "acme", &[HELLO]);
    let edge = Edge::new().await;
    let gw = edge.gateway(trusted(&dir, true));
    let watcher = tokio::spawn(gateway::pipeline::persisted::watch(
        gw.pipeline.documents.clone(),
        Duration::from_millis(20),
    ));
    // The watcher has looked at the directory before it changes: a manifest
    // that came after start-up serves once it has.
    let probe = "query Probe { hello(name: \"probe\") }";
    manifest(&dir, "probe", &[probe]);
    wait_until("the watcher's first look", async || {
        let (_, answer, _) = call(&gw, json!({ "documentId": sha256(probe) }), &[]).await;
        answer.get("errors").is_none()
    })
    .await;
    let newer = "query Newer { hello(name: \"new\") }";
    let (_, before, _) = call(&gw, json!({ "documentId": sha256(newer) }), &[]).await;
    assert_eq!(code(&before), "PERSISTED_QUERY_NOT_FOUND");

    manifest(&dir, "acme", &[HELLO, newer]);
    let answer = eventually("the changed manifest to serve", async || {
        let (_, answer, _) = call(&gw, json!({ "documentId": sha256(newer) }), &[]).await;
        if answer.get("errors").is_none() {
            Ok(answer)
        } else {
            Err(answer)
        }
    })
    .await;
    assert_eq!(answer["data"]["hello"], "hello new", "{answer}");

    // A broken manifest keeps the previous ones serving.
    std::fs::write(dir.join("broken.json"), "{ not json").unwrap();
    // Kept: a failed reload changes nothing to wait for; this is time for the
    // watcher (every 20 ms) to have tried it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, kept, _) = call(&gw, json!({ "documentId": sha256(newer) }), &[]).await;
    assert_no_errors(&kept);
    watcher.abort();
    assert!(
        gateway::pipeline::persisted::Manifests::load(&dir)
            .err()
            .is_some_and(|e| format!("{e:#}").contains("broken.json")),
        "the error names the file"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_shipped_manifests_hold_valid_documents_under_their_sha256() {
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema");
    let sdl = std::fs::read_to_string(format!("{schema}/supergraph.graphql")).unwrap();
    let supergraph = gateway::Supergraph::load(&sdl).unwrap();
    let dir = Path::new(schema).join("persisted");
    let manifests = gateway::pipeline::persisted::Manifests::load(&dir).unwrap();
    let mut planned = 0;
    for (client, documents) in manifests.clients() {
        for (id, body) in documents {
            assert_eq!(
                *id,
                sha256(body),
                "{client}: ids are the sha256 of the body"
            );
            if let Err(err) = supergraph.plan(body, None) {
                panic!("{client}: {body}\n does not plan: {err}");
            }
            planned += 1;
        }
    }
    let partner = manifests
        .clients()
        .find(|(client, _)| *client == "partner")
        .expect("schema/persisted/partner.json ships")
        .1;
    for field in [
        "products(",
        "stock {",
        "previewOrder(",
        "confirmOrder(",
        "order(id",
        "orderStatusChanged(",
    ] {
        assert!(
            partner.values().any(|body| body.contains(field)),
            "the partner manifest covers {field}"
        );
    }
    assert!(planned >= 9, "{planned}");
}

fn limited(spec: &str, redis: Option<&RedisServer>) -> gateway::GatewayOptions {
    let mut rate_limits = gateway::pipeline::ratelimit::RateLimits::parse(spec).unwrap();
    rate_limits.ip_header = Some(axum::http::HeaderName::from_static("x-forwarded-for"));
    rate_limits.redis_url = redis.map(RedisServer::url);
    gateway::GatewayOptions {
        rate_limits,
        ..Default::default()
    }
}

#[tokio::test]
async fn rate_limits_are_one_bucket_per_user_across_replicas_with_a_retry_hint() {
    let redis = RedisServer::start();
    let edge = Edge::new().await;
    let spec = "ip.*=off,user.query=3/m:3,user.mutation=1/m:1";
    let (a, b) = (
        edge.gateway(limited(spec, Some(&redis))),
        edge.gateway(limited(spec, Some(&redis))),
    );
    let token = format!("Bearer {}", edge.token("CUSTOMER"));
    let me = [("authorization", token.as_str())];
    for gw in [&a, &b, &a] {
        let (status, ok, _) = call(gw, json!({ "query": "{ hello }" }), &me).await;
        assert_eq!(status, StatusCode::OK);
        assert_no_errors(&ok);
    }
    let before = edge.served.requests().len();
    let (status, refused, headers) = call(&b, json!({ "query": "{ hello }" }), &me).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(code(&refused), "RATE_LIMITED");
    let hint = refused["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap();
    assert!(
        (1..=20).contains(&hint),
        "a third of a minute at most: {hint}"
    );
    assert_eq!(headers["retry-after"], hint.to_string().as_str());
    assert_eq!(edge.served.requests().len(), before, "no subgraph call");

    // Mutations have their own bucket; other users have their own.
    let (_, bumped, _) = call(&a, json!({ "query": "mutation { bump }" }), &me).await;
    assert_no_errors(&bumped);
    let (_, second, _) = call(&b, json!({ "query": "mutation { bump }" }), &me).await;
    assert_eq!(code(&second), "RATE_LIMITED");
    let other = format!("Bearer {}", edge.token("CUSTOMER"));
    let (_, theirs, _) = call(
        &a,
        json!({ "query": "{ hello }" }),
        &[("authorization", other.as_str())],
    )
    .await;
    assert_no_errors(&theirs);
    // Anonymous callers have no user bucket (the per-address one is off).
    for _ in 0..5 {
        assert_no_errors(&call(&a, json!({ "query": "{ hello }" }), &[]).await.1);
    }

    let metrics = support_metrics(&b).await;
    assert!(
        metrics.contains("grocery_gateway_rate_limited_total{scope=\"user\",kind=\"query\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("grocery_gateway_rate_limited_total{scope=\"user\",kind=\"mutation\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn rate_limits_per_address_hold_in_memory_when_redis_is_gone() {
    let mut redis = RedisServer::start();
    let edge = Edge::new().await;
    let gw = edge.gateway(limited("user.*=off,ip.query=2/m:2", Some(&redis)));
    redis.stop();
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    for _ in 0..2 {
        assert_no_errors(
            &call(&gw, json!({ "query": "{ hello }" }), &from("10.0.0.1"))
                .await
                .1,
        );
    }
    let (status, refused, _) = call(&gw, json!({ "query": "{ hello }" }), &from("10.0.0.1")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("this address")
    );
    // The right-most address is the one the trusted proxy saw.
    let (_, proxied, _) = call(
        &gw,
        json!({ "query": "{ hello }" }),
        &[("x-forwarded-for", "10.0.0.1, 10.0.0.2")],
    )
    .await;
    assert_no_errors(&proxied);
}

#[tokio::test]
async fn a_flood_of_distinct_documents_is_refused_before_it_is_planned() {
    let edge = Edge::new().await;
    let gw = edge.gateway(limited("user.*=off,ip.query=3/m:3,ip.mutation=1/m:1", None));
    let from = [("x-forwarded-for", "10.0.0.9")];
    let planned = || gw.current().supergraph.planner_runs();
    let before = planned();
    let mut statuses = Vec::new();
    for i in 0..10 {
        // Each document is new: a plan-cache miss if it got that far.
        let query = format!("query Q{i} {{ a{i}: hello }}");
        statuses.push(call(&gw, json!({ "query": query }), &from).await.0);
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((ok, limited), (3, 7), "{statuses:?}");
    assert_eq!(planned() - before, 3, "refused documents cost no planning");

    // The kind is the operation's own: a mutation named among queries
    // spends the mutation bucket, and the second is refused unplanned.
    let document = "query A { hello } mutation B { bump }";
    let (status, first, _) = call(
        &gw,
        json!({ "query": document, "operationName": "B" }),
        &from,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_no_errors(&first);
    let before = planned();
    let (status, second, _) = call(&gw, json!({ "query": "mutation C { bump }" }), &from).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{second}");
    assert_eq!(code(&second), "RATE_LIMITED");
    assert_eq!(planned(), before);
}

#[tokio::test]
async fn rate_limits_are_shared_again_once_redis_is_back_from_a_restart() {
    let mut redis = RedisServer::start();
    let edge = Edge::new().await;
    let spec = "ip.*=off,user.query=3/m:3";
    let (a, b) = (
        edge.gateway(limited(spec, Some(&redis))),
        edge.gateway(limited(spec, Some(&redis))),
    );
    let hello = |gw: &Arc<gateway::Gateway>, token: &str| {
        let (gw, auth) = (gw.clone(), format!("Bearer {token}"));
        async move {
            let (status, body, _) = call(
                &gw,
                json!({ "query": "{ hello }" }),
                &[("authorization", &auth)],
            )
            .await;
            (status, body)
        }
    };
    let before = edge.token("CUSTOMER");
    for gw in [&a, &b] {
        assert_eq!(hello(gw, &before).await.0, StatusCode::OK);
    }

    redis.stop();
    redis.spawn();
    // The first check on each replica may find its connection broken and
    // count in the replica's own memory; the request is answered.
    let user = edge.token("CUSTOMER");
    for gw in [&a, &b] {
        let (status, answer) = hello(gw, &user).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_no_errors(&answer);
    }
    // From the next on, one bucket in Redis again: three more pass, on either
    // replica, and the fourth is refused (in memory, B would have let it through).
    for gw in [&a, &b, &a] {
        let (status, answer) = hello(gw, &user).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (status, refused) = hello(&b, &user).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(code(&refused), "RATE_LIMITED");
}
