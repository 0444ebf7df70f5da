//! The users subgraph's API against real PostgreSQL: one fresh database per test.

mod accounts;
mod admin;
mod entities;
mod migrations;
mod profiles;
mod sessions;
mod support;
