//! Every server kit starts sends an answer as soon as it is written
//! (`TCP_NODELAY` on each accepted connection): with Nagle's algorithm, an
//! answer written in parts waits for the caller's delayed ACK, 40 ms a hop.

use axum::serve::Listener as _;
use futures::StreamExt as _;
use tokio::net::{TcpListener, TcpStream};

async fn local() -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    (listener, addr)
}

#[tokio::test]
async fn http_connections_are_accepted_without_nagle() {
    let (listener, addr) = local().await;
    let plain = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let _client = TcpStream::connect(addr).await.expect("connect");
    let mut listener = kit::server::immediate(listener);
    let (accepted, _) = listener.accept().await;
    assert!(accepted.nodelay().expect("nodelay"), "TCP_NODELAY is off");
    // What the check would see without `immediate`: the default is off.
    let _other = TcpStream::connect(plain.local_addr().unwrap())
        .await
        .unwrap();
    let (default, _) = plain.accept().await.expect("accept");
    assert!(!default.nodelay().expect("nodelay"));
}

#[tokio::test]
async fn grpc_connections_are_accepted_without_nagle() {
    let (listener, addr) = local().await;
    let _client = TcpStream::connect(addr).await.expect("connect");
    let mut incoming = kit::rpc::incoming(listener);
    let accepted = incoming
        .next()
        .await
        .expect("a connection")
        .expect("accepted");
    assert!(accepted.nodelay().expect("nodelay"), "TCP_NODELAY is off");
}
