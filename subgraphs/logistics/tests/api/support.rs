//! A depot for one test: inventory (its real gRPC stock API on loopback) and
//! the logistics subgraph under test, each on a fresh database.

use std::{
    path::Path,
    sync::{Arc, LazyLock},
    time::Duration,
};

use chrono::Utc;
use diesel::sql_types;
use diesel_async::RunQueryDsl;
use inventory::InventoryConfig;
use kit::{
    auth::{KeyRing, Role, SigningKey, TokenSettings},
    db::PgPool,
    events::{Applied, Bus, Consumer, ConsumerOptions, Event},
    testing::{TestClient, TestDatabase, access_token},
};
use logistics::{LogisticsConfig, LogisticsState, events::ShipmentsHandler};
use serde_json::{Value, json};
use uuid::Uuid;

pub use kit::testing::{assert_no_errors, code};

/// One key for the whole test process: RSA generation is the slow part.
pub static KEYS: LazyLock<KeyRing> =
    LazyLock::new(|| KeyRing::with_signing_key(SigningKey::generate().expect("key").0));

pub const RPC_TOKEN: &str = "logistics-test-token";

fn migrations(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(name)
}

// Restock tests use the inventory side; shipment tests only part of it.
#[allow(dead_code)]
pub struct Depot {
    pub logistics: TestClient,
    pub state: Arc<LogisticsState>,
    pub pool: PgPool,
    pub inventory_pool: PgPool,
    pub config: LogisticsConfig,
    pub admin: String,
    pub truck: String,
    pub truck_id: Uuid,
    consumer: Consumer<ShipmentsHandler>,
    next_event: std::sync::atomic::AtomicI64,
    _dbs: (TestDatabase, TestDatabase),
}

impl Depot {
    pub async fn new() -> Self {
        let inventory_db = TestDatabase::new(
            inventory::DB_SCHEMA,
            &inventory::MIGRATIONS,
            &migrations("inventory"),
        )
        .await;
        let logistics_db = TestDatabase::new(
            logistics::DB_SCHEMA,
            &logistics::MIGRATIONS,
            &migrations("logistics"),
        )
        .await;
        let inventory_cfg = InventoryConfig {
            db: inventory_db.config.clone(),
            keys: KEYS.clone(),
            tokens: TokenSettings::default(),
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
        let config = LogisticsConfig {
            db: logistics_db.config.clone(),
            keys: KEYS.clone(),
            tokens: TokenSettings::default(),
            inventory_rpc_url: rpc_url,
            rpc_token: RPC_TOKEN.into(),
            events: Default::default(),
            carrier: "test-carrier".into(),
            reconcile_interval: Duration::from_secs(1),
        };
        let pool = kit::db::pool(&config.db).await.unwrap();
        let parts = logistics::build(&config, pool.clone(), Bus::in_process()).unwrap();
        let consumer = Consumer::new(
            Arc::new(ShipmentsHandler::new(parts.state.clone())),
            pool.clone(),
            Bus::in_process(),
            ConsumerOptions::default(),
        );
        let truck_id = Uuid::new_v4();
        Self {
            logistics: TestClient::new(parts.router),
            state: parts.state,
            pool,
            inventory_pool,
            config,
            admin: access_token(&KEYS, Uuid::new_v4(), Role::Admin),
            truck: access_token(&KEYS, truck_id, Role::Truck),
            truck_id,
            consumer,
            next_event: 0.into(),
            _dbs: (inventory_db, logistics_db),
        }
    }

    /// A new customer's id and access token.
    pub fn customer(&self) -> (Uuid, String) {
        let id = Uuid::new_v4();
        (id, access_token(&KEYS, id, Role::Customer))
    }

    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.logistics.gql(token, query, variables).await
    }

    /// An `order.status_changed` event as orders would publish it.
    pub fn order_event(&self, order_id: Uuid, customer_id: Uuid, status: &str) -> Event {
        let id = self
            .next_event
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        Event {
            id,
            source: "orders".into(),
            topic: "order.status_changed".into(),
            key: order_id.to_string(),
            payload: json!({
                "orderId": order_id,
                "number": "GR-000001",
                "customerId": customer_id,
                "previousStatus": null,
                "status": status,
                "at": Utc::now(),
            }),
            at: Utc::now(),
        }
    }

    /// Applies `event` through the `logistics.shipments` consumer.
    pub async fn apply(&self, event: &Event) -> Applied {
        self.consumer.apply(event).await.unwrap()
    }

    /// A paid order of a new customer, with its shipment made by the
    /// consumer: (order id, customer token, tracking id).
    pub async fn shipped_order(&self) -> (Uuid, String, String) {
        let (customer, token) = self.customer();
        let order = Uuid::new_v4();
        self.apply(&self.order_event(order, customer, "CONFIRMED"))
            .await;
        let tracking = self
            .text(&format!(
                "SELECT tracking_id AS v FROM shipments WHERE order_id = '{order}'"
            ))
            .await;
        (order, token, tracking)
    }

    /// A number from the logistics database.
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

    /// A text from the logistics database (`SELECT … AS v`).
    pub async fn text(&self, sql: &str) -> String {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = sql_types::Text)]
            v: String,
        }
        let mut conn = self.pool.get().await.unwrap();
        diesel::sql_query(sql)
            .get_result::<Row>(&mut conn)
            .await
            .expect(sql)
            .v
    }
}

/// The message of the first error.
pub fn message(resp: &Value) -> &str {
    resp["errors"][0]["message"].as_str().unwrap_or("")
}
