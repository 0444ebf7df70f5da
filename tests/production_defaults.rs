//! `grocery serve gateway` as it runs in production, with default settings:
//! the public port serves the API and nothing an operator alone should see
//! (no GraphiQL page, no `/metrics`), and `METRICS_ADDR` gives `/metrics` a
//! listener of its own.

mod support;

use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path` on `port` with extra `headers` lines; status line and body.
async fn get(port: u16, path: &str, headers: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{headers}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[tokio::test]
async fn serve_gateway_keeps_graphiql_and_metrics_off_the_public_port() {
    let home = std::env::temp_dir().join(format!("grocery-prod-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    let keygen = Command::new(support::BIN)
        .args(["keygen", "--dir"])
        .arg(home.join("keys"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&keygen.stdout);
    let public = &printed[printed.find("-----BEGIN").expect("public key printed")..];
    std::fs::write(home.join("public.pem"), public).unwrap();
    let (api, metrics) = (support::free_port(), support::free_port());
    let gateway = support::start(
        &["serve", "gateway"],
        &[
            ("GATEWAY_PORT", api.to_string()),
            ("METRICS_ADDR", format!("127.0.0.1:{metrics}")),
            // Needed to read the revocation list (no users subgraph runs
            // here: the gateway waits for it a while, then serves anyway).
            ("INTERNAL_RPC_TOKEN", "prod-defaults-token".into()),
            (
                "JWT_PUBLIC_KEYS_FILE",
                home.join("public.pem").display().to_string(),
            ),
            (
                "SUPERGRAPH_PATH",
                concat!(env!("CARGO_MANIFEST_DIR"), "/schema/supergraph.graphql").into(),
            ),
        ],
        &home,
    );
    support::until_ok(&format!("http://127.0.0.1:{api}/health"), &gateway).await;

    let (status, page) = get(api, "/graphql", "accept: text/html\r\n").await;
    assert!(
        !page.contains("<html"),
        "{status}: no GraphiQL page by default"
    );
    assert!(status.contains(" 400 "), "{status}: {page}");
    let (status, _) = get(api, "/metrics", "").await;
    assert!(
        status.contains(" 404 "),
        "no /metrics on the API port: {status}"
    );

    let (status, text) = get(metrics, "/metrics", "").await;
    assert!(status.contains(" 200 "), "{status}: {}", gateway.stderr());
    assert!(text.contains("graphql_requests_total"), "{text}");
    let (status, _) = get(metrics, "/graphql", "apollo-require-preflight: 1\r\n").await;
    assert!(
        status.contains(" 404 "),
        "the metrics port serves no API: {status}"
    );
    drop(gateway);
    let _ = std::fs::remove_dir_all(home);
}
