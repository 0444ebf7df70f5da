//! Rows of the `inventory` schema and the small value types shared by the stock modules.

pub mod schema;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// SQL `CURRENT_DATE`, typed to compare with the nullable date columns.
pub fn today()
-> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Date>> {
    diesel::dsl::sql("CURRENT_DATE")
}

/// Some units of one product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub sku: String,
    pub quantity: i32,
}

/// A delivery of one product as stored.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = schema::batches, check_for_backend(diesel::pg::Pg))]
pub struct Batch {
    pub id: Uuid,
    pub sku: String,
    pub quantity: i32,
    pub remaining: i32,
    pub unit_cost: Decimal,
    pub mfd_date: Option<NaiveDate>,
    pub expiry_date: Option<NaiveDate>,
    pub received_at: DateTime<Utc>,
    pub supplier_id: Option<String>,
    pub truck_id: Option<String>,
    pub transaction_id: Option<String>,
}

/// Where a reservation is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    Active,
    Released,
    Expired,
    Committed,
    Returned,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Released => "RELEASED",
            Self::Expired => "EXPIRED",
            Self::Committed => "COMMITTED",
            Self::Returned => "RETURNED",
        }
    }

    /// Parses the stored name; the column's CHECK admits nothing else.
    pub fn parse(s: &str) -> Self {
        match s {
            "RELEASED" => Self::Released,
            "EXPIRED" => Self::Expired,
            "COMMITTED" => Self::Committed,
            "RETURNED" => Self::Returned,
            _ => Self::Active,
        }
    }
}
