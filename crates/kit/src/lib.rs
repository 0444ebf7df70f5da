//! Shared plumbing for grocery's subgraphs.
//!
//! Everything a subgraph needs that is not its domain: typed configuration from
//! the environment ([`config`]), the Postgres pool and embedded migrations
//! ([`db`]), token verification and role guards ([`auth`]), the error type that
//! carries `extensions.code` ([`error`]), the keep/clear/set value of an
//! update field ([`change`]), service-token gRPC clients ([`rpc`]), domain
//! events through an outbox to Redis Streams or an in-process bus
//! ([`events`]), and the axum server with `/graphql` (subscriptions over
//! WebSocket included), `/health`, `/ready` and `/metrics` ([`server`], the
//! last per component: [`metrics`]), answering in the
//! media type the client accepts ([`media`]) after one input rule for every
//! subgraph ([`input`]), and the spans it exports in the caller's trace
//! ([`trace`]: request, operation, SQL). A subgraph crate builds its schema and hands it to
//! [`server::router`], and its `start` returns a [`component::Started`]:
//! the `grocery` binary decides where it runs.
//!
//! What the gateway shares with the subgraphs is not here but in the crates
//! kit builds on and re-exports: config ([`config`]), auth (under [`auth`])
//! and telemetry ([`telemetry`]); the gateway never depends on kit.

pub mod alloc;
pub mod auth;
pub mod change;
pub mod component;
/// Typed configuration from the environment (the config crate, re-exported).
pub use settings as config;
pub mod db;
pub mod documents;
pub mod error;
pub mod events;
pub mod input;
pub mod lines;
pub mod media;
pub mod metrics;
pub mod pagination;
pub mod prepared;
pub mod rpc;
pub mod scalars;
pub mod server;
pub mod trace;
/// Request ids, trace context and logging set-up (the telemetry crate, re-exported).
pub use telemetry;
#[cfg(feature = "testing")]
pub mod testing;

/// Typed configuration from the environment (the `grocery-config` crate,
/// which the gateway uses too).
pub use error::{ApiError, ApiResult};
