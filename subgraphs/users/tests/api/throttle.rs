//! Failed logins are throttled per account and per client address, shared
//! through PostgreSQL, and an unknown account costs what a wrong password costs.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use axum::{body::Body, extract::ConnectInfo, http::Request};
use kit::{auth::Role, testing::eventually_within};
use serde_json::{Value, json};
use users::throttle::ThrottleConfig;

use crate::support::*;

const LOGIN: &str =
    "mutation($d: String!, $p: String!) { login(deviceId: $d, password: $p) { accessToken } }";

/// A login as a client at `peer` (the TCP peer) would send it, with `x-forwarded-for` when given.
async fn login_from(
    app: &TestApp,
    peer: &str,
    forwarded: Option<&str>,
    device_id: &str,
    password: &str,
) -> (axum::http::HeaderMap, Value) {
    let mut request = Request::post("/graphql").header("content-type", "application/json");
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    let body = json!({ "query": LOGIN, "variables": { "d": device_id, "p": password } });
    let mut request = request.body(Body::from(body.to_string())).unwrap();
    let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let (_, headers, body) = app.exchange(request).await;
    (headers, body)
}

fn retry_after(resp: &Value) -> u64 {
    assert_eq!(code(resp), "RATE_LIMITED", "{resp:#}");
    resp["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("retryAfter: {resp:#}"))
}

/// Logs in until the throttle lets the attempt through (within 5 s).
async fn login_once_allowed(app: &TestApp, device_id: &str, password: &str) -> Value {
    eventually_within(
        Duration::from_secs(5),
        "the throttle to let a login through",
        async || {
            let resp = app.login_as(device_id, password).await;
            if resp["errors"][0]["extensions"]["code"] != "RATE_LIMITED" {
                Ok(resp)
            } else {
                Err(resp)
            }
        },
    )
    .await
}

#[tokio::test]
async fn failed_logins_wait_growing_delays_and_a_success_starts_over() {
    let app = TestApp::new().await;
    app.register("fridge-1").await;
    for _ in 0..5 {
        assert_eq!(
            code(&app.login_as("fridge-1", "wrong-password").await),
            "UNAUTHENTICATED"
        );
    }
    // Even the right password waits: the throttle runs before the check.
    assert_eq!(retry_after(&app.login_as("fridge-1", PASSWORD).await), 1);
    let sixth = login_once_allowed(&app, "fridge-1", "wrong-password").await;
    assert_eq!(code(&sixth), "UNAUTHENTICATED");
    assert_eq!(retry_after(&app.login_as("fridge-1", PASSWORD).await), 2);

    assert_no_errors(&login_once_allowed(&app, "fridge-1", PASSWORD).await);
    // The success cleared the account's count: five more tries before delays.
    for _ in 0..5 {
        assert_eq!(
            code(&app.login_as("fridge-1", "wrong-password").await),
            "UNAUTHENTICATED"
        );
    }
    assert_eq!(
        retry_after(&app.login_as("fridge-1", "wrong-password").await),
        1
    );
    // Other accounts are not held up (`customer` fails the test on an error).
    app.customer("fridge-2").await;
}

#[tokio::test]
async fn unknown_device_ids_are_throttled_like_known_ones() {
    let app = TestApp::new().await;
    app.register("fridge-1").await;
    let mut answers = Vec::new();
    for device_id in ["fridge-1", "nobody"] {
        for _ in 0..5 {
            app.login_as(device_id, "wrong-password").await;
        }
        answers.push(app.login_as(device_id, "wrong-password").await);
    }
    assert_eq!(
        answers[0], answers[1],
        "the throttle must not tell which accounts exist"
    );
    assert_eq!(retry_after(&answers[1]), 1);
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_throttle() {
    let app = TestApp::new().await;
    app.register("fridge-1").await;
    let answers =
        futures::future::join_all((0..20).map(|_| app.login_as("fridge-1", "wrong-password")))
            .await;
    let codes: Vec<&str> = answers.iter().map(code).collect();
    let checked = codes.iter().filter(|c| **c == "UNAUTHENTICATED").count();
    let limited = codes.iter().filter(|c| **c == "RATE_LIMITED").count();
    assert_eq!((checked, limited), (5, 15), "{codes:?}");
}

#[tokio::test]
async fn failures_from_one_address_are_throttled_across_accounts() {
    let app = TestApp::with_throttle(ThrottleConfig {
        address_failures: 3,
        ..ThrottleConfig::default()
    })
    .await;
    // A public peer is the client, whatever address it claims to forward.
    for (i, claimed) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let (_, resp) = login_from(
            &app,
            "203.0.113.7",
            Some(claimed),
            &format!("guess-{i}"),
            "wrong-password",
        )
        .await;
        assert_eq!(code(&resp), "UNAUTHENTICATED");
    }
    let (headers, resp) = login_from(
        &app,
        "203.0.113.7",
        Some("198.51.100.4"),
        "guess-9",
        "wrong-password",
    )
    .await;
    assert_eq!(retry_after(&resp), 1);
    assert_eq!(headers["retry-after"], "1", "the HTTP answer says it too");
    // Another address is not held up, nor is the throttled address's account count touched.
    let (_, other) = login_from(&app, "203.0.113.8", None, "guess-9", "wrong-password").await;
    assert_eq!(code(&other), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_trusted_proxy_speaks_for_its_client() {
    let app = TestApp::with_throttle(ThrottleConfig {
        address_failures: 2,
        ..ThrottleConfig::default()
    })
    .await;
    // The gateway connects from loopback and names the client it serves.
    for device_id in ["a", "b"] {
        let (_, resp) = login_from(
            &app,
            "127.0.0.1",
            Some("203.0.113.50"),
            device_id,
            "wrong-password",
        )
        .await;
        assert_eq!(code(&resp), "UNAUTHENTICATED");
    }
    // Right-most entry: anything left of it is the client's own claim.
    let (_, resp) = login_from(
        &app,
        "127.0.0.1",
        Some("198.51.100.77, 203.0.113.50"),
        "c",
        "wrong-password",
    )
    .await;
    assert_eq!(code(&resp), "RATE_LIMITED");
    let (_, other) = login_from(
        &app,
        "127.0.0.1",
        Some("203.0.113.51"),
        "c",
        "wrong-password",
    )
    .await;
    assert_eq!(code(&other), "UNAUTHENTICATED");
    // A trusted peer that names nobody is not itself throttled as a client.
    for device_id in ["d", "e", "f"] {
        let (_, resp) = login_from(&app, "127.0.0.1", None, device_id, "wrong-password").await;
        assert_eq!(code(&resp), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn a_deactivated_account_is_named_only_to_its_password() {
    let app = TestApp::new().await;
    let admin = app.with_role("admin", Role::Admin).await;
    let user = app.customer("fridge-1").await;
    let resp = app
        .gql(
            Some(&admin.access),
            "mutation($id: ID!) { deactivateUser(userId: $id) { active } }",
            json!({ "id": user.user_id }),
        )
        .await;
    assert_no_errors(&resp);
    let wrong = app.login_as("fridge-1", "wrong-password").await;
    let unknown = app.login_as("nobody", "wrong-password").await;
    assert_eq!(wrong, unknown);
    let right = app.login_as("fridge-1", PASSWORD).await;
    assert_eq!(message(&right), "this account is deactivated");
}

/// Median time of a login answer.
async fn median_login(app: &TestApp, device_ids: &[String], password: &str) -> Duration {
    let mut times = Vec::new();
    for device_id in device_ids {
        let started = Instant::now();
        let resp = app.login_as(device_id, password).await;
        times.push(started.elapsed());
        assert_eq!(code(&resp), "UNAUTHENTICATED");
    }
    times.sort();
    times[times.len() / 2]
}

#[tokio::test]
async fn an_unknown_account_costs_an_argon2_verification() {
    let app = TestApp::new().await;
    let known: Vec<String> = (0..4).map(|i| format!("fridge-{i}")).collect();
    for device_id in &known {
        app.register(device_id).await;
    }
    // Rounds interleave the two kinds so both see the same machine load; each
    // round uses fresh counters (4 tries per account stay below the throttle).
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    for round in 0..4 {
        wrong.push(median_login(&app, &known, "wrong-password").await);
        let ghosts: Vec<String> = (0..4).map(|i| format!("ghost-{round}-{i}")).collect();
        unknown.push(median_login(&app, &ghosts, PASSWORD).await);
    }
    wrong.sort();
    unknown.sort();
    let (wrong, unknown) = (wrong[2], unknown[2]);
    eprintln!("login median: wrong password {wrong:?}, unknown account {unknown:?}");
    // Skipping argon2 would make the unknown account ~20x faster; the bound is generous.
    assert!(
        unknown * 2 > wrong,
        "unknown account {unknown:?} vs wrong password {wrong:?}: argon2 skipped?"
    );
}
