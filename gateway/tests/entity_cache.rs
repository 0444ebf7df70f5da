//! The entity cache: entity fetches answered from what a subgraph's
//! `Cache-Control` let the gateway keep, in memory and in Redis; private
//! answers kept per verified user; entries gone with their max-age or when
//! the entity is invalidated. Two in-repo subgraphs: `catalog` lists
//! products, `inventory` adds fields to them with different cache hints.

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicI32, Ordering},
};

use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Schema};
use auth::{KeyRing, RoleName, SigningKey, TokenSettings, Verifier};
use serde_json::{Value, json};
use testing::{RedisServer, assert_no_errors};

const SKUS: [&str; 2] = ["APPLE", "BANANA"];

struct CatalogQuery;

#[Object(name = "Query")]
impl CatalogQuery {
    async fn products(&self) -> Vec<CatalogProduct> {
        SKUS.iter().map(|s| CatalogProduct(s.to_string())).collect()
    }

    #[graphql(entity)]
    async fn product_by_sku(&self, sku: String) -> CatalogProduct {
        CatalogProduct(sku)
    }
}

struct CatalogProduct(String);

#[Object(name = "Product")]
impl CatalogProduct {
    async fn sku(&self) -> &str {
        &self.0
    }

    #[graphql(cache_control(max_age = 60))]
    async fn name(&self) -> String {
        self.0.to_lowercase()
    }
}

/// What inventory's fields answer, changed by the tests.
#[derive(Default)]
struct Shelf {
    /// APPLE's stock (BANANA's is 100).
    apple: AtomicI32,
    /// How many times a private note was written.
    notes: AtomicI32,
}

struct InventoryQuery;

#[Object(name = "Query")]
impl InventoryQuery {
    #[graphql(entity)]
    async fn product_by_sku(&self, #[graphql(key)] sku: String) -> InventoryProduct {
        InventoryProduct(sku)
    }
}

struct InventoryProduct(String);

#[Object(name = "Product")]
impl InventoryProduct {
    async fn sku(&self) -> &str {
        &self.0
    }

    #[graphql(cache_control(max_age = 10))]
    async fn stock(&self, ctx: &Context<'_>) -> i32 {
        match self.0.as_str() {
            "APPLE" => ctx
                .data_unchecked::<Arc<Shelf>>()
                .apple
                .load(Ordering::SeqCst),
            _ => 100,
        }
    }

    /// Per user: a new number every time it is resolved.
    #[graphql(cache_control(max_age = 30, private))]
    async fn note(&self, ctx: &Context<'_>) -> i32 {
        ctx.data_unchecked::<Arc<Shelf>>()
            .notes
            .fetch_add(1, Ordering::SeqCst)
            + 1
    }

    /// Never kept (`no-cache`).
    #[graphql(cache_control(no_cache))]
    async fn live(&self) -> i32 {
        1
    }

    /// No hint: no `Cache-Control`, nothing kept.
    async fn plain(&self) -> i32 {
        2
    }

    #[graphql(cache_control(max_age = 1))]
    async fn blink(&self) -> i32 {
        3
    }
}

struct Graph {
    catalog: support::Served,
    inventory: support::Served,
    shelf: Arc<Shelf>,
    keys: KeyRing,
}

impl Graph {
    async fn new() -> Self {
        let shelf = Arc::new(Shelf::default());
        shelf.apple.store(5, Ordering::SeqCst);
        let catalog = support::serve(
            "catalog",
            Schema::build(CatalogQuery, EmptyMutation, EmptySubscription)
                .enable_federation()
                .finish(),
        )
        .await;
        let inventory = support::serve(
            "inventory",
            Schema::build(InventoryQuery, EmptyMutation, EmptySubscription)
                .enable_federation()
                .data(shelf.clone())
                .finish(),
        )
        .await;
        Self {
            catalog,
            inventory,
            shelf,
            keys: KeyRing::with_signing_key(SigningKey::generate().unwrap().0),
        }
    }

    /// A gateway over both with the entity cache `on`, in Redis at `redis`
    /// if given, verifying tokens signed by `keys`.
    fn gateway(&self, on: bool, redis: Option<&RedisServer>) -> Arc<gateway::Gateway> {
        let verifier = Verifier::new(&self.keys, &TokenSettings::default()).unwrap();
        let options = gateway::GatewayOptions {
            metrics_on_api: true,
            entity_cache: gateway::entity_cache::EntityCacheOptions {
                enabled: on,
                redis_url: redis.map(RedisServer::url),
                ..Default::default()
            },
            ..Default::default()
        };
        Arc::new(
            gateway::Gateway::new(
                &support::supergraph(&[&self.catalog, &self.inventory]),
                Some(Arc::new(gateway::pipeline::auth::EdgeAuth::Keys(Arc::new(
                    verifier,
                )))),
                &options,
            )
            .unwrap(),
        )
    }

    /// A bearer header value for a new user.
    fn user(&self) -> String {
        let token = testing::access_token(
            &self.keys,
            uuid::Uuid::new_v4(),
            RoleName::from_static("CUSTOMER"),
        );
        format!("Bearer {token}")
    }

    /// The representations inventory was sent since the last call, per fetch.
    fn sent(&self) -> Vec<Vec<String>> {
        let sent = self
            .inventory
            .requests()
            .iter()
            .map(|body| {
                body["variables"]["representations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["sku"].as_str().unwrap().to_owned())
                    .collect()
            })
            .collect();
        self.inventory.forget();
        sent
    }
}

async fn query(gw: &Arc<gateway::Gateway>, text: &str, authorization: Option<&str>) -> Value {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    let (body, _) = support::post(gw, text, json!({}), &headers).await;
    assert_no_errors(&body);
    body["data"]["products"].clone()
}

const STOCK: &str = "{ products { sku name stock } }";

fn stocks(apple: i32) -> Value {
    json!([
        { "sku": "APPLE", "name": "apple", "stock": apple },
        { "sku": "BANANA", "name": "banana", "stock": 100 },
    ])
}

async fn metrics(gw: &Arc<gateway::Gateway>) -> String {
    use tower::ServiceExt;
    let response = gateway::router(gw.clone())
        .oneshot(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn kept_entities_are_not_fetched_again_until_invalidated() {
    let graph = Graph::new().await;
    let gw = graph.gateway(true, None);
    assert_eq!(query(&gw, STOCK, None).await, stocks(5));
    assert_eq!(graph.sent(), vec![vec!["APPLE", "BANANA"]]);
    graph.shelf.apple.store(7, Ordering::SeqCst);
    // Kept for 10 s: the subgraph is not asked, the answer is the kept one.
    assert_eq!(query(&gw, STOCK, None).await, stocks(5));
    assert_eq!(graph.sent(), Vec::<Vec<String>>::new());
    // The product changed: only it is fetched again, merged in its place.
    let key = json!({ "sku": "APPLE" });
    gw.pipeline
        .entity_cache
        .invalidate("Product", key.as_object().unwrap())
        .await;
    assert_eq!(query(&gw, STOCK, None).await, stocks(7));
    assert_eq!(graph.sent(), vec![vec!["APPLE"]]);
    // Root fields are not entity fetches: catalog was asked every time.
    assert_eq!(graph.catalog.requests().len(), 3);
    let text = metrics(&gw).await;
    for line in [
        r#"grocery_gateway_entity_cache_total{subgraph="inventory",type="Product",outcome="miss"} 3"#,
        r#"grocery_gateway_entity_cache_total{subgraph="inventory",type="Product",outcome="hit"} 3"#,
        r#"grocery_gateway_entity_cache_total{subgraph="inventory",type="Product",outcome="store"} 3"#,
        r#"grocery_gateway_entity_cache_total{subgraph="all",type="Product",outcome="invalidated"} 1"#,
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}

#[tokio::test]
async fn with_the_cache_off_every_entity_fetch_reaches_the_subgraph() {
    let graph = Graph::new().await;
    let gw = graph.gateway(false, None);
    for _ in 0..2 {
        assert_eq!(query(&gw, STOCK, None).await, stocks(5));
    }
    assert_eq!(graph.sent().len(), 2);
}

#[tokio::test]
async fn answers_without_a_max_age_are_never_kept() {
    let graph = Graph::new().await;
    let gw = graph.gateway(true, None);
    for text in [
        "{ products { sku live } }",
        "{ products { sku plain } }",
        // One field that may not be kept spoils the fetch.
        "{ products { sku stock live } }",
    ] {
        query(&gw, text, None).await;
        query(&gw, text, None).await;
        assert_eq!(graph.sent().len(), 2, "{text}");
    }
}

#[tokio::test]
async fn entries_expire_with_the_subgraphs_max_age() {
    let graph = Graph::new().await;
    let gw = graph.gateway(true, None);
    let text = "{ products { sku blink } }";
    query(&gw, text, None).await;
    query(&gw, text, None).await;
    assert_eq!(graph.sent().len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    query(&gw, text, None).await;
    assert_eq!(graph.sent().len(), 1, "fetched again once max-age=1 passed");
}

#[tokio::test]
async fn private_answers_are_kept_for_their_user_only() {
    let graph = Graph::new().await;
    let gw = graph.gateway(true, None);
    let text = "{ products { sku note } }";
    let (alice, bob) = (graph.user(), graph.user());
    let first = query(&gw, text, Some(&alice)).await;
    assert_eq!(
        first,
        json!([{ "sku": "APPLE", "note": 1 }, { "sku": "BANANA", "note": 2 }])
    );
    // Alice again: her own entries.
    assert_eq!(query(&gw, text, Some(&alice)).await, first);
    assert_eq!(graph.sent().len(), 1);
    // Bob never sees Alice's.
    let second = query(&gw, text, Some(&bob)).await;
    assert_eq!(
        second,
        json!([{ "sku": "APPLE", "note": 3 }, { "sku": "BANANA", "note": 4 }])
    );
    assert_eq!(graph.sent().len(), 1);
    // Nobody (no token) is never served a private entry, nor has one kept.
    for _ in 0..2 {
        let anonymous = query(&gw, text, None).await;
        assert_ne!(anonymous, first);
        assert_ne!(anonymous, second);
    }
    assert_eq!(graph.sent().len(), 2);
}

#[tokio::test]
async fn replicas_share_entries_through_redis_and_an_invalidation_drops_them_for_all() {
    let redis = RedisServer::start();
    let graph = Graph::new().await;
    let (one, two) = (
        graph.gateway(true, Some(&redis)),
        graph.gateway(true, Some(&redis)),
    );
    assert_eq!(query(&one, STOCK, None).await, stocks(5));
    assert_eq!(graph.sent().len(), 1);
    // Kept by the first replica, served by the second.
    assert_eq!(query(&two, STOCK, None).await, stocks(5));
    assert_eq!(graph.sent().len(), 0);
    graph.shelf.apple.store(9, Ordering::SeqCst);
    let key = json!({ "sku": "APPLE" });
    one.pipeline
        .entity_cache
        .invalidate("Product", key.as_object().unwrap())
        .await;
    assert_eq!(query(&two, STOCK, None).await, stocks(9));
    assert_eq!(graph.sent(), vec![vec!["APPLE"]]);
    // Private entries in Redis are per user too.
    let text = "{ products { sku note } }";
    let (alice, bob) = (graph.user(), graph.user());
    let mine = query(&one, text, Some(&alice)).await;
    assert_eq!(query(&two, text, Some(&alice)).await, mine);
    assert_ne!(query(&two, text, Some(&bob)).await, mine);
    assert_eq!(graph.sent().len(), 2);
}

/// A raw inventory that answers every `_entities` fetch with `stock: 1`
/// per representation and the `Cache-Control` header lines `lines`
/// (written as they are); counts the fetches.
async fn raw_inventory(lines: Vec<u8>) -> (String, Arc<AtomicI32>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicI32::new(0));
    let counted = fetches.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (lines, counted) = (lines.clone(), counted.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let body = loop {
                    let mut chunk = [0u8; 8192];
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break body.to_owned();
                        }
                    }
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let request: Value = serde_json::from_str(&body).unwrap();
                let reps = request["variables"]["representations"]
                    .as_array()
                    .map_or(0, Vec::len);
                let answer = json!({ "data": { "_entities": vec![json!({ "stock": 1 }); reps] } })
                    .to_string();
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    answer.len()
                )
                .into_bytes();
                out.extend_from_slice(&lines);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(answer.as_bytes());
                let _ = stream.write_all(&out).await;
            });
        }
    });
    (url, fetches)
}

/// Hostile `Cache-Control` answers of a subgraph: huge, repeated, deep,
/// malformed, NUL, wrong type. None is kept; each answer is still served
/// (or, for bytes HTTP forbids, refused as a subgraph error with a code).
#[tokio::test]
async fn hostile_cache_control_headers_keep_nothing() {
    let graph = Graph::new().await;
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "huge",
            format!("cache-control: max-age=60, {}\r\n", "x".repeat(16_000)).into_bytes(),
            true,
        ),
        (
            "repeated, private on a line of its own",
            b"cache-control: max-age=60\r\ncache-control: private\r\n".to_vec(),
            true,
        ),
        (
            "repeated directive, the least wins",
            b"cache-control: max-age=60, max-age=0\r\n".to_vec(),
            true,
        ),
        (
            "deep",
            format!(
                "cache-control: max-age=60, private=\"{}\"\r\n",
                "private=\"".repeat(2_000)
            )
            .into_bytes(),
            true,
        ),
        (
            "malformed number",
            b"cache-control: max-age=6O\r\n".to_vec(),
            true,
        ),
        ("negative", b"cache-control: max-age=-60\r\n".to_vec(), true),
        (
            "overflow",
            b"cache-control: max-age=184467440737095516160\r\n".to_vec(),
            true,
        ),
        (
            "wrong type",
            b"cache-control: max-age=[60]\r\n".to_vec(),
            true,
        ),
        (
            "no-store",
            b"cache-control: no-store, max-age=60\r\n".to_vec(),
            true,
        ),
        ("empty", b"cache-control: \r\n".to_vec(), true),
        ("NUL", b"cache-control: max-age=60\0\r\n".to_vec(), false),
    ];
    for (name, lines, answered) in cases {
        let (url, fetches) = raw_inventory(lines).await;
        let options = gateway::GatewayOptions {
            subgraph_urls: [("inventory".to_owned(), url)].into(),
            entity_cache: gateway::entity_cache::EntityCacheOptions {
                enabled: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let sdl = support::supergraph(&[&graph.catalog, &graph.inventory]);
        let gw = Arc::new(gateway::Gateway::new(&sdl, None, &options).unwrap());
        for _ in 0..2 {
            let (body, _) = support::post(&gw, "{ products { sku stock } }", json!({}), &[]).await;
            if answered {
                assert_no_errors(&body);
                assert_eq!(body["data"]["products"][0]["stock"], 1, "{name}");
            } else {
                assert!(
                    body["errors"][0]["extensions"]["code"].is_string(),
                    "{name}: {body}"
                );
            }
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 2, "{name}: nothing kept");
    }
}
