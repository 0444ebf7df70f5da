//! The subgraph client: how the gateway reaches the subgraphs of a supergraph.
//!
//! - [`registry`]: a supergraph's subgraphs by name (URL, timeout) and the
//!   byte budget of one request's answers;
//! - [`client`]: GraphQL over HTTP POST with a deadline, identical fetches in
//!   flight shared, answers read into [`crate::value`];
//! - [`endpoint`]: a subgraph's URL and how it is reached, as its
//!   [`options`] (CA file, client certificate, HTTP/2) say;
//! - [`pool`]: the HTTP/1.1 lane to plain `http://` subgraphs: keep-alive
//!   connections per serving thread, framed by [`crate::framing`];
//! - [`connector`]: hyper's connections to every other subgraph: over TLS
//!   ([`tls`], HTTP/2 or HTTP/1.1 by ALPN) or HTTP/2 with prior knowledge;
//! - [`readiness`]: whether every subgraph is ready, for `/ready`;
//! - [`local`]: subgraphs the gateway answers itself (`gateway://` URLs);
//! - [`error`]: why a fetch failed.
//!
//! Uses only the leaf modules (values, framing, metrics).

pub mod client;
pub mod connector;
pub mod endpoint;
pub mod error;
pub mod local;
pub mod options;
pub mod pool;
pub mod readiness;
pub mod registry;
pub mod tls;

pub use client::{SubgraphClient, SubgraphRequest, SubgraphResponse};
pub use endpoint::Endpoint;
pub use error::{FetchError, MAX_RESPONSE_BYTES};
pub use options::{OptionsError, SubgraphOptions};
pub use registry::{DEFAULT_REQUEST_BUDGET, Subgraphs};
