//! [`Subscriptions`]: what every subscription of one gateway shares.

use std::sync::Arc;

use crate::{
    pipeline::Pipeline,
    subscriptions::{
        options::SubscriptionOptions,
        registry::{Registry, Upstreams},
        reservations::Reservations,
    },
};

/// Subscriptions of one gateway: the pipeline they are prepared on, their
/// options, what is open by user, the upstream subscriptions shared, and
/// the SSE reservations.
pub struct Subscriptions {
    pub pipeline: Arc<Pipeline>,
    pub options: SubscriptionOptions,
    pub registry: Arc<Registry>,
    pub upstreams: Arc<Upstreams>,
    /// SSE reservations (single-connection mode).
    pub reservations: Reservations,
    /// Turns true when the gateway stops: SSE streams end then, or the
    /// server's graceful shutdown would wait for them for ever.
    ending: tokio::sync::watch::Sender<bool>,
}

impl Subscriptions {
    pub fn new(pipeline: Arc<Pipeline>, options: SubscriptionOptions) -> Self {
        Self {
            pipeline,
            options,
            registry: Default::default(),
            upstreams: Default::default(),
            reservations: Default::default(),
            ending: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Ends every SSE stream, now and from now on (the gateway stops).
    pub fn end_streams(&self) {
        self.ending.send_replace(true);
    }

    /// What an SSE stream watches to end with the gateway.
    pub(crate) fn ending(&self) -> tokio::sync::watch::Receiver<bool> {
        self.ending.subscribe()
    }

    /// Client subscriptions open on this gateway.
    pub fn open(&self) -> usize {
        self.registry.open()
    }

    /// Subscriptions this gateway holds open on subgraphs.
    pub fn upstream(&self) -> usize {
        self.upstreams.len()
    }
}
