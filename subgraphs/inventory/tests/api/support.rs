//! A stockroom on its own database, with helpers to stock it and to audit its books.

use std::time::Duration;

use chrono::NaiveDate;
use diesel::sql_types;
use diesel_async::RunQueryDsl;
use inventory::{
    db::Line,
    items,
    restock::{self, Delivery, Receipt, RestockItem},
};
use kit::{
    auth::TokenSettings,
    db::{PgConn, PgPool, StatementLog},
    testing::SubgraphDb,
};
use uuid::Uuid;

pub use kit::testing::KEYS;

pub const TTL: Duration = Duration::from_secs(900);
pub const TOKEN: &str = "test-service-token";

pub struct Stockroom {
    pub pool: PgPool,
    pub log: StatementLog,
    pub config: inventory::Config,
    database: SubgraphDb,
}

pub fn line(sku: &str, quantity: i32) -> Line {
    Line {
        sku: sku.into(),
        quantity,
    }
}

pub fn days(n: i64) -> NaiveDate {
    chrono::Utc::now().date_naive() + chrono::Duration::days(n)
}

impl Stockroom {
    pub async fn new() -> Self {
        // Contention tests run two dozen transactions at once.
        let database =
            SubgraphDb::with_connections(inventory::DB_SCHEMA, &inventory::MIGRATIONS, 24).await;
        let config = inventory::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            db: database.config.clone(),
            keys: KEYS.clone(),
            tokens: TokenSettings::default(),
            cutoffs: Default::default(),
            rpc_addr: "127.0.0.1:0".parse().unwrap(),
            rpc_token: TOKEN.into(),
            reservation_ttl: TTL,
            default_margin: "0.25".parse().unwrap(),
            sweep_interval: Duration::from_secs(1),
            events: Default::default(),
            stock_event_interval: Duration::from_millis(100),
        };
        Self {
            pool: database.pool.clone(),
            log: database.log.clone(),
            config,
            database,
        }
    }

    pub async fn conn(&self) -> PgConn<'_> {
        self.pool.get().await.expect("connection")
    }

    /// Registers `sku` and delivers `quantity` units at `cost`, expiring in `expires_in` days.
    pub async fn stock(
        &self,
        sku: &str,
        quantity: i32,
        cost: &str,
        expires_in: Option<i64>,
    ) -> Receipt {
        let mut conn = self.conn().await;
        items::upsert(&mut conn, sku, true)
            .await
            .expect("register item");
        let delivery = Delivery {
            transaction_id: Uuid::new_v4().to_string(),
            truck_id: "truck-1".into(),
            supplier_id: "farm".into(),
            items: vec![RestockItem {
                sku: sku.into(),
                quantity,
                unit_cost: cost.parse().unwrap(),
                mfd_date: None,
                expiry_date: expires_in.map(days),
            }],
        };
        restock::restock(&mut conn, &delivery)
            .await
            .expect("restock")
    }

    /// The `bigint` that the SQL expression `sql` evaluates to.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.database.scalar(sql).await
    }

    /// (on_hand, reserved, available) of `sku` as inventory reports it.
    pub async fn levels(&self, sku: &str) -> (i32, i32, i32) {
        let mut conn = self.conn().await;
        let views = inventory::stock::views(&mut conn, &[sku.to_owned()])
            .await
            .unwrap();
        let v = &views[sku];
        (v.on_hand, v.reserved, v.available())
    }

    /// Audits the books in one consistent snapshot; panics naming the first broken rule.
    pub async fn audit(&self) {
        audit(&self.pool).await
    }
}

#[derive(diesel::QueryableByName, Debug)]
struct Books {
    #[diesel(sql_type = sql_types::Text)]
    #[allow(dead_code, reason = "shown when an assertion fails")]
    sku: String,
    #[diesel(sql_type = sql_types::Int4)]
    on_hand: i32,
    #[diesel(sql_type = sql_types::Int4)]
    reserved: i32,
    #[diesel(sql_type = sql_types::BigInt)]
    batch_units: i64,
    #[diesel(sql_type = sql_types::BigInt)]
    unexpired_units: i64,
    #[diesel(sql_type = sql_types::BigInt)]
    ledger_on_hand: i64,
    #[diesel(sql_type = sql_types::BigInt)]
    ledger_reserved: i64,
    #[diesel(sql_type = sql_types::BigInt)]
    held: i64,
}

/// The invariants that must hold at every moment, read in one snapshot:
/// on-hand = Σ batch remainders = Σ ledger; reserved = Σ active holds = Σ ledger;
/// holds never exceed the unexpired units (nothing oversold).
pub async fn audit(pool: &PgPool) {
    let mut conn = pool.get().await.expect("connection");
    let books: Vec<Books> = conn
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run(async |conn| {
            diesel::sql_query(
                "SELECT i.sku, i.on_hand, i.reserved,
                    (SELECT COALESCE(SUM(remaining), 0)::int8 FROM batches b WHERE b.sku = i.sku) AS batch_units,
                    (SELECT COALESCE(SUM(remaining), 0)::int8 FROM batches b WHERE b.sku = i.sku
                        AND (b.expiry_date IS NULL OR b.expiry_date >= CURRENT_DATE)) AS unexpired_units,
                    (SELECT COALESCE(SUM(on_hand_delta), 0)::int8 FROM stock_movements m WHERE m.sku = i.sku) AS ledger_on_hand,
                    (SELECT COALESCE(SUM(reserved_delta), 0)::int8 FROM stock_movements m WHERE m.sku = i.sku) AS ledger_reserved,
                    (SELECT COALESCE(SUM(l.quantity), 0)::int8 FROM reservation_lines l
                        JOIN reservations r USING (order_id) WHERE l.sku = i.sku AND r.status = 'ACTIVE') AS held
                 FROM items i ORDER BY i.sku",
            )
            .load(conn)
            .await
        })
        .await
        .expect("audit query");
    for b in books {
        assert_eq!(
            i64::from(b.on_hand),
            b.batch_units,
            "on_hand ≠ Σ batch remainders: {b:?}"
        );
        assert_eq!(
            i64::from(b.on_hand),
            b.ledger_on_hand,
            "on_hand ≠ ledger: {b:?}"
        );
        assert_eq!(
            i64::from(b.reserved),
            b.held,
            "reserved ≠ active holds: {b:?}"
        );
        assert_eq!(
            i64::from(b.reserved),
            b.ledger_reserved,
            "reserved ≠ ledger: {b:?}"
        );
        assert!(
            i64::from(b.reserved) <= b.unexpired_units,
            "oversold: {b:?}"
        );
    }
}
