//! Tables of the `logistics` schema (see migrations/logistics) and their rows.
//! The outbox and processed_events tables are kit::events'.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::{restock::RestockStatus, shipments::ShipmentStatus};

pub mod schema {
    diesel::table! {
        shipments (id) {
            id -> Uuid,
            order_id -> Uuid,
            customer_id -> Uuid,
            tracking_id -> Text,
            carrier -> Text,
            status -> Text,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
            attempt -> Int4,
        }
    }

    diesel::table! {
        shipment_status_history (id) {
            id -> Int8,
            shipment_id -> Uuid,
            from_status -> Nullable<Text>,
            to_status -> Text,
            actor_id -> Nullable<Uuid>,
            at -> Timestamptz,
        }
    }

    diesel::table! {
        restock_orders (id) {
            id -> Uuid,
            truck_id -> Text,
            supplier_id -> Text,
            lines -> Jsonb,
            requested_by -> Uuid,
            idempotency_key -> Nullable<Text>,
            status -> Text,
            attempts -> Int4,
            last_error -> Nullable<Text>,
            units -> Nullable<Int4>,
            next_attempt_at -> Timestamptz,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
            completed_at -> Nullable<Timestamptz>,
        }
    }

    diesel::joinable!(shipment_status_history -> shipments (shipment_id));
    diesel::allow_tables_to_appear_in_same_query!(shipments, shipment_status_history);
}

/// A shipment as stored.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = schema::shipments, check_for_backend(diesel::pg::Pg))]
pub struct Shipment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub tracking_id: String,
    pub carrier: String,
    #[diesel(deserialize_as = String)]
    pub status: ShipmentStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Which delivery of its order it is: 1, then one more per reship.
    pub attempt: i32,
}

/// A restock as stored; `id` is the transaction id inventory sees.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = schema::restock_orders, check_for_backend(diesel::pg::Pg))]
pub struct RestockOrder {
    pub id: Uuid,
    pub truck_id: String,
    pub supplier_id: String,
    /// `[delivery::Line]` as JSON.
    pub lines: serde_json::Value,
    pub requested_by: Uuid,
    pub idempotency_key: Option<String>,
    #[diesel(deserialize_as = String)]
    pub status: RestockStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub units: Option<i32>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}
