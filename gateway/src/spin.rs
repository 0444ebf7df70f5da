//! Polling instead of sleeping while a serving thread is nearly idle.
//!
//! A request through the gateway wakes it twice more than a request straight
//! to the subgraph: once when the client's request arrives, once when the
//! subgraph answers. A thread asleep in `epoll_wait` is woken by the kernel,
//! and on a virtual machine that wake (an idle vCPU brought back by the
//! host) cost 15–20 µs each here, most of what the gateway added to a
//! one-subgraph query. So while a serving thread has at most one request in
//! flight, and for a short window after its last one ended, a task on it
//! keeps yielding: the runtime then asks epoll with a zero timeout between
//! polls and sees the socket ready without being woken. With two requests
//! or more in flight the thread has work of its own and the task stops, so
//! it never takes CPU from a loaded gateway (or its subgraphs); idle, it
//! costs at most the window after each request.

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
    /// When one last started or ended.
    changed: Cell<Instant>,
    /// How long to keep polling after that.
    window: Duration,
    /// Wakes the polling task when a request starts.
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
/// runtime) for `window` after each request starts or ends. A zero window
/// turns it off.
pub fn install(window: Duration) {
    if window.is_zero() {
        return;
    }
    let start = Arc::new(Notify::new());
    let installed = SPIN.with(|spin| {
        spin.set(Spin {
            active: Cell::new(0),
            changed: Cell::new(Instant::now()),
            window,
            start: start.clone(),
            polled: Cell::new(Duration::ZERO),
        })
        .is_ok()
    });
    if installed {
        tokio::spawn(async move {
            loop {
                start.notified().await;
                let began = Instant::now();
                while SPIN.with(|spin| spin.get().is_some_and(Spin::polling)) {
                    std::thread::yield_now();
                    tokio::task::yield_now().await;
                }
                let polled = began.elapsed();
                POLLED_NS.fetch_add(polled.as_nanos() as u64, Ordering::Relaxed);
                SPIN.with(|spin| {
                    if let Some(spin) = spin.get() {
                        spin.polled.set(spin.polled.get() + polled);
                    }
                });
            }
        });
    }
}

impl Spin {
    fn polling(&self) -> bool {
        self.active.get() <= MAX_ACTIVE && self.changed.get().elapsed() < self.window
    }

    fn changed(&self, active: u32) {
        self.active.set(active);
        self.changed.set(Instant::now());
        if active <= MAX_ACTIVE {
            self.start.notify_one();
        }
    }
}

/// A request in flight on this thread, from [`enter`] until dropped.
pub struct Active(());

/// Counts a request in flight on this thread (nothing where [`install`] was
/// not called).
pub fn enter() -> Active {
    SPIN.with(|spin| {
        if let Some(spin) = spin.get() {
            spin.changed(spin.active.get() + 1);
        }
    });
    Active(())
}

impl Drop for Active {
    fn drop(&mut self) {
        SPIN.with(|spin| {
            if let Some(spin) = spin.get() {
                spin.changed(spin.active.get().saturating_sub(1));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long this thread has polled.
    fn polled_here() -> Duration {
        SPIN.with(|spin| spin.get().map_or(Duration::ZERO, |s| s.polled.get()))
    }

    async fn sleep(ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    #[test]
    fn a_thread_polls_only_near_its_one_request_and_never_when_busier() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let window = Duration::from_millis(20);
            install(window);
            assert_eq!(polled_here(), Duration::ZERO, "nothing before a request");

            // One request of 5 ms: polled through it and one window after.
            let request = enter();
            sleep(5).await;
            drop(request);
            sleep(60).await;
            let after_one = polled_here();
            assert!(
                after_one >= Duration::from_millis(24) && after_one < Duration::from_millis(60),
                "{after_one:?}"
            );

            // Idle: no polling.
            sleep(50).await;
            assert_eq!(polled_here(), after_one, "an idle thread sleeps");

            // Two in flight: the thread stops polling until one ends.
            let (a, b) = (enter(), enter());
            sleep(60).await;
            let busy = polled_here() - after_one;
            assert!(busy < Duration::from_millis(5), "{busy:?}");
            drop((a, b));
            sleep(60).await;
            let ended = polled_here() - after_one - busy;
            // From the task's first turn after the last change: a window, less
            // the moment until it was scheduled.
            assert!(
                ended >= window * 9 / 10,
                "polled again after they ended: {ended:?}"
            );
        });
    }

    #[test]
    fn a_zero_window_never_polls() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            install(Duration::ZERO);
            let request = enter();
            sleep(10).await;
            drop(request);
            assert!(SPIN.with(|spin| spin.get().is_none()));
        });
    }
}
