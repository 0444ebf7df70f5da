//! What can go wrong in the users domain, and the one place it becomes an `extensions.code`.

use kit::{ApiError, auth::TokenError};

/// Failures of account and session operations.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("device id {0:?} is already registered")]
    DeviceIdTaken(String),
    #[error("this email address is already in use")]
    EmailTaken,
    #[error("invalid device id or password")]
    InvalidCredentials,
    #[error("this account is deactivated")]
    Deactivated,
    /// Too many failed logins for this account or from this address.
    #[error("too many failed logins; retry in {retry_after} s")]
    Throttled { retry_after: u64 },
    #[error("{0}")]
    InvalidToken(TokenError),
    #[error("this refresh token was already used; every session of this login is now revoked")]
    RefreshReuse,
    #[error("this refresh token is no longer valid")]
    RefreshRevoked,
    #[error("no such user")]
    NotFound,
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] kit::db::PoolError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl UsersError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<UsersError> for ApiError {
    fn from(err: UsersError) -> Self {
        let message = err.to_string();
        match err {
            UsersError::Invalid { field, .. } => ApiError::bad_input(field, message),
            UsersError::DeviceIdTaken(_) | UsersError::EmailTaken => ApiError::Conflict(message),
            UsersError::InvalidCredentials
            | UsersError::Deactivated
            | UsersError::InvalidToken(_)
            | UsersError::RefreshReuse
            | UsersError::RefreshRevoked => ApiError::Unauthenticated(message),
            UsersError::Throttled { retry_after } => ApiError::RateLimited {
                message,
                retry_after,
            },
            UsersError::NotFound => ApiError::NotFound(message),
            UsersError::NotAllowed(_) => ApiError::InvalidState(message),
            UsersError::Database(e) => ApiError::internal(e),
            UsersError::Pool(e) => ApiError::internal(e),
            UsersError::Internal(e) => ApiError::internal(e),
        }
    }
}
