//! Identical queries in flight answered once (`REQUEST_DEDUPLICATION`), as
//! Hive Router's `traffic_shaping.router.dedupe` does: while a query runs,
//! a request that would run exactly the same (same loaded supergraph, same
//! planned operation, same variables, same caller and every same header)
//! waits for its answer's bytes instead of executing again. Each request
//! still passes every earlier stage on its own (token, limits, rate,
//! quotas, usage), so only the execution and the writing are shared.
//! Mutations and subscriptions never are.
//!
//! The first request leads: it runs and publishes its answer. A leader that
//! is cancelled (its client left) publishes nothing, and its followers then
//! run on their own: no one waits for an answer that will not come.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::pipeline::{Answered, Ready};

/// A written answer, shareable.
#[derive(Clone)]
pub struct Shared {
    pub body: Bytes,
    pub clean: bool,
    pub retry_after: Option<u64>,
}

impl From<Answered> for Shared {
    fn from(a: Answered) -> Self {
        Self {
            body: Bytes::from(a.body),
            clean: a.clean,
            retry_after: a.retry_after,
        }
    }
}

type Slot = watch::Receiver<Option<Shared>>;

/// The queries in flight, by what makes them the same, and how many
/// requests wait for one of them.
#[derive(Default)]
pub struct Inbound(
    Mutex<rustc_hash::FxHashMap<[u8; 32], Slot>>,
    std::sync::atomic::AtomicUsize,
);

/// What a request does: run and publish, or wait for the one that runs.
pub enum Turn {
    Lead(Lead),
    Follow(Follower),
}

/// A request waiting for an identical one's answer.
pub struct Follower {
    inbound: Arc<Inbound>,
    slot: Slot,
}

impl Follower {
    /// The leader's answer; `None` when it left without one.
    pub async fn answer(mut self) -> Option<Shared> {
        self.slot.wait_for(Option::is_some).await.ok()?.clone()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.inbound
            .1
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The running request's duty to publish; leaving the map when it ends.
pub struct Lead {
    inbound: Arc<Inbound>,
    key: [u8; 32],
    tx: watch::Sender<Option<Shared>>,
}

impl Lead {
    /// Hands `answer` to every follower. A request arriving from now on
    /// runs again: it never gets an answer finished before it came.
    pub fn publish(self, answer: &Shared) {
        self.leave();
        self.tx.send_replace(Some(answer.clone()));
    }

    fn leave(&self) {
        let mut map = self.inbound.0.lock().unwrap_or_else(|e| e.into_inner());
        // Only our own entry: a later leader's under the same key stays.
        if map
            .get(&self.key)
            .is_some_and(|slot| slot.same_channel(&self.tx.subscribe()))
        {
            map.remove(&self.key);
        }
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Inbound {
    /// Leads `key`, or follows the request in flight under it.
    pub fn turn(self: &Arc<Self>, key: [u8; 32]) -> Turn {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = map.get(&key)
            && slot.has_changed().is_ok()
        {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Turn::Follow(Follower {
                inbound: self.clone(),
                slot: slot.clone(),
            });
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key, rx);
        Turn::Lead(Lead {
            inbound: self.clone(),
            key,
            tx,
        })
    }

    /// How many queries are in flight.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many requests wait for an identical one's answer.
    pub fn waiting(&self) -> usize {
        self.1.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The document a request names, as sent: its text (or persisted id and
/// extensions) and operation name, hashed before the request is resolved.
pub fn document(request: &crate::pipeline::GraphqlRequest) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in [
        request.query.as_deref(),
        request.operation_name.as_deref(),
        request.document_id.as_deref(),
    ] {
        match part {
            Some(text) => {
                hash.update((text.len() as u64 + 1).to_le_bytes());
                hash.update(text.as_bytes());
            }
            None => hash.update(0u64.to_le_bytes()),
        }
    }
    let _ = serde_json::to_writer(HashWriter(&mut hash), &request.extensions);
    hash.finalize().into()
}

/// What makes two ready queries the same: the SHA-256 of the `document`
/// sent, the loaded supergraph it was planned against (by identity), the
/// coerced variables, the caller and every header as sent, in order, but
/// for [`SKIPPED`].
pub fn key(
    document: &[u8; 32],
    ready: &Ready,
    variables: &Map<String, Value>,
    headers: &HeaderMap,
) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(document);
    hash.update((Arc::as_ptr(&ready.loaded) as usize).to_le_bytes());
    // Writing to a hasher cannot fail.
    let _ = serde_json::to_writer(HashWriter(&mut hash), variables);
    match &ready.claims {
        Some(claims) => {
            hash.update([1]);
            hash.update(claims.sub.as_bytes());
        }
        None => hash.update([0]),
    }
    for (name, value) in headers {
        if SKIPPED.contains(&name.as_str()) {
            continue;
        }
        let (name, value) = (name.as_str().as_bytes(), value.as_bytes());
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name);
        hash.update((value.len() as u64).to_le_bytes());
        hash.update(value);
    }
    hash.finalize().into()
}

/// Headers no answer depends on: each request's own id and trace context
/// (the gateway sets both on every request; a shared execution carries the
/// first request's to the subgraphs, as a shared fetch does) and the length
/// of a body already read.
const SKIPPED: [&str; 4] = [
    "x-request-id",
    "traceparent",
    "tracestate",
    "content-length",
];

struct HashWriter<'h>(&'h mut sha2::Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(text: &'static str) -> Shared {
        Shared {
            body: Bytes::from_static(text.as_bytes()),
            clean: true,
            retry_after: None,
        }
    }

    #[tokio::test]
    async fn followers_get_the_leaders_answer_and_the_key_is_free_after() {
        let inbound = Arc::new(Inbound::default());
        let Turn::Lead(lead) = inbound.turn([1; 32]) else {
            panic!("the first leads")
        };
        let Turn::Follow(follower) = inbound.turn([1; 32]) else {
            panic!("the second follows")
        };
        assert_eq!(inbound.waiting(), 1);
        assert!(
            matches!(inbound.turn([2; 32]), Turn::Lead(_)),
            "another key leads"
        );
        lead.publish(&shared("answer"));
        assert_eq!(follower.answer().await.unwrap().body, "answer");
        assert_eq!(inbound.waiting(), 0);
        assert!(inbound.is_empty(), "a published lead leaves the map");
        assert!(matches!(inbound.turn([1; 32]), Turn::Lead(_)));
    }

    #[tokio::test]
    async fn a_leader_that_leaves_without_answering_lets_its_followers_run() {
        let inbound = Arc::new(Inbound::default());
        let lead = inbound.turn([1; 32]);
        let Turn::Follow(follower) = inbound.turn([1; 32]) else {
            panic!("follows")
        };
        drop(lead);
        assert!(follower.answer().await.is_none());
        assert!(inbound.is_empty());
    }
}
