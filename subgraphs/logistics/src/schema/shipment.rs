//! Shipments in GraphQL: `Shipment`, `Order.shipment` (the current one),
//! `Order.shipments` (every delivery attempt), `shipment(trackingId)` and the
//! trucks' `updateShipmentStatus`.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Context, ID, Object, SimpleObject,
    dataloader::{DataLoader, Loader},
};
use chrono::{DateTime, Utc};
use kit::{
    ApiError, ApiResult,
    auth::{AuthExt, Role},
    db::PgPool,
};
use uuid::Uuid;

use crate::{
    LogisticsState, db,
    shipments::{self, ShipmentStatus},
};

fn state<'a>(ctx: &'a Context<'_>) -> &'a LogisticsState {
    ctx.data_unchecked::<Arc<LogisticsState>>()
}

fn parse_id(field: &str, id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_input(field, format!("{:?} is not a valid id", id.as_str())))
}

/// A shipment the caller may see, else `None` (others learn nothing about it).
fn visible(ctx: &Context<'_>, shipment: Option<db::Shipment>) -> Option<Shipment> {
    let claims = ctx.auth().claims().ok()?;
    shipment
        .filter(|s| shipments::visible_to(s, claims))
        .map(Shipment)
}

/// Batches `Order.shipment` lookups of a request into one query.
pub struct ShipmentsByOrder(pub PgPool);

impl Loader<Uuid> for ShipmentsByOrder {
    type Value = db::Shipment;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, db::Shipment>, ApiError> {
        let mut conn = self.0.get().await?;
        Ok(shipments::by_orders(&mut conn, keys)
            .await?
            .into_iter()
            .map(|s| (s.order_id, s))
            .collect())
    }
}

/// Batches `Order.shipments` lookups of a request into one query.
pub struct AllShipmentsByOrder(pub PgPool);

impl Loader<Uuid> for AllShipmentsByOrder {
    type Value = Vec<db::Shipment>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<db::Shipment>>, ApiError> {
        let mut conn = self.0.get().await?;
        let mut by_order: HashMap<Uuid, Vec<db::Shipment>> = HashMap::new();
        for shipment in shipments::all_by_orders(&mut conn, keys).await? {
            by_order
                .entry(shipment.order_id)
                .or_default()
                .push(shipment);
        }
        Ok(by_order)
    }
}

/// Goods on their way to a customer.
pub struct Shipment(pub db::Shipment);

#[Object]
impl Shipment {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What the customer and the carrier quote, e.g. `GRT-7K2M9Q4XZP`.
    async fn tracking_id(&self) -> &str {
        &self.0.tracking_id
    }

    async fn carrier(&self) -> &str {
        &self.0.carrier
    }

    async fn status(&self) -> ShipmentStatus {
        self.0.status
    }

    /// Which delivery of its order this is: 1, then one more per reship after a failed delivery.
    async fn attempt(&self) -> i32 {
        self.0.attempt
    }

    /// The order it carries (owned by the orders subgraph).
    async fn order(&self) -> Order {
        Order {
            id: self.0.order_id,
        }
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Every status it had, oldest first.
    async fn status_history(&self, ctx: &Context<'_>) -> ApiResult<Vec<ShipmentStatusChange>> {
        let mut conn = state(ctx).pool.get().await?;
        shipments::history_of(&mut conn, self.0.id)
            .await?
            .into_iter()
            .map(|c| {
                Ok(ShipmentStatusChange {
                    previous_status: c
                        .from
                        .map(ShipmentStatus::try_from)
                        .transpose()
                        .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?,
                    status: ShipmentStatus::try_from(c.to)
                        .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?,
                    at: c.at,
                })
            })
            .collect()
    }
}

/// One change of a shipment's status.
#[derive(SimpleObject)]
pub struct ShipmentStatusChange {
    pub previous_status: Option<ShipmentStatus>,
    pub status: ShipmentStatus,
    pub at: DateTime<Utc>,
}

/// An order, owned by the orders subgraph; logistics adds its shipment.
pub struct Order {
    pub id: Uuid,
}

#[Object]
impl Order {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// Its current shipment (the latest delivery attempt), once it is paid;
    /// for its customer, trucks and ADMIN.
    async fn shipment(&self, ctx: &Context<'_>) -> ApiResult<Option<Shipment>> {
        let found = ctx
            .data_unchecked::<DataLoader<ShipmentsByOrder>>()
            .load_one(self.id)
            .await?;
        Ok(visible(ctx, found))
    }

    /// Every shipment it had, first attempt first: more than one when a
    /// delivery failed and the order was reshipped. Same readers as `shipment`.
    async fn shipments(&self, ctx: &Context<'_>) -> ApiResult<Vec<Shipment>> {
        let found = ctx
            .data_unchecked::<DataLoader<AllShipmentsByOrder>>()
            .load_one(self.id)
            .await?
            .unwrap_or_default();
        Ok(found
            .into_iter()
            .filter_map(|s| visible(ctx, Some(s)))
            .collect())
    }
}

#[derive(Default)]
pub struct ShipmentQuery;

#[Object]
impl ShipmentQuery {
    /// A shipment by tracking id: its customer, trucks and ADMIN; null for anyone else.
    async fn shipment(
        &self,
        ctx: &Context<'_>,
        tracking_id: String,
    ) -> ApiResult<Option<Shipment>> {
        ctx.auth().claims()?;
        let mut conn = state(ctx).pool.get().await?;
        let found = shipments::by_tracking(&mut conn, tracking_id.trim()).await?;
        Ok(visible(ctx, found))
    }

    /// Federation entity resolver: logistics' part of `Order`.
    #[graphql(entity)]
    async fn find_order_by_id(&self, id: ID) -> ApiResult<Order> {
        Ok(Order {
            id: parse_id("id", &id)?,
        })
    }

    /// Federation entity resolver: `Shipment` by `id`, for whoever may see it.
    #[graphql(entity)]
    async fn find_shipment_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Shipment>> {
        let id = parse_id("id", &id)?;
        let mut conn = state(ctx).pool.get().await?;
        let found = shipments::by_id(&mut conn, id).await?;
        Ok(visible(ctx, found))
    }
}

#[derive(Default)]
pub struct ShipmentMutation;

#[Object]
impl ShipmentMutation {
    /// TRUCK or ADMIN: moves a shipment `CREATED → PICKED → IN_TRANSIT →
    /// DELIVERED`, or to `FAILED` before it is delivered. The order follows
    /// (PROCESSING, SHIPPED, DELIVERED, or DELIVERY_FAILED) through the
    /// `shipment.status_changed` event.
    async fn update_shipment_status(
        &self,
        ctx: &Context<'_>,
        tracking_id: String,
        status: ShipmentStatus,
    ) -> ApiResult<Shipment> {
        let claims = ctx.auth().require_role(&[Role::Truck, Role::Admin])?;
        if status == ShipmentStatus::Cancelled {
            return Err(ApiError::bad_input(
                "status",
                "a shipment is cancelled by cancelling its order",
            ));
        }
        let shipment =
            shipments::update_status(state(ctx), claims, tracking_id.trim(), status).await?;
        Ok(Shipment(shipment))
    }
}
