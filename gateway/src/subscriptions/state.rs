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
}

impl Subscriptions {
    pub fn new(pipeline: Arc<Pipeline>, options: SubscriptionOptions) -> Self {
        Self {
            pipeline,
            options,
            registry: Default::default(),
            upstreams: Default::default(),
            reservations: Default::default(),
        }
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
