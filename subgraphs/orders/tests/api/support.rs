//! A shop for one test: inventory (its real gRPC stock API on loopback),
//! catalog (its real GraphQL on loopback, registering products with
//! inventory) and the orders subgraph under test, each on a fresh database.

use std::{
    path::Path,
    sync::{Arc, LazyLock},
    time::Duration,
};

use diesel::sql_types;
use diesel_async::RunQueryDsl;
use inventory::restock::{Delivery, RestockItem};
use kit::{
    auth::{KeyRing, Role, SigningKey, TokenSettings},
    db::PgPool,
    testing::{TestClient, TestDatabase, access_token},
};
use orders::{Charges, OrdersState, TestProvider};
use serde_json::{Value, json};
use uuid::Uuid;

pub use kit::testing::{assert_no_errors, code};

/// One key for the whole test process: RSA generation is the slow part.
pub static KEYS: LazyLock<KeyRing> =
    LazyLock::new(|| KeyRing::with_signing_key(SigningKey::generate().expect("key").0));

const RPC_TOKEN: &str = "orders-test-token";

fn migrations(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(name)
}

/// How a test wants its shop.
#[derive(Clone, Default)]
pub struct Options {
    pub charges: Charges,
    /// How long previews hold stock (inventory's 15 minutes when `None`).
    pub ttl: Option<Duration>,
    /// Publish events through this Redis stream instead of in-process.
    pub redis_stream: Option<String>,
    /// Record every statement orders, inventory and catalog run.
    pub log_statements: bool,
    /// Run no event relay (nothing runs statements but the requests).
    pub without_relay: bool,
}

/// The statements each subgraph's pool ran (with [`Options::log_statements`]).
#[derive(Clone, Default)]
pub struct Statements {
    pub orders: kit::db::StatementLog,
    pub inventory: kit::db::StatementLog,
    pub catalog: kit::db::StatementLog,
}

impl Statements {
    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        self.orders.clear();
        self.inventory.clear();
        self.catalog.clear();
    }
}

pub struct Shop {
    pub orders: TestClient,
    pub router: axum::Router,
    pub state: Arc<OrdersState>,
    pub provider: Arc<TestProvider>,
    pub pool: PgPool,
    pub inventory_pool: PgPool,
    pub admin: String,
    pub config: orders::Config,
    pub statements: Statements,
    _dbs: (TestDatabase, TestDatabase, TestDatabase),
}

/// The Redis the tests use: `REDIS_URL`, default the local server.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Serves `router` on a free loopback port; returns `http://addr`.
pub async fn serve_http(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

impl Shop {
    pub async fn new() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let inventory_db = TestDatabase::new(
            inventory::DB_SCHEMA,
            &inventory::MIGRATIONS,
            &migrations("inventory"),
        )
        .await;
        let catalog_db = TestDatabase::new(
            catalog::DB_SCHEMA,
            &catalog::MIGRATIONS,
            &migrations("catalog"),
        )
        .await;
        let orders_db = TestDatabase::new(
            orders::DB_SCHEMA,
            &orders::MIGRATIONS,
            &migrations("orders"),
        )
        .await;
        let statements = Statements::default();
        let log = |log: &kit::db::StatementLog| options.log_statements.then(|| log.clone());

        let inventory_cfg = inventory::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            db: kit::db::DbConfig {
                max_connections: 24,
                statement_log: log(&statements.inventory),
                ..inventory_db.config.clone()
            },
            keys: KEYS.clone(),
            tokens: TokenSettings::default(),
            cutoffs: Default::default(),
            rpc_addr: "127.0.0.1:0".parse().unwrap(),
            rpc_token: RPC_TOKEN.into(),
            reservation_ttl: Duration::from_secs(900),
            default_margin: "0.25".parse().unwrap(),
            sweep_interval: Duration::from_secs(5),
        };
        let inventory_pool = kit::db::pool(&inventory_cfg.db).await.unwrap();
        let stock_api = inventory::build(&inventory_cfg, inventory_pool.clone())
            .unwrap()
            .rpc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rpc_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(inventory::rpc::serve(
            listener,
            stock_api,
            std::future::pending(),
        ));

        let catalog_cfg = catalog::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            db: kit::db::DbConfig {
                statement_log: log(&statements.catalog),
                ..catalog_db.config.clone()
            },
            keys: KEYS.clone(),
            tokens: TokenSettings::default(),
            cutoffs: Default::default(),
            inventory_rpc_url: rpc_url.clone(),
            rpc_token: RPC_TOKEN.into(),
        };
        let registry =
            Arc::new(catalog::GrpcStockRegistry::connect_lazy(&rpc_url, RPC_TOKEN).unwrap());
        let catalog_pool = kit::db::pool(&catalog_cfg.db).await.unwrap();
        let catalog_router = catalog::router_with(&catalog_cfg, catalog_pool, registry).unwrap();
        let catalog_url = format!("{}/graphql", serve_http(catalog_router).await);

        let config = orders::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            db: kit::db::DbConfig {
                max_connections: 24,
                statement_log: log(&statements.orders),
                ..orders_db.config.clone()
            },
            keys: KEYS.clone(),
            tokens: TokenSettings::default(),
            cutoffs: Default::default(),
            inventory_rpc_url: rpc_url,
            rpc_token: RPC_TOKEN.into(),
            catalog_url,
            // No users here: confirmations snapshot what the call gives
            // (tests/ through `grocery dev` cover the profile lookup).
            users_url: "http://127.0.0.1:1/graphql".into(),
            events: kit::events::BusConfig {
                redis_url: options.redis_stream.as_ref().map(|_| redis_url()),
                stream: options
                    .redis_stream
                    .clone()
                    .unwrap_or_else(|| kit::events::DEFAULT_STREAM.into()),
            },
            charges: options.charges,
            reservation_ttl: options.ttl,
            sweep_interval: Duration::from_secs(1),
        };
        let pool = kit::db::pool(&config.db).await.unwrap();
        let bus = config
            .events
            .connect()
            .await
            .expect("event bus (Redis at REDIS_URL, default 127.0.0.1:6379)");
        let provider = Arc::new(TestProvider::default());
        let parts = orders::build(&config, pool.clone(), bus, provider.clone()).unwrap();
        if !options.without_relay {
            tokio::spawn(orders::Orders::run_relay(parts.state.clone()));
        }
        let admin = access_token(&KEYS, Uuid::new_v4(), Role::Admin);
        let shop = Self {
            orders: TestClient::new(parts.router.clone()),
            router: parts.router,
            state: parts.state,
            provider,
            pool,
            inventory_pool,
            admin,
            config,
            statements,
            _dbs: (inventory_db, catalog_db, orders_db),
        };
        // Every test shops from the same two shelves; more where a test needs it.
        shop.product("APPLE", "Braeburn Apples", 20, "0.40").await;
        shop.product("MILK", "Whole Milk 1l", 10, "0.80").await;
        shop
    }

    /// Creates `sku` in catalog (which registers it with inventory over gRPC)
    /// and delivers `units` at `cost`, fresh for ten days.
    pub async fn product(&self, sku: &str, name: &str, units: i32, cost: &str) {
        self.create_in_catalog(sku, name).await;
        if units > 0 {
            self.deliver(sku, units, cost).await;
        }
    }

    async fn create_in_catalog(&self, sku: &str, name: &str) {
        let query = json!({
            "query": "mutation($sku: String!, $name: String!) { createProduct(input: { sku: $sku, name: $name }) { sku } }",
            "variables": { "sku": sku, "name": name },
        });
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let request = hyper::Request::post(self.config.catalog_url.as_str())
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.admin))
            .body(http_body_util::Full::new(bytes::Bytes::from(
                query.to_string(),
            )))
            .unwrap();
        use http_body_util::BodyExt;
        let response = client.request(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_no_errors(&body);
    }

    /// Delivers `units` of a known `sku` at `cost`, fresh for ten days.
    pub async fn deliver(&self, sku: &str, units: i32, cost: &str) {
        self.deliver_expiring(sku, units, cost, 10).await
    }

    /// Delivers `units` of a known `sku` at `cost`, expiring in `days`.
    pub async fn deliver_expiring(&self, sku: &str, units: i32, cost: &str, days: i64) {
        let mut conn = self.inventory_pool.get().await.unwrap();
        inventory::restock::restock(
            &mut conn,
            &Delivery {
                transaction_id: Uuid::new_v4().to_string(),
                truck_id: "truck-1".into(),
                supplier_id: "farm".into(),
                items: vec![RestockItem {
                    sku: sku.into(),
                    quantity: units,
                    unit_cost: cost.parse().unwrap(),
                    mfd_date: None,
                    expiry_date: Some(
                        chrono::Utc::now().date_naive() + chrono::Duration::days(days),
                    ),
                }],
            },
        )
        .await
        .unwrap();
    }

    /// A new customer's id and access token.
    pub fn customer(&self) -> (Uuid, String) {
        let id = Uuid::new_v4();
        (id, access_token(&KEYS, id, Role::Customer))
    }

    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        self.orders.gql(Some(token), query, variables).await
    }

    /// `previewOrder` of `items` (`[(sku, quantity)]`), which must succeed.
    pub async fn preview(&self, token: &str, items: &[(&str, i32)]) -> Value {
        let resp = self.try_preview(token, items).await;
        assert_no_errors(&resp);
        resp["data"]["previewOrder"].clone()
    }

    pub async fn try_preview(&self, token: &str, items: &[(&str, i32)]) -> Value {
        let items: Vec<Value> = items
            .iter()
            .map(|(sku, quantity)| json!({ "sku": sku, "quantity": quantity }))
            .collect();
        self.gql(token, &PREVIEW, json!({ "items": items })).await
    }

    /// `confirmOrder` with a key and token.
    pub async fn confirm(
        &self,
        token: &str,
        order_id: &str,
        key: Option<&str>,
        payment: Option<&str>,
    ) -> Value {
        self.gql(
            token,
            &CONFIRM,
            json!({ "id": order_id, "key": key, "payment": payment }),
        )
        .await
    }

    /// (on hand, reserved, available) of `sku` in inventory.
    pub async fn levels(&self, sku: &str) -> (i32, i32, i32) {
        let mut conn = self.inventory_pool.get().await.unwrap();
        let views = inventory::stock::views(&mut conn, &[sku.to_owned()])
            .await
            .unwrap();
        let v = &views[sku];
        (v.on_hand, v.reserved, v.available())
    }

    /// A number from the orders database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await.unwrap();
        diesel::sql_query(format!("SELECT ({sql})::int8 AS n"))
            .get_result::<Row>(&mut conn)
            .await
            .expect(sql)
            .n
    }
}

pub const ORDER_FIELDS: &str = "id number status subtotal tax shippingCost total reservedUntil confirmedAt
    notes cancelReason items { sku quantity unitPrice lineTotal productName product { sku } }
    payment { status amount provider providerReference method failureReason refunds { amount providerReference } }
    customerSnapshot { userId email phone shippingAddress { line1 city postalCode country } billingAddress { line1 city country } }
    statusHistory { previousStatus status reason }";

pub static PREVIEW: LazyLock<String> = LazyLock::new(|| {
    format!(
        "mutation($items: [OrderLineInput!]) {{ previewOrder(items: $items) {{ {ORDER_FIELDS} }} }}"
    )
});

pub static CONFIRM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "mutation($id: ID!, $key: String, $payment: String, $customer: CustomerInput, $notes: String) {{
            confirmOrder(orderId: $id, idempotencyKey: $key, paymentToken: $payment, customer: $customer, notes: $notes) {{ {ORDER_FIELDS} }} }}"
    )
});

pub static CANCEL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "mutation($id: ID!, $reason: String) {{ cancelOrder(orderId: $id, reason: $reason) {{ {ORDER_FIELDS} }} }}"
    )
});

pub static ORDER: LazyLock<String> =
    LazyLock::new(|| format!("query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"));

pub static SET_STATUS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "mutation($id: ID!, $status: OrderStatus!) {{ updateOrderStatus(orderId: $id, status: $status) {{ {ORDER_FIELDS} }} }}"
    )
});

pub fn message(resp: &Value) -> &str {
    resp["errors"][0]["message"].as_str().unwrap_or_default()
}
