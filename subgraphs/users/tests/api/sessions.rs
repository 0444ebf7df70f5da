use axum::{body::Body, http::Request};
use chrono::{DateTime, Utc};
use kit::auth::{Claims, Role, TokenSettings, TokenType};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn login_issues_an_access_and_a_refresh_token_with_the_documented_lifetimes() {
    let app = TestApp::new().await;
    app.register("fridge-1").await;
    let resp = app.login_as("fridge-1", PASSWORD).await;
    assert_no_errors(&resp);
    let session = &resp["data"]["login"];
    let now = Utc::now();
    let access_exp: DateTime<Utc> = session["accessTokenExpiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let refresh_exp: DateTime<Utc> = session["refreshTokenExpiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (access_exp - now - chrono::Duration::minutes(15))
            .num_seconds()
            .abs()
            < 10
    );
    assert!(
        (refresh_exp - now - chrono::Duration::days(7))
            .num_seconds()
            .abs()
            < 10
    );
    let t = tokens(session);
    let header = jsonwebtoken::decode_header(&t.access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        header.kid.as_deref(),
        KEYS.signing_key().map(|k| k.kid.as_str())
    );
    let verifier = kit::auth::Verifier::new(&KEYS, &TokenSettings::default()).unwrap();
    let access = verifier.verify(&t.access, TokenType::Access).unwrap();
    let refresh = verifier.verify(&t.refresh, TokenType::Refresh).unwrap();
    assert_eq!(access.sub.to_string(), t.user_id);
    assert_eq!(access.role, Role::Customer);
    assert!(refresh.fam.is_some());
    assert_ne!(access.jti, refresh.jti);

    let me = app
        .gql(Some(&t.access), "{ me { id deviceId } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["deviceId"], "fridge-1");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_fail_alike() {
    let app = TestApp::new().await;
    app.register("fridge-1").await;
    let wrong = app.login_as("fridge-1", "not-the-password").await;
    let unknown = app.login_as("nobody", PASSWORD).await;
    assert_eq!(code(&wrong), "UNAUTHENTICATED");
    assert_eq!(code(&unknown), "UNAUTHENTICATED");
    assert_eq!(message(&wrong), message(&unknown));
}

#[tokio::test]
async fn anonymous_me_is_null_and_bad_bearers_are_refused() {
    let app = TestApp::new().await;
    let t = app.customer("fridge-1").await;
    let anon = app.gql(None, "{ me { id } }", json!({})).await;
    assert_eq!(anon["data"]["me"], serde_json::Value::Null);
    // A refresh token is not an access token.
    let resp = app.gql(Some(&t.refresh), "{ me { id } }", json!({})).await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");
    for garbage in ["garbage", "a.b.c", ""] {
        let resp = app.gql(Some(garbage), "{ me { id } }", json!({})).await;
        if garbage.is_empty() {
            // "Bearer " with nothing after it is a malformed token too.
            assert!(resp.get("errors").is_some(), "{resp}");
        } else {
            assert_eq!(code(&resp), "UNAUTHENTICATED", "{garbage}");
        }
    }
}

#[tokio::test]
async fn expired_access_tokens_are_refused() {
    let app = TestApp::new().await;
    let t = app.customer("fridge-1").await;
    let now = Utc::now().timestamp();
    let settings = TokenSettings::default();
    let expired = KEYS
        .sign(&Claims {
            iss: settings.issuer,
            aud: settings.audience,
            sub: t.user_id.parse().unwrap(),
            role: Role::Customer.into(),
            exp: now - 60,
            iat: now - 960,
            token_type: TokenType::Access,
            jti: uuid::Uuid::new_v4(),
            fam: None,
            access_epoch: 0,
        })
        .unwrap();
    let resp = app.gql(Some(&expired), "{ me { id } }", json!({})).await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");
    assert!(message(&resp).contains("expired"), "{resp}");
}

#[tokio::test]
async fn an_access_token_cannot_refresh() {
    let app = TestApp::new().await;
    let t = app.customer("fridge-1").await;
    let resp = app.refresh(&t.access).await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_stops_working() {
    let app = TestApp::new().await;
    let first = app.customer("fridge-1").await;
    let resp = app.refresh(&first.refresh).await;
    assert_no_errors(&resp);
    let second = tokens(&resp["data"]["refreshSession"]);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(second.user_id, first.user_id);
    let me = app
        .gql(Some(&second.access), "{ me { deviceId } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["deviceId"], "fridge-1");
    // The new refresh token works in turn.
    assert_no_errors(&app.refresh(&second.refresh).await);
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let app = TestApp::new().await;
    let stolen = app.customer("fridge-1").await;
    let other_login = app.login("fridge-1").await;
    let rotated = tokens(&app.refresh(&stolen.refresh).await["data"]["refreshSession"]);

    let replay = app.refresh(&stolen.refresh).await;
    assert_eq!(code(&replay), "UNAUTHENTICATED");
    assert!(message(&replay).contains("already used"), "{replay}");
    // The legitimate successor is revoked with the family…
    assert_eq!(
        code(&app.refresh(&rotated.refresh).await),
        "UNAUTHENTICATED"
    );
    // …but a separate login (another family) is untouched.
    assert_no_errors(&app.refresh(&other_login.refresh).await);
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_let_at_most_one_succeed() {
    let app = TestApp::new().await;
    let t = app.customer("fridge-1").await;
    let results = futures::future::join_all((0..6).map(|_| app.refresh(&t.refresh))).await;
    let won = results.iter().filter(|r| r.get("errors").is_none()).count();
    assert_eq!(won, 1, "{results:#?}");
    for r in results.iter().filter(|r| r.get("errors").is_some()) {
        assert_eq!(code(r), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn logout_revokes_the_session() {
    let app = TestApp::new().await;
    let t = app.customer("fridge-1").await;
    let resp = app
        .gql(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": t.refresh }),
        )
        .await;
    assert_eq!(resp["data"]["logout"], true);
    assert_eq!(code(&app.refresh(&t.refresh).await), "UNAUTHENTICATED");
    // An access token is not a refresh token, not even for logout.
    let resp = app
        .gql(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": t.access }),
        )
        .await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");
}

#[tokio::test]
async fn jwks_publishes_the_signing_key() {
    let app = TestApp::new().await;
    let (status, body) = app
        .http(
            Request::get("/.well-known/jwks.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, 200);
    let key = &body["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["kid"], KEYS.signing_key().unwrap().kid.as_str());
    // A client can verify our tokens with nothing but the published key.
    let t = app.customer("fridge-1").await;
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["grocery"]);
    assert!(jsonwebtoken::decode::<serde_json::Value>(&t.access, &decoding, &validation).is_ok());
}

#[tokio::test]
async fn health_and_ready_answer() {
    let app = TestApp::new().await;
    let (status, body) = app
        .http(Request::get("/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app
        .http(Request::get("/ready").body(Body::empty()).unwrap())
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
}

#[tokio::test]
async fn a_stale_bearer_does_not_block_login_or_refresh() {
    let app = TestApp::new().await;
    let t = app.customer("fridge-1").await;
    // A client still sending its old (here: garbage) token can log in and refresh.
    let login = app
        .gql(
            Some("expired.or.garbage"),
            "mutation($p: String!) { login(deviceId: \"fridge-1\", password: $p) { user { deviceId } } }",
            json!({ "p": PASSWORD }),
        )
        .await;
    assert_no_errors(&login);
    let refresh = app
        .gql(
            Some("expired.or.garbage"),
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
            json!({ "t": t.refresh }),
        )
        .await;
    assert_no_errors(&refresh);
    // But it is not anonymous either: asking who is calling fails.
    let me = app
        .gql(Some("expired.or.garbage"), "{ me { id } }", json!({}))
        .await;
    assert_eq!(code(&me), "UNAUTHENTICATED");
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_parsing() {
    let app = TestApp::new().await;
    let body = format!(
        r#"{{"query":"{{ me {{ id }} }}","variables":{{"pad":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let (status, _) = app
        .http(
            Request::post("/graphql")
                .header("content-type", "application/json")
                .header("content-length", body.len())
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, 413);
    // Without a Content-Length (chunked), the limit still holds while reading.
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let (status, _) = app
        .http(
            Request::post("/graphql")
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .unwrap(),
        )
        .await;
    assert!(status >= 400, "streamed oversized body got {status}");
}
