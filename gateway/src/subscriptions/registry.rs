//! How many subscriptions are open, in all and per user, with the per-user
//! limit (`SUBSCRIPTION_LIMIT`): a subscription holds a `Slot` while it
//! is open.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use serde_json::{Value, json};

use crate::subscriptions::frame::Frame;
use uuid::Uuid;

/// Open subscriptions of one gateway, by user.
#[derive(Default)]
pub struct Registry {
    by_user: Mutex<HashMap<Uuid, usize>>,
    open: AtomicUsize,
}

impl Registry {
    /// Client subscriptions open on this gateway.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// A place for one more subscription of `user`, if under `limit`.
    pub(crate) fn take(self: &Arc<Self>, user: Option<Uuid>, limit: usize) -> Option<Slot> {
        if let Some(user) = user {
            let mut by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
            let count = by_user.entry(user).or_default();
            if *count >= limit {
                return None;
            }
            *count += 1;
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            registry: self.clone(),
            user,
        })
    }
}

/// One counted subscription; counted off when dropped.
pub(crate) struct Slot {
    registry: Arc<Registry>,
    user: Option<Uuid>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(user) = self.user {
            let mut by_user = self
                .registry
                .by_user
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(count) = by_user.get_mut(&user) {
                *count -= 1;
                if *count == 0 {
                    by_user.remove(&user);
                }
            }
        }
    }
}

pub(crate) fn limit_error(message: String) -> Value {
    json!([{ "message": message, "extensions": { "code": "SUBSCRIPTION_LIMIT" } }])
}

/// Subscriptions open on subgraphs, shared: clients that send the same
/// operation with the same variables and the same token get the same
/// events, so one upstream subscription (and one run of the entity fetches
/// per event) serves them all, as Apollo Router's deduplication does.
#[derive(Default)]
pub struct Upstreams {
    open: Mutex<HashMap<Arc<str>, Arc<Shared>>>,
}

impl Upstreams {
    /// Subscriptions this gateway holds open on subgraphs.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<Shared>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One upstream subscription and the clients it feeds.
pub struct Shared {
    pub events: tokio::sync::broadcast::Sender<Frame>,
    /// Clients following it; the upstream is stopped when the last leaves.
    pub members: AtomicUsize,
    pub task: Mutex<Option<tokio::task::AbortHandle>>,
}
