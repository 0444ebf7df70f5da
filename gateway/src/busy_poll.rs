//! Polling instead of sleeping while a serving thread is nearly idle.
//!
//! A request through the gateway wakes it twice more than a request straight
//! to the subgraph: once when the client's request arrives, once when the
//! subgraph answers. A thread asleep in `epoll_wait` is woken by the kernel,
//! and on a virtual machine that wake (an idle vCPU brought back by the
//! host) cost 15–70 µs each here, most of what the gateway added to a
//! one-subgraph query. So while a serving thread has at most one request in
//! flight, for a window after a request starts, sends a subgraph fetch or
//! ends, a task on it keeps yielding: the runtime then asks epoll with a
//! zero timeout between turns and sees the socket ready without being
//! woken. Each turn also calls `sched_yield`, so a task waiting on that
//! CPU's run queue (a subgraph, say) runs first.
//!
//! The windows follow what the thread waits for. Each thread learns how
//! long its subgraphs take to answer and how long its clients take to send
//! their next request once answered (moving averages), and polls three
//! times that after a fetch, or after a request ends, up to the longest
//! window ([`install`]'s `longest`): a fixed window shorter than a
//! subgraph's answer was spun through in full and then slept anyway (with
//! a 100 µs window and a subgraph answering in 150 µs, a one-subgraph query
//! took 1.7× as long as going direct; with windows covering the answer,
//! 1.1–1.3×). When the usual wait is more than half the longest window,
//! nothing is polled for it: a wake-up is then small beside the wait, and
//! spinning would be waste.
//!
//! The condition is per thread: a thread with two or more requests in
//! flight has work of its own and never polls, and a request longer than
//! its window stops being polled for. But connections are dealt to the
//! threads in turn, so as few connections as threads keep every thread
//! polling while they send requests back to back: that is CPU the machine
//! would otherwise leave idle. [`polled`] tells how long the polling
//! windows lasted.

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
    /// Until when to poll (while at most [`MAX_ACTIVE`] are in flight).
    until: Cell<Instant>,
    /// The longest window.
    longest: Duration,
    /// How long this thread's subgraph fetches usually take.
    answer: Wait,
    /// How long after a request ended the next one usually starts.
    next: Wait,
    /// When the last request ended, while none is in flight.
    ended: Cell<Option<Instant>>,
    /// Wakes the polling task when something changes.
    start: Arc<Notify>,
    /// How long this thread has polled.
    polled: Cell<Duration>,
}

/// A moving average of how long something takes, learnt one wait at a time.
struct Wait(Cell<Option<Duration>>);

impl Wait {
    /// Learns one wait, counted as at most `cap` (an idle minute must not
    /// take minutes of fast answers to forget).
    fn learn(&self, wait: Duration, cap: Duration) {
        let wait = wait.min(cap);
        // Each wait weighs an eighth: a few dozen requests follow a change.
        self.0.set(Some(match self.0.get() {
            Some(usual) => (usual * 7 + wait) / 8,
            None => wait,
        }));
    }

    /// The window worth polling for it: three times the usual wait (up to
    /// `longest`), [`FIRST_WINDOW`] before anything was learnt, none when
    /// the usual wait is more than half of `longest`.
    ///
    /// Generous, because a window costs only when nothing comes in it: a
    /// wait that ends early ends the window with it (the next event opens
    /// the next one), and one that outlasts it costs a whole window and a
    /// wake-up.
    fn window(&self, longest: Duration) -> Duration {
        match self.0.get() {
            None => FIRST_WINDOW,
            Some(usual) if usual * 2 > longest => Duration::ZERO,
            Some(usual) => (usual * 3).min(longest),
        }
    }
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

/// The window after a request starts (its own work comes next, then a
/// fetch, which opens its own window), and before a thread has learnt
/// how long it waits.
const FIRST_WINDOW: Duration = Duration::from_micros(100);

/// Starts polling on this thread (a serving thread's single-threaded
/// runtime) after each request starts, fetches or ends, for windows of at
/// most `longest`. A zero `longest`, or a runtime of several threads
/// (whose tasks move between threads), turns it off.
pub fn install(longest: Duration) {
    let single = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
    if longest.is_zero() || !single {
        return;
    }
    let start = Arc::new(Notify::new());
    let installed = SPIN.with(|spin| spin.set(Spin::new(longest, start.clone())).is_ok());
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
    fn new(longest: Duration, start: Arc<Notify>) -> Self {
        let now = Instant::now();
        Self {
            active: Cell::new(0),
            until: Cell::new(now),
            longest,
            answer: Wait(Cell::new(None)),
            next: Wait(Cell::new(None)),
            ended: Cell::new(None),
            start,
            polled: Cell::new(Duration::ZERO),
        }
    }

    /// Whether to keep polling at `now`.
    fn polling(&self, now: Instant) -> bool {
        self.active.get() <= MAX_ACTIVE && now < self.until.get()
    }

    /// Polls for `window` from `now` on, with `active` requests in flight.
    fn poll_for(&self, active: u32, window: Duration, now: Instant) {
        self.active.set(active);
        self.until.set(now + window.min(self.longest));
        if active <= MAX_ACTIVE && !window.is_zero() {
            self.start.notify_one();
        }
    }

    /// A request starts at `now`.
    fn entered(&self, now: Instant) {
        if let Some(ended) = self.ended.take() {
            self.next.learn(now - ended, self.longest * 2);
        }
        self.poll_for(self.active.get() + 1, FIRST_WINDOW, now);
    }

    /// A subgraph fetch is sent at `now`.
    fn fetching(&self, now: Instant) {
        self.poll_for(self.active.get(), self.answer.window(self.longest), now);
    }

    /// A request ends at `now`.
    fn left(&self, now: Instant) {
        let active = self.active.get().saturating_sub(1);
        if active == 0 {
            self.ended.set(Some(now));
        }
        self.poll_for(active, self.next.window(self.longest), now);
    }
}

/// A request in flight on this thread, from [`enter`] until dropped (on the
/// same thread: the runtimes [`install`] polls on never move a task).
pub struct Active(());

/// Counts a request in flight on this thread (nothing where [`install`] was
/// not called).
pub fn enter() -> Active {
    with_spin(|spin| spin.entered(Instant::now()));
    Active(())
}

/// A subgraph fetch is being sent: its answer is worth a window of polling.
pub fn fetching() {
    with_spin(|spin| spin.fetching(Instant::now()));
}

/// A subgraph fetch sent on this thread was answered (or failed) after
/// `took`: the next fetch's window follows.
pub fn answered(took: Duration) {
    with_spin(|spin| spin.answer.learn(took, spin.longest * 2));
}

impl Drop for Active {
    fn drop(&mut self) {
        with_spin(|spin| spin.left(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONGEST: Duration = Duration::from_millis(1);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    fn spin() -> Spin {
        Spin::new(LONGEST, Arc::new(Notify::new()))
    }

    #[test]
    fn windows_cover_the_usual_wait_for_an_answer_and_for_the_next_request() {
        let spin = spin();
        let t0 = Instant::now();
        spin.entered(t0);
        assert!(spin.polling(t0 + us(99)), "a request starts: polled for");
        assert!(!spin.polling(t0 + us(101)), "for the first window only");
        // Nothing learnt yet: the first fetch gets the first window.
        spin.fetching(t0 + us(200));
        assert!(spin.polling(t0 + us(299)));
        assert!(!spin.polling(t0 + us(301)));
        spin.answer.learn(us(200), LONGEST * 2);
        // The next fetch is polled for three times as long as answers take.
        spin.fetching(t0 + us(1000));
        assert!(
            spin.polling(t0 + us(1599)),
            "a slower answer than usual is polled for"
        );
        assert!(!spin.polling(t0 + us(1601)));
        spin.left(t0 + us(2000));
        assert!(
            spin.polling(t0 + us(2099)),
            "a first window for the next request"
        );
        spin.entered(t0 + us(2040));
        spin.left(t0 + us(3000));
        assert!(spin.polling(t0 + us(3119)), "clients come back after 40 µs");
        assert!(!spin.polling(t0 + us(3121)));
        // Never longer than the longest window.
        for _ in 0..30 {
            spin.answer.learn(us(450), LONGEST * 2);
        }
        spin.fetching(t0 + us(4000));
        assert!(spin.polling(t0 + us(4999)));
        assert!(!spin.polling(t0 + us(5001)));
    }

    #[test]
    fn a_wait_longer_than_the_longest_window_is_not_polled_for() {
        let spin = spin();
        let t0 = Instant::now();
        spin.entered(t0);
        for _ in 0..30 {
            spin.answer.learn(us(900), LONGEST * 2);
        }
        spin.fetching(t0 + us(10));
        assert!(
            !spin.polling(t0 + us(11)),
            "answers that take 900 µs, most of the longest window, are not polled for"
        );
        // A client that went quiet for a minute is not waited for ever after.
        spin.left(t0 + us(100));
        spin.entered(t0 + Duration::from_secs(60));
        let mut t = t0 + Duration::from_secs(60);
        let mut back = None;
        for i in 0..20 {
            spin.left(t);
            if spin.polling(t + us(1)) {
                back = Some(i);
                break;
            }
            t += us(30);
            spin.entered(t);
            t += us(100);
        }
        let back = back.expect("quick clients are polled for again");
        assert!(back <= 12, "after {back} requests");
    }

    #[test]
    fn a_thread_with_two_requests_in_flight_does_not_poll() {
        let spin = spin();
        let t0 = Instant::now();
        spin.entered(t0);
        spin.entered(t0 + us(1));
        assert!(!spin.polling(t0 + us(2)), "two in flight: none");
        spin.left(t0 + us(3));
        assert!(spin.polling(t0 + us(4)), "back to one");
        assert!(spin.ended.get().is_none(), "one still in flight");
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
            install(LONGEST);
            assert_eq!(polled_here(), Duration::ZERO, "nothing before a request");
            let request = enter();
            sleep(5).await;
            drop(request);
            // Loose bounds: a loaded machine may hold this thread back.
            sleep(200).await;
            let after = polled_here();
            // Windows as it started and as it ended (how long each one
            // lasted is for the tests above: here the task that polls may
            // start well into its window).
            assert!(after > Duration::ZERO, "polled: {after:?}");
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
                install(LONGEST);
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
