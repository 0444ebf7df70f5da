//! The edge refuses revoked access tokens before any subgraph is called, and
//! answers `SERVICE_UNAVAILABLE` (not `UNAUTHENTICATED`) while it does not
//! know the cut-offs yet.

use std::sync::Arc;

use auth::{AccessChange, KeyRing, Revocations, RoleName, SigningKey, TokenSettings, Verifier};
use axum::{body::Body, http::Request};
use serde_json::{Value, json};
use testing::TestClient;

async fn me(client: &TestClient, token: &str) -> (u16, Value) {
    let body = json!({ "query": "{ me { id } }" }).to_string();
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        // The newer media type keeps the HTTP status of a refusal.
        .header("accept", "application/graphql-response+json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body))
        .unwrap();
    client.http(request).await
}

#[tokio::test]
async fn the_edge_refuses_revoked_tokens_and_waits_for_unknown_cut_offs() {
    let keys = KeyRing::with_signing_key(SigningKey::generate().unwrap().0);
    let cutoffs = Revocations::new();
    let settings = TokenSettings {
        revocations: Some(cutoffs.clone()),
        ..TokenSettings::default()
    };
    let auth =
        gateway::pipeline::auth::EdgeAuth::Keys(Arc::new(Verifier::new(&keys, &settings).unwrap()));
    let sdl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schema/supergraph.graphql"
    ))
    .unwrap();
    let gw = gateway::Gateway::new(&sdl, Some(Arc::new(auth)), &Default::default()).unwrap();
    let client = TestClient::new(gateway::router(Arc::new(gw)));
    let user = uuid::Uuid::new_v4();
    let token = testing::access_token(&keys, user, RoleName::from_static("ADMIN"));

    let (status, body) = me(&client, &token).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "SERVICE_UNAVAILABLE"
    );

    // As the users subgraph lists it; `until` far ahead so it is never pruned here.
    let change: AccessChange = serde_json::from_value(json!({
        "user": user, "epoch": 1, "at": "2026-01-01T00:00:00Z",
        "until": "2999-01-01T00:00:00Z", "role": "CUSTOMER", "active": false,
    }))
    .unwrap();
    cutoffs.load(&[change]);
    let (status, body) = me(&client, &token).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sign in again"),
        "{body}"
    );
}
