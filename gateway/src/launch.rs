//! What the launcher runs: [`start`] builds a gateway from its [`Config`];
//! [`Started::spawn`] binds the API's listener (and the metrics' one) and
//! serves them, with the watchers that reload the supergraph file and the
//! trusted-document manifests, until told to stop. `grocery serve gateway`
//! runs it alone, `grocery dev` beside the subgraphs; either first keeps the
//! gateway's table of access cut-offs filled ([`Started::revocations`]) when
//! it verifies tokens at the edge. Without keys it verifies none, says so
//! once, and has no cut-offs to wait for.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use auth::{Revocations, Verifier};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::{
    config::{Config, Keys, Supergraph},
    pipeline::auth::{EdgeAuth, Jwks},
    server::{Gateway, Serving},
};

/// How often the supergraph file and the manifests are checked for changes.
const RELOAD_POLL: Duration = Duration::from_secs(1);

/// The least time between two fetches of the JWKS.
const JWKS_REFRESH: Duration = Duration::from_secs(30);

/// A gateway built from its configuration, not yet listening.
pub struct Started {
    pub gateway: Arc<Gateway>,
    /// The access cut-offs its verifier checks, for the launcher to keep
    /// filled; `None` when it verifies no token at the edge.
    pub revocations: Option<Revocations>,
    listen: SocketAddr,
    serving: Serving,
    metrics: Option<SocketAddr>,
    /// The REST routes' own listener, if any.
    rest: Option<SocketAddr>,
    /// The supergraph file to reload when it changes, if it came from one.
    watched: Option<PathBuf>,
}

/// Where a spawned gateway listens.
pub struct Listening {
    /// The API's URL (`http://host:port`).
    pub url: String,
    /// `/metrics`' URL on a listener of its own, if configured.
    pub metrics: Option<String>,
    /// The REST routes' own URL (`http://host:port`), if configured.
    pub rest: Option<String>,
}

/// Loads the supergraph and builds the gateway with its token verifier.
pub fn start(config: Config) -> anyhow::Result<Started> {
    let (sdl, watched) = match config.supergraph {
        Supergraph::File(path) => (
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading the supergraph {}", path.display()))?,
            Some(path),
        ),
        Supergraph::Composed(sdl) => (sdl, None),
    };
    let revocations = config
        .keys
        .is_some()
        .then(|| config.tokens.revocations.clone().unwrap_or_default());
    let verifier = match config.keys {
        Some(Keys::Jwks(url)) => Some(EdgeAuth::Jwks(Box::new(Jwks::new(
            url,
            config.tokens,
            JWKS_REFRESH,
        )))),
        Some(Keys::Ring(keys)) => Some(EdgeAuth::Keys(Arc::new(Verifier::new(
            &keys,
            &config.tokens,
        )?))),
        None => {
            tracing::warn!(
                "neither JWKS_URL nor JWT_PUBLIC_KEYS_FILE is set: the gateway verifies no token \
                 at the edge and forwards `authorization` to the subgraphs as it is sent"
            );
            None
        }
    };
    let mut options = config.options;
    options.tracer = telemetry::otel::Tracer::start(&config.tracing);
    let gateway = Arc::new(Gateway::new(&sdl, verifier.map(Arc::new), &options)?);
    Ok(Started {
        gateway,
        revocations,
        listen: config.listen,
        serving: config.serving,
        metrics: config.metrics,
        rest: config.rest,
        watched,
    })
}

impl Started {
    /// Binds the listeners and serves them in `tasks` until `stop` turns
    /// true, reloading what changes on disk meanwhile.
    pub async fn spawn(
        self,
        tasks: &mut JoinSet<anyhow::Result<()>>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Listening> {
        let metrics = match self.metrics {
            Some(addr) => {
                let router = crate::server::metrics_router(self.gateway.clone());
                let what = ("metrics", "set METRICS_ADDR");
                let base = spawn_listener(router, addr, what, tasks, stop.clone()).await?;
                Some(format!("{base}/metrics"))
            }
            None => None,
        };
        let rest = match (self.rest, &self.gateway.rest) {
            (Some(addr), Some(_)) => {
                let router = crate::server::rest_router(self.gateway.clone());
                let what = ("REST routes", "set REST_PORT; 0 turns it off");
                Some(spawn_listener(router, addr, what, tasks, stop.clone()).await?)
            }
            _ => None,
        };
        if let Some(routes) = &self.gateway.rest {
            let gateway = self.gateway.clone();
            tasks.spawn(until(
                stop.clone(),
                crate::rest::watch(routes.clone(), move || gateway.current(), RELOAD_POLL),
            ));
        }
        let addr = self.listen;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("the gateway cannot listen on {addr} (set GATEWAY_PORT)"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let (router, serving, server_stop) = (
            crate::server::edge(self.gateway.clone()),
            self.serving,
            stop.clone(),
        );
        tasks.spawn(async move {
            crate::server::serve(listener, router, serving, server_stop).await?;
            Ok(())
        });
        // Event streams never finish by themselves: ended at the stop, so
        // the server's graceful shutdown does not wait for them.
        let (subscriptions, mut stopping) = (self.gateway.subscriptions.clone(), stop.clone());
        tasks.spawn(async move {
            let _ = stopping.wait_for(|s| *s).await;
            subscriptions.end_streams();
            Ok(())
        });
        // Spans still queued are sent once the servers are told to stop.
        let (tracer, mut traces_stop) =
            (self.gateway.pipeline.options.tracer.clone(), stop.clone());
        tasks.spawn(async move {
            let _ = traces_stop.wait_for(|s| *s).await;
            tracer.shutdown().await;
            Ok(())
        });
        let documents = self.gateway.pipeline.documents.clone();
        tasks.spawn(until(
            stop.clone(),
            crate::pipeline::persisted::watch(documents, RELOAD_POLL),
        ));
        if let Some(path) = self.watched {
            tasks.spawn(until(
                stop,
                crate::server::watch(self.gateway, path, RELOAD_POLL),
            ));
        }
        Ok(Listening { url, metrics, rest })
    }
}

/// Runs `task`, which never ends on its own, until `stop` turns true.
async fn until(
    mut stop: watch::Receiver<bool>,
    task: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    tokio::select! {
        () = task => anyhow::bail!("a gateway watcher ended unexpectedly"),
        _ = stop.wait_for(|s| *s) => Ok(()),
    }
}

/// Serves `router` on a listener of its own at `addr` in `tasks` until
/// `stop`; its `http://host:port`. `what` and `setting` name it in the
/// error when the address cannot be bound.
async fn spawn_listener(
    router: axum::Router,
    addr: SocketAddr,
    (what, setting): (&str, &str),
    tasks: &mut JoinSet<anyhow::Result<()>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<String> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("the gateway's {what} cannot listen on {addr} ({setting})"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    tasks.spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await?;
        Ok(())
    });
    Ok(url)
}
