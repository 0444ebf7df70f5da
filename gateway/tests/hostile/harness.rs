//! The gateway the hostile corpus attacks: the project's supergraph served
//! on 127.0.0.1 over stub subgraphs that count what reaches them, and what
//! it answered to each entry.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::Entry;

/// The gateway under attack and what reached its stub subgraph.
pub struct Harness {
    pub addr: std::net::SocketAddr,
    pub gateway: Arc<gateway::Gateway>,
    pub fetches: Arc<AtomicUsize>,
}

/// How long a head may take in the harness: slow clients are cut off after it.
pub const HEAD_TIMEOUT: Duration = Duration::from_millis(400);

impl Harness {
    /// The project's supergraph served on 127.0.0.1, every subgraph a stub
    /// that counts requests and answers `{"data": null}`.
    pub async fn start() -> Self {
        let fetches = Arc::new(AtomicUsize::new(0));
        let counted = fetches.clone();
        let stub = axum::Router::new().route(
            "/graphql",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { axum::Json(serde_json::json!({ "data": null })) }
            }),
        );
        let stub_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stub_url = format!("http://{}/graphql", stub_listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(stub_listener, stub).await });
        let sdl = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schema/supergraph.graphql"
        ))
        .unwrap();
        let names = gateway::Supergraph::load(&sdl)
            .unwrap()
            .subgraphs()
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        let repo = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let options = gateway::GatewayOptions {
            introspection: true,
            persisted: gateway::pipeline::persisted::PersistedOptions {
                manifests: Some(repo.join("schema/persisted")),
                ..Default::default()
            },
            rest: Some(gateway::rest::RestOptions {
                dir: repo.join("schema/rest"),
                manifests: repo.join("schema/persisted"),
                required: true,
            }),
            // Its asset routes are in the corpus too.
            graphiql: true,
            // Every subgraph but the gateway's own, which it answers itself.
            subgraph_urls: names
                .into_iter()
                .filter(|name| name != gateway::pipeline::usage::admin::NAME)
                .map(|name| (name, stub_url.clone()))
                .collect(),
            ..Default::default()
        };
        let gateway = Arc::new(gateway::Gateway::new(&sdl, None, &options).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = gateway::server::Serving {
            threads: 1,
            timeouts: gateway::server::ConnectionTimeouts {
                head: HEAD_TIMEOUT,
                idle: HEAD_TIMEOUT,
            },
            ..Default::default()
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let edge = gateway::edge(gateway.clone());
        tokio::spawn(async move {
            let _stop = stop;
            gateway::server::serve(listener, edge, serving, stopped).await
        });
        Self {
            addr,
            gateway,
            fetches,
        }
    }

    /// Sends `entry` and reads what comes back until the gateway closes
    /// the connection (at most 10 s).
    pub async fn send(&self, entry: &Entry) -> Answer {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        // The peer may refuse early and close: a failed write is an answer too.
        let _ = stream.write_all(&entry.bytes).await;
        let mut raw = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
        Answer::parse(&raw, read.is_ok())
    }
}

/// What the gateway answered.
#[derive(Debug)]
pub struct Answer {
    pub status: Option<u16>,
    pub body: serde_json::Value,
    /// The gateway closed the connection (within the harness's wait).
    pub closed: bool,
    pub bytes: usize,
}

impl Answer {
    fn parse(raw: &[u8], closed: bool) -> Self {
        let text = String::from_utf8_lossy(raw);
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok());
        let body = text
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .unwrap_or_default();
        Self {
            status,
            body,
            closed,
            bytes: raw.len(),
        }
    }

    /// The first error's `extensions.code`.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            // A REST route's error body (`{"status": "error", "code", …}`).
            .or_else(|| self.body["code"].as_str())
    }
}
