//! A depot for one test: inventory (its real gRPC stock API on loopback,
//! knowing APPLE, PEAR and MILK) and the logistics subgraph under test, each
//! on a fresh database.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use diesel_async::RunQueryDsl;
use inventory::rpc::StockServiceChecked;
use kit::{
    auth::{Role, TokenSettings},
    db::PgPool,
    events::{Applied, Bus, Consumer, ConsumerOptions, Event},
    testing::{SubgraphDb, TestClient, scalar, text, token, user},
};
use logistics::{LogisticsState, events::ShipmentsHandler};
use serde_json::{Value, json};
use uuid::Uuid;

pub use kit::testing::{KEYS, assert_no_errors, code, message};

/// How a test wants its depot.
#[derive(Clone)]
pub struct Options {
    /// Whether inventory's stock API answers from the start (else: [`Depot::start_inventory`]).
    pub inventory_up: bool,
    /// Attempts before a restock is FAILED.
    pub max_attempts: i32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            inventory_up: true,
            max_attempts: 10,
        }
    }
}

// Restock tests use the inventory side; shipment tests only part of it.
#[allow(dead_code)]
pub struct Depot {
    pub logistics: TestClient,
    pub state: Arc<LogisticsState>,
    pub pool: PgPool,
    pub inventory_pool: PgPool,
    pub config: logistics::Config,
    pub admin: String,
    pub truck: String,
    pub truck_id: Uuid,
    consumer: Consumer<ShipmentsHandler>,
    /// Inventory's stock API and its address while it is not yet served.
    stopped_inventory: Mutex<Option<(SocketAddr, StockServiceChecked)>>,
    next_event: std::sync::atomic::AtomicI64,
    _dbs: (SubgraphDb, SubgraphDb),
}

impl Depot {
    pub async fn new() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let inventory_db = SubgraphDb::new(inventory::DB_SCHEMA, &inventory::MIGRATIONS).await;
        let logistics_db = SubgraphDb::new(logistics::DB_SCHEMA, &logistics::MIGRATIONS).await;
        // A token of its own: should the port of a stopped inventory be taken
        // by another test's, calls to it are refused, not answered.
        let rpc_token = Uuid::new_v4().simple().to_string();
        let inventory_cfg = inventory::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            db: inventory_db.config.clone(),
            keys: KEYS.clone(),
            tokens: TokenSettings::default(),
            cutoffs: Default::default(),
            rpc_addr: "127.0.0.1:0".parse().unwrap(),
            rpc_token: rpc_token.clone(),
            reservation_ttl: Duration::from_secs(900),
            default_margin: "0.25".parse().unwrap(),
            sweep_interval: Duration::from_secs(5),
            events: Default::default(),
            stock_event_interval: Duration::from_millis(100),
        };
        let inventory_pool = inventory_db.pool.clone();
        {
            let mut conn = inventory_pool.get().await.unwrap();
            for sku in ["APPLE", "PEAR", "MILK"] {
                inventory::items::upsert(&mut conn, sku, true)
                    .await
                    .unwrap();
            }
        }
        let stock_api = inventory::build(&inventory_cfg, inventory_pool.clone())
            .unwrap()
            .rpc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rpc_addr = listener.local_addr().unwrap();
        let rpc_url = format!("http://{rpc_addr}");
        let stopped_inventory = if options.inventory_up {
            tokio::spawn(inventory::rpc::serve(
                listener,
                stock_api,
                std::future::pending(),
            ));
            None
        } else {
            // Nothing listens: calls are refused at once.
            drop(listener);
            Some((rpc_addr, stock_api))
        };
        let config = logistics::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            db: logistics_db.config.clone(),
            keys: KEYS.clone(),
            tokens: TokenSettings::default(),
            cutoffs: Default::default(),
            inventory_rpc_url: rpc_url,
            rpc_token,
            events: Default::default(),
            carrier: "test-carrier".into(),
            reconcile_interval: Duration::from_millis(200),
            restock_max_attempts: options.max_attempts,
        };
        let pool = logistics_db.pool.clone();
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
            admin: token(Role::Admin),
            truck: kit::testing::access_token(&KEYS, truck_id, Role::Truck),
            truck_id,
            consumer,
            stopped_inventory: Mutex::new(stopped_inventory),
            next_event: 0.into(),
            _dbs: (inventory_db, logistics_db),
        }
    }

    /// Serves inventory's stock API at the address logistics was given.
    pub async fn start_inventory(&self) {
        let (addr, stock_api) = self
            .stopped_inventory
            .lock()
            .unwrap()
            .take()
            .expect("inventory is not running yet");
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("the stock API's port is free again");
        tokio::spawn(inventory::rpc::serve(
            listener,
            stock_api,
            std::future::pending(),
        ));
    }

    /// Units on hand of `sku` in inventory.
    pub async fn on_hand(&self, sku: &str) -> i32 {
        let mut conn = self.inventory_pool.get().await.unwrap();
        inventory::stock::views(&mut conn, &[sku.to_owned()])
            .await
            .unwrap()[sku]
            .on_hand
    }

    /// A number from the inventory database.
    pub async fn inventory_scalar(&self, sql: &str) -> i64 {
        scalar(&self.inventory_pool, sql).await
    }

    /// Lets time pass for the reconciler: every pending restock is due now.
    pub async fn make_restocks_due(&self) {
        let mut conn = self.pool.get().await.unwrap();
        diesel::sql_query("UPDATE restock_orders SET next_attempt_at = now()")
            .execute(&mut conn)
            .await
            .unwrap();
    }

    /// A new customer's id and access token.
    pub fn customer(&self) -> (Uuid, String) {
        user(Role::Customer)
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
        scalar(&self.pool, sql).await
    }

    /// A text from the logistics database (`SELECT … AS v`).
    pub async fn text(&self, sql: &str) -> String {
        text(&self.pool, sql).await
    }
}
