//! OpenTelemetry traces, exported over OTLP: each component's [`Tracer`]
//! (configured by the standard `OTEL_*` variables, [`Config`]) opens
//! [`Span`]s in the caller's W3C trace, and an exporter task sends them in
//! batches to a collector over gRPC or HTTP/protobuf. A span is written as
//! OTLP protobuf while it runs and when it ends ([`encode`]), into its
//! thread's batch ([`export`]): nothing is built to be encoded later.
//!
//! Written here rather than taken from `opentelemetry_sdk` +
//! `opentelemetry-otlp`: those bring an SDK, a second HTTP client stack and
//! a context model of their own for what is, in grocery, a few span kinds
//! opened at known places; this uses the tonic, hyper and prost already built
//! for the rest. Off (no endpoint) is a `None`: spans are empty values, with
//! no exporter task and no allocation.

mod config;
mod encode;
mod export;
pub mod proto;
#[cfg(feature = "receiver")]
pub mod receiver;
mod span;

pub use config::{Config, ENV, Export, Protocol, Root, Sampler};
pub use export::{MAX_BATCH, QUEUE, SCHEDULE_DELAY};
pub use span::{Kind, Span, SpanContext, Tracer, Value};

#[cfg(test)]
mod tests;
