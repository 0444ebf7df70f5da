//! Restocks: a truck's delivery goes to inventory (`RestockItems`) and never
//! gets lost on the way.
//!
//! The request is validated ([`delivery`](crate::delivery)), written as a
//! PENDING `restock_orders` row whose id is the transaction id inventory
//! sees, and only then sent. Inventory taking it makes the row COMPLETED;
//! inventory refusing the input is the caller's `BAD_USER_INPUT` and the row
//! is removed again (nothing was stocked); inventory not answering leaves the
//! row PENDING for the [`reconciler`](crate::reconciler), which retries it
//! with backoff until it is COMPLETED, or FAILED after a refusal or too many
//! attempts. Since inventory keys restocks by transaction id, any number of
//! attempts stock a delivery at most once.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kit::pagination::Page;
use uuid::Uuid;

use crate::{
    LogisticsState,
    db::{RestockOrder, schema::restock_orders},
    delivery::{self, Delivery, Line, Request},
    error::LogisticsError,
    inventory::Refusal,
    reconciler::LEASE,
};

/// Where a restock is.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestockStatus {
    /// Recorded; inventory has not taken it yet (it is retried).
    Pending,
    /// Inventory received it.
    Completed,
    /// Inventory refused it, or could not be reached in time; never retried.
    Failed,
}

impl RestockStatus {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Completed, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }
}

impl TryFrom<String> for RestockStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown restock status {s:?}"))
    }
}

/// What the requester is told about a restock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub transaction_id: Uuid,
    pub status: RestockStatus,
    pub message: String,
}

impl RestockOrder {
    /// The delivery as stored.
    pub fn delivery(&self) -> Result<Delivery, LogisticsError> {
        let lines: Vec<Line> = serde_json::from_value(self.lines.clone())
            .map_err(|e| anyhow::anyhow!("restock {} has unreadable lines: {e}", self.id))?;
        Ok(Delivery {
            truck_id: self.truck_id.clone(),
            supplier_id: self.supplier_id.clone(),
            lines,
        })
    }

    /// Its receipt, worded for the requester.
    pub fn receipt(&self) -> Receipt {
        let message = match self.status {
            RestockStatus::Completed => format!(
                "inventory received {} units",
                self.units.unwrap_or_default()
            ),
            RestockStatus::Pending => "inventory is unavailable; the restock is recorded and \
                                      will be retried automatically"
                .to_owned(),
            RestockStatus::Failed => format!(
                "the restock failed: {}",
                self.last_error.as_deref().unwrap_or("unknown error")
            ),
        };
        Receipt {
            transaction_id: self.id,
            status: self.status,
            message,
        }
    }
}

/// A truck or admin's restock: recorded, then handed to inventory. A repeat
/// with the same idempotency key answers the first restock's receipt (trying
/// inventory again if it is still pending) and never stocks twice.
pub async fn request(
    st: &LogisticsState,
    requester: Uuid,
    request: &Request,
) -> Result<Receipt, LogisticsError> {
    let Request {
        delivery,
        idempotency_key,
    } = delivery::validate(request, Utc::now().date_naive())?;
    let lines = serde_json::to_value(&delivery.lines).map_err(anyhow::Error::from)?;
    let mut conn = st.pool.get().await?;
    // Not due for the reconciler while this request is still trying.
    let recorded = diesel::insert_into(restock_orders::table)
        .values((
            restock_orders::id.eq(Uuid::now_v7()),
            restock_orders::truck_id.eq(&delivery.truck_id),
            restock_orders::supplier_id.eq(&delivery.supplier_id),
            restock_orders::lines.eq(lines),
            restock_orders::requested_by.eq(requester),
            restock_orders::idempotency_key.eq(&idempotency_key),
            restock_orders::next_attempt_at.eq(Utc::now() + LEASE),
        ))
        .on_conflict((
            restock_orders::requested_by,
            restock_orders::idempotency_key,
        ))
        .do_nothing()
        .returning(RestockOrder::as_returning())
        .get_result(&mut conn)
        .await
        .optional()?;
    let Some(order) = recorded else {
        // A retry: the key is taken.
        let key = idempotency_key.as_deref().unwrap_or_default();
        let first = by_key(&mut conn, requester, key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("restock keyed {key:?} vanished"))?;
        if first.delivery()? != delivery {
            return Err(LogisticsError::KeyReused);
        }
        if first.status != RestockStatus::Pending {
            return Ok(first.receipt());
        }
        drop(conn);
        let outcome = st.stock.restock(first.id, &delivery).await;
        return match settle(st, first.id, outcome.clone()).await? {
            Some(order) => Ok(order.receipt()),
            None => Err(match outcome {
                Err(Refusal::Rejected(why)) => LogisticsError::Rejected(why),
                _ => anyhow::anyhow!("restock {} vanished", first.id).into(),
            }),
        };
    };
    // No connection is held while inventory is asked.
    drop(conn);
    match st.stock.restock(order.id, &delivery).await {
        Err(Refusal::Rejected(why)) => {
            // Refused at once: the caller learns why, and no record stays behind.
            diesel::delete(restock_orders::table.find(order.id))
                .filter(restock_orders::status.eq(RestockStatus::Pending.as_str()))
                .execute(&mut *st.pool.get().await?)
                .await?;
            Err(LogisticsError::Rejected(why))
        }
        outcome => Ok(settle(st, order.id, outcome)
            .await?
            .ok_or_else(|| anyhow::anyhow!("restock {} vanished", order.id))?
            .receipt()),
    }
}

/// The topic of a completed delivery.
pub const STOCK_RESTOCKED: &str = "stock.restocked";

/// Records what inventory answered to an attempt at restock `id`; returns
/// the restock as it now is (`None` if it is gone). What inventory took is
/// COMPLETED whatever another attempt concluded meanwhile; a refusal is
/// FAILED; no answer keeps it PENDING until the next attempt is due, or
/// makes it FAILED once attempts run out.
pub async fn settle(
    st: &LogisticsState,
    id: Uuid,
    outcome: Result<i32, Refusal>,
) -> Result<Option<RestockOrder>, LogisticsError> {
    let mut conn = st.pool.get().await?;
    let policy = st.retry;
    conn.transaction(async |conn| {
        let Some(current) = restock_orders::table
            .find(id)
            .select(RestockOrder::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
        else {
            return Ok(None);
        };
        let now = Utc::now();
        let attempts = current.attempts + 1;
        let update = diesel::update(restock_orders::table.find(id));
        let changed = match outcome {
            Ok(_) if current.status == RestockStatus::Completed => return Ok(Some(current)),
            Ok(units) => {
                update
                    .set((
                        restock_orders::status.eq(RestockStatus::Completed.as_str()),
                        restock_orders::units.eq(units),
                        restock_orders::attempts.eq(attempts),
                        restock_orders::last_error.eq(None::<String>),
                        restock_orders::completed_at.eq(now),
                        restock_orders::updated_at.eq(now),
                    ))
                    .returning(RestockOrder::as_returning())
                    .get_result(conn)
                    .await?
            }
            // Another attempt settled it first.
            Err(_) if current.status != RestockStatus::Pending => return Ok(Some(current)),
            Err(refusal) => {
                let (status, error) = match refusal {
                    Refusal::Rejected(why) => (
                        RestockStatus::Failed,
                        format!("inventory refused it: {why}"),
                    ),
                    Refusal::Unavailable(why) if attempts >= policy.max_attempts => (
                        RestockStatus::Failed,
                        format!("gave up after {attempts} attempts: {why}"),
                    ),
                    Refusal::Unavailable(why) => (RestockStatus::Pending, why),
                };
                update
                    .set((
                        restock_orders::status.eq(status.as_str()),
                        restock_orders::attempts.eq(attempts),
                        restock_orders::last_error.eq(&error),
                        restock_orders::next_attempt_at.eq(now + policy.backoff(attempts)),
                        restock_orders::updated_at.eq(now),
                    ))
                    .returning(RestockOrder::as_returning())
                    .get_result(conn)
                    .await?
            }
        };
        if changed.status == RestockStatus::Completed {
            // ARCHITECTURE §6: the delivery is an event, in the same transaction.
            kit::events::outbox::append(
                conn,
                &[kit::events::NewEvent {
                    topic: STOCK_RESTOCKED,
                    key: changed.id.to_string(),
                    payload: serde_json::json!({
                        "transactionId": changed.id,
                        "truckId": changed.truck_id,
                        "supplierId": changed.supplier_id,
                        "units": changed.units,
                        "items": changed.lines,
                        "at": now,
                    }),
                }],
            )
            .await?;
        }
        match changed.status {
            RestockStatus::Completed => tracing::info!(
                transaction_id = %id,
                attempts,
                units = changed.units,
                "restock completed"
            ),
            RestockStatus::Failed => tracing::error!(
                transaction_id = %id,
                attempts,
                error = changed.last_error.as_deref().unwrap_or(""),
                "restock failed; it will not be retried"
            ),
            RestockStatus::Pending => tracing::warn!(
                transaction_id = %id,
                attempts,
                retry_at = %changed.next_attempt_at,
                "restock pending; inventory will be asked again"
            ),
        }
        Ok(Some(changed))
    })
    .await
    .inspect(|settled| {
        if settled
            .as_ref()
            .is_some_and(|r| r.status == RestockStatus::Completed)
        {
            st.relay.wake();
        }
    })
}

/// The restock `requester` made with `key`, if any.
async fn by_key(
    conn: &mut AsyncPgConnection,
    requester: Uuid,
    key: &str,
) -> QueryResult<Option<RestockOrder>> {
    restock_orders::table
        .filter(restock_orders::requested_by.eq(requester))
        .filter(restock_orders::idempotency_key.eq(key))
        .select(RestockOrder::as_select())
        .first(conn)
        .await
        .optional()
}

/// Which restocks to list.
#[derive(Clone, Debug, Default)]
pub struct RestockFilter {
    /// Only those this user asked for.
    pub requested_by: Option<Uuid>,
    pub truck_id: Option<String>,
    pub status: Option<RestockStatus>,
}

/// Up to `first` restocks matching `filter`, newest first, after the cursor id `after`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &RestockFilter,
    first: i64,
    after: Option<Uuid>,
) -> QueryResult<Page<RestockOrder>> {
    let filtered = || {
        let mut query = restock_orders::table.into_boxed();
        if let Some(requester) = filter.requested_by {
            query = query.filter(restock_orders::requested_by.eq(requester));
        }
        if let Some(truck) = &filter.truck_id {
            query = query.filter(restock_orders::truck_id.eq(truck.clone()));
        }
        if let Some(status) = filter.status {
            query = query.filter(restock_orders::status.eq(status.as_str()));
        }
        query
    };
    let total_count: i64 = filtered().count().get_result(conn).await?;
    let mut query = filtered();
    if let Some(after) = after {
        query = query.filter(restock_orders::id.lt(after));
    }
    // Ids are UUIDv7: id order is creation order.
    let rows = query
        .order(restock_orders::id.desc())
        .limit(first + 1)
        .select(RestockOrder::as_select())
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, first, total_count))
}

#[cfg(test)]
mod tests {
    use super::RestockStatus;

    #[test]
    fn statuses_round_trip() {
        for status in RestockStatus::ALL {
            assert_eq!(
                RestockStatus::try_from(status.as_str().to_owned()),
                Ok(status)
            );
        }
        assert!(RestockStatus::try_from("LOST".to_owned()).is_err());
    }
}
