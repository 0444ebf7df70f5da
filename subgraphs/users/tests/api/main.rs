//! The users subgraph's API against real PostgreSQL: one fresh database per test.

mod access;
mod accounts;
mod admin;
mod entities;
mod hostile;
mod mailer;
mod migrations;
mod notifications;
mod profiles;
mod sessions;
mod smtp_sink;
mod support;
mod throttle;
