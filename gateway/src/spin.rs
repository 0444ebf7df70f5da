//! Polling instead of sleeping while a serving thread is nearly idle.
//!
//! A request through the gateway wakes it twice more than a request straight
//! to the subgraph: once when the client's request arrives, once when the
//! subgraph answers. A thread asleep in `epoll_wait` is woken by the kernel,
//! and on a virtual machine that wake (an idle vCPU brought back by the
//! host) cost 15–20 µs each here, most of what the gateway added to a
//! one-subgraph query. So while a serving thread has at most one request in
//! flight, for a short window after a request starts, sends a subgraph
//! fetch or ends, a task on it keeps yielding: the runtime then asks epoll
//! with a zero timeout between turns and sees the socket ready without
//! being woken. Each turn also calls `sched_yield`, so a task waiting on
//! that CPU's run queue (a subgraph, say) runs first.
//!
//! The condition is per thread: a thread with two or more requests in
//! flight has work of its own and never polls, and a request longer than
//! the window stops being polled for. But connections are dealt to the
//! threads in turn, so as few connections as threads keep every thread
//! polling while they send requests back to back: that is CPU the machine
//! would otherwise leave idle, at most about two windows per request.
//! [`polled`] tells how long the polling windows lasted.

use std::{
    cell::Cell,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;

/// A serving thread's polling state.
struct Spin {
    /// Requests in flight on this thread.
    active: Cell<u32>,
    /// When one last started, sent a fetch or ended.
    changed: Cell<Instant>,
    /// How long to keep polling after that.
    window: Duration,
    /// Wakes the polling task when something changes.
    start: Arc<Notify>,
    /// How long this thread has polled.
    polled: Cell<Duration>,
}

thread_local! {
    static SPIN: std::cell::OnceCell<Spin> = const { std::cell::OnceCell::new() };
}

/// Nanoseconds all serving threads have spent polling.
static POLLED_NS: AtomicU64 = AtomicU64::new(0);

/// How long the serving threads have spent polling, all together.
pub fn polled() -> Duration {
    Duration::from_nanos(POLLED_NS.load(Ordering::Relaxed))
}

/// The most requests in flight on a thread for it still to poll.
const MAX_ACTIVE: u32 = 1;

/// Starts polling on this thread (a serving thread's single-threaded
/// runtime) for `window` after each request starts, fetches or ends. A zero
/// window, or a runtime of several threads (whose tasks move between
/// threads), turns it off.
pub fn install(window: Duration) {
    let single = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
    if window.is_zero() || !single {
        return;
    }
    let start = Arc::new(Notify::new());
    let installed = SPIN.with(|spin| spin.set(Spin::new(window, start.clone())).is_ok());
    if installed {
        tokio::spawn(async move {
            loop {
                start.notified().await;
                let began = Instant::now();
                while with_spin(|spin| spin.polling(Instant::now())).unwrap_or(false) {
                    std::thread::yield_now();
                    tokio::task::yield_now().await;
                }
                let polled = began.elapsed();
                POLLED_NS.fetch_add(polled.as_nanos() as u64, Ordering::Relaxed);
                with_spin(|spin| spin.polled.set(spin.polled.get() + polled));
            }
        });
    }
}

/// `f` on this thread's polling state, if it has one.
fn with_spin<T>(f: impl FnOnce(&Spin) -> T) -> Option<T> {
    SPIN.try_with(|spin| spin.get().map(f)).ok().flatten()
}

impl Spin {
    fn new(window: Duration, start: Arc<Notify>) -> Self {
        Self {
            active: Cell::new(0),
            changed: Cell::new(Instant::now()),
            window,
            start,
            polled: Cell::new(Duration::ZERO),
        }
    }

    /// Whether to keep polling at `now`.
    fn polling(&self, now: Instant) -> bool {
        self.active.get() <= MAX_ACTIVE && now.duration_since(self.changed.get()) < self.window
    }

    /// `active` requests in flight from `now` on; something just happened.
    fn changed(&self, active: u32, now: Instant) {
        self.active.set(active);
        self.changed.set(now);
        if active <= MAX_ACTIVE {
            self.start.notify_one();
        }
    }
}

/// A request in flight on this thread, from [`enter`] until dropped (on the
/// same thread: the runtimes [`install`] polls on never move a task).
pub struct Active(());

/// Counts a request in flight on this thread (nothing where [`install`] was
/// not called).
pub fn enter() -> Active {
    with_spin(|spin| spin.changed(spin.active.get() + 1, Instant::now()));
    Active(())
}

/// A subgraph fetch is being sent: its answer is worth a window of polling.
pub fn fetching() {
    with_spin(|spin| spin.changed(spin.active.get(), Instant::now()));
}

impl Drop for Active {
    fn drop(&mut self) {
        with_spin(|spin| spin.changed(spin.active.get().saturating_sub(1), Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(20);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn polling_lasts_a_window_after_each_change_while_at_most_one_request_is_in_flight() {
        let spin = Spin::new(WINDOW, Arc::new(Notify::new()));
        let t0 = Instant::now();
        spin.changed(1, t0);
        assert!(spin.polling(t0 + ms(19)), "one request: polled for");
        assert!(
            !spin.polling(t0 + ms(21)),
            "a request longer than the window stops being polled for"
        );
        spin.changed(1, t0 + ms(30)); // it sends a fetch
        assert!(spin.polling(t0 + ms(45)));
        spin.changed(0, t0 + ms(60)); // it ends
        assert!(spin.polling(t0 + ms(79)), "a window for the next request");
        assert!(!spin.polling(t0 + ms(81)), "then idle: no polling");
        spin.changed(1, t0 + ms(90));
        spin.changed(2, t0 + ms(91));
        assert!(!spin.polling(t0 + ms(92)), "two in flight: none");
        spin.changed(1, t0 + ms(95));
        assert!(spin.polling(t0 + ms(96)), "back to one");
    }

    /// How long this thread has polled.
    fn polled_here() -> Duration {
        with_spin(|s| s.polled.get()).unwrap_or_default()
    }

    async fn sleep(ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_serving_thread_polls_after_a_request_and_sleeps_when_idle() {
        current_thread().block_on(async {
            install(WINDOW);
            assert_eq!(polled_here(), Duration::ZERO, "nothing before a request");
            let request = enter();
            sleep(5).await;
            drop(request);
            // Loose bounds: a loaded machine may hold this thread back.
            sleep(200).await;
            let after = polled_here();
            assert!(after >= ms(10), "polled: {after:?}");
            sleep(100).await;
            assert_eq!(polled_here(), after, "an idle thread sleeps");
        });
    }

    #[test]
    fn nothing_polls_with_a_zero_window_or_on_a_runtime_of_several_threads() {
        current_thread().block_on(async {
            install(Duration::ZERO);
            assert!(with_spin(|_| ()).is_none());
            assert_eq!(
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks(),
                0
            );
        });
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                install(WINDOW);
                assert!(with_spin(|_| ()).is_none());
                assert_eq!(
                    tokio::runtime::Handle::current()
                        .metrics()
                        .num_alive_tasks(),
                    0
                );
            });
    }
}
