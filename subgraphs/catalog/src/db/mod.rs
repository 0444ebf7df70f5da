//! Rows of the `catalog` schema as Rust values.

pub mod schema;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// A product as stored; every field already obeys the catalog rules.
#[derive(Queryable, Selectable, Clone, Debug, PartialEq)]
#[diesel(table_name = schema::products, check_for_backend(diesel::pg::Pg))]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub upc: Option<String>,
    pub image_urls: Vec<String>,
    pub category: Option<String>,
    pub active: bool,
    pub metadata: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
