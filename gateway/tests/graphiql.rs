//! GraphiQL as the gateway ships it: the page and its embedded files over
//! HTTP (content types, caching, ETags, gzip, integrity), and the page in a
//! real browser (Debian's chromium, driven by puppeteer-core from
//! `tests/graphiql/`) with the network limited to the gateway, running a
//! query over HTTP and a subscription over graphql-ws.

#[path = "../../tests/support/node.rs"]
mod node;
mod support;

use std::sync::Arc;

use async_graphql::{EmptyMutation, Object, Schema, Subscription};
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine;
use futures::{Stream, StreamExt};
use serde_json::Value;
use sha2::{Digest, Sha384};
use tower::ServiceExt;

struct Query;

#[Object]
impl Query {
    async fn hello(&self) -> &str {
        "hello from the subgraph"
    }
}

struct Countdown;

#[Subscription(name = "Subscription")]
impl Countdown {
    /// 3, 2, 1, then open until the client stops it.
    async fn countdown(&self) -> impl Stream<Item = i32> {
        futures::stream::iter([3, 2, 1]).chain(futures::stream::pending())
    }
}

/// A gateway with GraphiQL on or off, over one subgraph that has a
/// subscription (served until the returned process is dropped).
fn gateway(graphiql: bool) -> (Arc<gateway::Gateway>, support::Process) {
    let schema = Schema::build(Query, EmptyMutation, Countdown)
        .enable_federation()
        .enable_subscription_in_federation()
        .finish();
    let (subgraph, process) = support::serve_with_subscriptions("clock", schema);
    let sdl = support::supergraph(&[&subgraph]);
    let gw = gateway::Gateway::new(
        &sdl,
        None,
        &gateway::GatewayOptions {
            graphiql,
            introspection: true,
            ..Default::default()
        },
    )
    .unwrap();
    (Arc::new(gw), process)
}

/// An answer from the gateway's router: status, headers, body bytes.
struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(&name).map_or("", |v| v.to_str().unwrap())
    }
}

async fn get(
    gw: &Arc<gateway::Gateway>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Got {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = gateway::router(gw.clone())
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Got {
        status,
        headers,
        body,
    }
}

/// The page as a browser asks for it.
async fn page(gw: &Arc<gateway::Gateway>) -> Got {
    get(
        gw,
        "GET",
        "/graphql",
        &[
            ("accept", "text/html,*/*;q=0.8"),
            ("host", "127.0.0.1:4000"),
        ],
    )
    .await
}

/// The value of `attribute` in the page's tag that has `marker` in it.
fn attribute<'a>(html: &'a str, marker: &str, attribute: &str) -> &'a str {
    let tag_at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let tag_start = html[..tag_at].rfind('<').unwrap();
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
    let value = tag
        .split(&format!(" {attribute}=\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no {attribute} in {tag}"));
    &value[..value.find('"').unwrap()]
}

/// The page's `#graphiql-config`.
fn config(html: &str) -> Value {
    let opening = "type=\"application/json\">";
    let start = html.find(opening).unwrap() + opening.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha384::digest(bytes))
    )
}

/// A file of the committed bundle, as build.sh wrote it.
fn dist(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/graphiql/dist/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn the_page_loads_only_the_gateways_own_files_under_a_strict_policy() {
    let (gw, _subgraph) = gateway(true);
    let page = page(&gw).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header(header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(page.header(header::CACHE_CONTROL), "no-cache");
    assert_eq!(
        page.header(header::CONTENT_SECURITY_POLICY),
        "default-src 'none'; script-src 'self'; worker-src 'self'; \
         style-src 'self' 'unsafe-inline'; font-src 'self'; img-src 'self' data:; \
         connect-src 'self' ws://127.0.0.1:4000 wss://127.0.0.1:4000; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let script = attribute(&html, "graphiql.js", "src");
    let style = attribute(&html, "graphiql.css", "href");
    assert!(script.starts_with("graphiql/assets/"), "{script}");
    assert!(style.starts_with("graphiql/assets/"), "{style}");
    // Every tag's integrity is the hash of the bytes served at its URL,
    // which are the committed files.
    for (url, name, media) in [
        (script, "graphiql.js", "text/javascript; charset=utf-8"),
        (style, "graphiql.css", "text/css; charset=utf-8"),
    ] {
        let served = get(&gw, "GET", &format!("/{url}"), &[]).await;
        assert_eq!(served.status, 200, "{url}");
        assert_eq!(served.header(header::CONTENT_TYPE), media);
        assert_eq!(served.body, dist(name), "{url}");
        assert_eq!(
            attribute(&html, name, "integrity"),
            sri(&served.body),
            "{url}"
        );
    }
    let config = config(&html);
    assert_eq!(config["endpoint"], "graphql");
    assert!(
        config["defaultHeaders"]
            .as_str()
            .unwrap()
            .contains(r#"// "authorization": "Bearer <access token from the login mutation>""#),
        "{config}"
    );
    for worker in ["editor", "json", "graphql"] {
        let url = config["workers"][worker].as_str().unwrap();
        let served = get(&gw, "GET", &format!("/{url}"), &[]).await;
        assert_eq!(served.status, 200, "{url}");
        assert_eq!(
            served.header(header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(served.body, dist(&format!("{worker}.worker.js")));
    }
    // The style sheet names its font relatively, beside it.
    let css = String::from_utf8(dist("graphiql.css")).unwrap();
    assert!(css.contains("url(\"./codicon.ttf\")"), "the font moved");
    let font = get(
        &gw,
        "GET",
        &format!("/{}", style.replace("graphiql.css", "codicon.ttf")),
        &[],
    )
    .await;
    assert_eq!(font.status, 200);
    assert_eq!(font.header(header::CONTENT_TYPE), "font/ttf");
    assert_eq!(font.body, dist("codicon.ttf"));
}

#[tokio::test]
async fn assets_are_immutable_gzipped_when_accepted_and_revalidated_by_etag() {
    let (gw, _subgraph) = gateway(true);
    let html = String::from_utf8(page(&gw).await.body).unwrap();
    let script = format!("/{}", attribute(&html, "graphiql.js", "src"));

    let plain = get(&gw, "GET", &script, &[]).await;
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header(header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(plain.header(header::VARY), "accept-encoding");
    assert_eq!(plain.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert!(plain.headers.get(header::CONTENT_ENCODING).is_none());
    let etag = plain.header(header::ETAG).to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let zipped = get(
        &gw,
        "GET",
        &script,
        &[("accept-encoding", "gzip, deflate, br")],
    )
    .await;
    assert_eq!(zipped.status, 200);
    assert_eq!(zipped.header(header::CONTENT_ENCODING), "gzip");
    assert_eq!(
        zipped.header(header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(zipped.body, dist("graphiql.js.gz"));
    assert!(zipped.body.len() < plain.body.len() / 3);
    let zipped_etag = zipped.header(header::ETAG).to_owned();
    assert_ne!(zipped_etag, etag, "two encodings, two entity tags");

    for (encoding, current) in [("identity", &etag), ("gzip", &zipped_etag)] {
        let again = get(
            &gw,
            "GET",
            &script,
            &[("accept-encoding", encoding), ("if-none-match", current)],
        )
        .await;
        assert_eq!(again.status, 304, "{encoding}");
        assert!(again.body.is_empty());
        assert_eq!(again.header(header::ETAG), current.as_str());
        assert_eq!(
            again.header(header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
    }
    let stale = get(&gw, "GET", &script, &[("if-none-match", "\"0123\"")]).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, plain.body);

    let head = get(&gw, "HEAD", &script, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header(header::ETAG), etag);
}

#[tokio::test]
async fn unknown_assets_are_not_found_and_nothing_is_served_with_graphiql_off() {
    let (gw, _subgraph) = gateway(true);
    let html = String::from_utf8(page(&gw).await.body).unwrap();
    let script = format!("/{}", attribute(&html, "graphiql.js", "src"));
    let bundle = script.trim_end_matches("graphiql.js");
    for path in [
        format!("{bundle}nothing.js"),
        format!("{bundle}manifest.json"),
        "/graphiql/assets/0000000000000000/graphiql.js".to_owned(),
        "/graphiql/assets/graphiql.js".to_owned(),
        format!("{bundle}..%2Fgraphiql.js"),
        format!("{bundle}graphiql.js%00"),
        script.replace("/graphiql.js", "//graphiql.js"),
    ] {
        let got = get(&gw, "GET", &path, &[]).await;
        assert_eq!(got.status, 404, "{path}");
    }
    let posted = get(&gw, "POST", &script, &[]).await;
    assert_eq!(posted.status, 405);

    let (off, _subgraph) = gateway(false);
    assert_eq!(get(&off, "GET", &script, &[]).await.status, 404);
    let not_a_page = page(&off).await;
    assert!(
        !String::from_utf8_lossy(&not_a_page.body).contains("graphiql"),
        "GraphiQL is off"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_runs_a_query_and_a_subscription_in_chromium_without_other_hosts() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "this test drives Debian's chromium at {chromium} (apt-get install chromium; .ci/run \
         installs it), or the one CHROMIUM names"
    );
    let (gw, _subgraph) = gateway(true);
    let base = support::listen(gw).await;
    let package = node::package("graphiql");
    let output = tokio::process::Command::new("node")
        .arg("graphiql.mjs")
        .args([
            base.as_str(),
            "{ hello }",
            r#""hello": "hello from the subgraph""#,
            "subscription { countdown }",
            r#""countdown": 1"#,
        ])
        .env("CHROMIUM", &chromium)
        .current_dir(&package)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the browser run failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        seen["foreign"],
        serde_json::json!([]),
        "requests to other hosts"
    );
    assert_eq!(
        seen["violations"],
        serde_json::json!([]),
        "policy violations"
    );
    assert_eq!(seen["errors"], serde_json::json!([]), "errors on the page");
    assert_eq!(seen["page"]["status"], 200);
    assert!(
        seen["page"]["csp"]
            .as_str()
            .unwrap()
            .starts_with("default-src 'none'; script-src 'self';")
    );
    assert_eq!(seen["title"], "GraphiQL");
    // Every file came from the gateway, gzipped: script, style sheet, font,
    // and the workers of the GraphQL and JSON editors (Monaco starts its
    // own, editor.worker.js, only for work this run does not ask of it).
    let assets = seen["assets"].as_array().unwrap();
    for name in [
        "graphiql.js",
        "graphiql.css",
        "codicon.ttf",
        "graphql.worker.js",
        "json.worker.js",
    ] {
        let asset = assets
            .iter()
            .find(|a| a["path"].as_str().unwrap().ends_with(&format!("/{name}")))
            .unwrap_or_else(|| panic!("{name} was never loaded: {assets:?}"));
        assert_eq!(asset["status"], 200, "{asset}");
        assert_eq!(asset["encoding"], "gzip", "{asset}");
    }
    assert!(
        seen["headers"]
            .as_str()
            .unwrap()
            .contains("Bearer <access token from the login mutation>"),
        "{}",
        seen["headers"]
    );
    assert_eq!(
        seen["prettified"],
        serde_json::json!({
            "query": "{\n  hello\n}\n",
            "headers": "{\n  \"x-demo\": \"1\", // kept\n}",
        })
    );
    let query: Value = serde_json::from_str(seen["query"].as_str().unwrap()).unwrap();
    assert_eq!(
        query,
        serde_json::json!({ "data": { "hello": "hello from the subgraph" } })
    );
    let event: Value = serde_json::from_str(seen["subscription"].as_str().unwrap()).unwrap();
    assert_eq!(event, serde_json::json!({ "data": { "countdown": 1 } }));
    // The subscription went over the gateway's own socket.
    let socket = format!("{}/graphql", base.replace("http://", "ws://"));
    assert_eq!(seen["sockets"], serde_json::json!([socket]));
}
