//! The federation gateway: it serves one GraphQL API over any Federation v2
//! supergraph (Apollo `join__` v0.3 format), whoever composed it.
//!
//! # Layout
//!
//! One folder per stage of a request, in the order a request meets them.
//! Each folder's `mod.rs` says what it holds and what it may use; a folder
//! uses only folders below it in this list, never one above.
//!
//! ```text
//! config, launch   the gateway as the launcher runs it: its settings from the
//!                  environment (`Config::from_env`, declared in `config::ENV`), and
//!                  `start`, which builds it, and `Started::spawn`, which serves it
//! server/          listeners and serving threads, client connections (the HTTP/1.1
//!                  lane for POST /graphql, hyper for the rest), routes, CORS, CSRF;
//!                  `Gateway`, what a server serves
//! rest/            REST endpoints declared in route files, each a trusted document
//!                  run through the pipeline; their OpenAPI document
//! subscriptions/   subscriptions over WebSocket (graphql-transport-ws and the older
//!                  graphql-ws) and SSE (distinct connections and reservations):
//!                  per-user registry, shared upstream subscriptions (fan-out), the
//!                  graphql-transport-ws client
//! pipeline/        a GraphQL request from its JSON to its written answer: parsing,
//!                  edge auth, persisted documents, limits, rate limits, planning
//!                  (planning/: composition, validation, caches), variable coercion,
//!                  introspection, admission
//! execution/       the plan walk: representations, merging, error paths, and the
//!                  projection of the merged tree into the client's answer
//! entity_cache/    entity fetches' answers kept as subgraphs' Cache-Control allows
//!                  (Redis or memory), dropped when the launcher says an entity changed
//! subgraph/        the subgraph client: registry of a supergraph's subgraphs,
//!                  fetches with deduplication, the HTTP/1.1 connection pool,
//!                  TLS and HTTP/2 connections (per-subgraph options), readiness
//! value/, framing, busy_poll, metrics
//!                  leaves every stage uses: JSON values and their reader, HTTP/1.1
//!                  framing, polling while a thread is nearly idle, Prometheus counters
//! ```
//!
//! Of grocery's crates it uses only auth (edge token verification) and
//! telemetry (request ids, trace context, log lines): it serves any
//! supergraph, so it knows no subgraph, no kit and no domain role (which
//! roles run only persisted documents is configuration).
//!
//! The hot path of a `POST /graphql`: [`server::http1`] reads the request →
//! [`server::routes`] opens its context → [`pipeline::prepare()`] verifies,
//! resolves, limits and plans it → [`pipeline::answer()`] admits it and runs
//! [`execution::execute`] → [`subgraph::SubgraphClient`] fetches over
//! [`subgraph::pool`] → [`execution::projection`] writes the answer.

pub mod busy_poll;
pub mod config;
pub mod entity_cache;
pub mod execution;
pub mod framing;
pub mod launch;
pub mod metrics;
pub mod pipeline;
pub mod rest;
pub mod server;
pub mod subgraph;
pub mod subscriptions;
pub mod value;

pub use config::Config;
pub use launch::{Started, start};
pub use pipeline::planning::{PlanError, Prepared, SubgraphSource, Supergraph, compose};
pub use server::{
    ConnectionTimeouts, Gateway, GatewayOptions, Serving, edge, metrics_router, router, serve,
    watch,
};
