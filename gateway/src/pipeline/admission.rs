//! How many operations a serving thread executes at once.
//!
//! Each operation in execution holds its response tree (a few hundred KB
//! for a large answer) until it is written. When many requests arrive at
//! once they advance in step and all hold full trees at the same moment:
//! that burst, not the steady state, set the gateway's peak memory (on the
//! federation bench, 50 connections starting together: 46–52 MB unbounded,
//! 40–44 MB at 20 per thread, 27–28 MB at 8). So a serving thread runs a
//! bounded number of executions, and the others wait their turn (first
//! come, first served) before their first fetch. The price is fewer
//! identical fetches in flight together to share: at 8 per thread the
//! subgraphs did twice the work and the gateway served 13–19 % fewer
//! requests; at 20 the difference was within the machine's drift.
//!
//! The wait is short ([`MAX_WAIT`]): a request that has not had a slot by
//! then runs anyway. A bound alone would let one slow subgraph hold every
//! slot and stall requests that never touch it; with the deadline, a slow
//! subgraph costs the others at most that wait, and only the memory bound is
//! given up. Refusals, parsing, validation and planning are never held back.

use std::{sync::Arc, time::Duration};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The longest a request waits for an execution slot before running anyway.
pub const MAX_WAIT: Duration = Duration::from_millis(50);

thread_local! {
    static SLOTS: std::cell::OnceCell<Arc<Semaphore>> = const { std::cell::OnceCell::new() };
}

/// Bounds executions on this thread (a serving thread's single-threaded
/// runtime) to `slots`; zero leaves them unbounded.
pub fn install(slots: usize) {
    if slots > 0 {
        SLOTS.with(|s| {
            let _ = s.set(Arc::new(Semaphore::new(slots)));
        });
    }
}

/// Waits up to [`MAX_WAIT`] for an execution slot on this thread; `None`
/// where executions are unbounded or the wait ran out. The slot is free
/// again when the permit is dropped.
pub async fn slot() -> Option<OwnedSemaphorePermit> {
    let slots = SLOTS.try_with(|s| s.get().cloned()).ok().flatten()?;
    // The usual case, a free slot, sets no timer.
    if let Ok(permit) = slots.clone().try_acquire_owned() {
        return Some(permit);
    }
    tokio::time::timeout(MAX_WAIT, slots.acquire_owned())
        .await
        .ok()?
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_wait_for_a_slot_but_never_longer_than_the_deadline() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(slot().await.is_none(), "unbounded before install");
            install(1);
            let first = slot().await.expect("a free slot");
            // The second waits for the first to end...
            let started = std::time::Instant::now();
            let (second, ()) = tokio::join!(slot(), async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(first);
            });
            assert!(second.is_some());
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_millis(10) && waited < MAX_WAIT,
                "{waited:?}"
            );
            // ...but no longer than the deadline, then runs without one.
            let started = std::time::Instant::now();
            assert!(slot().await.is_none());
            assert!(started.elapsed() >= MAX_WAIT);
            drop(second);
            assert!(slot().await.is_some(), "free again");
        });
    }
}
