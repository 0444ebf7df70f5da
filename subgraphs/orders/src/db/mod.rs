//! Rows of the `orders` schema as Rust values.

pub mod schema;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::lifecycle::OrderStatus;

/// An order as stored (also read by name, from raw SQL).
#[derive(Queryable, QueryableByName, Selectable, Clone, Debug)]
#[diesel(table_name = schema::orders, check_for_backend(diesel::pg::Pg))]
pub struct Order {
    pub id: Uuid,
    pub number: String,
    pub customer_id: Uuid,
    pub status: OrderStatus,
    pub subtotal: Option<Decimal>,
    pub tax: Option<Decimal>,
    pub shipping_cost: Option<Decimal>,
    pub total: Option<Decimal>,
    pub reserved_until: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub customer_snapshot: Option<serde_json::Value>,
    pub notes: Option<String>,
    pub cancel_reason: Option<String>,
    pub from_cart: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One line of an order.
#[derive(Queryable, QueryableByName, Selectable, Clone, Debug, PartialEq)]
#[diesel(table_name = schema::order_items, check_for_backend(diesel::pg::Pg))]
pub struct Item {
    pub order_id: Uuid,
    pub sku: String,
    pub quantity: i32,
    pub unit_price: Option<Decimal>,
    pub line_total: Option<Decimal>,
    pub product_name: Option<String>,
}

/// The payment of an order.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = schema::payments, check_for_backend(diesel::pg::Pg))]
pub struct Payment {
    pub order_id: Uuid,
    pub status: String,
    pub amount: Decimal,
    pub provider: String,
    pub method: Option<String>,
    pub provider_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A refund of a payment.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = schema::refunds, check_for_backend(diesel::pg::Pg))]
pub struct Refund {
    pub order_id: Uuid,
    pub amount: Decimal,
    pub provider_reference: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    /// RETURNED or LOST for the refund of a failed delivery; none for a cancellation.
    pub goods: Option<String>,
}

/// One status change of an order (also read as `to_json` of its row).
#[derive(Queryable, Selectable, Clone, Debug, serde::Deserialize)]
#[diesel(table_name = schema::order_status_history, check_for_backend(diesel::pg::Pg))]
pub struct StatusChange {
    pub id: i64,
    pub order_id: Uuid,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: Option<String>,
    pub actor_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// Some units of one product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub sku: String,
    pub quantity: i32,
}
