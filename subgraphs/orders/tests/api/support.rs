//! A shop for one test: inventory (its real gRPC stock API on loopback),
//! catalog (its real GraphQL on loopback, registering products with
//! inventory) and the orders subgraph under test, each on a fresh database.

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use inventory::restock::{Delivery, RestockItem};
use kit::{
    auth::{Role, TokenSettings},
    db::{PgPool, StatementLog},
    testing::{SubgraphDb, TestClient, scalar, token, user},
};
use orders::{Charges, OrdersState, TestProvider};
use serde_json::{Value, json};
use uuid::Uuid;

pub use kit::testing::{KEYS, assert_no_errors, code, message, redis_url, serve};

const RPC_TOKEN: &str = "orders-test-token";

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
    /// Run no event relay, of orders or of inventory (nothing runs
    /// statements but the requests).
    pub without_relay: bool,
}

/// The statements each subgraph's pool ran (with [`Options::log_statements`]).
#[derive(Clone, Default)]
pub struct Statements {
    pub orders: StatementLog,
    pub inventory: StatementLog,
    pub catalog: StatementLog,
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
    _dbs: (SubgraphDb, SubgraphDb, SubgraphDb),
}

impl Shop {
    pub async fn new() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        // Contention tests run two dozen checkouts at once. Only tests that
        // count statements record them (the bench must not pay for it).
        let logged = options.log_statements;
        let db = |schema, migrations, connections| async move {
            match logged {
                true => SubgraphDb::with_connections(schema, migrations, connections).await,
                false => SubgraphDb::unlogged(schema, migrations, connections).await,
            }
        };
        let inventory_db = db(inventory::DB_SCHEMA, &inventory::MIGRATIONS, 24).await;
        let catalog_db = db(catalog::DB_SCHEMA, &catalog::MIGRATIONS, 8).await;
        let orders_db = db(orders::DB_SCHEMA, &orders::MIGRATIONS, 24).await;
        let statements = if options.log_statements {
            Statements {
                orders: orders_db.log.clone(),
                inventory: inventory_db.log.clone(),
                catalog: catalog_db.log.clone(),
            }
        } else {
            Statements::default()
        };

        let inventory_cfg = inventory::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            db: inventory_db.config.clone(),
            keys: KEYS.clone(),
            tokens: TokenSettings::default(),
            cutoffs: Default::default(),
            rpc_addr: "127.0.0.1:0".parse().unwrap(),
            rpc_token: RPC_TOKEN.into(),
            reservation_ttl: Duration::from_secs(900),
            default_margin: "0.25".parse().unwrap(),
            sweep_interval: Duration::from_secs(5),
            events: Default::default(),
            stock_event_interval: Duration::from_millis(100),
        };
        let inventory_pool = inventory_db.pool.clone();
        let inventory_parts = inventory::build(&inventory_cfg, inventory_pool.clone()).unwrap();
        // Inventory's relay publishes its `stock.changed` events (and marks
        // them) as it does in `grocery dev`.
        if !options.without_relay {
            tokio::spawn(inventory::Inventory::run_relay(
                inventory_parts.relay.clone(),
            ));
        }
        let stock_api = inventory_parts.rpc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rpc_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(inventory::rpc::serve(
            listener,
            stock_api,
            std::future::pending(),
        ));

        let catalog_cfg = catalog::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            db: catalog_db.config.clone(),
            keys: KEYS.clone(),
            tokens: TokenSettings::default(),
            cutoffs: Default::default(),
            inventory_rpc_url: rpc_url.clone(),
            rpc_token: RPC_TOKEN.into(),
            events: Default::default(),
        };
        let registry =
            Arc::new(catalog::GrpcStockRegistry::connect_lazy(&rpc_url, RPC_TOKEN).unwrap());
        let catalog_router =
            catalog::router_with(&catalog_cfg, catalog_db.pool.clone(), registry).unwrap();
        let catalog_url = format!("{}/graphql", serve(catalog_router).await);

        let config = orders::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            db: orders_db.config.clone(),
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
        let pool = orders_db.pool.clone();
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
        let admin = token(Role::Admin);
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
        user(Role::Customer)
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
        scalar(&self.pool, sql).await
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
