//! `GrpcStockRegistry` against a fake inventory server on a loopback port:
//! the wire format, the bearer token and failures. Inventory itself is tested
//! with the catalog end-to-end elsewhere.

use std::sync::{Arc, Mutex};

use catalog::{GrpcStockRegistry, StockRegistry};
use contracts::inventory::{
    self as pb,
    inventory_server::{Inventory, InventoryServer},
};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status, transport::server::TcpIncoming};

const TOKEN: &str = "s3cret-rpc-token";

/// Answers the two catalog RPCs, refusing callers without the token; SKUs
/// starting with `OLD` have stock history, `DOWN` makes it fail.
#[derive(Default, Clone)]
struct FakeInventory {
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeInventory {
    fn check<T>(&self, request: &Request<T>, call: String) -> Result<(), Status> {
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {TOKEN}")) {
            return Err(Status::unauthenticated("bad internal token"));
        }
        self.seen.lock().unwrap().push(call);
        Ok(())
    }
}

fn refuse<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not used by the catalog"))
}

#[tonic::async_trait]
impl Inventory for FakeInventory {
    async fn upsert_item(
        &self,
        request: Request<pb::UpsertItemRequest>,
    ) -> Result<Response<pb::Item>, Status> {
        let msg = request.get_ref().clone();
        self.check(&request, format!("upsert {} {}", msg.sku, msg.active))?;
        if msg.sku.starts_with("DOWN") {
            return Err(Status::unavailable("database is down"));
        }
        Ok(Response::new(pb::Item {
            sku: msg.sku,
            active: msg.active,
        }))
    }

    async fn retire_item(
        &self,
        request: Request<pb::ItemRef>,
    ) -> Result<Response<pb::RetireItemResponse>, Status> {
        let sku = request.get_ref().sku.clone();
        self.check(&request, format!("retire {sku}"))?;
        Ok(Response::new(pb::RetireItemResponse {
            deleted: !sku.starts_with("OLD"),
            sku,
        }))
    }

    async fn reserve_stock(
        &self,
        _: Request<pb::ReserveStockRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        refuse()
    }

    async fn adjust_reservation(
        &self,
        _: Request<pb::ReserveStockRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        refuse()
    }

    async fn release_stock(
        &self,
        _: Request<pb::OrderRef>,
    ) -> Result<Response<pb::Reservation>, Status> {
        refuse()
    }

    async fn commit_stock(
        &self,
        _: Request<pb::OrderRef>,
    ) -> Result<Response<pb::Commitment>, Status> {
        refuse()
    }

    async fn return_stock(
        &self,
        _: Request<pb::OrderRef>,
    ) -> Result<Response<pb::Reservation>, Status> {
        refuse()
    }

    async fn restock_items(
        &self,
        _: Request<pb::RestockItemsRequest>,
    ) -> Result<Response<pb::RestockReceipt>, Status> {
        refuse()
    }

    async fn get_price(
        &self,
        _: Request<pb::GetPriceRequest>,
    ) -> Result<Response<pb::PriceQuote>, Status> {
        refuse()
    }
}

/// Serves `inventory` on a free loopback port; returns its URL.
async fn serve(inventory: FakeInventory) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(InventoryServer::new(inventory))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    url
}

#[tokio::test]
async fn the_grpc_registry_speaks_inventorys_contract_with_the_token() {
    let inventory = FakeInventory::default();
    let url = serve(inventory.clone()).await;
    let registry = GrpcStockRegistry::connect_lazy(&url, TOKEN).unwrap();

    registry.upsert("APPLE", true).await.unwrap();
    registry.upsert("APPLE", false).await.unwrap();
    assert!(
        registry.retire("APPLE").await.unwrap(),
        "no history: forgotten"
    );
    assert!(
        !registry.retire("OLD-MILK").await.unwrap(),
        "history: deactivated"
    );
    let failure = registry.upsert("DOWN-1", true).await.unwrap_err();
    assert!(
        format!("{failure:#}").contains("database is down"),
        "{failure:#}"
    );
    assert_eq!(
        *inventory.seen.lock().unwrap(),
        [
            "upsert APPLE true",
            "upsert APPLE false",
            "retire APPLE",
            "retire OLD-MILK",
            "upsert DOWN-1 true"
        ]
    );

    let wrong_token = GrpcStockRegistry::connect_lazy(&url, "guess").unwrap();
    let refused = wrong_token.upsert("APPLE", true).await.unwrap_err();
    assert!(
        format!("{refused:#}").contains("bad internal token"),
        "{refused:#}"
    );
}

#[tokio::test]
async fn an_unreachable_inventory_is_an_error_not_a_hang() {
    // Bound and dropped: nothing listens there any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let registry =
        GrpcStockRegistry::connect_lazy(&format!("http://127.0.0.1:{port}"), TOKEN).unwrap();
    let started = std::time::Instant::now();
    assert!(registry.upsert("APPLE", true).await.is_err());
    assert!(started.elapsed() < catalog::registry::RPC_TIMEOUT * 2);
    assert!(GrpcStockRegistry::connect_lazy("not a url", TOKEN).is_err());
}
