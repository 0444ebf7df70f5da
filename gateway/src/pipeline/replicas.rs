//! What replicas of the gateway share through Redis (APQ documents in
//! [`super::persisted`], rate buckets in [`super::ratelimit`]), and the
//! connection they take to it.
//!
//! The connection is redis' own [`ConnectionManager`]: opened on first use,
//! opened again after it broke (a Redis restart, a network cut), one attempt
//! shared by every request that waits for it. It makes no further attempts
//! with backoff: a request never waits for Redis to come back, it falls back
//! to this process's memory (and a later request tries again), so a Redis
//! outage costs a request at most the library's connection timeout (1 s) or
//! response timeout (0.5 s), as with the hand-written link this replaced
//! (`gateway/tests/persisted.rs` restarts Redis under both).

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A connection to the Redis at `url`, opened when first used. Called within
/// a tokio runtime: the manager starts a task that watches the connection.
pub fn connect(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url).context("REDIS_URL is not a Redis URL")?;
    let config = ConnectionManagerConfig::new().set_number_of_retries(0);
    Ok(ConnectionManager::new_lazy_with_config(client, config)?)
}
