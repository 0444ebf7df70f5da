//! The logistics subgraph against real PostgreSQL (and, for restocks, a real
//! inventory stock API): one fresh set of databases per test.

mod hostile;
mod restock;
mod shipments;
mod support;
