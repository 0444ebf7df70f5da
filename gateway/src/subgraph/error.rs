//! [`FetchError`]: why a subgraph gave no GraphQL response.

use std::time::Duration;

/// Largest subgraph response read (a runaway subgraph cannot exhaust memory).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Why a subgraph gave no GraphQL response.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("subgraph did not answer within {0:?}")]
    Timeout(Duration),
    #[error("subgraph unreachable: {0}")]
    Unreachable(String),
    #[error("subgraph answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("subgraph answered {0}, not GraphQL JSON")]
    MediaType(String),
    #[error("subgraph response is not GraphQL JSON: {0}")]
    Body(String),
    /// The request's subgraph answers together passed its memory budget.
    #[error("the answers to this request exceed {0} bytes")]
    OverBudget(usize),
}

impl FetchError {
    /// What a client is told: the kind of failure, never the subgraph's
    /// address, host name, transport error or answer text (those are logged).
    pub fn public(&self) -> String {
        match self {
            FetchError::Timeout(after) => format!("subgraph did not answer within {after:?}"),
            FetchError::Unreachable(_) => "subgraph unreachable".into(),
            FetchError::Status { status, .. } => format!("subgraph answered HTTP {status}"),
            FetchError::MediaType(_) | FetchError::Body(_) => {
                "subgraph response is not GraphQL JSON".into()
            }
            over @ FetchError::OverBudget(_) => over.to_string(),
        }
    }
}
