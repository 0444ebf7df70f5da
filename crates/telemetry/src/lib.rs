//! What ties a request's log lines together across components: its id
//! ([`request`]: `x-request-id`, taken from the caller or made up, and the
//! line logged when it finished), its W3C trace context ([`trace`]:
//! `traceparent`), the process's logging set-up ([`logging`]), and the
//! spans each component exports over OTLP ([`otel`]).
//!
//! The gateway gives every request an id and a span of its own in the
//! caller's trace and passes both to every subgraph; kit's subgraph server
//! reads them back, so one request is one id in every component's logs.
//! Used by kit and the gateway; it uses no other grocery crate.

pub mod histogram;
pub mod logging;
pub mod otel;
pub mod request;
pub mod trace;

pub use logging::{ENV, init};
pub use request::{X_REQUEST_ID, finish_logged, log_finished, new_request_id, request_id};
pub use trace::{TRACEPARENT, Traceparent};
