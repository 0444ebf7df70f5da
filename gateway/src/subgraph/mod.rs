//! The subgraph client: how the gateway reaches the subgraphs of a supergraph.
//!
//! - [`registry`]: a supergraph's subgraphs by name (URL, timeout) and the
//!   byte budget of one request's answers;
//! - [`client`]: GraphQL over HTTP POST with a deadline, identical fetches in
//!   flight shared, answers read into [`crate::value`];
//! - [`pool`]: keep-alive HTTP/1.1 connections per serving thread, framed by
//!   [`crate::framing`];
//! - [`readiness`]: whether every subgraph is ready, for `/ready`;
//! - [`error`]: why a fetch failed.
//!
//! Uses only the leaf modules (values, framing, metrics).

pub mod client;
pub mod error;
pub mod pool;
pub mod readiness;
pub mod registry;

pub use client::{SubgraphClient, SubgraphRequest, SubgraphResponse};
pub use error::{FetchError, MAX_RESPONSE_BYTES};
pub use registry::{DEFAULT_REQUEST_BUDGET, Subgraphs};
