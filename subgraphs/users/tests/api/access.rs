//! Access changes: role changes, deactivation, reactivation, logging out
//! everywhere and new passwords take powers away from tokens already handed
//! out, are published as `user.access_changed`, and are listed for processes
//! that start.

use std::time::{Duration, Instant};

use axum::{body::Body, http::Request};
use kit::auth::{
    AccessChange, Revocations, Role, TokenError, TokenSettings, TokenType, Verifier,
    revocation::ACCESS_CHANGED,
};
use kit::testing::eventually_within;
use serde_json::{Value, json};

use crate::support::*;

const ME: &str = "{ me { id role } }";
const USERS: &str = "{ users(first: 5) { totalCount } }";
const SET_ROLE: &str =
    "mutation($id: ID!, $role: Role!) { setRole(userId: $id, role: $role) { role } }";

/// Waits until `token` is refused as revoked; how long that took. At most 1 s.
async fn until_revoked(app: &TestApp, token: &str) -> Duration {
    let started = Instant::now();
    let resp = eventually_within(
        Duration::from_secs(1),
        "the token to be refused as revoked",
        async || {
            let resp = app.gql(Some(token), ME, json!({})).await;
            if resp["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" {
                Ok(resp)
            } else {
                Err(resp)
            }
        },
    )
    .await;
    assert!(message(&resp).contains("sign in again"), "{resp}");
    started.elapsed()
}

/// The next `user.access_changed` event on the app's bus.
async fn next_change(
    rx: &mut tokio::sync::broadcast::Receiver<kit::events::Event>,
) -> AccessChange {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event in time")
            .expect("the bus is open");
        if event.topic == ACCESS_CHANGED {
            assert_eq!(event.source, "users");
            return serde_json::from_value(event.payload).expect("an access change");
        }
    }
}

#[tokio::test]
async fn a_demoted_admins_token_is_refused_and_a_login_right_after_has_the_new_role() {
    let app = TestApp::new().await;
    let boss = app.with_role("boss", Role::Admin).await;
    let admin = app.with_role("admin-2", Role::Admin).await;
    assert_no_errors(&app.gql(Some(&admin.access), USERS, json!({})).await);
    let mut events = app.bus.subscribe();

    let demoted = app
        .gql(
            Some(&boss.access),
            SET_ROLE,
            json!({ "id": admin.user_id, "role": "CUSTOMER" }),
        )
        .await;
    assert_eq!(demoted["data"]["setRole"]["role"], "CUSTOMER", "{demoted}");
    // Signed in at once, most often in the same second as the change.
    let again = app.login("admin-2").await;
    let change = next_change(&mut events).await;
    assert_eq!(change.user.to_string(), admin.user_id);
    assert_eq!(
        (change.role, change.active, change.epoch),
        (Role::Customer.into(), true, 1)
    );
    assert!(change.until > change.at + chrono::Duration::minutes(15));

    let latency = until_revoked(&app, &admin.access).await;
    eprintln!("users subgraph: demotion refused the old token after {latency:?}");
    let refused = app.gql(Some(&admin.access), USERS, json!({})).await;
    assert_eq!(code(&refused), "UNAUTHENTICATED");

    let me = app.gql(Some(&again.access), ME, json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "CUSTOMER", "{me}");
    let forbidden = app.gql(Some(&again.access), USERS, json!({})).await;
    assert_eq!(code(&forbidden), "FORBIDDEN");
    // The refresh token is not revoked by a role change: it yields the new role.
    let refreshed = app.refresh(&admin.refresh).await;
    assert_eq!(
        refreshed["data"]["refreshSession"]["user"]["role"],
        "CUSTOMER"
    );
    // The admin who did it is untouched.
    assert_no_errors(&app.gql(Some(&boss.access), USERS, json!({})).await);
}

#[tokio::test]
async fn deactivation_refuses_tokens_and_reactivation_lets_a_new_login_work() {
    let app = TestApp::new().await;
    let boss = app.with_role("boss", Role::Admin).await;
    let user = app.customer("fridge-1").await;
    let deactivate = "mutation($id: ID!) { deactivateUser(userId: $id) { active } }";
    let reactivate = "mutation($id: ID!) { reactivateUser(userId: $id) { active } }";
    let mut events = app.bus.subscribe();

    assert_no_errors(
        &app.gql(
            Some(&boss.access),
            deactivate,
            json!({ "id": user.user_id }),
        )
        .await,
    );
    let change = next_change(&mut events).await;
    assert!(!change.active);
    until_revoked(&app, &user.access).await;
    assert_eq!(
        code(&app.login_as("fridge-1", PASSWORD).await),
        "UNAUTHENTICATED"
    );

    assert_no_errors(
        &app.gql(
            Some(&boss.access),
            reactivate,
            json!({ "id": user.user_id }),
        )
        .await,
    );
    let change = next_change(&mut events).await;
    assert!(change.active && change.epoch == 2, "{change:?}");
    let fresh = app.login("fridge-1").await;
    assert_no_errors(&app.gql(Some(&fresh.access), ME, json!({})).await);
    // The token of before stays refused.
    let old = app.gql(Some(&user.access), ME, json!({})).await;
    assert_eq!(code(&old), "UNAUTHENTICATED");
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_caller_only() {
    let app = TestApp::new().await;
    let phone = app.customer("fridge-2").await;
    let laptop = app.login("fridge-2").await;
    let other = app.customer("fridge-3").await;

    let resp = app
        .gql(Some(&laptop.access), "mutation { logoutAll }", json!({}))
        .await;
    assert_eq!(resp["data"]["logoutAll"], true, "{resp}");
    until_revoked(&app, &phone.access).await;
    until_revoked(&app, &laptop.access).await;
    for refresh in [&phone.refresh, &laptop.refresh] {
        assert_eq!(code(&app.refresh(refresh).await), "UNAUTHENTICATED");
    }
    assert_no_errors(&app.gql(Some(&other.access), ME, json!({})).await);
    let fresh = app.login("fridge-2").await;
    assert_no_errors(&app.gql(Some(&fresh.access), ME, json!({})).await);
}

#[tokio::test]
async fn a_new_password_ends_every_session_and_answers_with_a_new_one() {
    let app = TestApp::new().await;
    let old = app.customer("fridge-4").await;
    let change = "mutation($c: String!, $n: String!) {
        changePassword(currentPassword: $c, newPassword: $n) { accessToken refreshToken user { id role } } }";

    let wrong = app
        .gql(
            Some(&old.access),
            change,
            json!({ "c": "not-it-at-all", "n": "a-new-long-secret" }),
        )
        .await;
    assert_eq!(code(&wrong), "BAD_USER_INPUT");
    assert_eq!(
        wrong["errors"][0]["extensions"]["field"], "currentPassword",
        "{wrong}"
    );
    let weak = app
        .gql(
            Some(&old.access),
            change,
            json!({ "c": PASSWORD, "n": "x" }),
        )
        .await;
    assert_eq!(code(&weak), "BAD_USER_INPUT");
    assert_no_errors(&app.gql(Some(&old.access), ME, json!({})).await);

    let changed = app
        .gql(
            Some(&old.access),
            change,
            json!({ "c": PASSWORD, "n": "a-new-long-secret" }),
        )
        .await;
    assert_no_errors(&changed);
    let session = tokens(&changed["data"]["changePassword"]);
    until_revoked(&app, &old.access).await;
    assert_eq!(code(&app.refresh(&old.refresh).await), "UNAUTHENTICATED");
    assert_no_errors(&app.gql(Some(&session.access), ME, json!({})).await);
    assert_eq!(
        code(&app.login_as("fridge-4", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    assert_no_errors(&app.login_as("fridge-4", "a-new-long-secret").await);
}

async fn list(app: &TestApp, authorization: Option<&str>) -> (u16, Value) {
    let mut request = Request::get("/internal/access-changes");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    app.http(request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn a_process_that_starts_after_the_change_loads_it_with_the_service_token() {
    let app = TestApp::new().await;
    let boss = app.with_role("boss", Role::Admin).await;
    let truck = app.with_role("truck-1", Role::Truck).await;
    assert_no_errors(
        &app.gql(
            Some(&boss.access),
            SET_ROLE,
            json!({ "id": truck.user_id, "role": "CUSTOMER" }),
        )
        .await,
    );

    assert_eq!(list(&app, None).await.0, 401);
    assert_eq!(list(&app, Some("Bearer not-the-token")).await.0, 401);
    let (status, body) = list(&app, Some(&format!("Bearer {SERVICE_TOKEN}"))).await;
    assert_eq!(status, 200, "{body}");
    let changes: Vec<AccessChange> = serde_json::from_value(body["changes"].clone()).unwrap();
    assert_eq!(changes.len(), 1, "{body}");
    assert_eq!(changes[0].user.to_string(), truck.user_id);

    // A process started now: its table, loaded from that list, refuses the
    // old token at once, and refuses every token before it is loaded.
    let fresh = Revocations::new();
    let verifier = Verifier::new(
        &KEYS,
        &TokenSettings {
            revocations: Some(fresh.clone()),
            ..TokenSettings::default()
        },
    )
    .unwrap();
    assert_eq!(
        verifier.verify(&truck.access, TokenType::Access),
        Err(TokenError::CutoffsUnknown)
    );
    fresh.load(&changes);
    assert_eq!(
        verifier.verify(&truck.access, TokenType::Access),
        Err(TokenError::Revoked)
    );
    assert!(verifier.verify(&boss.access, TokenType::Access).is_ok());
    let again = app.login("truck-1").await;
    assert!(verifier.verify(&again.access, TokenType::Access).is_ok());
}
