//! How subscriptions are limited, kept alive and buffered.

use std::time::Duration;

/// Limits, keep-alive and buffering of subscriptions.
#[derive(Clone, Debug)]
pub struct SubscriptionOptions {
    /// Operations open at once on one WebSocket.
    pub per_connection: usize,
    /// Subscriptions open at once by one user on this gateway (all
    /// connections, WebSocket and SSE).
    pub per_user: usize,
    /// Messages waiting for a client before it counts as not reading.
    pub buffer: usize,
    /// Pings to quiet clients (and SSE comments) this often.
    pub keepalive: Duration,
    /// How long a new WebSocket may take to send `connection_init`.
    pub init_timeout: Duration,
    /// SSE reservations (single-connection mode) one client may hold, open or not.
    pub reservations_per_client: usize,
    /// How long an SSE reservation may wait to be opened.
    pub reservation_lapse: Duration,
    /// SSE reservations waiting to be opened on one gateway, at most.
    pub max_waiting_reservations: usize,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        Self {
            per_connection: 100,
            per_user: 200,
            buffer: 64,
            keepalive: Duration::from_secs(15),
            init_timeout: Duration::from_secs(10),
            reservations_per_client: 16,
            reservation_lapse: Duration::from_secs(30),
            max_waiting_reservations: 10_000,
        }
    }
}
