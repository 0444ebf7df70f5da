//! Subgraphs over TLS and HTTP/2, through the gateway, against real servers
//! with certificates made here: HTTPS speaking HTTP/1.1 or HTTP/2 (as ALPN
//! settles), HTTP/2 with prior knowledge, mutual TLS; and the certificates
//! refused (unknown authority, another host's, expired) before the subgraph
//! sees a request, and the settings refused at start; the same settings
//! and static headers given by a configuration file (`--config`).

#[path = "../support/mod.rs"]
mod support;

mod certs;
mod server;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, atomic::Ordering::SeqCst},
};

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};
use axum::http::Version;
use gateway::subgraph::SubgraphOptions;
use serde_json::{Value, json};

use certs::{Ca, Files, Use};
use server::{Subgraph, Wire};

/// The catalog subgraph (plain HTTP/1.1): owns `Product` and its `name`.
struct CatalogQuery;

#[derive(SimpleObject)]
struct Product {
    upc: String,
    name: String,
}

#[Object(name = "Query")]
impl CatalogQuery {
    async fn products(&self) -> Vec<Product> {
        [("1", "apple"), ("2", "milk")]
            .map(|(upc, name)| Product {
                upc: upc.into(),
                name: name.into(),
            })
            .into()
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Product {
        Product {
            name: format!("product {upc}"),
            upc,
        }
    }
}

/// The stock subgraph, the one served over TLS or HTTP/2: adds `stock` to
/// `Product`, and owns `warehouse`.
struct StockQuery;

/// The stock subgraph's `Product`.
struct Stocked {
    upc: String,
}

#[Object(name = "Product")]
impl Stocked {
    async fn upc(&self) -> &str {
        &self.upc
    }

    async fn stock(&self) -> i32 {
        self.upc.parse::<i32>().unwrap_or(0) * 10
    }
}

#[Object(name = "Query")]
impl StockQuery {
    async fn warehouse(&self) -> &str {
        "north"
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Stocked {
        Stocked { upc }
    }
}

const FEDERATED: &str = "{ products { upc name stock } warehouse }";

fn federated_answer() -> Value {
    json!({ "data": {
        "products": [
            { "upc": "1", "name": "apple", "stock": 10 },
            { "upc": "2", "name": "milk", "stock": 20 },
        ],
        "warehouse": "north",
    } })
}

/// Serves the stock subgraph as `wire` says.
async fn stock(wire: Wire<'_>) -> Subgraph {
    server::serve(stock_schema(), wire, false).await
}

fn stock_schema() -> Schema<StockQuery, EmptyMutation, EmptySubscription> {
    Schema::build(StockQuery, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish()
}

/// A gateway over the catalog (plain) and `stock`, which it reaches with `options`.
async fn gateway(
    stock: &Subgraph,
    options: SubgraphOptions,
) -> anyhow::Result<Arc<gateway::Gateway>> {
    let catalog = support::serve(
        "catalog",
        Schema::build(CatalogQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await;
    let stock = support::Served {
        name: "stock".into(),
        url: stock.url.clone(),
        sdl: stock.sdl.clone(),
        seen: Default::default(),
        bodies: Default::default(),
    };
    let sdl = support::supergraph(&[&catalog, &stock]);
    let gateway = gateway::Gateway::new(
        &sdl,
        None,
        &gateway::GatewayOptions {
            subgraph_options: HashMap::from([("stock".to_owned(), options)]),
            // Concurrent identical fetches each go to the subgraph: they
            // would share one exchange otherwise, and one connection trivially.
            deduplicate_queries: false,
            ..Default::default()
        },
    )?;
    Ok(Arc::new(gateway))
}

/// The gateway's answer to `query`.
async fn ask(gw: &Arc<gateway::Gateway>, query: &str) -> Value {
    support::post(gw, query, json!({}), &[]).await.0
}

/// Options trusting the authority whose certificate is in `ca`.
fn trusting(ca: PathBuf) -> SubgraphOptions {
    SubgraphOptions {
        ca_file: Some(ca),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_https_subgraph_speaking_http1_answers_a_federated_query() {
    let (ca, files) = (Ca::new("test CA"), Files::new());
    let cert = ca.sign(&["127.0.0.1"], Use::Server, false);
    let stock = stock(Wire::Tls {
        cert: &cert,
        alpn: &["http/1.1"],
        clients: None,
    })
    .await;
    let gw = gateway(&stock, trusting(files.write("ca.pem", &ca.pem)))
        .await
        .unwrap();
    assert_eq!(ask(&gw, FEDERATED).await, federated_answer());
    let versions = stock.versions();
    assert!(
        !versions.is_empty() && versions.iter().all(|v| *v == Version::HTTP_11),
        "{versions:?}"
    );
}

#[tokio::test]
async fn an_https_subgraph_offering_h2_is_spoken_to_in_http2_on_one_connection() {
    let (ca, files) = (Ca::new("test CA"), Files::new());
    let cert = ca.sign(&["127.0.0.1"], Use::Server, false);
    let stock = stock(Wire::Tls {
        cert: &cert,
        alpn: &["h2", "http/1.1"],
        clients: None,
    })
    .await;
    let gw = gateway(&stock, trusting(files.write("ca.pem", &ca.pem)))
        .await
        .unwrap();
    let answers = futures::future::join_all((0..5).map(|_| ask(&gw, FEDERATED))).await;
    for answer in answers {
        assert_eq!(answer, federated_answer());
    }
    let versions = stock.versions();
    assert!(
        !versions.is_empty() && versions.iter().all(|v| *v == Version::HTTP_2),
        "{versions:?}"
    );
    // Every fetch of this thread multiplexed on one connection.
    assert_eq!(stock.connections.load(SeqCst), 1);
    // `/ready` asks it over its own TLS connections.
    let loaded = gw.current();
    assert_eq!(loaded.readiness.not_ready(&loaded.subgraphs).await, vec![]);
}

#[tokio::test]
async fn a_subgraph_asked_for_http2_is_spoken_to_with_prior_knowledge() {
    let stock = stock(Wire::Plain).await;
    let options = SubgraphOptions {
        http2: true,
        ..Default::default()
    };
    let gw = gateway(&stock, options).await.unwrap();
    let answers = futures::future::join_all((0..5).map(|_| ask(&gw, FEDERATED))).await;
    for answer in answers {
        assert_eq!(answer, federated_answer());
    }
    let versions = stock.versions();
    assert!(
        !versions.is_empty() && versions.iter().all(|v| *v == Version::HTTP_2),
        "{versions:?}"
    );
    assert_eq!(stock.connections.load(SeqCst), 1);
}

#[tokio::test]
async fn a_subgraph_closing_its_http2_connection_is_reached_on_a_new_one() {
    // Every connection says GOAWAY after its first answer.
    let stock = server::serve(stock_schema(), Wire::Plain, true).await;
    let options = SubgraphOptions {
        http2: true,
        ..Default::default()
    };
    let gw = gateway(&stock, options).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            ask(&gw, "{ warehouse }").await,
            json!({ "data": { "warehouse": "north" } })
        );
    }
    assert_eq!(stock.versions(), vec![Version::HTTP_2; 3]);
    // A request sent before the GOAWAY arrived may be the closing
    // connection's last; the one after it never is.
    assert!(stock.connections.load(SeqCst) >= 2);
}

#[tokio::test]
async fn a_subgraph_requiring_a_client_certificate_gets_the_configured_one() {
    let (ca, clients, files) = (Ca::new("test CA"), Ca::new("client CA"), Files::new());
    let cert = ca.sign(&["127.0.0.1"], Use::Server, false);
    let client = clients.sign(&["gateway"], Use::Client, false);
    let stock = stock(Wire::Tls {
        cert: &cert,
        alpn: &["h2", "http/1.1"],
        clients: Some(&clients.der),
    })
    .await;
    let ca_file = files.write("ca.pem", &ca.pem);
    let gw = gateway(
        &stock,
        SubgraphOptions {
            client_cert: Some(files.write("client.pem", &client.cert_pem)),
            client_key: Some(files.write("client.key", &client.key_pem)),
            ..trusting(ca_file.clone())
        },
    )
    .await
    .unwrap();
    assert_eq!(ask(&gw, FEDERATED).await, federated_answer());
    let served = stock.versions().len();
    assert!(served > 0);

    // Without it, the subgraph refuses the connection.
    let without = gateway(&stock, trusting(ca_file)).await.unwrap();
    assert_refused(&ask(&without, "{ warehouse }").await);
    assert_eq!(stock.versions().len(), served, "no request got through");
}

/// `answer` is the refusal of `{ warehouse }`: the gateway's fetch-failure
/// error, naming neither address nor certificate.
fn assert_refused(answer: &Value) {
    assert_eq!(answer["data"], Value::Null, "{answer}");
    let error = &answer["errors"][0];
    assert_eq!(error["extensions"]["code"], "SUBGRAPH_ERROR", "{answer}");
    assert_eq!(error["extensions"]["serviceName"], "stock", "{answer}");
    assert_eq!(error["path"], json!(["warehouse"]), "{answer}");
    assert_eq!(
        error["message"], "subgraph stock failed: subgraph unreachable",
        "{answer}"
    );
}

/// The gateway trusting `trusted` refuses the stock subgraph serving `cert`:
/// `{ warehouse }` fails and the subgraph sees no request.
async fn refuses(trusted: &Ca, cert: &certs::Leaf) {
    let files = Files::new();
    let stock = stock(Wire::Tls {
        cert,
        alpn: &["h2", "http/1.1"],
        clients: None,
    })
    .await;
    let gw = gateway(&stock, trusting(files.write("ca.pem", &trusted.pem)))
        .await
        .unwrap();
    assert_refused(&ask(&gw, "{ warehouse }").await);
    assert_eq!(stock.versions(), vec![]);
    assert_eq!(stock.connections.load(SeqCst), 0);
    let loaded = gw.current();
    let not_ready = loaded.readiness.not_ready(&loaded.subgraphs).await;
    assert_eq!(
        not_ready,
        vec![("stock".to_owned(), "unreachable".to_owned())]
    );
}

#[tokio::test]
async fn a_certificate_of_an_unknown_authority_is_refused() {
    let (trusted, unknown) = (Ca::new("test CA"), Ca::new("someone else"));
    refuses(&trusted, &unknown.sign(&["127.0.0.1"], Use::Server, false)).await;
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    let ca = Ca::new("test CA");
    refuses(&ca, &ca.sign(&["stock.other.example"], Use::Server, false)).await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let ca = Ca::new("test CA");
    refuses(&ca, &ca.sign(&["127.0.0.1"], Use::Server, true)).await;
}

/// The problems `grocery serve gateway` lists with `vars` set.
fn problems(vars: Vec<(&'static str, String)>) -> String {
    let mut vars = vars;
    vars.push(("JWKS_URL", "http://users:4001/.well-known/jwks.json".into()));
    let mut env = settings::Env::from_fn(move |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    });
    let _ = gateway::Config::read(&mut env);
    match env.finish() {
        Ok(()) => String::new(),
        Err(problems) => problems.to_string(),
    }
}

#[test]
fn bad_subgraph_tls_files_are_refused_at_start_naming_their_variable() {
    let (ca, files) = (Ca::new("test CA"), Files::new());
    let client = ca.sign(&["gateway"], Use::Client, false);
    let other = ca.sign(&["gateway"], Use::Client, false);
    let path = |p: PathBuf| p.display().to_string();
    let ca_file = path(files.write("ca.pem", &ca.pem));
    let cert = path(files.write("client.pem", &client.cert_pem));
    let key = path(files.write("client.key", &client.key_pem));
    let other_key = path(files.write("other.key", &other.key_pem));
    let not_pem = path(files.write("notes.txt", "not a certificate"));
    let missing = path(files.path().join("missing.pem"));

    let good = vec![
        ("SUBGRAPH_CA_FILES", format!("stock={ca_file}")),
        ("SUBGRAPH_CLIENT_CERTS", format!("stock={cert}")),
        ("SUBGRAPH_CLIENT_KEYS", format!("stock={key}")),
        ("SUBGRAPH_HTTP2", "stock, catalog".into()),
    ];
    assert_eq!(problems(good), "");

    for (vars, problem) in [
        (
            vec![("SUBGRAPH_CA_FILES", format!("stock={missing}"))],
            format!("SUBGRAPH_CA_FILES: subgraph stock: {missing}: cannot be read"),
        ),
        (
            vec![("SUBGRAPH_CA_FILES", format!("stock={not_pem}"))],
            format!("SUBGRAPH_CA_FILES: subgraph stock: {not_pem}: no PEM certificate in it"),
        ),
        (
            vec![("SUBGRAPH_CA_FILES", "stock=/tmp/ca\0.pem".into())],
            "SUBGRAPH_CA_FILES: subgraph stock: \"/tmp/ca\\0.pem\": a path with a NUL byte".into(),
        ),
        (
            vec![("SUBGRAPH_CA_FILES", "stock".into())],
            "SUBGRAPH_CA_FILES: \"stock\" is not name=path".into(),
        ),
        (
            vec![
                ("SUBGRAPH_CLIENT_CERTS", format!("stock={not_pem}")),
                ("SUBGRAPH_CLIENT_KEYS", format!("stock={key}")),
            ],
            format!("SUBGRAPH_CLIENT_CERTS: subgraph stock: {not_pem}: no PEM certificate in it"),
        ),
        (
            vec![
                ("SUBGRAPH_CLIENT_CERTS", format!("stock={cert}")),
                ("SUBGRAPH_CLIENT_KEYS", format!("stock={ca_file}")),
            ],
            format!("SUBGRAPH_CLIENT_KEYS: subgraph stock: {ca_file}: no PEM private key"),
        ),
        (
            vec![
                ("SUBGRAPH_CLIENT_CERTS", format!("stock={cert}")),
                ("SUBGRAPH_CLIENT_KEYS", format!("stock={other_key}")),
            ],
            format!(
                "SUBGRAPH_CLIENT_KEYS: subgraph stock: {other_key} is not the key of the \
                 certificate in {cert}"
            ),
        ),
        (
            vec![("SUBGRAPH_CLIENT_CERTS", format!("stock={cert}"))],
            "SUBGRAPH_CLIENT_KEYS: subgraph stock: not set for a subgraph with a client \
             certificate"
                .into(),
        ),
    ] {
        let listed = problems(vars);
        assert!(listed.contains(&problem), "{problem}\nnot in: {listed}");
    }
}

#[tokio::test]
async fn tls_settings_for_a_plain_subgraph_or_an_unknown_one_are_refused() {
    let (ca, files) = (Ca::new("test CA"), Files::new());
    let ca_file = files.write("ca.pem", &ca.pem);
    let plain = stock(Wire::Plain).await;
    let err = gateway(&plain, trusting(ca_file.clone()))
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains(
            "subgraph stock: SUBGRAPH_CA_FILES: the subgraph's URL is http://, not https://"
        ),
        "{err}"
    );

    let sdl = support::supergraph(&[&support::Served {
        name: "stock".into(),
        url: plain.url.clone(),
        sdl: plain.sdl.clone(),
        seen: Default::default(),
        bodies: Default::default(),
    }]);
    let err = gateway::Gateway::new(
        &sdl,
        None,
        &gateway::GatewayOptions {
            subgraph_options: HashMap::from([("nope".to_owned(), trusting(ca_file))]),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("SUBGRAPH_CA_FILES names \"nope\", which the supergraph does not have"),
        "{err}"
    );
}

#[tokio::test]
async fn a_subscription_to_an_https_subgraph_is_refused_rather_than_sent_in_the_clear() {
    let ca = Ca::new("test CA");
    let cert = ca.sign(&["127.0.0.1"], Use::Server, false);
    let stock = stock(Wire::Tls {
        cert: &cert,
        alpn: &["http/1.1"],
        clients: None,
    })
    .await;
    let url: hyper::Uri = stock.url.parse().unwrap();
    let refused = gateway::subscriptions::ws_client::subscribe(
        &url,
        &[],
        Some("token"),
        "subscription { ticks }",
        Default::default(),
        std::time::Duration::from_secs(5),
    )
    .await
    .err()
    .unwrap();
    assert!(refused.contains("wss:// is not supported yet"), "{refused}");
}

/// The options a configuration file gives each subgraph, read as `serve
/// gateway --config` reads them (the file under an empty environment).
fn options_from_file(yaml: &str) -> HashMap<String, SubgraphOptions> {
    let tables: &[&'static [settings::Var]] = &[gateway::config::ENV];
    let file = Arc::new(gateway::config::ConfigFile::parse(
        "gateway.yaml",
        yaml,
        tables,
    ));
    let mut env = file.env_over(|_| None);
    let config = gateway::Config::read(&mut env);
    env.finish().expect("a complete configuration file");
    config.options.subgraph_options
}

#[tokio::test]
async fn tls_and_static_headers_from_a_configuration_file_reach_each_subgraph() {
    let (ca, clients, files) = (Ca::new("test CA"), Ca::new("client CA"), Files::new());
    let cert = ca.sign(&["127.0.0.1"], Use::Server, false);
    let client = clients.sign(&["gateway"], Use::Client, false);
    let stock = stock(Wire::Tls {
        cert: &cert,
        alpn: &["h2", "http/1.1"],
        clients: Some(&clients.der),
    })
    .await;
    let catalog = support::serve(
        "catalog",
        Schema::build(CatalogQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
    )
    .await;
    let yaml = format!(
        "subgraphs:\n  stock:\n    tls:\n      ca_file: {}\n      client_cert: {}\n      \
         client_key: {}\n    headers:\n      x-tenant: acme\n      X-Api-Key: \"k, 1\"\n  \
         catalog:\n    headers:\n      x-tenant: shop\n",
        files.write("ca.pem", &ca.pem).display(),
        files.write("client.pem", &client.cert_pem).display(),
        files.write("client.key", &client.key_pem).display(),
    );
    let options = options_from_file(&yaml);
    let stock_served = support::Served {
        name: "stock".into(),
        url: stock.url.clone(),
        sdl: stock.sdl.clone(),
        seen: Default::default(),
        bodies: Default::default(),
    };
    let sdl = support::supergraph(&[&catalog, &stock_served]);
    let gw = Arc::new(
        gateway::Gateway::new(
            &sdl,
            None,
            &gateway::GatewayOptions {
                subgraph_options: options,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    // Through mutual TLS, as the file says; without its client certificate
    // the subgraph refuses the connection (see the test above).
    assert_eq!(ask(&gw, FEDERATED).await, federated_answer());
    let stock_headers = stock.headers.lock().unwrap().clone();
    assert!(!stock_headers.is_empty());
    for head in &stock_headers {
        assert_eq!(head["x-tenant"], "acme");
        assert_eq!(head["x-api-key"], "k, 1");
    }
    let catalog_headers = catalog.seen.lock().unwrap().clone();
    assert!(!catalog_headers.is_empty());
    for head in &catalog_headers {
        assert_eq!(
            head.get_all("x-tenant").iter().collect::<Vec<_>>(),
            ["shop"]
        );
        assert!(head.get("x-api-key").is_none());
    }
}

#[test]
fn static_headers_from_the_environment_win_over_the_files_and_bad_ones_are_listed() {
    let tables: &[&'static [settings::Var]] = &[gateway::config::ENV];
    let file = Arc::new(gateway::config::ConfigFile::parse(
        "gateway.yaml",
        "subgraphs:\n  stock:\n    headers:\n      x-tenant: file\n",
        tables,
    ));
    let mut env = file.env_over(|name| {
        (name == "SUBGRAPH_HEADERS").then(|| r#"{"stock": {"x-tenant": "env"}}"#.to_owned())
    });
    let config = gateway::Config::read(&mut env);
    env.finish().expect("valid headers");
    let headers = &config.options.subgraph_options["stock"].headers;
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].1, "env");

    let listed = problems(vec![(
        "SUBGRAPH_HEADERS",
        r#"{"stock": {"te": "trailers", "x-ok": "a\nb"}, "users": {"x y": "1"}}"#.into(),
    )]);
    for expected in [
        "SUBGRAPH_HEADERS: subgraph stock: te is a header the gateway sets itself or a hop-by-hop one",
        "SUBGRAPH_HEADERS: subgraph stock: the value of x-ok has a character a header may not carry",
        "SUBGRAPH_HEADERS: subgraph users: \"x y\" is not a header name",
    ] {
        assert!(listed.contains(expected), "{expected} not in {listed}");
    }
    let listed = problems(vec![("SUBGRAPH_HEADERS", "[1, 2]".into())]);
    assert!(
        listed.contains("SUBGRAPH_HEADERS: not a JSON object"),
        "{listed}"
    );
}
