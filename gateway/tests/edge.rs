//! The gateway's HTTP edge without any subgraph: introspection answered from
//! the API schema, the body cap, and CORS.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use testing::{TestClient, assert_no_errors, code};

/// The gateway's routes over the committed supergraph. Its subgraph URLs
/// (127.0.0.1:4001-4003) are not served during these tests: nothing here may
/// need a subgraph unless the test points them elsewhere.
fn app(options: gateway::GatewayOptions) -> axum::Router {
    let sdl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schema/supergraph.graphql"
    ))
    .unwrap();
    gateway::router(Arc::new(
        gateway::Gateway::new(&sdl, None, &options).unwrap(),
    ))
}

fn gateway(introspection: bool) -> TestClient {
    TestClient::new(app(gateway::GatewayOptions {
        subgraph_timeout: Duration::from_secs(1),
        introspection,
        ..Default::default()
    }))
}

/// The query GraphiQL sends, abridged only in whitespace.
const GRAPHIQL: &str = "query IntrospectionQuery { __schema { description queryType { name } mutationType { name }
  subscriptionType { name } types { ...FullType } directives { name description locations isRepeatable args { ...InputValue } } } }
  fragment FullType on __Type { kind name description specifiedByURL fields(includeDeprecated: true) { name description
  args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason } inputFields { ...InputValue }
  interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef } }
  fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
  fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

#[tokio::test]
async fn graphiql_gets_the_api_schema_without_federation_internals() {
    let resp = gateway(true).gql(None, GRAPHIQL, json!({})).await;
    assert_no_errors(&resp);
    let schema = &resp["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query");
    assert_eq!(schema["mutationType"]["name"], "Mutation");
    let types = schema["types"].as_array().unwrap();
    let named = |n: &str| types.iter().find(|t| t["name"] == n).cloned();
    assert_eq!(named("Product").unwrap()["kind"], "OBJECT");
    assert_eq!(named("Role").unwrap()["kind"], "ENUM");
    assert!(named("String").is_some());
    assert!(
        types
            .iter()
            .all(|t| !t["name"].as_str().unwrap().starts_with("join__")),
        "no federation internals"
    );
    let query_fields: Vec<_> = named("Query").unwrap()["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert!(
        query_fields.contains(&json!("products")) && !query_fields.contains(&json!("__schema"))
    );
}

#[tokio::test]
async fn a_type_is_introspected_by_name_with_fields_from_every_subgraph() {
    let query = "query($t: String!) { t: __type(name: $t) { name fields { name type { kind ofType { name } } } } __typename }";
    let resp = gateway(true)
        .gql(None, query, json!({ "t": "Product" }))
        .await;
    assert_no_errors(&resp);
    let fields: Vec<_> = resp["data"]["t"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    for expected in ["sku", "name", "stock", "unitPrice"] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} missing from {fields:?}"
        );
    }
    assert_eq!(resp["data"]["__typename"], "Query");
    let missing = gateway(true)
        .gql(None, "{ __type(name: \"Nope\") { name } }", json!({}))
        .await;
    assert_eq!(missing["data"]["__type"], Value::Null);
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let resp = gateway(false)
        .gql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(code(&resp), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn bad_variables_are_refused_before_any_subgraph_is_called() {
    // The subgraphs are not served: a fetch would answer SUBGRAPH_ERROR, not BAD_USER_INPUT.
    let gw = gateway(false);
    let query = "query($sku: String!, $n: Int) { product(sku: $sku) { name } products(first: $n) { totalCount } }";
    for (variables, says) in [
        (json!({}), "of required type \"String!\" was not provided"),
        (json!({ "sku": null }), "not to be null"),
        (json!({ "sku": 5 }), "String cannot represent"),
        (json!({ "sku": "A", "n": "ten" }), "Int cannot represent"),
        (json!({ "sku": "A", "n": 1.5 }), "Int cannot represent"),
    ] {
        let resp = gw.gql(None, query, variables.clone()).await;
        assert_eq!(code(&resp), "BAD_USER_INPUT", "{variables} → {resp}");
        let message = resp["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{variables}: {message}");
        assert!(resp.get("data").is_none_or(Value::is_null), "{resp}");
    }
    let resp = gw
        .gql(
            None,
            "mutation($r: Role!) { setRole(userId: \"1\", role: $r) { id } }",
            json!({ "r": "EMPEROR" }),
        )
        .await;
    assert_eq!(code(&resp), "BAD_USER_INPUT", "{resp}");
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_parsing() {
    let body = format!(
        r#"{{"query":"{{ __typename }}","variables":{{"pad":"{}"}}}}"#,
        "x".repeat(300 * 1024)
    );
    let request = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(axum::body::Body::from(body))
        .unwrap();
    let (status, answer) = gateway(true).http(request).await;
    assert_eq!(status, 413);
    assert_eq!(code(&answer), "BAD_REQUEST", "{answer}");
    // Streamed without a length, it is cut off as it is read.
    let chunks = futures::stream::iter(
        (0..40).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 8 * 1024]))),
    );
    let request = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(chunks))
        .unwrap();
    let (status, answer) = gateway(true).http(request).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(code(&answer), "BAD_REQUEST", "{answer}");
}

fn request(method: &str, origin: &str) -> axum::http::Request<axum::body::Body> {
    let mut builder = axum::http::Request::builder()
        .method(method)
        .uri("/graphql")
        .header("origin", origin);
    if method == "OPTIONS" {
        builder = builder
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            );
    } else {
        builder = builder.header("content-type", "application/json");
    }
    let body = if method == "POST" {
        r#"{"query":"{ __typename }"}"#
    } else {
        ""
    };
    builder.body(axum::body::Body::from(body)).unwrap()
}

#[tokio::test]
async fn browsers_from_allowed_origins_get_cors_answers_and_others_do_not() {
    let options = gateway::GatewayOptions {
        cors: gateway::server::cors::CorsPolicy::parse("https://shop.example", false),
        ..Default::default()
    };
    let app = app(options);
    use tower::ServiceExt;
    let preflight = app
        .clone()
        .oneshot(request("OPTIONS", "https://shop.example"))
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "https://shop.example");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert!(
        h.get("access-control-allow-credentials").is_none(),
        "credentials are off by default"
    );
    let simple = app
        .clone()
        .oneshot(request("POST", "https://shop.example"))
        .await
        .unwrap();
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let foreign = app
        .clone()
        .oneshot(request("OPTIONS", "https://evil.example"))
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let foreign = app
        .oneshot(request("POST", "https://evil.example"))
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn ready_names_the_subgraphs_that_do_not_answer() {
    // The committed supergraph points at 127.0.0.1:4001-4003, which nothing
    // serves during tests unless a dev stack runs: point them at a dead port.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let sdl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schema/supergraph.graphql"
    ))
    .unwrap();
    let names: Vec<String> = gateway::Supergraph::load(&sdl)
        .unwrap()
        .subgraphs()
        .keys()
        .cloned()
        .collect();
    let urls = names
        .iter()
        .map(|n| (n.clone(), format!("http://{dead}/graphql")))
        .collect();
    let options = gateway::GatewayOptions {
        subgraph_urls: urls,
        ..Default::default()
    };
    let client = TestClient::new(app(options));
    let (status, body) = client
        .http(
            axum::http::Request::get("/ready")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "unavailable");
    let down = body["subgraphs"].as_object().unwrap();
    assert_eq!(down.len(), names.len(), "{body}");
    assert!(names.len() >= 3, "{names:?}");
    assert!(
        down["inventory"].as_str().unwrap().contains("unreachable"),
        "{body}"
    );
}

#[tokio::test]
async fn tokens_are_checked_against_the_jwks_and_a_rotated_key_is_fetched_again() {
    use auth::{KeyRing, RoleName, SigningKey, TokenSettings};
    const CUSTOMER: RoleName = RoleName::from_static("CUSTOMER");
    let old = KeyRing::with_signing_key(SigningKey::generate().unwrap().0);
    let new = KeyRing::with_signing_key(SigningKey::generate().unwrap().0);
    let published = Arc::new(std::sync::Mutex::new(old.jwks()));
    let serving = published.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let jwks_app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let doc = serving.lock().unwrap().clone();
            async move { axum::Json(doc) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, jwks_app).await });

    let auth =
        gateway::pipeline::auth::EdgeAuth::Jwks(Box::new(gateway::pipeline::auth::Jwks::new(
            url.parse().unwrap(),
            TokenSettings::default(),
            Duration::ZERO,
        )));
    let user = uuid::Uuid::new_v4();
    assert_eq!(
        auth.verify(&testing::access_token(&old, user, CUSTOMER))
            .await
            .unwrap()
            .sub,
        user
    );
    let rotated = testing::access_token(&new, user, CUSTOMER);
    assert!(auth.verify(&rotated).await.is_err(), "not published yet");
    *published.lock().unwrap() = new.jwks();
    assert!(
        auth.verify(&rotated).await.is_ok(),
        "an unknown kid fetches the JWKS again"
    );

    // Through the router: a token from a stranger never reaches a subgraph.
    let stranger = KeyRing::with_signing_key(SigningKey::generate().unwrap().0);
    let sdl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schema/supergraph.graphql"
    ))
    .unwrap();
    let gw = gateway::Gateway::new(&sdl, Some(Arc::new(auth)), &Default::default()).unwrap();
    let client = TestClient::new(gateway::router(Arc::new(gw)));
    let resp = client
        .gql(
            Some(&testing::access_token(
                &stranger,
                user,
                RoleName::from_static("ADMIN"),
            )),
            "{ me { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");
}

#[tokio::test]
async fn preflights_allow_what_graphql_clients_send_and_answers_expose_their_ids() {
    let options = gateway::GatewayOptions {
        cors: gateway::server::cors::CorsPolicy::parse("https://shop.example", false)
            .allowing(["x-tenant", "not a header"]),
        ..Default::default()
    };
    let app = app(options);
    use tower::ServiceExt;
    // As Chromium sends it for an Apollo Client app that sets its name:
    // lower case, sorted, comma-separated without spaces.
    for requested in [
        "apollographql-client-name,apollographql-client-version,content-type",
        "content-type,graphql-client-name,graphql-client-version",
        "authorization,content-type,traceparent,x-apollo-operation-name",
        "content-type,x-tenant",
    ] {
        let preflight = axum::http::Request::builder()
            .method("OPTIONS")
            .uri("/graphql")
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", requested)
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = app.clone().oneshot(preflight).await.unwrap();
        assert_eq!(answer.status(), 204);
        let allowed: Vec<String> = answer.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        for header in requested.split(',') {
            assert!(
                allowed.contains(&header.to_owned()),
                "{header} in {allowed:?}"
            );
        }
        assert!(!allowed.iter().any(|h| h.contains(' ')), "{allowed:?}");
    }
    let answer = app
        .oneshot(request("POST", "https://shop.example"))
        .await
        .unwrap();
    let exposed = answer.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("retry-after"),
        "{exposed}"
    );
    assert!(answer.headers().contains_key("x-request-id"));
}
