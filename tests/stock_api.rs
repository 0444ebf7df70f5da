//! Catalog and inventory together, each on its own database, talking over the
//! real gRPC stock API: products catalog creates become stockable, and a
//! product with stock history is deactivated instead of deleted.

use std::{sync::Arc, time::Duration};

use catalog::GrpcStockRegistry;
use inventory::restock::{Delivery, RestockItem};
use kit::{
    auth::{Role, TokenSettings},
    testing::{KEYS, SubgraphDb, TestClient, assert_no_errors, code, serve, token},
};
use serde_json::json;

const TOKEN: &str = "stock-api-test-token";

struct Stack {
    catalog: TestClient,
    inventory: TestClient,
    /// The same routers served over HTTP on loopback (catalog, inventory).
    urls: (String, String),
    inventory_pool: kit::db::PgPool,
    admin: String,
    _dbs: (SubgraphDb, SubgraphDb),
}

async fn stack(inventory_up: bool) -> Stack {
    let inventory_db = SubgraphDb::new(inventory::DB_SCHEMA, &inventory::MIGRATIONS).await;
    let catalog_db = SubgraphDb::new(catalog::DB_SCHEMA, &catalog::MIGRATIONS).await;
    let inventory_cfg = inventory::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        db: inventory_db.config.clone(),
        keys: KEYS.clone(),
        tokens: TokenSettings::default(),
        cutoffs: Default::default(),
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        rpc_token: TOKEN.into(),
        reservation_ttl: Duration::from_secs(900),
        default_margin: "0.25".parse().unwrap(),
        sweep_interval: Duration::from_secs(5),
        events: Default::default(),
        stock_event_interval: Duration::from_millis(100),
    };
    let inventory_pool = inventory_db.pool.clone();
    let parts = inventory::build(&inventory_cfg, inventory_pool.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rpc_url = format!("http://{}", listener.local_addr().unwrap());
    if inventory_up {
        tokio::spawn(inventory::rpc::serve(
            listener,
            parts.rpc,
            std::future::pending(),
        ));
    } else {
        drop(listener); // nothing answers at rpc_url
    }
    let catalog_cfg = catalog::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        db: catalog_db.config.clone(),
        keys: KEYS.clone(),
        tokens: TokenSettings::default(),
        cutoffs: Default::default(),
        inventory_rpc_url: rpc_url.clone(),
        rpc_token: TOKEN.into(),
        events: Default::default(),
    };
    let registry = Arc::new(GrpcStockRegistry::connect_lazy(&rpc_url, TOKEN).unwrap());
    let catalog_router =
        catalog::router_with(&catalog_cfg, catalog_db.pool.clone(), registry).unwrap();
    let urls = (
        format!("{}/graphql", serve(catalog_router.clone()).await),
        format!("{}/graphql", serve(parts.router.clone()).await),
    );
    Stack {
        catalog: TestClient::new(catalog_router),
        inventory: TestClient::new(parts.router),
        urls,
        inventory_pool,
        admin: token(Role::Admin),
        _dbs: (inventory_db, catalog_db),
    }
}

/// Eight pears at 0.50, fresh for nine days, delivered under `transaction_id`.
async fn deliver_pears(conn: &mut diesel_async::AsyncPgConnection, transaction_id: &str) {
    let delivery = Delivery {
        transaction_id: transaction_id.into(),
        truck_id: "truck-1".into(),
        supplier_id: "orchard".into(),
        items: vec![RestockItem {
            sku: "PEAR".into(),
            quantity: 8,
            unit_cost: "0.50".parse().unwrap(),
            mfd_date: None,
            expiry_date: Some(chrono::Utc::now().date_naive() + chrono::Duration::days(9)),
        }],
    };
    inventory::restock::restock(conn, &delivery).await.unwrap();
}

const CREATE: &str = "mutation($sku: String!, $name: String!) { createProduct(input: { sku: $sku, name: $name }) { sku active } }";
const DELETE: &str =
    "mutation($sku: String!) { deleteProduct(sku: $sku) { sku deleted product { active } } }";
const STOCK: &str =
    "query($sku: String!) { _entities(representations: [{ __typename: \"Product\", sku: $sku }]) {
    ... on Product { stock { onHand available } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_created_in_catalog_become_stockable_and_history_decides_deletion() {
    let s = stack(true).await;
    for (sku, name) in [("pear", "Conference Pears"), ("FIG", "Black Figs")] {
        let resp = s
            .catalog
            .gql(Some(&s.admin), CREATE, json!({ "sku": sku, "name": name }))
            .await;
        assert_no_errors(&resp);
    }
    // Inventory knows PEAR now: a delivery of it is accepted.
    let mut conn = s.inventory_pool.get().await.unwrap();
    deliver_pears(&mut conn, "truck-1-0001").await;
    drop(conn);
    let stock = s.inventory.gql(None, STOCK, json!({ "sku": "PEAR" })).await;
    assert_eq!(
        stock["data"]["_entities"][0]["stock"],
        json!({ "onHand": 8, "available": 8 })
    );

    // FIG never moved stock: it is deleted in both subgraphs.
    let fig = s
        .catalog
        .gql(Some(&s.admin), DELETE, json!({ "sku": "FIG" }))
        .await;
    assert_eq!(fig["data"]["deleteProduct"]["deleted"], true, "{fig}");
    // PEAR has history: deactivated in catalog, no longer sellable in inventory.
    let pear = s
        .catalog
        .gql(Some(&s.admin), DELETE, json!({ "sku": "PEAR" }))
        .await;
    assert_eq!(
        pear["data"]["deleteProduct"],
        json!({ "sku": "PEAR", "deleted": false, "product": { "active": false } })
    );
    let conn = s.inventory_pool.get().await.unwrap();
    let refused = inventory::reservations::reserve(
        &conn,
        uuid::Uuid::new_v4(),
        &[inventory::db::Line {
            sku: "PEAR".into(),
            quantity: 1,
        }],
        Duration::from_secs(60),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(inventory::error::InventoryError::InactiveSku(_))
        ),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_is_not_created_while_inventory_is_unreachable() {
    let s = stack(false).await;
    let resp = s
        .catalog
        .gql(
            Some(&s.admin),
            CREATE,
            json!({ "sku": "PEAR", "name": "Pears" }),
        )
        .await;
    // Inventory did not answer: retry later; its address stays in the log.
    assert_eq!(code(&resp), "SERVICE_UNAVAILABLE");
    assert_eq!(
        resp["errors"][0]["message"],
        kit::error::DEPENDENCY_DOWN,
        "{resp:#}"
    );
    let product = s
        .catalog
        .gql(None, "{ product(sku: \"PEAR\") { sku } }", json!({}))
        .await;
    assert_eq!(
        product["data"]["product"],
        serde_json::Value::Null,
        "nothing half-written"
    );
}

/// The gateway's planner and executor over the two real subgraphs.
async fn federated(
    catalog_url: &str,
    inventory_url: &str,
    query: &str,
) -> (serde_json::Value, Vec<serde_json::Value>) {
    let sdl = gateway::compose(&[
        gateway::SubgraphSource {
            name: "catalog".into(),
            url: catalog_url.into(),
            sdl: catalog::sdl(),
        },
        gateway::SubgraphSource {
            name: "inventory".into(),
            url: inventory_url.into(),
            sdl: inventory::sdl(),
        },
    ])
    .unwrap();
    let supergraph = gateway::Supergraph::load(&sdl).unwrap();
    let prepared = supergraph.plan(query, None).unwrap();
    let urls = supergraph
        .subgraphs()
        .iter()
        .map(|(name, url)| (name.clone(), url.parse().unwrap()))
        .collect();
    let subgraphs = gateway::subgraph::Subgraphs::new(
        urls,
        gateway::subgraph::SubgraphClient::new(Duration::from_secs(5)),
        Default::default(),
    );
    let variables = Default::default();
    let result = gateway::execution::execute(
        &prepared.plan,
        &subgraphs,
        supergraph.shapes(),
        &variables,
        &Default::default(),
        None,
    )
    .await;
    let data = gateway::execution::projection::project(
        &result.data,
        &prepared.operation,
        supergraph.shapes(),
        &variables,
    )
    .data;
    (data, result.errors)
}

const PRODUCTS_WITH_STOCK: &str =
    "{ products(first: 10) { edges { node { sku name stock { available } unitPrice } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_executor_merges_inventory_fields_into_catalog_products() {
    let s = stack(true).await;
    for (sku, name) in [("PEAR", "Conference Pears"), ("FIG", "Black Figs")] {
        assert_no_errors(
            &s.catalog
                .gql(Some(&s.admin), CREATE, json!({ "sku": sku, "name": name }))
                .await,
        );
    }
    let mut conn = s.inventory_pool.get().await.unwrap();
    deliver_pears(&mut conn, "truck-1-0002").await;
    drop(conn);

    let (data, errors) = federated(&s.urls.0, &s.urls.1, PRODUCTS_WITH_STOCK).await;
    assert!(errors.is_empty(), "{errors:#?}");
    let nodes: Vec<_> = data["products"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    let by_sku = |sku: &str| nodes.iter().find(|n| n["sku"] == sku).cloned().unwrap();
    assert_eq!(by_sku("PEAR")["stock"], json!({ "available": 8 }));
    assert_eq!(
        by_sku("PEAR")["unitPrice"],
        "0.63",
        "0.50 × 1.25 = 0.625, half-up"
    );
    assert_eq!(by_sku("FIG")["stock"], json!({ "available": 0 }));
    assert_eq!(by_sku("FIG")["unitPrice"], serde_json::Value::Null);
    assert_eq!(by_sku("FIG")["name"], "Black Figs");
    // Shaped for the client: exactly the fields asked for, under their aliases.
    let (aliased, _) = federated(
        &s.urls.0,
        &s.urls.1,
        "{ products(first: 1) { edges { node { id: sku stock { free: available } } } } }",
    )
    .await;
    assert_eq!(
        aliased,
        json!({ "products": { "edges": [{ "node": { "id": "FIG", "stock": { "free": 0 } } }] } })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_subgraph_leaves_partial_data_and_errors_at_the_right_paths() {
    let s = stack(true).await;
    assert_no_errors(
        &s.catalog
            .gql(
                Some(&s.admin),
                CREATE,
                json!({ "sku": "PEAR", "name": "Pears" }),
            )
            .await,
    );
    let dead = format!(
        "http://{}/graphql",
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
    );
    // unitPrice is nullable, stock is not: without inventory the node keeps
    // catalog's fields in the first query and is nulled in the second.
    let (data, _) = federated(
        &s.urls.0,
        &dead,
        "{ products { edges { node { name unitPrice } } } }",
    )
    .await;
    assert_eq!(
        data["products"]["edges"][0]["node"],
        json!({ "name": "Pears", "unitPrice": null })
    );
    let (data, errors) = federated(&s.urls.0, &dead, PRODUCTS_WITH_STOCK).await;
    assert_eq!(
        data["products"]["edges"][0]["node"],
        serde_json::Value::Null
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let error = &errors[0];
    assert_eq!(error["extensions"]["serviceName"], "inventory");
    assert_eq!(error["extensions"]["code"], "SUBGRAPH_ERROR");
    assert_eq!(error["path"], json!(["products", "edges", 0, "node"]));
}
