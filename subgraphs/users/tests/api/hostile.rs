//! Hostile input against the users port: NUL bytes, huge and wrongly typed
//! values, mutations over GET, clients that accept only `application/json`,
//! and a database that does not answer. Each entry asserts its code and that
//! nothing was written.

use std::time::Duration;

use axum::{body::Body, http::Request};
use serde_json::{Value, json};
use users::{MailConfig, throttle::ThrottleConfig};

use crate::support::*;

const REGISTER: &str = "mutation($i: RegisterInput!) { register(input: $i) { id } }";
const LOGIN: &str =
    "mutation($d: String!, $p: String!) { login(deviceId: $d, password: $p) { accessToken } }";

#[track_caller]
fn refused_field(resp: &Value) -> &str {
    assert_eq!(code(resp), "BAD_USER_INPUT", "{resp:#}");
    resp["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no field named: {resp:#}"))
}

#[tokio::test]
async fn nul_bytes_are_refused_naming_the_field_and_nothing_is_written() {
    let app = TestApp::new().await;
    let resp = app
        .gql(
            None,
            REGISTER,
            json!({ "i": { "deviceId": "fridge\u{0}1", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(refused_field(&resp), "input.deviceId");
    assert!(
        resp.get("data").is_none(),
        "refused before execution: {resp:#}"
    );
    let resp = app
        .gql(
            None,
            r#"mutation { register(input: {deviceId: "fridge-2", password: "correct-horse-battery", email: "a\u0000@example.com"}) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(refused_field(&resp), "input.email");
    let resp = app
        .gql(None, LOGIN, json!({ "d": "admin", "p": "pass\u{0}word" }))
        .await;
    assert_eq!(refused_field(&resp), "password");
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("login_throttle").await, 0, "not even counted");

    let user = app.customer("fridge-3").await;
    let resp = app
        .gql(
            Some(&user.access),
            "mutation($p: ProfileInput!) { updateProfile(input: $p) { id } }",
            json!({ "p": { "phone": "+44\u{0}" } }),
        )
        .await;
    assert_eq!(refused_field(&resp), "input.phone");
}

#[tokio::test]
async fn huge_and_wrongly_typed_input_is_bad_user_input() {
    let app = TestApp::new().await;
    let huge = "x".repeat(200_000);
    let resp = app
        .gql(
            None,
            REGISTER,
            json!({ "i": { "deviceId": huge, "password": PASSWORD } }),
        )
        .await;
    assert_eq!(refused_field(&resp), "deviceId");
    let resp = app
        .gql(
            None,
            REGISTER,
            json!({ "i": { "deviceId": 42, "password": PASSWORD } }),
        )
        .await;
    assert_eq!(code(&resp), "BAD_USER_INPUT", "{resp:#}");
    let resp = app
        .gql(None, LOGIN, json!({ "d": ["admin"], "p": PASSWORD }))
        .await;
    assert_eq!(code(&resp), "BAD_USER_INPUT", "{resp:#}");
    // A device id no account can have is refused like any wrong login, uncounted.
    let resp = app.login_as(&"y".repeat(100_000), PASSWORD).await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("login_throttle").await, 0);
}

fn get(query: &str, accept: &str) -> Request<Body> {
    let query: String = url_escape(query);
    Request::get(format!("/graphql?query={query}"))
        .header("accept", accept)
        .body(Body::empty())
        .unwrap()
}

/// Percent-encodes everything but unreserved characters.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn mutations_over_get_are_refused_with_405() {
    let app = TestApp::new().await;
    app.register("fridge-1").await;
    let login = r#"mutation { login(deviceId: "fridge-1", password: "correct-horse-battery") { accessToken } }"#;
    let (status, headers, body) = app.exchange(get(login, "application/json")).await;
    assert_eq!(status, 405, "{body:#}");
    assert_eq!(headers["allow"], "POST");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    assert_eq!(
        app.count("refresh_tokens").await,
        0,
        "the login did not run"
    );
    // Queries still run over GET.
    let (status, _, body) = app.exchange(get("{ me { id } }", "application/json")).await;
    assert_eq!(
        (status, &body["data"]["me"]),
        (200, &Value::Null),
        "{body:#}"
    );
}

#[tokio::test]
async fn answers_take_the_media_type_the_client_accepts() {
    let app = TestApp::new().await;
    let post = |accept: &str, query: &str| {
        Request::post("/graphql")
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(Body::from(json!({ "query": query }).to_string()))
            .unwrap()
    };
    let (status, headers, _) = app
        .exchange(post("application/json", "{ me { id } }"))
        .await;
    assert_eq!(
        (status, &headers["content-type"]),
        (200, &"application/json".parse().unwrap())
    );
    let (status, headers, _) = app.exchange(post("*/*", "{ me { id } }")).await;
    assert_eq!(
        (status, &headers["content-type"]),
        (200, &"application/json".parse().unwrap())
    );
    let graphql_json = "application/graphql-response+json, application/json;q=0.9";
    let (status, headers, _) = app.exchange(post(graphql_json, "{ me { id } }")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/graphql-response+json");
    // A document that does not validate: 400 with the newer type, 200 with the older.
    let (status, _, body) = app.exchange(post(graphql_json, "{ nope }")).await;
    assert_eq!(status, 400, "{body:#}");
    assert!(body.get("data").is_none(), "{body:#}");
    let (status, _, _) = app.exchange(post("application/json", "{ nope }")).await;
    assert_eq!(status, 200);
    // A POST that does not say what it carries.
    let (status, _, _) = app
        .exchange(
            Request::post("/graphql")
                .body(Body::from(json!({ "query": "{ me { id } }" }).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, 415);
    // Nor one a browser could send cross-site without asking first.
    let (status, _, _) = app
        .exchange(
            Request::post("/graphql")
                .header("content-type", "text/plain;charset=UTF-8")
                .body(Body::from(json!({ "query": "{ me { id } }" }).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, 415);
}

#[tokio::test]
async fn a_database_that_does_not_answer_is_service_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let cfg = users::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        db: kit::db::DbConfig {
            url: format!("postgres://postgres@127.0.0.1:{port}/nowhere"),
            schema: users::DB_SCHEMA.into(),
            max_connections: 2,
            connect_timeout: Duration::from_millis(500),
            statement_log: None,
        },
        keys: KEYS.clone(),
        tokens: kit::auth::TokenSettings::default(),
        events: Default::default(),
        rpc_token: "hostile-test-service-token".into(),
        mail: MailConfig::default(),
        throttle: ThrottleConfig::default(),
    };
    let pool = kit::db::pool(&cfg.db)
        .await
        .expect("a pool connects lazily");
    let parts = users::build(&cfg, pool, kit::events::Bus::in_process()).unwrap();
    let client = kit::testing::TestClient::new(parts.router);
    for (query, variables) in [
        (LOGIN, json!({ "d": "admin", "p": PASSWORD })),
        (
            REGISTER,
            json!({ "i": { "deviceId": "fridge-1", "password": PASSWORD } }),
        ),
    ] {
        let resp = client.gql(None, query, variables).await;
        assert_eq!(code(&resp), "SERVICE_UNAVAILABLE", "{resp:#}");
        assert_eq!(message(&resp), kit::error::DEPENDENCY_DOWN);
        assert!(!resp.to_string().contains("127.0.0.1"), "{resp:#}");
    }
    let (status, _) = client
        .http(Request::get("/ready").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, 503);
}
