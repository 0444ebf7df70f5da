//! What can go wrong with a restock, and the one place it becomes an `extensions.code`.

use kit::ApiError;

/// Failures of restock requests.
#[derive(Debug, thiserror::Error)]
pub enum LogisticsError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// Inventory refused the delivery itself (an unknown SKU, an item it will not take).
    #[error("inventory refused the restock: {0}")]
    Rejected(String),
    #[error("this idempotency key was already used for a different restock")]
    KeyReused,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] kit::db::PoolError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl LogisticsError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<LogisticsError> for ApiError {
    fn from(err: LogisticsError) -> Self {
        let message = err.to_string();
        match err {
            LogisticsError::Invalid { field, .. } => ApiError::bad_input(&field, message),
            LogisticsError::Rejected(_) => ApiError::bad_input("items", message),
            LogisticsError::KeyReused => ApiError::Conflict(message),
            LogisticsError::Database(e) => ApiError::internal(e),
            LogisticsError::Pool(e) => ApiError::internal(e),
            LogisticsError::Internal(e) => ApiError::internal(e),
        }
    }
}
