//! The internal stock API (gRPC, `schema/proto/inventory.proto`) that orders,
//! logistics and catalog call. Only callers holding the shared service token
//! get through; the gateway never routes here.

use std::{future::Future, sync::Arc, time::Duration};

use contracts::inventory::{self as pb, inventory_server::InventoryServer};
use kit::{db::PgPool, events::Relay};
use rust_decimal::Decimal;
use tonic::{Request, Response, Status, service::interceptor::InterceptedService};
use uuid::Uuid;

use crate::{
    allocation,
    db::{Line, ReservationStatus},
    error::InventoryError,
    items, pricing,
    reservations::{self, ReservationView},
    restock::{self, Delivery, RestockItem},
};

/// Settings the RPC handlers need.
#[derive(Clone, Debug)]
pub struct RpcSettings {
    /// Hold time when a caller does not say (`RESERVATION_TTL_SECS`).
    pub default_ttl: Duration,
    /// Margin of products without their own.
    pub default_margin: Decimal,
}

/// The gRPC service over the inventory database.
#[derive(Clone)]
pub struct StockService {
    pool: PgPool,
    settings: Arc<RpcSettings>,
    /// Woken after every call that may have changed stock (and written events).
    relay: Relay,
}

/// The stock service behind its token check.
pub type StockServiceChecked = InterceptedService<InventoryServer<StockService>, TokenCheck>;

/// The service wrapped in the token check, ready for a tonic server.
pub fn service(
    pool: PgPool,
    settings: RpcSettings,
    token: &str,
    relay: Relay,
) -> StockServiceChecked {
    InventoryServer::with_interceptor(
        StockService {
            pool,
            settings: Arc::new(settings),
            relay,
        },
        TokenCheck {
            expected: Arc::from(format!("Bearer {token}")),
        },
    )
}

/// Serves the stock API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: StockServiceChecked,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(kit::rpc::incoming(listener), shutdown)
        .await?;
    Ok(())
}

/// Refuses calls without `authorization: Bearer <INTERNAL_RPC_TOKEN>`.
#[derive(Clone)]
pub struct TokenCheck {
    expected: Arc<str>,
}

impl tonic::service::Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if constant_time_eq(presented.as_bytes(), self.expected.as_bytes()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("a service credential is required"))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn order_id(raw: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(raw)
        .map_err(|_| Status::invalid_argument(format!("order_id {raw:?} is not a UUID")))
}

fn lines(lines: Vec<pb::Line>) -> Vec<Line> {
    lines
        .into_iter()
        .map(|l| Line {
            sku: l.sku,
            quantity: l.quantity,
        })
        .collect()
}

fn decimal(field: &'static str, raw: &str) -> Result<Decimal, InventoryError> {
    raw.trim()
        .parse()
        .map_err(|_| InventoryError::invalid(field, format!("{raw:?} is not a decimal number")))
}

fn date(field: &'static str, raw: &str) -> Result<Option<chrono::NaiveDate>, InventoryError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map(Some)
        .map_err(|_| InventoryError::invalid(field, format!("{raw:?} is not a date (YYYY-MM-DD)")))
}

fn reservation(view: ReservationView) -> pb::Reservation {
    let status = match view.status {
        ReservationStatus::Active => pb::ReservationStatus::Active,
        ReservationStatus::Released => pb::ReservationStatus::Released,
        ReservationStatus::Expired => pb::ReservationStatus::Expired,
        ReservationStatus::Committed => pb::ReservationStatus::Committed,
        ReservationStatus::Returned => pb::ReservationStatus::Returned,
    };
    pb::Reservation {
        order_id: view.order_id.to_string(),
        status: status.into(),
        lines: view
            .lines
            .into_iter()
            .map(|l| pb::Line {
                sku: l.sku,
                quantity: l.quantity,
            })
            .collect(),
        expires_at: view.expires_at.to_rfc3339(),
        quote: None,
    }
}

fn priced_lines(priced: &pricing::Priced) -> Vec<pb::PricedLine> {
    priced
        .lines
        .iter()
        .map(|l| pb::PricedLine {
            sku: l.sku.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price.to_string(),
            line_total: l.line_total.to_string(),
            allocations: l
                .draws
                .iter()
                .map(|d| pb::Allocation {
                    batch_id: d.batch_id.to_string(),
                    quantity: d.quantity,
                    unit_cost: d.unit_cost.to_string(),
                    expiry_date: d.expiry_date.map(|e| e.to_string()).unwrap_or_default(),
                })
                .collect(),
        })
        .collect()
}

impl StockService {
    async fn conn(&self) -> Result<kit::db::PgConn<'_>, Status> {
        Ok(self.pool.get().await.map_err(InventoryError::from)?)
    }

    /// Passes `result` on; a success means events may have been committed.
    fn woke<T>(&self, result: T) -> T {
        self.relay.wake();
        result
    }
}

#[tonic::async_trait]
impl pb::inventory_server::Inventory for StockService {
    async fn reserve_stock(
        &self,
        request: Request<pb::ReserveStockRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let req = request.into_inner();
        let order_id = order_id(&req.order_id)?;
        let ttl = match req.ttl_seconds {
            0 => self.settings.default_ttl,
            secs => Duration::from_secs(u64::from(secs)),
        };
        if ttl > reservations::MAX_TTL {
            return Err(Status::invalid_argument("ttl_seconds may be at most 86400"));
        }
        let conn = self.conn().await?;
        let lines = reservations::normalize_lines(&lines(req.lines))?;
        let margin = self.settings.default_margin;
        // The quote's read is pipelined behind the reservation's statement:
        // both go out at once and PostgreSQL runs them in turn (one round
        // trip). It prices the lines asked for; a repeat that answers a
        // stored reservation of other lines is priced again below.
        let (view, quoted) = if req.with_quote {
            let (view, quoted) = tokio::join!(
                reservations::reserve(&conn, order_id, &lines, ttl),
                pricing::quote(&conn, &lines, margin, Some(order_id)),
            );
            (view?, Some(quoted))
        } else {
            (
                reservations::reserve(&conn, order_id, &lines, ttl).await?,
                None,
            )
        };
        self.relay.wake();
        // Priced like GetPrice with the order's id: its own units are its own.
        let quote = match quoted {
            Some(quoted) if view.status == ReservationStatus::Active => {
                let quoted = match view.lines == lines {
                    true => quoted,
                    false => pricing::quote(&conn, &view.lines, margin, Some(order_id)).await,
                };
                quoted
                    .inspect_err(
                        |err| tracing::warn!(%order_id, error = %err, "no quote for the reservation"),
                    )
                    .ok()
                    .map(|priced| pb::PriceQuote {
                        lines: priced_lines(&priced),
                        subtotal: priced.subtotal.to_string(),
                    })
            }
            _ => None,
        };
        Ok(Response::new(pb::Reservation {
            quote,
            ..reservation(view)
        }))
    }

    async fn adjust_reservation(
        &self,
        request: Request<pb::ReserveStockRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let req = request.into_inner();
        let order_id = order_id(&req.order_id)?;
        let view =
            reservations::adjust(&mut *self.conn().await?, order_id, &lines(req.lines)).await?;
        Ok(self.woke(Response::new(reservation(view))))
    }

    async fn release_stock(
        &self,
        request: Request<pb::OrderRef>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let order_id = order_id(&request.into_inner().order_id)?;
        let view = reservations::release(&mut *self.conn().await?, order_id).await?;
        Ok(self.woke(Response::new(reservation(view))))
    }

    async fn commit_stock(
        &self,
        request: Request<pb::OrderRef>,
    ) -> Result<Response<pb::Commitment>, Status> {
        let order_id = order_id(&request.into_inner().order_id)?;
        let priced = allocation::commit(
            &mut *self.conn().await?,
            order_id,
            self.settings.default_margin,
        )
        .await?;
        Ok(self.woke(Response::new(pb::Commitment {
            order_id: order_id.to_string(),
            lines: priced_lines(&priced),
            subtotal: priced.subtotal.to_string(),
        })))
    }

    async fn return_stock(
        &self,
        request: Request<pb::OrderRef>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let order_id = order_id(&request.into_inner().order_id)?;
        let view = allocation::return_stock(&mut *self.conn().await?, order_id).await?;
        Ok(self.woke(Response::new(reservation(view))))
    }

    async fn restock_items(
        &self,
        request: Request<pb::RestockItemsRequest>,
    ) -> Result<Response<pb::RestockReceipt>, Status> {
        let req = request.into_inner();
        let items = req
            .items
            .into_iter()
            .map(|i| {
                Ok(RestockItem {
                    unit_cost: decimal("unitCost", &i.unit_cost)?,
                    mfd_date: date("mfdDate", &i.mfd_date)?,
                    expiry_date: date("expiryDate", &i.expiry_date)?,
                    sku: i.sku,
                    quantity: i.quantity,
                })
            })
            .collect::<Result<Vec<_>, InventoryError>>()?;
        let delivery = Delivery {
            transaction_id: req.transaction_id,
            truck_id: req.truck_id,
            supplier_id: req.supplier_id,
            items,
        };
        let receipt = restock::restock(&mut *self.conn().await?, &delivery).await?;
        Ok(self.woke(Response::new(pb::RestockReceipt {
            transaction_id: receipt.transaction_id,
            batch_ids: receipt.batch_ids.iter().map(Uuid::to_string).collect(),
            units: receipt.units,
        })))
    }

    async fn get_price(
        &self,
        request: Request<pb::GetPriceRequest>,
    ) -> Result<Response<pb::PriceQuote>, Status> {
        let req = request.into_inner();
        let own_order = match req.order_id.trim() {
            "" => None,
            raw => Some(order_id(raw)?),
        };
        let lines = reservations::normalize_lines(&lines(req.lines))?;
        let priced = pricing::quote(
            &*self.conn().await?,
            &lines,
            self.settings.default_margin,
            own_order,
        )
        .await?;
        Ok(Response::new(pb::PriceQuote {
            lines: priced_lines(&priced),
            subtotal: priced.subtotal.to_string(),
        }))
    }

    async fn upsert_item(
        &self,
        request: Request<pb::UpsertItemRequest>,
    ) -> Result<Response<pb::Item>, Status> {
        let req = request.into_inner();
        let (sku, active) = items::upsert(&mut *self.conn().await?, &req.sku, req.active).await?;
        Ok(Response::new(pb::Item { sku, active }))
    }

    async fn retire_item(
        &self,
        request: Request<pb::ItemRef>,
    ) -> Result<Response<pb::RetireItemResponse>, Status> {
        let sku = request.into_inner().sku;
        let deleted = items::retire(&mut *self.conn().await?, &sku).await?;
        Ok(Response::new(pb::RetireItemResponse {
            sku: items::normalize_sku(&sku)?,
            deleted,
        }))
    }
}
