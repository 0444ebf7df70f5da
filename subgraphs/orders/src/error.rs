//! What can go wrong in the orders domain, and the one place it becomes an `extensions.code`.

use kit::ApiError;
use serde::Serialize;

/// Not enough stock of one SKU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Shortfall {
    pub sku: String,
    pub requested: i32,
    pub available: i32,
}

/// Failures of cart, checkout and order operations.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("insufficient stock: {}", describe(.0))]
    Shortfall(Vec<Shortfall>),
    #[error("no such order")]
    NotFound,
    #[error("{0}")]
    InvalidState(String),
    #[error("this idempotency key was already used to confirm another order")]
    KeyReused,
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] kit::db::PoolError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn describe(shortfalls: &[Shortfall]) -> String {
    shortfalls
        .iter()
        .map(|s| {
            format!(
                "{} (requested {}, available {})",
                s.sku, s.requested, s.available
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl OrdersError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<OrdersError> for ApiError {
    fn from(err: OrdersError) -> Self {
        let message = err.to_string();
        match err {
            OrdersError::Invalid { field, .. } => ApiError::bad_input(field, message),
            OrdersError::Shortfall(items) => ApiError::InsufficientStock {
                message,
                shortfall: serde_json::to_value(items).unwrap_or_default(),
            },
            OrdersError::NotFound => ApiError::NotFound(message),
            OrdersError::InvalidState(_) => ApiError::InvalidState(message),
            OrdersError::KeyReused => ApiError::Conflict(message),
            OrdersError::Unavailable(_) => ApiError::Unavailable(message),
            OrdersError::Database(e) => ApiError::internal(e),
            OrdersError::Pool(e) => ApiError::internal(e),
            OrdersError::Internal(e) => ApiError::internal(e),
        }
    }
}
