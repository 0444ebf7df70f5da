//! Keeping a process's [`Revocations`] filled: the full list of recent access
//! changes when it starts (so a restart forgets nothing), then every
//! `user.access_changed` event as it is published, and the list again now and
//! then in case an event was lost (Redis away, a lagging receiver).
//!
//! Every process follows the bus itself: with Redis each [`Bus`] reads the
//! whole stream with its own `XREAD` cursor, not through a consumer group
//! (replicas sharing a group would split the events, and each replica needs
//! every one). Without Redis it is the in-process bus of `grocery dev`.
//!
//! The list comes from the users subgraph, which owns the accounts: its
//! internal `GET /internal/access-changes`, guarded by the service token
//! (`INTERNAL_RPC_TOKEN`) like the stock API; the users subgraph itself reads
//! its table directly ([`Source::Local`]).

use std::{future::Future, pin::Pin, time::Duration};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::{Deserialize, Serialize};
use tokio::{
    sync::{broadcast::error::RecvError, watch},
    task::JoinSet,
};

use super::revocation::{ACCESS_CHANGED, AccessChange, Revocations};
use crate::{
    config::Env,
    events::{Bus, BusConfig},
};

/// The users subgraph's path listing recent access changes.
pub const LIST_PATH: &str = "/internal/access-changes";
/// Where the list is asked for unless configured (the users subgraph's default port).
pub const DEFAULT_LIST_URL: &str = "http://127.0.0.1:4001/internal/access-changes";
/// How often the full list is loaded again besides the events.
pub const RESYNC: Duration = Duration::from_secs(15);
/// Largest list accepted (a mass deactivation of about 100,000 accounts).
const MAX_LIST_BYTES: usize = 32 * 1024 * 1024;

/// The body of [`LIST_PATH`].
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessChangeList {
    /// Every change whose cut-off still matters, oldest first.
    pub changes: Vec<AccessChange>,
}

/// How a process that is not the users subgraph fills its table:
/// `REVOCATIONS_URL` (else derived from `USERS_URL` or `JWKS_URL`, else
/// [`DEFAULT_LIST_URL`]), `INTERNAL_RPC_TOKEN`, and the bus (`REDIS_URL`, `EVENT_STREAM`).
#[derive(Clone, Debug)]
pub struct FeedConfig {
    /// The users subgraph's list of recent access changes.
    pub list_url: String,
    /// The service credential the list asks for.
    pub service_token: String,
    /// Where `user.access_changed` events arrive.
    pub bus: BusConfig,
}

impl Default for FeedConfig {
    /// Users' list at its default address over the in-process bus, without a
    /// service token: a configuration built by hand (tests) that is never followed.
    fn default() -> Self {
        Self {
            list_url: DEFAULT_LIST_URL.into(),
            service_token: String::new(),
            bus: BusConfig::default(),
        }
    }
}

impl FeedConfig {
    /// Reads the settings; a missing service token is a configuration problem.
    pub fn from_env(env: &mut Env) -> Self {
        let list_url = env
            .get("REVOCATIONS_URL")
            .or_else(|| {
                env.get("USERS_URL")
                    .map(|u| format!("{}{LIST_PATH}", u.trim_end_matches("/graphql")))
            })
            .or_else(|| {
                env.get("JWKS_URL").map(|u| {
                    format!(
                        "{}{LIST_PATH}",
                        u.trim_end_matches("/.well-known/jwks.json")
                    )
                })
            })
            .unwrap_or_else(|| DEFAULT_LIST_URL.into());
        if list_url.parse::<hyper::Uri>().is_err() || !list_url.starts_with("http") {
            env.problem(format!("REVOCATIONS_URL={list_url:?} is not an http URL"));
        }
        Self {
            list_url,
            service_token: env.required("INTERNAL_RPC_TOKEN"),
            bus: BusConfig::from_env(env),
        }
    }

    /// The list over HTTP as these settings say.
    pub fn source(&self) -> anyhow::Result<Source> {
        Source::http(&self.list_url, &self.service_token)
    }
}

/// A future that yields a full list of recent access changes.
pub type ListFuture = Pin<Box<dyn Future<Output = anyhow::Result<Vec<AccessChange>>> + Send>>;

/// Where the full list comes from.
pub enum Source {
    /// The users subgraph's internal endpoint.
    Http(Box<Endpoint>),
    /// A function: the users subgraph reading its own table.
    Local(Box<dyn Fn() -> ListFuture + Send + Sync>),
}

/// The users subgraph's list, reached over HTTP.
pub struct Endpoint {
    url: hyper::Uri,
    authorization: String,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Source {
    /// The list at `url`, asked for with the service token `token`.
    pub fn http(url: &str, token: &str) -> anyhow::Result<Self> {
        Ok(Self::Http(Box::new(Endpoint {
            url: url
                .parse()
                .with_context(|| format!("{url:?} is not a URL"))?,
            authorization: format!("Bearer {token}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
        })))
    }

    /// Loads the full list once.
    pub async fn list(&self) -> anyhow::Result<Vec<AccessChange>> {
        match self {
            Source::Local(list) => list().await,
            Source::Http(endpoint) => {
                let request = hyper::Request::get(endpoint.url.clone())
                    .header(
                        hyper::header::AUTHORIZATION,
                        endpoint.authorization.as_str(),
                    )
                    .body(Empty::new())?;
                let response =
                    tokio::time::timeout(Duration::from_secs(5), endpoint.client.request(request))
                        .await
                        .context("the users subgraph did not answer within 5 s")??;
                anyhow::ensure!(
                    response.status().is_success(),
                    "the users subgraph answered HTTP {}",
                    response.status()
                );
                let body = http_body_util::Limited::new(response.into_body(), MAX_LIST_BYTES)
                    .collect()
                    .await
                    .map_err(|e| anyhow::anyhow!("reading the access changes: {e}"))?
                    .to_bytes();
                let list: AccessChangeList = serde_json::from_slice(&body)?;
                Ok(list.changes)
            }
        }
    }
}

/// Fills `table` until the task is dropped: the full list from `source`
/// (retried until it loads; the table refuses access tokens until then),
/// then every access-change event on `bus`, and the list again every [`RESYNC`].
pub async fn follow(table: Revocations, bus: Bus, source: Source) {
    // Subscribed before the list is read, so no change falls between the two.
    let mut events = bus.subscribe();
    let mut delay = Duration::from_millis(50);
    while !table.is_primed() {
        match source.list().await {
            Ok(changes) => table.load(&changes),
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "cannot load the access cut-offs yet; access tokens are refused until then"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
    tracing::info!(accounts = table.len(), "access cut-offs loaded");
    let mut resync = tokio::time::interval(RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.tick().await;
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) if event.topic == ACCESS_CHANGED => {
                    match serde_json::from_value::<AccessChange>(event.payload) {
                        Ok(change) => table.apply(&change),
                        Err(err) => tracing::warn!(id = event.id, error = %err, "skipping a malformed access change"),
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "fell behind the event bus; reloading the access cut-offs");
                    reload(&table, &source).await;
                }
                Err(RecvError::Closed) => return,
            },
            _ = resync.tick() => reload(&table, &source).await,
        }
    }
}

async fn reload(table: &Revocations, source: &Source) {
    match source.list().await {
        Ok(changes) => table.load(&changes),
        // The events keep coming; the next reload catches what they missed.
        Err(err) => tracing::warn!(
            error = format!("{err:#}"),
            "reloading the access cut-offs failed"
        ),
    }
}

/// The task that fills `table` from the users subgraph as `config` says
/// (the bus is connected now, so a Redis that is not there fails here).
pub async fn connect(
    table: Revocations,
    config: &FeedConfig,
) -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    let bus = config.bus.connect().await?;
    let source = config.source()?;
    Ok(follow(table, bus, source))
}

/// Where a process's table is filled from.
pub enum Feed {
    /// The users subgraph's own table, and its bus.
    Local(Box<(Bus, Source)>),
    /// The users subgraph's list over HTTP, and the bus the settings name.
    Remote(FeedConfig),
}

impl Feed {
    /// Keeps `table` filled in `tasks` until `stop` turns true; a feed that
    /// ends before is a failure.
    pub async fn spawn(
        self,
        table: Revocations,
        tasks: &mut JoinSet<anyhow::Result<()>>,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let follow: Pin<Box<dyn Future<Output = ()> + Send>> = match self {
            Feed::Local(local) => {
                let (bus, source) = *local;
                Box::pin(follow(table, bus, source))
            }
            Feed::Remote(config) => Box::pin(connect(table, &config).await?),
        };
        tasks.spawn(async move {
            tokio::select! {
                () = follow => anyhow::bail!("the access cut-off feed ended unexpectedly"),
                _ = stop.wait_for(|s| *s) => Ok(()),
            }
        });
        Ok(())
    }
}

/// Waits until every table is loaded, or `patience` ran out (then says so).
pub async fn primed(tables: &[Revocations], patience: Duration) -> bool {
    let loaded = async {
        for table in tables {
            table.primed().await;
        }
    };
    match tokio::time::timeout(patience, loaded).await {
        Ok(()) => true,
        Err(_) => {
            tracing::warn!(
                "the access cut-offs are not loaded yet (is the users subgraph up?); \
                 access tokens are refused with SERVICE_UNAVAILABLE until they are"
            );
            false
        }
    }
}
