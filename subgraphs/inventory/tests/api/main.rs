//! The inventory subgraph against real PostgreSQL: one fresh database per test.

mod commit;
mod contention;
mod events;
mod graphql;
mod reservations;
mod restock;
mod rpc;
mod support;
