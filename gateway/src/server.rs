//! Serving the gateway: one single-threaded runtime per core.
//!
//! On a work-stealing runtime a request hops between workers: the worker
//! that reads it, the one driving the pooled subgraph connection, the one
//! woken to steal the ready task. Each hop is a futex wake, and on two cores
//! those wakes were most of what the gateway added to a one-subgraph query
//! (+184 µs p50 against +103 µs on one thread, same machine, same run).
//! Here each thread accepts from the shared listening socket and runs its
//! connections to the end, so a request, its subgraph fetches and its answer
//! stay on one thread; the kernel spreads connections over the threads.
//! The router's state (supergraph, caches, pools) is shared as before.

use axum::Router;
use tokio::sync::watch;

/// How many serving threads `GATEWAY_THREADS` unset means: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Serves `router` on `listener` from `threads` threads (at least one), each
/// with its own single-threaded runtime, until `stop` turns true; then each
/// finishes its in-flight requests. A thread that fails ends it at once,
/// with that thread's error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    threads: usize,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let mut ended = Vec::new();
    for i in 0..threads.max(1) {
        let socket = listener.try_clone()?;
        let router = router.clone();
        let mut stop = stop.clone();
        let (done, end) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("gateway-{i}"))
            .spawn(move || {
                let served = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let listener = tokio::net::TcpListener::from_std(socket)?;
                            kit::server::serve(listener, router, async move {
                                let _ = stop.wait_for(|s| *s).await;
                            })
                            .await
                        })
                    });
                let _ = done.send(served);
            })?;
        ended.push(end);
    }
    while !ended.is_empty() {
        let (result, _, rest) = futures::future::select_all(ended).await;
        result
            .unwrap_or_else(|_| Err(std::io::Error::other("a gateway serving thread panicked")))?;
        ended = rest;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get(addr: std::net::SocketAddr) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn every_connection_is_answered_on_a_serving_thread_until_stopped() {
        let router = Router::new().route(
            "/",
            axum::routing::get(|| async {
                std::thread::current().name().unwrap_or_default().to_owned()
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let served = tokio::spawn(serve(listener, router, 2, stop));
        let answers = futures::future::join_all((0..8).map(|_| get(addr))).await;
        for answer in &answers {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            let body = answer.rsplit("\r\n\r\n").next().unwrap();
            assert!(body == "gateway-0" || body == "gateway-1", "{body}");
        }
        stop_tx.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), served)
            .await
            .expect("serving ends when stopped")
            .unwrap()
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the socket is closed once every thread ended"
        );
    }
}
