//! The orders subgraph against real PostgreSQL, a real inventory (gRPC) and
//! catalog: one fresh set of databases per test.

mod cart;
mod checkout;
mod confirm;
mod events;
mod failed_delivery;
mod hostile;
mod lifecycle;
mod reads;
mod round_trips;
mod shipping;
mod support;
