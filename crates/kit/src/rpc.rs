//! Calling another subgraph's internal gRPC API: a lazily connected channel
//! with timeouts, and the service token every call must carry.

use std::time::Duration;

use anyhow::Context as _;
use tonic::{
    Code, Status,
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};

/// A channel to `url` (e.g. `http://127.0.0.1:50051`) that connects on first
/// use; every call, connecting included, may take at most `timeout`.
pub fn channel(url: &str, timeout: Duration) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("{url:?} is not a valid URL"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_lazy())
}

/// Connections accepted on `listener`, for a gRPC server, with
/// `TCP_NODELAY` on: an answer's HEADERS, DATA and trailers frames are
/// separate writes, and without it the last waits for the caller's delayed
/// ACK (40 ms on Linux). Channels from [`channel`] set it on their side.
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// The internal RPC credential (`INTERNAL_RPC_TOKEN`), ready to put on requests.
#[derive(Clone)]
pub struct ServiceToken(MetadataValue<Ascii>);

impl ServiceToken {
    /// `token` as an `authorization: Bearer …` value.
    pub fn new(token: &str) -> anyhow::Result<Self> {
        Ok(Self(
            format!("Bearer {token}")
                .parse()
                .context("INTERNAL_RPC_TOKEN must be printable ASCII")?,
        ))
    }

    /// True when `authorization` (a request's header value) carries this
    /// token; compared in constant time, so timing tells nothing about it.
    pub fn accepts(&self, authorization: &str) -> bool {
        let (a, b) = (authorization.as_bytes(), self.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// `message` as a request carrying the token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        request
    }
}

/// Whether a call failed because the peer did not answer (unreachable, too
/// slow, gone mid-call) rather than refused: nothing was done and a retry may
/// succeed. Its message then names transport details (addresses) and is for
/// the log only.
pub fn did_not_answer(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
    )
}
