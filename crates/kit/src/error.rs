//! The one error type resolvers return, and its mapping to `extensions.code`.
//!
//! `ApiError` deliberately has no `Display`: async-graphql converts any
//! `Display` type into an error *without* a code, so a domain error that
//! slipped through `?` would lose its code silently. Without `Display`, the
//! only way into a GraphQL error is [`From<ApiError>`] below, and forgetting a
//! domain mapping is a compile error instead.
//!
//! No message carries an address, a host name, SQL or driver text: a failure
//! nobody anticipated is logged and answered in generic words, and one whose
//! cause is a dependency that did not answer (the database, inventory's gRPC
//! API, Redis) is `SERVICE_UNAVAILABLE` ([`DEPENDENCY_DOWN`]), decided in one
//! place ([`is_outage`]) for every subgraph.

use std::sync::Arc;

use async_graphql::{ErrorExtensions, Value};

/// What a client is told when a dependency did not answer.
pub const DEPENDENCY_DOWN: &str = "a dependency did not answer; nothing changed, retry";

/// Result of a resolver or of a domain function that speaks in API terms.
pub type ApiResult<T> = Result<T, ApiError>;

/// A client-facing failure, one variant per `extensions.code`.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// No valid credentials (`UNAUTHENTICATED`).
    Unauthenticated(String),
    /// Authenticated but not allowed (`FORBIDDEN`).
    Forbidden(String),
    /// The input is wrong; `field` names the offending input field when known.
    BadUserInput {
        message: String,
        field: Option<String>,
    },
    /// The thing does not exist, or the caller may not know it does (`NOT_FOUND`).
    NotFound(String),
    /// A uniqueness rule or a concurrent change refused the write (`CONFLICT`).
    Conflict(String),
    /// The entity is in a state that does not allow this (`INVALID_STATE`).
    InvalidState(String),
    /// Not enough stock (`INSUFFICIENT_STOCK`); `shortfall` lists, per SKU,
    /// `{ sku, requested, available }` and is sent as `extensions.shortfall`.
    InsufficientStock {
        message: String,
        shortfall: serde_json::Value,
    },
    /// Too many attempts; `retry_after` seconds must pass first (`RATE_LIMITED`,
    /// sent as `extensions.retryAfter`).
    RateLimited { message: String, retry_after: u64 },
    /// A service this one depends on (a payment provider, another subgraph)
    /// did not answer; nothing was changed and a retry may succeed (`SERVICE_UNAVAILABLE`).
    Unavailable(String),
    /// Anything else; details go to the log, never to the client.
    Internal(Arc<anyhow::Error>),
}

/// Not enough sellable units of one SKU: what was asked for and what there is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Shortfall {
    pub sku: String,
    pub requested: i32,
    pub available: i32,
}

impl Shortfall {
    /// `A (requested 3, available 1), B (…)`, for error messages.
    pub fn describe(shortfalls: &[Shortfall]) -> String {
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
}

impl ApiError {
    /// `INSUFFICIENT_STOCK` with `message` and the shortfall per SKU in `extensions.shortfall`.
    pub fn insufficient_stock(message: String, shortfalls: &[Shortfall]) -> Self {
        Self::InsufficientStock {
            message,
            shortfall: serde_json::to_value(shortfalls).unwrap_or_default(),
        }
    }

    /// `BAD_USER_INPUT` about one input field.
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }

    /// A failure nobody anticipated: `SERVICE_UNAVAILABLE` when its cause is
    /// a dependency that did not answer ([`is_outage`]), else
    /// `INTERNAL_SERVER_ERROR`; the cause goes to the log only.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        let err = err.into();
        if is_outage(&err) {
            return Self::unavailable(&err);
        }
        Self::Internal(Arc::new(err))
    }

    /// `SERVICE_UNAVAILABLE` in the generic words of [`DEPENDENCY_DOWN`];
    /// the cause (addresses, driver text) is logged, never sent.
    pub fn unavailable(cause: &anyhow::Error) -> Self {
        tracing::warn!(error = format!("{cause:#}"), "a dependency did not answer");
        Self::Unavailable(DEPENDENCY_DOWN.to_owned())
    }

    /// The `extensions.code` this error is answered with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict(_) => "CONFLICT",
            Self::InvalidState(_) => "INVALID_STATE",
            Self::InsufficientStock { .. } => "INSUFFICIENT_STOCK",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Unauthenticated(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::InvalidState(m)
            | Self::Unavailable(m)
            | Self::BadUserInput { message: m, .. }
            | Self::RateLimited { message: m, .. }
            | Self::InsufficientStock { message: m, .. } => m,
            Self::Internal(_) => "internal server error",
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        if let ApiError::Internal(cause) = &err {
            // Logged inside the request span, so the line carries the request id.
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", err.code());
            if let ApiError::BadUserInput {
                field: Some(field), ..
            } = &err
            {
                ext.set("field", Value::String(field.clone()));
            }
            if let ApiError::RateLimited { retry_after, .. } = &err {
                ext.set("retryAfter", *retry_after);
            }
            if let ApiError::InsufficientStock { shortfall, .. } = &err
                && let Ok(value) = Value::from_json(shortfall.clone())
            {
                ext.set("shortfall", value);
            }
        })
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        Self::internal(err)
    }
}

impl From<crate::db::PoolError> for ApiError {
    fn from(err: crate::db::PoolError) -> Self {
        Self::internal(err)
    }
}

/// Whether `err` (or anything in its chain of causes) says that a
/// dependency did not answer: no database connection (refused, timed out,
/// dropped), a gRPC peer unreachable or too slow, Redis or a socket gone.
/// Such a failure changed nothing the caller can see and is worth a retry.
pub fn is_outage(err: &anyhow::Error) -> bool {
    err.chain().any(cause_is_outage)
}

fn cause_is_outage(cause: &(dyn std::error::Error + 'static)) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    if cause.is::<crate::db::PoolError>() || cause.is::<diesel::ConnectionError>() {
        // bb8 only fails a checkout when no connection could be made in time.
        return true;
    }
    if let Some(err) = cause.downcast_ref::<Error>() {
        // diesel-async reports a connection that broke under a query
        // (no SQLSTATE) as "unable to send command".
        return matches!(
            err,
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _
            )
        );
    }
    if let Some(status) = cause.downcast_ref::<tonic::Status>() {
        return crate::rpc::did_not_answer(status);
    }
    if cause.is::<tonic::transport::Error>() {
        return true;
    }
    if let Some(err) = cause.downcast_ref::<redis::RedisError>() {
        return err.is_io_error()
            || err.is_timeout()
            || err.is_connection_refusal()
            || err.is_connection_dropped();
    }
    if let Some(err) = cause.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind::*;
        return matches!(
            err.kind(),
            ConnectionRefused
                | ConnectionReset
                | ConnectionAborted
                | NotConnected
                | BrokenPipe
                | TimedOut
                | HostUnreachable
                | NetworkUnreachable
        );
    }
    cause.is::<tokio::time::error::Elapsed>()
}

/// Whether a Diesel error is a violation of the unique constraint `name`.
pub fn is_unique_violation(err: &diesel::result::Error, name: &str) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(err, Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
        if info.constraint_name() == Some(name))
}
