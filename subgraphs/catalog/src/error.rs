//! What can go wrong in the catalog, and the one place it becomes an `extensions.code`.

use kit::ApiError;

/// Failures of product operations.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// An input field breaks a catalog rule.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("a product with SKU {0:?} already exists")]
    SkuTaken(String),
    #[error("a product named {0:?} already exists (names are unique regardless of case)")]
    NameTaken(String),
    #[error("another product already has UPC {0:?}")]
    UpcTaken(String),
    #[error("no product with SKU {0:?}")]
    NotFound(String),
    /// Inventory refused or did not answer; the catalog change was rolled back.
    #[error("inventory did not take the change: {0:#}")]
    Registry(anyhow::Error),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] kit::db::PoolError),
}

impl CatalogError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(err: CatalogError) -> Self {
        let message = err.to_string();
        match err {
            CatalogError::Invalid { field, .. } => ApiError::bad_input(field, message),
            CatalogError::SkuTaken(_) | CatalogError::NameTaken(_) | CatalogError::UpcTaken(_) => {
                ApiError::Conflict(message)
            }
            CatalogError::NotFound(_) => ApiError::NotFound(message),
            CatalogError::Registry(e) => ApiError::internal(e),
            CatalogError::Database(e) => ApiError::internal(e),
            CatalogError::Pool(e) => ApiError::internal(e),
        }
    }
}
