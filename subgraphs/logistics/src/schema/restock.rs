//! Restocks in GraphQL: the trucks' `restock` mutation and the `restocks` listing.

use std::sync::Arc;

use async_graphql::{
    Context, ID, InputObject, Object, SimpleObject,
    connection::{Connection, Edge, EmptyFields},
};
use chrono::{DateTime, Utc};
use kit::{
    ApiError, ApiResult,
    auth::{AuthExt, Role},
    pagination::{decode_cursor, encode_cursor, page_size},
    scalars::Date,
};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{
    LogisticsState, db,
    delivery::{self, Delivery},
    restock::{self, RestockFilter, RestockStatus},
};

fn state<'a>(ctx: &'a Context<'_>) -> &'a LogisticsState {
    ctx.data_unchecked::<Arc<LogisticsState>>()
}

/// Who restocks: trucks (and robots) and admins.
const RESTOCKERS: &[Role] = &[Role::Truck, Role::Admin];

/// A delivery a truck brings to the warehouse.
#[derive(InputObject)]
pub struct RestockInput {
    pub truck_id: String,
    pub supplier_id: String,
    /// 1 to 500 items; each becomes a batch in inventory.
    pub items: Vec<RestockItemInput>,
    /// Makes a retry safe: the same caller and key answer the first restock's
    /// receipt and never stock twice.
    pub idempotency_key: Option<String>,
}

/// Units of one product in a delivery.
#[derive(InputObject)]
pub struct RestockItemInput {
    pub sku: String,
    pub quantity: i32,
    /// What one unit cost, at most 4 decimals.
    pub unit_cost: Decimal,
    pub mfd_date: Option<Date>,
    pub expiry_date: Option<Date>,
}

/// What became of a restock: `COMPLETED` (inventory has the goods), `PENDING`
/// (recorded; inventory is retried until it takes them) or `FAILED`.
#[derive(SimpleObject)]
pub struct RestockReceipt {
    pub transaction_id: ID,
    pub status: String,
    pub message: String,
}

impl From<restock::Receipt> for RestockReceipt {
    fn from(r: restock::Receipt) -> Self {
        Self {
            transaction_id: ID(r.transaction_id.to_string()),
            status: r.status.as_str().to_owned(),
            message: r.message,
        }
    }
}

/// One product of a recorded restock.
#[derive(SimpleObject)]
pub struct RestockLine {
    pub sku: String,
    pub quantity: i32,
    pub unit_cost: Decimal,
    pub mfd_date: Option<Date>,
    pub expiry_date: Option<Date>,
}

/// A recorded restock and how far it got.
pub struct Restock(pub db::RestockOrder);

#[Object]
impl Restock {
    /// The id inventory knows the delivery by.
    async fn transaction_id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn truck_id(&self) -> &str {
        &self.0.truck_id
    }

    async fn supplier_id(&self) -> &str {
        &self.0.supplier_id
    }

    async fn status(&self) -> RestockStatus {
        self.0.status
    }

    async fn items(&self) -> ApiResult<Vec<RestockLine>> {
        Ok(self
            .0
            .delivery()?
            .lines
            .into_iter()
            .map(|l| RestockLine {
                sku: l.sku,
                quantity: l.quantity,
                unit_cost: l.unit_cost,
                mfd_date: l.mfd_date.map(Date),
                expiry_date: l.expiry_date.map(Date),
            })
            .collect())
    }

    /// The user who asked for it.
    async fn requested_by(&self) -> ID {
        ID(self.0.requested_by.to_string())
    }

    /// Times inventory was asked.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    /// Why the last attempt did not complete it.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// Units inventory received, once `COMPLETED`.
    async fn units(&self) -> Option<i32> {
        self.0.units
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
}

/// Extra fields of a restock connection.
#[derive(SimpleObject)]
pub struct RestockConnectionFields {
    /// Restocks matching the filter, on every page.
    pub total_count: i64,
}

/// A page of restocks, newest first.
pub type RestockConnection = Connection<String, Restock, RestockConnectionFields, EmptyFields>;

#[derive(Default)]
pub struct RestockQuery;

#[Object]
impl RestockQuery {
    /// Restocks, newest first: ADMIN sees all, a TRUCK the ones it asked for.
    async fn restocks(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        truck_id: Option<String>,
        status: Option<RestockStatus>,
    ) -> ApiResult<RestockConnection> {
        let claims = ctx.auth().require_role(RESTOCKERS)?;
        let filter = RestockFilter {
            requested_by: (claims.role != Role::Admin).then_some(claims.sub),
            truck_id: truck_id
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
            status,
        };
        let first = page_size(first, 20)?;
        let after = match after.as_deref().map(decode_cursor).transpose()? {
            Some(key) => Some(
                Uuid::parse_str(&key)
                    .map_err(|_| ApiError::bad_input("after", "invalid cursor"))?,
            ),
            None => None,
        };
        let mut conn = state(ctx).pool.get().await?;
        let page = restock::list(&mut conn, &filter, first, after).await?;
        let mut connection = RestockConnection::with_additional_fields(
            after.is_some(),
            page.has_next_page,
            RestockConnectionFields {
                total_count: page.total_count,
            },
        );
        connection.edges.extend(
            page.items
                .into_iter()
                .map(|r| Edge::new(encode_cursor(&r.id.to_string()), Restock(r))),
        );
        Ok(connection)
    }
}

#[derive(Default)]
pub struct RestockMutation;

#[Object]
impl RestockMutation {
    /// TRUCK or ADMIN: delivers goods to inventory, one batch per item. The
    /// receipt is `COMPLETED`, or `PENDING` when inventory cannot take them
    /// now (they are recorded and retried automatically). Bad input is
    /// BAD_USER_INPUT and nothing is recorded.
    async fn restock(&self, ctx: &Context<'_>, input: RestockInput) -> ApiResult<RestockReceipt> {
        let claims = ctx.auth().require_role(RESTOCKERS)?;
        let request = delivery::Request {
            delivery: Delivery {
                truck_id: input.truck_id,
                supplier_id: input.supplier_id,
                lines: input
                    .items
                    .into_iter()
                    .map(|i| delivery::Line {
                        sku: i.sku,
                        quantity: i.quantity,
                        unit_cost: i.unit_cost,
                        mfd_date: i.mfd_date.map(|d| d.0),
                        expiry_date: i.expiry_date.map(|d| d.0),
                    })
                    .collect(),
            },
            idempotency_key: input.idempotency_key,
        };
        Ok(restock::request(state(ctx), claims.sub, &request)
            .await?
            .into())
    }
}
