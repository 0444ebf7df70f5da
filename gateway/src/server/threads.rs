//! Serving the gateway: one single-threaded runtime per core.
//!
//! On a work-stealing runtime a request hops between workers: the worker
//! that reads it, the one driving the pooled subgraph connection, the one
//! woken to steal the ready task. Each hop is a futex wake, and on two cores
//! those wakes were most of what the gateway added to a one-subgraph query
//! (+184 µs p50 against +103 µs on one thread, same machine, same run).
//! Here an acceptor hands each new connection to the next serving thread in
//! turn (threads accepting from one socket themselves took connections
//! unevenly: one ran at 87 % while the other idled at 60 %), and that
//! thread runs it to the end, so a request, its subgraph fetches (pooled
//! per thread, see [`crate::subgraph::client::SubgraphClient`]) and its answer stay on
//! one thread. The router's state (supergraph, caches) is shared as before.

use std::net::SocketAddr;

use tokio::sync::{mpsc, watch};

/// How many serving threads `GATEWAY_THREADS` unset means: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The longest a nearly idle serving thread polls after a request starts,
/// sends a fetch or ends (`GATEWAY_POLL_US` unset), instead of sleeping:
/// see [`crate::busy_poll`], whose windows follow how long the thread's
/// subgraphs take to answer and its clients to come back. A subgraph or a
/// client usually slower than this is not polled for.
pub const DEFAULT_POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// The longest polling window accepted: beyond it a thread would spin for
/// most of every gap between requests.
pub const MAX_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Operations a serving thread executes at once (`GATEWAY_EXECUTIONS`
/// unset).
pub const DEFAULT_EXECUTIONS: usize = 20;

/// How long a request's head may take to arrive (`HEAD_TIMEOUT` unset).
pub const DEFAULT_HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a keep-alive connection may wait for its next request
/// (`IDLE_TIMEOUT` unset).
pub const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How the gateway is served.
#[derive(Debug, Clone, Copy)]
pub struct Serving {
    /// Serving threads, each with its own single-threaded runtime.
    pub threads: usize,
    /// The longest a nearly idle thread polls (zero: never).
    pub poll: std::time::Duration,
    /// Operations each thread executes at once (zero: no bound); see
    /// [`crate::pipeline::admission`].
    pub executions: usize,
    /// How slow clients are cut off.
    pub timeouts: ConnectionTimeouts,
}

/// How long a client may take before its connection is closed: a client
/// that holds connections open without finishing its requests (slowloris)
/// costs a socket and a buffer each until then.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionTimeouts {
    /// From a connection's opening, or a request's first byte, to the end
    /// of its head; the same again for its body. On connections hyper
    /// serves (everything but `POST /graphql`) it also bounds the wait
    /// between requests, as hyper counts it from there.
    pub head: std::time::Duration,
    /// How long a keep-alive connection may wait between requests.
    pub idle: std::time::Duration,
}

impl Default for ConnectionTimeouts {
    fn default() -> Self {
        Self {
            head: DEFAULT_HEAD_TIMEOUT,
            idle: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl Default for Serving {
    fn default() -> Self {
        Self {
            threads: default_threads(),
            poll: DEFAULT_POLL,
            executions: DEFAULT_EXECUTIONS,
            timeouts: ConnectionTimeouts::default(),
        }
    }
}

/// A new connection, on its way to a serving thread.
type Handoff = (std::net::TcpStream, SocketAddr);

/// Serves `router` (the gateway's is [`crate::server::edge`], whose
/// `POST /graphql` goes by [`crate::server::http1`]) on `listener` from
/// `serving.threads` threads (at least one), each with its own
/// single-threaded runtime, until `stop` turns true; then each finishes its
/// in-flight requests. A thread that fails ends it at once, with that
/// thread's error.
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    router: S,
    serving: Serving,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()>
where
    S: crate::server::http1::Routes + crate::server::http1::Lanes,
{
    let mut ended = Vec::new();
    let mut handoffs = Vec::new();
    for i in 0..serving.threads.max(1) {
        let (handoff, incoming) = mpsc::unbounded_channel();
        handoffs.push(handoff);
        let router = router.clone();
        let stop = stop.clone();
        let (done, end) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("gateway-{i}"))
            .spawn(move || {
                let served = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            crate::busy_poll::install(serving.poll);
                            tokio::spawn(keep_timer_armed());
                            crate::pipeline::admission::install(serving.executions);
                            serve_thread(incoming, router, stop, serving.timeouts).await;
                            Ok(())
                        })
                    });
                let _ = done.send(served);
            })?;
        ended.push(end);
    }
    let accepting = accept(listener, handoffs, stop);
    tokio::pin!(accepting);
    let mut accepting_done = false;
    // Every thread is waited for: after the stop each one still finishes
    // its in-flight requests.
    let mut threads_done = futures::future::select_all(ended);
    loop {
        tokio::select! {
            result = &mut accepting, if !accepting_done => {
                accepting_done = true;
                result?;
            }
            (result, _, rest) = &mut threads_done => {
                result.unwrap_or_else(|_| {
                    Err(std::io::Error::other("a gateway serving thread panicked"))
                })?;
                if rest.is_empty() {
                    return Ok(());
                }
                threads_done = futures::future::select_all(rest);
            }
        }
    }
}

/// One serving thread: each connection it is handed served by
/// [`crate::server::http1::serve`] until `stop`; then every one of them is waited for.
async fn serve_thread<S>(
    mut incoming: mpsc::UnboundedReceiver<Handoff>,
    router: S,
    mut stop: watch::Receiver<bool>,
    timeouts: ConnectionTimeouts,
) where
    S: crate::server::http1::Routes + crate::server::http1::Lanes,
{
    let gateway = router.gateway().cloned();
    // Each connection holds a receiver: when none is left, all have ended.
    let (open, held) = watch::channel(());
    loop {
        let handed = tokio::select! {
            handed = incoming.recv() => handed,
            _ = stop.wait_for(|s| *s) => break,
        };
        // None: the acceptor stopped; what is open is served until the stop.
        let Some((stream, peer)) = handed else {
            let _ = stop.wait_for(|s| *s).await;
            break;
        };
        let stream = match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(%err, "a connection could not be handed over");
                continue;
            }
        };
        let connection = crate::server::http1::serve(
            stream,
            peer,
            gateway.clone(),
            router.clone(),
            stop.clone(),
            timeouts,
        );
        let held = held.clone();
        tokio::spawn(async move {
            connection.await;
            drop(held);
        });
    }
    drop(held);
    open.closed().await;
}

/// How often a serving thread's timer wakes it with nothing to do.
const TIMER_KEEPER: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps a timer always armed within [`TIMER_KEEPER`] on this thread.
///
/// Each request arms two timers (its own timeout and its fetch's), and
/// tokio's timer, when a new one is due before anything it is armed for,
/// wakes its driver through the runtime's eventfd, even from the runtime's
/// own thread: two `write` syscalls and a spurious epoll event per request
/// on an otherwise idle thread. With this timer never further away than a
/// second, timeouts of seconds never come first, and the wake-up is spared;
/// the cost is one wake a second.
async fn keep_timer_armed() {
    loop {
        tokio::time::sleep(TIMER_KEEPER).await;
    }
}

/// Accepts connections until `stop`, handing them to the threads in turn.
async fn accept(
    listener: tokio::net::TcpListener,
    handoffs: Vec<mpsc::UnboundedSender<Handoff>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let stream = stream.into_std()?;
                if handoffs[next % handoffs.len()]
                    .send((stream, peer))
                    .is_err()
                {
                    // That thread ended; the loop above reports why.
                    return Ok(());
                }
                next += 1;
            }
            // Out of file descriptors and the like: pause, as axum does, and go on.
            Err(err) => {
                tracing::warn!(%err, "the gateway could not accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get(addr: std::net::SocketAddr) -> String {
        get_path(addr, "/").await
    }

    async fn get_path(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn connections_are_dealt_to_the_serving_threads_in_turn_until_stopped() {
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let started = std::sync::Arc::new(tokio::sync::Notify::new());
        let (slow_done, slow_started) = (finished.clone(), started.clone());
        let router = Router::new()
            .route(
                "/",
                axum::routing::get(|| async {
                    std::thread::current().name().unwrap_or_default().to_owned()
                }),
            )
            .route(
                "/slow",
                axum::routing::get(move || async move {
                    slow_started.notify_one();
                    // Kept: a request still being worked on at the stop is the fixture.
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    slow_done.store(true, std::sync::atomic::Ordering::SeqCst);
                    "slow"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let serving = Serving {
            threads: 2,
            ..Serving::default()
        };
        let served = tokio::spawn(serve(listener, router, serving, stop));
        let answers = futures::future::join_all((0..8).map(|_| get(addr))).await;
        let mut by_thread = std::collections::BTreeMap::new();
        for answer in &answers {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            let body = answer.rsplit("\r\n\r\n").next().unwrap();
            *by_thread.entry(body.to_owned()).or_insert(0) += 1;
        }
        // Handed out in turn: each thread serves as many connections.
        assert_eq!(
            by_thread.into_iter().collect::<Vec<_>>(),
            [("gateway-0".to_owned(), 4), ("gateway-1".to_owned(), 4)]
        );
        // A request in flight when the stop comes is finished first.
        let slow = tokio::spawn(get_path(addr, "/slow"));
        tokio::time::timeout(std::time::Duration::from_secs(10), started.notified())
            .await
            .expect("the slow request reaches its handler");
        stop_tx.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), served)
            .await
            .expect("serving ends when stopped")
            .unwrap()
            .unwrap();
        assert!(
            finished.load(std::sync::atomic::Ordering::SeqCst),
            "serving ended before its in-flight request"
        );
        assert!(slow.await.unwrap().starts_with("HTTP/1.1 200"));
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the socket is closed once every thread ended"
        );
    }
}
