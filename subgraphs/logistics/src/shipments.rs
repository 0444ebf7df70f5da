//! Shipments and their lifecycle, in one place: `CREATED → PICKED →
//! IN_TRANSIT → DELIVERED`, `FAILED` from any state before DELIVERED, and
//! `CANCELLED` when the order is cancelled before the goods left. Every
//! change locks the shipment, writes a history row and a
//! `shipment.status_changed` outbox event in one transaction.
//!
//! An order has one shipment per delivery attempt: the first when it is
//! paid, one more each time an ADMIN reships it after a failed delivery. The
//! failed ones stay, with their history; the latest attempt is the order's
//! current shipment.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kit::{
    ApiError, ApiResult,
    auth::{Claims, Role},
    events::{NewEvent, outbox},
};
use rand::Rng;
use uuid::Uuid;

use crate::{
    LogisticsState,
    db::{
        Shipment,
        schema::{shipment_status_history, shipments},
    },
};

/// The topic of every shipment change.
pub const STATUS_CHANGED: &str = "shipment.status_changed";

/// Where a shipment is.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShipmentStatus {
    Created,
    Picked,
    InTransit,
    Delivered,
    Failed,
    /// The order was cancelled before the goods left.
    Cancelled,
}

impl ShipmentStatus {
    pub const ALL: [Self; 6] = [
        Self::Created,
        Self::Picked,
        Self::InTransit,
        Self::Delivered,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Picked => "PICKED",
            Self::InTransit => "IN_TRANSIT",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// No change leaves these.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed | Self::Cancelled)
    }

    /// Whether a shipment may go from `self` to `to` (staying put is not a change).
    pub fn allows(self, to: Self) -> bool {
        use ShipmentStatus::*;
        match (self, to) {
            (Created, Picked) | (Picked, InTransit) | (InTransit, Delivered) => true,
            (from, Failed) => !from.is_final(),
            // Cancelled with its order, as long as nothing has left the warehouse.
            (Created | Picked, Cancelled) => true,
            _ => false,
        }
    }
}

impl TryFrom<String> for ShipmentStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown shipment status {s:?}"))
    }
}

/// A new tracking id: `GRT-` and ten characters of Crockford base32.
pub fn tracking_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::thread_rng();
    let code: String = (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("GRT-{code}")
}

/// Who may see a shipment: its order's customer, trucks and admins.
pub fn visible_to(shipment: &Shipment, claims: &Claims) -> bool {
    shipment.customer_id == claims.sub || claims.role == Role::Truck || claims.role == Role::Admin
}

/// The shipment of a paid order's delivery `attempt`, made once however
/// often it is asked for. Returns it and whether this call made it.
pub async fn create_for_order(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    attempt: i32,
    customer_id: Uuid,
    carrier: &str,
) -> QueryResult<(Shipment, bool)> {
    let id = Uuid::now_v7();
    let inserted = diesel::insert_into(shipments::table)
        .values((
            shipments::id.eq(id),
            shipments::order_id.eq(order_id),
            shipments::customer_id.eq(customer_id),
            shipments::tracking_id.eq(tracking_id()),
            shipments::carrier.eq(carrier),
            shipments::status.eq(ShipmentStatus::Created.as_str()),
            shipments::attempt.eq(attempt),
        ))
        .on_conflict((shipments::order_id, shipments::attempt))
        .do_nothing()
        .returning(Shipment::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    match inserted {
        Some(shipment) => {
            record(conn, &shipment, None, None).await?;
            Ok((shipment, true))
        }
        None => Ok((
            shipments::table
                .filter(shipments::order_id.eq(order_id))
                .filter(shipments::attempt.eq(attempt))
                .select(Shipment::as_select())
                .first(conn)
                .await?,
            false,
        )),
    }
}

/// Cancels the current shipment of a cancelled order unless its goods
/// already left (or it is over); returns the shipment when it changed.
pub async fn cancel_for_order(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> QueryResult<Option<Shipment>> {
    let Some(shipment) = shipments::table
        .filter(shipments::order_id.eq(order_id))
        .order(shipments::attempt.desc())
        .select(Shipment::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    if !shipment.status.allows(ShipmentStatus::Cancelled) {
        tracing::warn!(
            %order_id,
            status = shipment.status.as_str(),
            "order cancelled after its shipment left; shipment kept"
        );
        return Ok(None);
    }
    change(conn, &shipment, ShipmentStatus::Cancelled, None)
        .await
        .map(Some)
}

/// A truck or admin moves a shipment. Setting the status it has is a no-op;
/// a move the lifecycle does not allow is `INVALID_STATE`.
pub async fn update_status(
    st: &LogisticsState,
    claims: &Claims,
    tracking: &str,
    to: ShipmentStatus,
) -> ApiResult<Shipment> {
    let mut conn = st.pool.get().await?;
    let (shipment, changed) = conn
        .transaction(async |conn| {
            let shipment = shipments::table
                .filter(shipments::tracking_id.eq(tracking))
                .select(Shipment::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?
                .ok_or_else(|| ApiError::NotFound(format!("no shipment {tracking}")))?;
            if shipment.status == to {
                return Ok::<_, ApiError>((shipment, false));
            }
            if !shipment.status.allows(to) {
                return Err(ApiError::InvalidState(format!(
                    "shipment {tracking} is {}; it cannot become {}",
                    shipment.status.as_str(),
                    to.as_str()
                )));
            }
            Ok((change(conn, &shipment, to, Some(claims.sub)).await?, true))
        })
        .await?;
    if changed {
        st.relay.wake();
    }
    Ok(shipment)
}

/// Moves the locked `shipment` to `to`, with its history row and event.
async fn change(
    conn: &mut AsyncPgConnection,
    shipment: &Shipment,
    to: ShipmentStatus,
    actor: Option<Uuid>,
) -> QueryResult<Shipment> {
    let updated: Shipment = diesel::update(shipments::table.find(shipment.id))
        .set((
            shipments::status.eq(to.as_str()),
            shipments::updated_at.eq(Utc::now()),
        ))
        .returning(Shipment::as_returning())
        .get_result(conn)
        .await?;
    record(conn, &updated, Some(shipment.status), actor).await?;
    Ok(updated)
}

async fn record(
    conn: &mut AsyncPgConnection,
    shipment: &Shipment,
    from: Option<ShipmentStatus>,
    actor: Option<Uuid>,
) -> QueryResult<()> {
    let at = shipment.updated_at;
    diesel::insert_into(shipment_status_history::table)
        .values((
            shipment_status_history::shipment_id.eq(shipment.id),
            shipment_status_history::from_status.eq(from.map(ShipmentStatus::as_str)),
            shipment_status_history::to_status.eq(shipment.status.as_str()),
            shipment_status_history::actor_id.eq(actor),
            shipment_status_history::at.eq(at),
        ))
        .execute(conn)
        .await?;
    outbox::append(
        conn,
        &[NewEvent {
            topic: STATUS_CHANGED,
            // Keyed by order: one order's shipment events stay in order.
            key: shipment.order_id.to_string(),
            payload: serde_json::json!({
                "shipmentId": shipment.id,
                "trackingId": shipment.tracking_id,
                "orderId": shipment.order_id,
                "customerId": shipment.customer_id,
                "carrier": shipment.carrier,
                "previousStatus": from.map(ShipmentStatus::as_str),
                "status": shipment.status.as_str(),
                "deliveryAttempt": shipment.attempt,
                "at": at,
            }),
        }],
    )
    .await
}

/// The shipment with `tracking`, if any.
pub async fn by_tracking(
    conn: &mut AsyncPgConnection,
    tracking: &str,
) -> QueryResult<Option<Shipment>> {
    shipments::table
        .filter(shipments::tracking_id.eq(tracking))
        .select(Shipment::as_select())
        .first(conn)
        .await
        .optional()
}

/// The shipment with `id`, if any.
pub async fn by_id(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Shipment>> {
    shipments::table
        .find(id)
        .select(Shipment::as_select())
        .first(conn)
        .await
        .optional()
}

/// The current shipment (latest delivery attempt) of `order_id`, if any.
pub async fn by_order(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> QueryResult<Option<Shipment>> {
    shipments::table
        .filter(shipments::order_id.eq(order_id))
        .order(shipments::attempt.desc())
        .select(Shipment::as_select())
        .first(conn)
        .await
        .optional()
}

/// The current shipment of each of several orders.
pub async fn by_orders(
    conn: &mut AsyncPgConnection,
    order_ids: &[Uuid],
) -> QueryResult<Vec<Shipment>> {
    shipments::table
        .filter(shipments::order_id.eq_any(order_ids))
        .distinct_on(shipments::order_id)
        .order((shipments::order_id, shipments::attempt.desc()))
        .select(Shipment::as_select())
        .load(conn)
        .await
}

/// Every shipment of several orders, each order's first attempt first.
pub async fn all_by_orders(
    conn: &mut AsyncPgConnection,
    order_ids: &[Uuid],
) -> QueryResult<Vec<Shipment>> {
    shipments::table
        .filter(shipments::order_id.eq_any(order_ids))
        .order((shipments::order_id, shipments::attempt))
        .select(Shipment::as_select())
        .load(conn)
        .await
}

/// One change in a shipment's history.
#[derive(Queryable, Clone, Debug)]
pub struct StatusChange {
    pub from: Option<String>,
    pub to: String,
    pub at: chrono::DateTime<Utc>,
}

/// A shipment's changes, oldest first.
pub async fn history_of(
    conn: &mut AsyncPgConnection,
    shipment_id: Uuid,
) -> QueryResult<Vec<StatusChange>> {
    shipment_status_history::table
        .filter(shipment_status_history::shipment_id.eq(shipment_id))
        .order(shipment_status_history::id)
        .select((
            shipment_status_history::from_status,
            shipment_status_history::to_status,
            shipment_status_history::at,
        ))
        .load(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::ShipmentStatus::{self, *};

    #[test]
    fn the_lifecycle_allows_only_its_moves() {
        let allowed = [
            (Created, Picked),
            (Picked, InTransit),
            (InTransit, Delivered),
            (Created, Failed),
            (Picked, Failed),
            (InTransit, Failed),
            (Created, Cancelled),
            (Picked, Cancelled),
        ];
        for from in ShipmentStatus::ALL {
            for to in ShipmentStatus::ALL {
                assert_eq!(
                    from.allows(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn statuses_round_trip_and_tracking_ids_look_right() {
        for status in ShipmentStatus::ALL {
            assert_eq!(
                ShipmentStatus::try_from(status.as_str().to_owned()),
                Ok(status)
            );
        }
        assert!(ShipmentStatus::try_from("LOST".to_owned()).is_err());
        let id = super::tracking_id();
        assert_eq!(id.len(), 14);
        assert!(id.starts_with("GRT-"));
        assert_ne!(id, super::tracking_id());
    }
}
