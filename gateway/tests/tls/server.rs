//! A subgraph served over TLS (rustls, ring) or plain HTTP/2 with prior
//! knowledge, by hyper-util's connection builder that speaks HTTP/1.1 or
//! HTTP/2 as the client does: the HTTP version and headers of every request
//! it received kept for inspection.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering::SeqCst},
};

use axum::{
    body::Bytes,
    http::{HeaderMap, Version},
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{RootCertStore, ServerConfig, crypto::CryptoProvider, server::WebPkiClientVerifier};
use tower::ServiceExt;

use crate::certs::Leaf;

/// How the subgraph is served.
pub enum Wire<'a> {
    /// TLS with `cert`, offering `alpn`; with `clients`, a client
    /// certificate signed by it is required.
    Tls {
        cert: &'a Leaf,
        alpn: &'a [&'a str],
        clients: Option<&'a rustls::pki_types::CertificateDer<'static>>,
    },
    /// Plain TCP, HTTP/2 with prior knowledge (or HTTP/1.1, as the client speaks).
    Plain,
}

/// A subgraph being served.
pub struct Subgraph {
    /// `https://127.0.0.1:PORT/graphql` or `http://…`.
    pub url: String,
    pub sdl: String,
    /// The HTTP version of every GraphQL request received, oldest first.
    pub versions: Arc<Mutex<Vec<Version>>>,
    /// The headers of every GraphQL request received, oldest first.
    pub headers: Arc<Mutex<Vec<HeaderMap>>>,
    /// Connections that got as far as HTTP (their TLS handshake done).
    pub connections: Arc<AtomicUsize>,
}

impl Subgraph {
    /// The HTTP versions of the GraphQL requests received so far.
    pub fn versions(&self) -> Vec<Version> {
        self.versions.lock().unwrap().clone()
    }
}

#[allow(deprecated)] // ring, as the gateway uses it (see its subgraph::tls)
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Serves `schema` on a free 127.0.0.1 port as `wire` says, with a `/ready`
/// that answers 200; `goaway`: each connection is closed gracefully (an
/// HTTP/2 GOAWAY) once it has answered a request, as a restarting server does.
pub async fn serve<Q, M, S>(
    schema: async_graphql::Schema<Q, M, S>,
    wire: Wire<'_>,
    goaway: bool,
) -> Subgraph
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    let sdl = testing::federation_sdl(&schema);
    let versions: Arc<Mutex<Vec<Version>>> = Arc::default();
    let headers: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let (seen, seen_headers) = (versions.clone(), headers.clone());
    let app = axum::Router::new()
        .route(
            "/graphql",
            axum::routing::post(move |version: Version, head: HeaderMap, body: Bytes| {
                seen.lock().unwrap().push(version);
                seen_headers.lock().unwrap().push(head);
                let schema = schema.clone();
                async move {
                    let request: async_graphql::Request = serde_json::from_slice(&body).unwrap();
                    axum::Json(serde_json::to_value(schema.execute(request).await).unwrap())
                }
            }),
        )
        .route("/ready", axum::routing::get(|| async { "ready" }));
    let acceptor = match wire {
        Wire::Tls {
            cert,
            alpn,
            clients,
        } => {
            let builder = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap();
            let builder = match clients {
                Some(ca) => {
                    let mut roots = RootCertStore::empty();
                    roots.add(ca.clone()).unwrap();
                    let verifier =
                        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                            .build()
                            .unwrap();
                    builder.with_client_cert_verifier(verifier)
                }
                None => builder.with_no_client_auth(),
            };
            let mut config = builder
                .with_single_cert(cert.chain.clone(), cert.key.clone_key())
                .unwrap();
            config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
        }
        Wire::Plain => None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}/graphql", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let opened = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (app, acceptor, opened) = (app.clone(), acceptor.clone(), opened.clone());
            tokio::spawn(async move {
                match acceptor {
                    // A refused handshake ends here: no request is served.
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            opened.fetch_add(1, SeqCst);
                            serve_connection(tls, app, goaway).await;
                        }
                    }
                    None => {
                        opened.fetch_add(1, SeqCst);
                        serve_connection(tcp, app, goaway).await;
                    }
                }
            });
        }
    });
    Subgraph {
        url,
        sdl,
        versions,
        headers,
        connections,
    }
}

/// Serves `app` on one connection, HTTP/1.1 or HTTP/2 as the client speaks;
/// `goaway`: closed gracefully once it has answered a request.
async fn serve_connection<I>(io: I, app: axum::Router, goaway: bool)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let answered = Arc::new(tokio::sync::Notify::new());
    let notify = answered.clone();
    let service = hyper::service::service_fn(move |request| {
        let (app, notify) = (app.clone(), notify.clone());
        async move {
            let response = app.oneshot(request).await;
            if goaway {
                notify.notify_one();
            }
            response
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = answered.notified() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
