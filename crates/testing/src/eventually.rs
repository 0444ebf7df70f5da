//! Waiting in tests for what is expected to happen, instead of sleeping and
//! hoping it has.
//!
//! A test that needs a server up, an event relayed or a subscription open
//! polls for exactly that every few milliseconds, so it goes on the moment
//! the condition holds, and on a loaded machine it waits as long as it takes
//! up to a deadline, then fails naming what it waited for and what it saw
//! last. Only tokio is used, so this module can move wherever test support
//! for components without a database lives.

use std::{fmt::Debug, time::Duration};

/// How long [`eventually`] and [`wait_until`] wait before failing.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// How often they look again.
const EVERY: Duration = Duration::from_millis(5);

/// Polls `probe` until it answers `Ok`, and returns what it found; fails the
/// test naming `what`, with the last `Err` seen, once [`DEADLINE`] has passed.
pub async fn eventually<T, E: Debug>(what: &str, probe: impl AsyncFnMut() -> Result<T, E>) -> T {
    eventually_within(DEADLINE, what, probe).await
}

/// [`eventually`] with a deadline of its own.
pub async fn eventually_within<T, E: Debug>(
    deadline: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let started = tokio::time::Instant::now();
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(last) if started.elapsed() >= deadline => {
                panic!("waited {deadline:?} for {what}; last seen: {last:#?}")
            }
            Err(_) => tokio::time::sleep(EVERY).await,
        }
    }
}

/// Polls `condition` until it holds; fails the test naming `what` once
/// [`DEADLINE`] has passed.
pub async fn wait_until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    eventually(what, async || {
        condition().await.then_some(()).ok_or("not yet")
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_what_the_probe_found_once_it_holds() {
        let calls = AtomicU32::new(0);
        let found = eventually("the third call", async || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 { Ok(n) } else { Err(n) }
        })
        .await;
        assert_eq!(found, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "for the impossible; last seen: 7")]
    async fn fails_naming_what_it_waited_for_and_what_it_saw_last() {
        eventually_within(Duration::from_millis(30), "the impossible", async || {
            Err::<(), _>(7)
        })
        .await;
    }
}
