//! `grocery serve gateway`'s edge authentication is configured, not
//! required: without `JWT_PUBLIC_KEYS_FILE` or `JWKS_URL` a general gateway
//! serves, says once that it verifies no token, forwards `authorization` to
//! its subgraphs exactly as sent and asks for no revocation list; with keys
//! it verifies at the edge as before. Its subgraph is a stub that records
//! what it receives and also serves the revocation list.

mod support;

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::http::HeaderMap;
use serde_json::json;
use support::Process;

const STUB_SDL: &str = r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])
type Query { hello: String }"#;

/// The stub subgraph: the `authorization` of every GraphQL request it got,
/// and how often its revocation list was read.
struct Stub {
    base: String,
    seen: Arc<Mutex<Vec<Option<String>>>>,
    lists: Arc<AtomicUsize>,
}

async fn stub() -> Stub {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let lists = Arc::new(AtomicUsize::new(0));
    let (log, read) = (seen.clone(), lists.clone());
    let app = axum::Router::new()
        .route(
            "/graphql",
            axum::routing::post(move |headers: HeaderMap| async move {
                let authorization = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned());
                log.lock().unwrap().push(authorization);
                axum::Json(json!({ "data": { "hello": "hi" } }))
            }),
        )
        .route(
            "/internal/access-changes",
            axum::routing::get(move || async move {
                read.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({ "changes": [] }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Stub { base, seen, lists }
}

/// A folder of the test's own, with the supergraph of the stub in it.
fn home(stub: &Stub) -> PathBuf {
    let home = std::env::temp_dir().join(format!("grocery-edge-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    let supergraph = gateway::compose(&[gateway::SubgraphSource {
        name: "stub".into(),
        url: format!("{}/graphql", stub.base),
        sdl: STUB_SDL.into(),
    }])
    .unwrap();
    std::fs::write(home.join("supergraph.graphql"), supergraph).unwrap();
    home
}

/// `grocery serve gateway` over the stub with `env` besides; its port.
async fn serve(stub: &Stub, home: &std::path::Path, env: &[(&str, String)]) -> (Process, u16) {
    let port = support::free_port();
    let mut vars = vec![
        ("GATEWAY_PORT", port.to_string()),
        (
            "SUPERGRAPH_PATH",
            home.join("supergraph.graphql").display().to_string(),
        ),
        (
            "REVOCATIONS_URL",
            format!("{}/internal/access-changes", stub.base),
        ),
        // Empty is unset: whatever the test's own environment holds.
        ("JWT_PUBLIC_KEYS_FILE", String::new()),
        ("JWKS_URL", String::new()),
        ("INTERNAL_RPC_TOKEN", String::new()),
        ("REDIS_URL", String::new()),
    ];
    for (name, value) in env {
        vars.retain(|(n, _)| n != name);
        vars.push((name, value.clone()));
    }
    let gateway = support::start(&["serve", "gateway"], &vars, home);
    support::until_ok(&format!("http://127.0.0.1:{port}/health"), &gateway).await;
    (gateway, port)
}

const WARNING: &str = "the gateway verifies no token at the edge";

#[tokio::test]
async fn a_gateway_without_keys_serves_and_forwards_authorization_untouched() {
    let stub = stub().await;
    let home = home(&stub);
    let (gateway, port) = serve(&stub, &home, &[]).await;

    for authorization in ["Basic dXNlcjpwYXNz", "Bearer not-a-jwt-at-all"] {
        let (status, answer) = support::post(
            port,
            &json!({ "query": "{ hello }" }),
            &[("authorization", authorization)],
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer, json!({ "data": { "hello": "hi" } }));
        assert_eq!(
            stub.seen.lock().unwrap().pop(),
            Some(Some(authorization.to_owned())),
            "the subgraph gets the header as the client sent it"
        );
    }
    let log = gateway.stderr();
    assert_eq!(log.matches(WARNING).count(), 1, "{log}");
    assert_eq!(
        stub.lists.load(Ordering::SeqCst),
        0,
        "no cut-offs to load, so no revocation list asked for"
    );
    std::fs::remove_dir_all(&home).unwrap();
}

#[tokio::test]
async fn a_gateway_with_keys_verifies_at_the_edge_as_before() {
    let stub = stub().await;
    let home = home(&stub);
    let (key, _) = kit::auth::SigningKey::generate().unwrap();
    std::fs::write(home.join("public.pem"), key.public_pem().unwrap()).unwrap();
    let keys = kit::auth::KeyRing::with_signing_key(key);
    let (gateway, port) = serve(
        &stub,
        &home,
        &[
            (
                "JWT_PUBLIC_KEYS_FILE",
                home.join("public.pem").display().to_string(),
            ),
            ("INTERNAL_RPC_TOKEN", "edge-auth-test".into()),
        ],
    )
    .await;
    // It listens once its cut-offs loaded.
    assert!(stub.lists.load(Ordering::SeqCst) >= 1);

    let (_, refused) = support::post(
        port,
        &json!({ "query": "{ hello }" }),
        &[("authorization", "Bearer not-a-jwt-at-all")],
    )
    .await;
    assert_eq!(kit::testing::code(&refused), "UNAUTHENTICATED", "{refused}");
    assert!(stub.seen.lock().unwrap().is_empty(), "refused at the edge");

    let token = kit::testing::access_token(
        &keys,
        uuid::Uuid::new_v4(),
        kit::auth::RoleName::from_static("CUSTOMER"),
    );
    let bearer = format!("Bearer {token}");
    let (status, answer) = support::post(
        port,
        &json!({ "query": "{ hello }" }),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["hello"], "hi");
    assert_eq!(stub.seen.lock().unwrap().pop(), Some(Some(bearer)));
    assert!(!gateway.stderr().contains(WARNING));
    std::fs::remove_dir_all(&home).unwrap();
}
