//! Serving the gateway: what listens, accepts and answers HTTP.
//!
//! - [`gateway`]: [`Gateway`], everything a server serves (the request
//!   pipeline, subscriptions, edge policies), built from [`GatewayOptions`];
//! - [`threads`]: one single-threaded runtime per core and the acceptor;
//! - [`http1`]: a client connection; `POST /graphql` on the gateway's own
//!   HTTP/1.1 lane, anything else handed to hyper;
//! - [`routes`]: every route (GraphQL over GET and POST, WebSocket upgrade,
//!   `/health`, `/ready`, `/metrics`, GraphiQL), each request's id, span
//!   and log line;
//! - [`graphiql`]: the GraphiQL page and the files it loads, embedded;
//! - [`cors`], [`csrf`]: browser policies.
//!
//! Request ids, trace context and log lines are the telemetry crate's.
//!
//! The top of the gateway: uses every other folder.

pub mod cors;
pub mod csrf;
pub mod gateway;
pub mod graphiql;
pub mod http1;
pub mod routes;
pub mod threads;

pub use gateway::{Gateway, GatewayOptions, watch};
pub use routes::{Edge, edge, metrics_router, rest_router, router};
pub use threads::{ConnectionTimeouts, Serving, serve};
