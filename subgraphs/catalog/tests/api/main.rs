//! The catalog subgraph's API against real PostgreSQL: one fresh database per test.

mod admin;
mod config;
mod create;
mod delete;
mod demo;
mod entities;
mod events;
mod grpc;
mod hostile;
mod listing;
mod migrations;
mod scale;
mod support;
mod update;
