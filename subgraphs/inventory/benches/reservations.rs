//! Reservation throughput and latency under contention, on real PostgreSQL.
//!
//! A fresh database (cloned from kit's migrated template) serves four
//! scenarios, each driven by `--concurrency` tasks for `--seconds`:
//!
//! - `A hot-sku`: every call reserves 1 unit of one SKU, so all calls queue on
//!   that item's row lock: the worst case of `reservations::reserve`.
//! - `B spread`: 1 unit of one of 1,000 SKUs at random; the locks rarely meet.
//! - `C hot-sku-grpc`: `A` through the real stock service (`ReserveStock` on
//!   loopback), adding tonic, HTTP/2 and the token check.
//! - `D finite-1000`: one SKU with exactly 1,000 units; tasks reserve until
//!   refused. Exactly 1,000 must succeed, however the calls interleave.
//!
//! After each scenario the oversell check compares every item's counters with
//! the rows they summarise and panics naming the first SKU that disagrees.
//! Latency covers the pool checkout (and, for `C`, the round trip).
//!
//! Run: `cargo bench -p grocery-inventory --bench reservations [-- --seconds 10 --concurrency 32]`
//! against `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::{
    future::Future,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use contracts::inventory::{self as pb, inventory_client::InventoryClient};
use diesel::{
    QueryableByName,
    sql_types::{BigInt, Int4, Text},
};
use diesel_async::RunQueryDsl;
use inventory::{
    db::Line,
    error::InventoryError,
    items, reservations,
    restock::{self, Delivery, RestockItem},
    rpc::{self, RpcSettings},
};
use kit::{
    db::{DbConfig, PgPool},
    testing::TestDatabase,
};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use rust_decimal::Decimal;
use tonic::{
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};
use uuid::Uuid;

const TTL: Duration = Duration::from_secs(15 * 60);
const TOKEN: &str = "bench-token";
/// The most units `restock::validate` accepts in one item of a delivery.
const MAX_BATCH: i32 = 1_000_000;
const FINITE_UNITS: u64 = 1_000;
/// How long `D` may take to sell out before it counts as stuck.
const FINITE_LIMIT: Duration = Duration::from_secs(120);

/// What one reservation attempt came to.
enum Step {
    Reserved,
    Refused,
    Failed(String),
}

/// What a scenario's tasks did.
#[derive(Default)]
struct Tally {
    reserved: u64,
    refused: u64,
    failed: u64,
    first_failure: Option<String>,
    latencies_us: Vec<u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.reserved += other.reserved;
        self.refused += other.refused;
        self.failed += other.failed;
        self.first_failure = self.first_failure.take().or(other.first_failure);
        self.latencies_us.extend(other.latencies_us);
    }
}

/// Runs `call` in a loop on `concurrency` tasks until `limit` passes; a task
/// stops at its first refusal. `call` gets a per-task deterministic random
/// draw. Latencies come back sorted.
async fn drive<F, Fut>(concurrency: usize, limit: Duration, call: F) -> (Tally, Duration)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Step> + Send,
{
    let start = Instant::now();
    let deadline = start + limit;
    let tasks = (0..concurrency).map(|task| {
        let call = call.clone();
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(task as u64);
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let began = Instant::now();
                let step = call(rng.next_u64()).await;
                tally.latencies_us.push(began.elapsed().as_micros() as u64);
                match step {
                    Step::Reserved => tally.reserved += 1,
                    Step::Refused => {
                        tally.refused += 1;
                        break;
                    }
                    Step::Failed(why) => {
                        tally.failed += 1;
                        tally.first_failure.get_or_insert(why);
                    }
                }
            }
            tally
        })
    });
    let mut total = Tally::default();
    for tally in futures::future::join_all(tasks).await {
        total.merge(tally.expect("a bench task panicked"));
    }
    let elapsed = start.elapsed();
    total.latencies_us.sort_unstable();
    (total, elapsed)
}

async fn reserve_direct(pool: PgPool, sku: String) -> Step {
    let reserved = async {
        let conn = pool.get().await?;
        reservations::reserve(&conn, Uuid::new_v4(), &[Line { sku, quantity: 1 }], TTL).await
    };
    match reserved.await {
        Ok(_) => Step::Reserved,
        Err(InventoryError::Shortfall(_)) => Step::Refused,
        Err(e) => Step::Failed(e.to_string()),
    }
}

async fn reserve_grpc(
    mut client: InventoryClient<Channel>,
    auth: MetadataValue<Ascii>,
    sku: String,
) -> Step {
    let mut request = tonic::Request::new(pb::ReserveStockRequest {
        order_id: Uuid::new_v4().to_string(),
        lines: vec![pb::Line { sku, quantity: 1 }],
        ttl_seconds: 0,
        with_quote: false,
    });
    request.metadata_mut().insert("authorization", auth);
    match client.reserve_stock(request).await {
        Ok(_) => Step::Reserved,
        Err(status) if status.code() == tonic::Code::FailedPrecondition => Step::Refused,
        Err(status) => Step::Failed(status.to_string()),
    }
}

/// Registers `skus` and delivers `units` of each, in as few deliveries as allowed.
async fn stock(pool: &PgPool, skus: &[String], units: i32) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let mut lots = Vec::new();
    for sku in skus {
        items::upsert(&mut conn, sku, true).await?;
        let mut left = units;
        while left > 0 {
            let quantity = left.min(MAX_BATCH);
            lots.push(RestockItem {
                sku: sku.clone(),
                quantity,
                unit_cost: Decimal::ONE,
                mfd_date: None,
                expiry_date: None,
            });
            left -= quantity;
        }
    }
    for lot in lots.chunks(restock::MAX_ITEMS) {
        let delivery = Delivery {
            transaction_id: Uuid::new_v4().to_string(),
            truck_id: "bench".into(),
            supplier_id: "bench".into(),
            items: lot.to_vec(),
        };
        restock::restock(&mut conn, &delivery).await?;
    }
    Ok(())
}

/// One item's counters beside the rows they must equal.
#[derive(QueryableByName, Debug)]
struct Audit {
    #[diesel(sql_type = Text)]
    sku: String,
    #[diesel(sql_type = Int4)]
    on_hand: i32,
    #[diesel(sql_type = Int4)]
    reserved: i32,
    #[diesel(sql_type = BigInt)]
    held_by_active: i64,
    #[diesel(sql_type = BigInt)]
    in_batches: i64,
    #[diesel(sql_type = BigInt)]
    ledger_on_hand: i64,
    #[diesel(sql_type = BigInt)]
    ledger_reserved: i64,
}

const AUDIT: &str = "
    WITH held AS (SELECT l.sku, SUM(l.quantity) AS n FROM reservation_lines l
                  JOIN reservations r ON r.order_id = l.order_id
                  WHERE r.status = 'ACTIVE' GROUP BY l.sku),
         stocked AS (SELECT sku, SUM(remaining) AS n FROM batches GROUP BY sku),
         ledger AS (SELECT sku, SUM(on_hand_delta) AS on_hand, SUM(reserved_delta) AS reserved
                    FROM stock_movements GROUP BY sku)
    SELECT i.sku, i.on_hand, i.reserved,
           COALESCE(held.n, 0) AS held_by_active, COALESCE(stocked.n, 0) AS in_batches,
           COALESCE(ledger.on_hand, 0) AS ledger_on_hand, COALESCE(ledger.reserved, 0) AS ledger_reserved
    FROM items i
    LEFT JOIN held ON held.sku = i.sku
    LEFT JOIN stocked ON stocked.sku = i.sku
    LEFT JOIN ledger ON ledger.sku = i.sku
    ORDER BY i.sku";

/// Panics naming the first SKU whose counters disagree with its rows.
async fn oversell_check(pool: &PgPool, label: &str) -> anyhow::Result<()> {
    let rows: Vec<Audit> = diesel::sql_query(AUDIT)
        .load(&mut *pool.get().await?)
        .await?;
    for row in &rows {
        let (on_hand, reserved) = (i64::from(row.on_hand), i64::from(row.reserved));
        let consistent = reserved <= on_hand
            && reserved == row.held_by_active
            && reserved == row.ledger_reserved
            && on_hand == row.in_batches
            && on_hand == row.ledger_on_hand;
        assert!(
            consistent,
            "oversell check failed for SKU {}: {row:?}",
            row.sku
        );
    }
    println!("{label}: oversell check: ok ({} SKUs)", rows.len());
    Ok(())
}

/// A finished scenario, audited.
struct Report {
    name: &'static str,
    tally: Tally,
    elapsed: Duration,
}

async fn audited(
    name: &'static str,
    (tally, elapsed): (Tally, Duration),
    pool: &PgPool,
) -> anyhow::Result<Report> {
    if let Some(why) = &tally.first_failure {
        eprintln!("{name}: first error: {why}");
    }
    oversell_check(pool, name).await?;
    Ok(Report {
        name,
        tally,
        elapsed,
    })
}

fn print_table(reports: &[Report], cores: usize, concurrency: usize) {
    println!("\ncores {cores}, concurrency {concurrency}");
    println!(
        "{:<16}{:>8}{:>8}{:>8}{:>7}{:>9}{:>8}{:>8}{:>8}{:>8}",
        "scenario",
        "ops",
        "ok",
        "refused",
        "errors",
        "res/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms"
    );
    for r in reports {
        let lat = &r.tally.latencies_us;
        let ms = |p: f64| match lat.len() {
            0 => 0.0,
            n => lat[((p * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0,
        };
        let t = &r.tally;
        println!(
            "{:<16}{:>8}{:>8}{:>8}{:>7}{:>9.0}{:>8.2}{:>8.2}{:>8.2}{:>8.2}",
            r.name,
            lat.len(),
            t.reserved,
            t.refused,
            t.failed,
            t.reserved as f64 / r.elapsed.as_secs_f64(),
            ms(0.50),
            ms(0.95),
            ms(0.99),
            ms(1.0),
        );
    }
}

/// `--seconds N --concurrency C`; anything else (cargo adds `--bench`) is ignored.
fn settings() -> anyhow::Result<(Duration, usize)> {
    let (mut seconds, mut concurrency) = (10u64, 32usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().context("--seconds needs a value")?.parse()?,
            "--concurrency" => {
                concurrency = args
                    .next()
                    .context("--concurrency needs a value")?
                    .parse()?
            }
            _ => {}
        }
    }
    anyhow::ensure!(
        seconds > 0 && concurrency > 0,
        "--seconds and --concurrency must be at least 1"
    );
    Ok((Duration::from_secs(seconds), concurrency))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (duration, concurrency) = settings()?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/inventory");
    let db = TestDatabase::new(inventory::DB_SCHEMA, &inventory::MIGRATIONS, &migrations).await;
    let pool = kit::db::pool(&DbConfig {
        max_connections: concurrency as u32 + 4,
        ..db.config.clone()
    })
    .await?;
    // Open the connections up front so no scenario pays for connecting.
    drop(futures::future::try_join_all((0..concurrency).map(|_| pool.get())).await?);

    let hot = "HOT".to_owned();
    let spread: Arc<[String]> = (0..1_000).map(|i| format!("SPREAD-{i:04}")).collect();
    let finite = "FINITE".to_owned();
    stock(&pool, std::slice::from_ref(&hot), 5 * MAX_BATCH).await?;
    stock(&pool, &spread, 100_000).await?;
    stock(&pool, std::slice::from_ref(&finite), FINITE_UNITS as i32).await?;
    oversell_check(&pool, "setup").await?;
    let mut reports = Vec::new();

    let (p, sku) = (pool.clone(), hot.clone());
    let run = drive(concurrency, duration, move |_| {
        reserve_direct(p.clone(), sku.clone())
    })
    .await;
    reports.push(audited("A hot-sku", run, &pool).await?);

    let (p, skus) = (pool.clone(), spread.clone());
    let run = drive(concurrency, duration, move |draw| {
        reserve_direct(p.clone(), skus[draw as usize % skus.len()].clone())
    })
    .await;
    reports.push(audited("B spread", run, &pool).await?);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let settings = RpcSettings {
        default_ttl: TTL,
        default_margin: Decimal::new(25, 2),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rpc::serve(
        listener,
        rpc::service(
            pool.clone(),
            settings,
            TOKEN,
            kit::events::Relay::new(
                pool.clone(),
                kit::events::Bus::in_process(),
                inventory::DB_SCHEMA,
            ),
        ),
        async {
            stopped.await.ok();
        },
    ));
    let client = InventoryClient::connect(url).await?;
    let auth: MetadataValue<_> = format!("Bearer {TOKEN}").parse()?;
    let run = drive(concurrency, duration, move |_| {
        reserve_grpc(client.clone(), auth.clone(), hot.clone())
    })
    .await;
    stop.send(()).ok();
    server.await??;
    reports.push(audited("C hot-sku-grpc", run, &pool).await?);

    let p = pool.clone();
    let run = drive(concurrency, FINITE_LIMIT, move |_| {
        reserve_direct(p.clone(), finite.clone())
    })
    .await;
    let report = audited("D finite-1000", run, &pool).await?;
    assert_eq!(
        report.tally.reserved, FINITE_UNITS,
        "D must sell exactly its {FINITE_UNITS} units"
    );
    reports.push(report);

    print_table(&reports, cores, concurrency);
    Ok(())
}
