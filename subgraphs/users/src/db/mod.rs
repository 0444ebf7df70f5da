//! Rows of the `users` schema as Rust values.

pub mod schema;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use kit::auth::Role;
use uuid::Uuid;

use crate::{
    notifications::{Delivery, NotificationKind},
    profile::{Address, PaymentMethod},
};

/// An account as stored, without its password hash.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = schema::users, check_for_backend(diesel::pg::Pg))]
pub struct Account {
    pub id: Uuid,
    pub device_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    role: String,
    pub active: bool,
    shipping_address: Option<serde_json::Value>,
    billing_address: Option<serde_json::Value>,
    payment_method_token: Option<String>,
    payment_method_label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every access change; tokens carry it (see [`crate::access`]).
    pub access_epoch: i64,
}

impl Account {
    /// The account's role; the column's CHECK constraint admits only known names.
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Customer)
    }

    pub fn shipping_address(&self) -> Option<Address> {
        self.shipping_address
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
    }

    pub fn billing_address(&self) -> Option<Address> {
        self.billing_address
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
    }

    pub fn payment_method(&self) -> Option<PaymentMethod> {
        self.payment_method_token
            .clone()
            .map(|token| PaymentMethod {
                token,
                label: self.payment_method_label.clone(),
            })
    }
}

/// A notification as its user reads it.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = schema::notifications, check_for_backend(diesel::pg::Pg))]
pub struct Notification {
    pub id: Uuid,
    pub user_id: Uuid,
    #[diesel(deserialize_as = String)]
    pub kind: NotificationKind,
    pub order_id: Option<Uuid>,
    pub order_number: Option<String>,
    pub subject: String,
    pub body: String,
    #[diesel(deserialize_as = String)]
    pub delivery: Delivery,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}
