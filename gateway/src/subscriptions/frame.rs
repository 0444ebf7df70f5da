//! [`Frame`]: what one client operation sends its client, whichever way it
//! subscribed.

use bytes::Bytes;
use serde_json::Value;

/// What one operation sends its client.
#[derive(Clone, Debug)]
pub enum Frame {
    /// A result (the written response JSON).
    Next(Bytes),
    /// The operation failed before producing results (GraphQL errors); ends it.
    Error(Value),
    /// The operation is over.
    Complete,
}
