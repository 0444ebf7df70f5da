//! A catalog subgraph on its own fresh database, called through its real HTTP
//! router, with an in-process stand-in for inventory.

use std::{
    collections::HashSet,
    sync::{Arc, LazyLock, Mutex},
};

use catalog::StockRegistry;
use futures::{FutureExt, future::BoxFuture};
use kit::{
    auth::{Role, TokenSettings},
    db::{DbConfig, PgPool, StatementLog},
    testing::{SubgraphDb, TestClient},
};
use serde_json::{Value, json};

pub use kit::testing::{KEYS, assert_no_errors, code, token};

/// A call the catalog made to inventory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Upsert(String, bool),
    Retire(String),
}

#[derive(Default)]
struct Ledger {
    calls: Vec<Call>,
    with_history: HashSet<String>,
    failing: HashSet<String>,
}

/// An in-process [`StockRegistry`] that records every call and can be told
/// which SKUs have stock history or should fail. Tests of the catalog use it
/// in place of inventory; the real gRPC path is tested end-to-end elsewhere
/// (and the client's wire format against a fake server in `grpc.rs`).
#[derive(Default)]
pub struct RecordingRegistry(Mutex<Ledger>);

impl RecordingRegistry {
    /// Every call so far, failed ones included, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.0.lock().unwrap().calls.clear();
    }

    /// Calls about `sku` fail from now on.
    pub fn fail_for(&self, sku: &str) {
        self.0.lock().unwrap().failing.insert(sku.to_owned());
    }

    /// Calls about `sku` succeed again.
    pub fn recover(&self, sku: &str) {
        self.0.lock().unwrap().failing.remove(sku);
    }

    /// `sku` was stocked once, so retiring it only deactivates it.
    pub fn give_history(&self, sku: &str) {
        self.0.lock().unwrap().with_history.insert(sku.to_owned());
    }

    fn record(&self, call: Call, sku: &str) -> anyhow::Result<bool> {
        let mut ledger = self.0.lock().unwrap();
        ledger.calls.push(call);
        if ledger.failing.contains(sku) {
            anyhow::bail!("inventory is unavailable (test double told to fail for {sku})");
        }
        Ok(!ledger.with_history.contains(sku))
    }
}

impl StockRegistry for RecordingRegistry {
    fn upsert(&self, sku: &str, active: bool) -> BoxFuture<'_, anyhow::Result<()>> {
        let result = self.record(Call::Upsert(sku.to_owned(), active), sku);
        async move { result.map(|_| ()) }.boxed()
    }

    fn retire(&self, sku: &str) -> BoxFuture<'_, anyhow::Result<bool>> {
        let result = self.record(Call::Retire(sku.to_owned()), sku);
        async move { result }.boxed()
    }
}

pub struct TestApp {
    /// The test database, with the statement log attached.
    pub db: DbConfig,
    pub pool: PgPool,
    pub log: StatementLog,
    pub registry: Arc<RecordingRegistry>,
    pub admin: String,
    pub customer: String,
    client: TestClient,
    database: SubgraphDb,
}

impl TestApp {
    pub async fn new() -> Self {
        let db = SubgraphDb::new(catalog::DB_SCHEMA, &catalog::MIGRATIONS).await;
        let cfg = catalog::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            db: db.config.clone(),
            keys: KEYS.clone(),
            tokens: TokenSettings::default(),
            cutoffs: Default::default(),
            inventory_rpc_url: catalog::DEFAULT_INVENTORY_RPC_URL.into(),
            rpc_token: "test-rpc-token".into(),
            events: Default::default(),
        };
        let registry = Arc::new(RecordingRegistry::default());
        let router = catalog::router_with(&cfg, db.pool.clone(), registry.clone()).expect("router");
        Self {
            db: cfg.db,
            pool: db.pool.clone(),
            log: db.log.clone(),
            registry,
            admin: token(Role::Admin),
            customer: token(Role::Customer),
            client: TestClient::new(router),
            database: db,
        }
    }

    /// A GraphQL POST, optionally with a bearer token.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.client.gql(token, query, variables).await
    }

    /// `createProduct` as ADMIN with `input`; returns the raw response.
    pub async fn create(&self, input: Value) -> Value {
        self.gql(Some(&self.admin), &CREATE, json!({ "i": input }))
            .await
    }

    /// Creates an active product `sku` named `name` and returns it.
    pub async fn product(&self, sku: &str, name: &str) -> Value {
        let resp = self.create(json!({ "sku": sku, "name": name })).await;
        assert_no_errors(&resp);
        resp["data"]["createProduct"].clone()
    }

    /// How many rows of `products` exist.
    pub async fn count(&self) -> i64 {
        self.scalar("SELECT count(*) AS n FROM products").await
    }

    /// The `bigint` that the SQL expression `sql` evaluates to.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.database.scalar(sql).await
    }
}

/// Every field of `Product`.
pub const FIELDS: &str =
    "sku name description upc imageUrls category active metadata createdAt updatedAt";

pub static CREATE: LazyLock<String> = LazyLock::new(|| {
    format!("mutation($i: CreateProductInput!) {{ createProduct(input: $i) {{ {FIELDS} }} }}")
});

/// The `extensions.field` of the first error.
#[track_caller]
pub fn field(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error naming a field: {resp:#}"))
}
