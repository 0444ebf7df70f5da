//! A GraphQL request from its JSON to its written answer, as a straight line
//! of named stages:
//!
//! 1. [`request`]: the GraphQL-over-HTTP request as sent (body, GET
//!    parameters, bearer token, client address);
//! 2. [`auth`]: the bearer token verified at the edge;
//! 3. [`persisted`]: the document resolved (sent, APQ, or a trusted document
//!    by id) and the persisted-only rule;
//! 4. [`limits`]: variables and the document measured before anything expands;
//! 5. [`ratelimit`]: the caller's rate, checked before planning costs CPU;
//! 6. [`planning`]: validation, normalization and the query plan, cached;
//! 7. [`coerce`]: variables coerced to the operation's types;
//! 8. [`admission`] and [`answer()`]: a bounded number of executions per
//!    thread, [`crate::execution`] run, [`introspection`] fields filled in,
//!    the answer written; with [`inbound`] deduplication an identical query
//!    in flight answers instead.
//!
//! [`prepare()`] runs stages 1–7 and gives a [`Ready`] operation or a
//! [`Refusal`]; [`state`] holds what every request shares (the loaded
//! supergraph, caches, limiters), replaced whole on a supergraph reload;
//! [`replicas`] is the Redis connection through which replicas share APQ
//! documents, rate buckets and [`usage`] (partner usage and quotas, checked
//! in stage 5).
//!
//! Uses [`crate::execution`], [`crate::subgraph`] and the leaf modules; never
//! the server or subscriptions, which build on this.

pub mod admission;
pub mod answer;
pub mod auth;
pub mod coerce;
pub mod inbound;
pub mod introspection;
pub mod limits;
pub mod persisted;
pub mod planning;
pub mod prepare;
pub mod ratelimit;
pub mod refusal;
pub mod replicas;
pub mod request;
pub mod response;
pub mod state;
pub mod usage;

pub use answer::{Answered, DEFAULT_MAX_ERRORS, answer, cap_errors, write_response};
pub use prepare::{Ready, plan, prepare};
pub use refusal::Refusal;
pub use request::{GraphqlRequest, MAX_BODY_BYTES, REQUEST_TIMEOUT, Report, bearer, peer_of};
pub use state::{Loaded, Pipeline, PipelineOptions};
