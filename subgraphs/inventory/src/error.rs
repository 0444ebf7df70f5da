//! What can go wrong in the inventory domain, and how it is answered to
//! GraphQL clients (`extensions.code`) and to RPC callers (gRPC status).

use kit::ApiError;
pub use kit::error::Shortfall;
use prost::Message;
use uuid::Uuid;

use crate::db::ReservationStatus;

/// Failures of stock operations.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("unknown SKU: {}", .0.join(", "))]
    UnknownSku(Vec<String>),
    #[error("SKU {0} is not for sale")]
    InactiveSku(String),
    #[error("no reservation for order {0}")]
    UnknownOrder(Uuid),
    #[error("insufficient stock: {}", Shortfall::describe(.0))]
    Shortfall(Vec<Shortfall>),
    #[error("the reservation of order {order_id} is {}", .status.as_str())]
    WrongState {
        order_id: Uuid,
        status: ReservationStatus,
    },
    #[error("the reservation of order {0} has expired")]
    Expired(Uuid),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] kit::db::PoolError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl InventoryError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<InventoryError> for ApiError {
    fn from(err: InventoryError) -> Self {
        let message = err.to_string();
        match err {
            InventoryError::Invalid { field, .. } => ApiError::bad_input(field, message),
            InventoryError::InactiveSku(_) => ApiError::bad_input("sku", message),
            InventoryError::UnknownSku(_) | InventoryError::UnknownOrder(_) => {
                ApiError::NotFound(message)
            }
            InventoryError::Shortfall(items) => ApiError::insufficient_stock(message, &items),
            InventoryError::WrongState { .. } | InventoryError::Expired(_) => {
                ApiError::InvalidState(message)
            }
            InventoryError::Database(e) => ApiError::internal(e),
            InventoryError::Pool(e) => ApiError::internal(e),
            InventoryError::Internal(e) => ApiError::internal(e),
        }
    }
}

impl From<InventoryError> for tonic::Status {
    fn from(err: InventoryError) -> Self {
        use contracts::inventory as pb;
        let message = err.to_string();
        match err {
            InventoryError::Invalid { .. } => tonic::Status::invalid_argument(message),
            InventoryError::UnknownSku(_) | InventoryError::UnknownOrder(_) => {
                tonic::Status::not_found(message)
            }
            InventoryError::Shortfall(items) => {
                let details = pb::Shortfalls {
                    items: items
                        .into_iter()
                        .map(|s| pb::Shortfall {
                            sku: s.sku,
                            requested: s.requested,
                            available: s.available,
                        })
                        .collect(),
                };
                tonic::Status::with_details(
                    tonic::Code::FailedPrecondition,
                    message,
                    details.encode_to_vec().into(),
                )
            }
            InventoryError::InactiveSku(_)
            | InventoryError::WrongState { .. }
            | InventoryError::Expired(_) => tonic::Status::failed_precondition(message),
            // Overload and lost races are worth a retry; tell the caller so.
            InventoryError::Pool(e) => {
                tracing::warn!(error = %e, "stock RPC: no database connection");
                tonic::Status::unavailable("inventory is overloaded; retry")
            }
            InventoryError::Database(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::SerializationFailure,
                _,
            )) => tonic::Status::aborted("concurrent update; retry"),
            InventoryError::Database(e) if e.to_string().contains("deadlock detected") => {
                tracing::error!(error = %e, "stock RPC: deadlock");
                tonic::Status::aborted("concurrent update; retry")
            }
            InventoryError::Database(e) => internal(e.into()),
            InventoryError::Internal(e) => internal(e),
        }
    }
}

fn internal(err: anyhow::Error) -> tonic::Status {
    tracing::error!(error = format!("{err:#}"), "internal error in stock RPC");
    tonic::Status::internal("internal error")
}
