//! The demo data: accounts `admin` (ADMIN), `truck-1` (TRUCK) and `partner-1`
//! (PARTNER), and ten products with stocked batches. `grocery dev` seeds it
//! as it starts each component; `grocery seed` seeds it into databases that
//! `dev` does not run (the Kubernetes dev overlay's Job). Seeding is
//! idempotent, and `serve` never seeds.

use std::time::{Duration, Instant};

use anyhow::Context;
use kit::{config::Env, db::DbConfig};

use crate::components::Subgraph;

/// The components with demo data, in the order they are seeded: catalog
/// registers its products with inventory, whose batches it then sells.
const SEEDED: [Subgraph; 3] = [Subgraph::Users, Subgraph::Inventory, Subgraph::Catalog];

/// How long `grocery seed` waits for inventory's stock API, which may come
/// up after the seeding Job starts.
const STOCK_API_PATIENCE: Duration = Duration::from_secs(300);

/// Inventory's stock API, through which catalog registers its products.
pub struct StockApi {
    pub url: String,
    pub token: String,
}

/// Seeds one component's demo data into `db`; accounts get `password`, and
/// catalog needs `stock_api`.
pub async fn demo(
    component: Subgraph,
    db: &DbConfig,
    stock_api: Option<&StockApi>,
    password: &str,
) -> anyhow::Result<()> {
    match component {
        Subgraph::Users => users::seed_demo(db, password).await,
        Subgraph::Inventory => {
            let pool = kit::db::pool(&DbConfig {
                max_connections: 2,
                ..db.clone()
            })
            .await?;
            inventory::seed_demo(&pool).await
        }
        Subgraph::Catalog => {
            let api = stock_api.context("catalog's demo products need inventory's stock API")?;
            let registry = catalog::GrpcStockRegistry::connect_lazy(&api.url, &api.token)?;
            catalog::seed_demo(db, &registry).await
        }
        Subgraph::Orders | Subgraph::Logistics => Ok(()),
    }
}

/// `grocery seed`: `GROCERY_DEMO_PASSWORD` (required: no well-known password
/// lands anywhere by default), each seeded subgraph's database as `serve`
/// reads it, and inventory's stock API (`INVENTORY_RPC_URL`,
/// `INTERNAL_RPC_TOKEN`), waited for up to five minutes.
pub async fn run() -> anyhow::Result<()> {
    let mut env = Env::new();
    let password = env.required("GROCERY_DEMO_PASSWORD");
    let databases: Vec<_> = SEEDED
        .iter()
        .map(|c| (*c, DbConfig::from_env(&mut env, c.name())))
        .collect();
    let stock_api = StockApi {
        url: env
            .get("INVENTORY_RPC_URL")
            .unwrap_or_else(|| catalog::DEFAULT_INVENTORY_RPC_URL.into()),
        token: env.required("INTERNAL_RPC_TOKEN"),
    };
    env.finish()?;
    for (component, db) in &databases {
        let deadline = Instant::now() + STOCK_API_PATIENCE;
        loop {
            match demo(*component, db, Some(&stock_api), &password).await {
                Ok(()) => break,
                Err(err) if *component == Subgraph::Catalog && Instant::now() < deadline => {
                    tracing::info!(
                        error = %format!("{err:#}"),
                        "the demo products wait for inventory's stock API"
                    );
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(err) => return Err(err.context(format!("seeding {}", component.name()))),
            }
        }
        println!("seeded {}", component.name());
    }
    Ok(())
}
