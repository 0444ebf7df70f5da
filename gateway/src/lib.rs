//! The federation gateway: it serves one GraphQL API over any Federation v2
//! supergraph (Apollo `join__` v0.3 format), whoever composed it.
//!
//! The request pipeline is a straight line of named stages: parse → validate
//! against the API schema → normalize → plan → execute. This crate holds the
//! stages that need only the supergraph: [`compose`] (subgraph SDLs into a
//! supergraph, with the fix-up the planner needs), [`planning`] (loading a
//! supergraph and turning client operations into cached query plans) and
//! [`fetch`] (fetches from subgraphs, over [`connections`]). The executor
//! and the HTTP edge build on these.

pub mod admission;
pub mod auth;
pub mod coerce;
pub mod compose;
pub mod connections;
pub mod cors;
pub mod csrf;
pub mod entity_errors;
pub mod execution;
pub mod fetch;
pub mod field_merging;
pub mod http;
pub mod introspection;
pub mod lane;
pub mod limits;
pub mod metrics;
pub mod persisted;
pub mod planner_input;
pub mod planning;
pub mod projection;
pub mod ratelimit;
pub mod readiness;
pub mod server;
pub mod spin;
pub mod subscriptions;
pub mod upstream;
pub mod validation_gaps;
pub mod value;
pub mod wire;

pub use compose::{SubgraphSource, compose};
pub use planning::{PlanError, Prepared, Supergraph};
