//! A subgraph as the launcher runs it: what every subgraph crate's `start`
//! returns. Its HTTP routes and where they listen, the tasks that run beside
//! them (relays, consumers, sweepers, a gRPC server), and the table of access
//! cut-offs its verifiers check with where that table is filled from.
//!
//! `grocery serve <subgraph>` runs one of them, `grocery dev` all five in one
//! process; either fills the tables ([`Feed::spawn`]) and [`Service::spawn`]s
//! the rest.

use std::{future::Future, net::SocketAddr, pin::Pin};

use anyhow::Context as _;
use axum::Router;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::auth::{Revocations, revocation_feed::Feed};

/// A task of a component, ended by its stop signal.
pub type Task = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// A task not started yet: given the stop signal, it runs until that turns true.
type Pending = Box<dyn FnOnce(watch::Receiver<bool>) -> Task + Send>;

/// A subgraph built from its configuration, not yet listening.
pub struct Started {
    /// The access cut-offs its verifiers check.
    pub revocations: Revocations,
    /// Where they come from.
    pub cutoffs: Feed,
    /// Where its gRPC API listens, once bound (inventory's stock API).
    pub rpc_addr: Option<SocketAddr>,
    /// Its HTTP server and what runs beside it.
    pub service: Service,
}

impl Started {
    /// `router` served on `listen`, its verifiers checking `revocations`, filled from `cutoffs`.
    pub fn new(
        name: &'static str,
        listen: SocketAddr,
        router: Router,
        revocations: Option<Revocations>,
        cutoffs: Feed,
    ) -> Self {
        Self {
            revocations: revocations.unwrap_or_default(),
            cutoffs,
            rpc_addr: None,
            service: Service {
                name,
                listen,
                router,
                beside: Vec::new(),
                tracing: telemetry::otel::Config::off(name),
            },
        }
    }

    /// Also runs `run`, which never ends on its own, until stopped.
    pub fn beside(
        self,
        what: &'static str,
        run: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.beside_until(what, move |mut stop| {
            Box::pin(async move {
                tokio::select! {
                    () = run => {},
                    _ = stop.wait_for(|s| *s) => {},
                }
                Ok(())
            })
        })
    }

    /// Also runs the task `start` makes of the stop signal (a server that
    /// drains when told to stop).
    pub fn beside_until(
        mut self,
        what: &'static str,
        start: impl FnOnce(watch::Receiver<bool>) -> Task + Send + 'static,
    ) -> Self {
        self.service.beside.push((what, Box::new(start)));
        self
    }
}

/// A subgraph's HTTP server and the tasks beside it, ready to run.
pub struct Service {
    /// Its name (`users`), in logs and errors.
    pub name: &'static str,
    /// Where its HTTP server listens.
    pub listen: SocketAddr,
    router: Router,
    beside: Vec<(&'static str, Pending)>,
    tracing: telemetry::otel::Config,
}

impl Service {
    /// Exports its spans as `config` says (see [`crate::trace`]); off unless told.
    pub fn traced(mut self, config: telemetry::otel::Config) -> Self {
        self.tracing = config;
        self
    }

    /// Binds its address and runs everything in `tasks` until `stop` turns
    /// true; returns the HTTP URL.
    pub async fn spawn(
        self,
        tasks: &mut JoinSet<anyhow::Result<()>>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<String> {
        let (name, addr) = (self.name, self.listen);
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!(
                "{name} cannot listen on {addr} (set {}_PORT)",
                name.to_uppercase()
            )
        })?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut all: Vec<(&'static str, Task)> = self
            .beside
            .into_iter()
            .map(|(what, start)| (what, start(stop.clone())))
            .collect();
        let tracer = telemetry::otel::Tracer::start(&self.tracing);
        if tracer.is_on() {
            // Spans still queued are sent once the servers are told to stop.
            let (tracer, mut stop) = (tracer.clone(), stop.clone());
            all.push((
                "trace exporter",
                Box::pin(async move {
                    let _ = stop.wait_for(|s| *s).await;
                    tracer.shutdown().await;
                    Ok(())
                }),
            ));
        }
        let mut http_stop = stop.clone();
        let router = crate::trace::layer(self.router, &tracer);
        all.push((
            "HTTP server",
            Box::pin(async move {
                crate::server::serve(listener, router, async move {
                    let _ = http_stop.wait_for(|s| *s).await;
                })
                .await?;
                Ok(())
            }),
        ));
        for (what, task) in all {
            let stop = stop.clone();
            // A task that ends before it is told to is a failure, whatever it returned.
            tasks.spawn(async move {
                task.await
                    .with_context(|| format!("{name} {what} failed"))?;
                anyhow::ensure!(*stop.borrow(), "{name} {what} ended unexpectedly");
                Ok(())
            });
        }
        Ok(url)
    }
}
