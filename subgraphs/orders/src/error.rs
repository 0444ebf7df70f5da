//! What can go wrong in the orders domain, and the one place it becomes an `extensions.code`.

use kit::ApiError;
pub use kit::error::Shortfall;

/// Failures of cart, checkout and order operations.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("insufficient stock: {}", Shortfall::describe(.0))]
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
            OrdersError::Shortfall(items) => ApiError::insufficient_stock(message, &items),
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
