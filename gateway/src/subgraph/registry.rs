//! [`Subgraphs`]: where each subgraph of a supergraph is reached, how long
//! it may take, and how many bytes of answers one request may hold.

use std::collections::HashMap;

use hyper::{HeaderMap, Uri};

use crate::{
    subgraph::{
        client::{SubgraphClient, SubgraphRequest},
        endpoint::Endpoint,
    },
    value::{Map, Value},
};

/// Where each subgraph is reached, and the client that reaches them.
pub struct Subgraphs {
    pub(crate) endpoints: HashMap<String, Endpoint>,
    /// Timeouts of subgraphs that do not use the client's.
    timeouts: HashMap<String, std::time::Duration>,
    pub(crate) client: SubgraphClient,
    pub(crate) metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Bytes of subgraph answers one request may hold: past it, its
    /// remaining fetches fail instead of growing the gateway's memory.
    pub(crate) budget: usize,
    /// Opens a span per fetch (off unless traces are exported).
    pub(crate) tracer: telemetry::otel::Tracer,
    /// Subgraphs answered in process, by name.
    pub(crate) local: HashMap<String, std::sync::Arc<dyn crate::subgraph::local::Local>>,
    /// Where entity fetches' answers are kept, if anywhere.
    pub(crate) entity_cache: Option<std::sync::Arc<crate::entity_cache::EntityCache>>,
}

/// The default of [`Subgraphs::with_budget`].
pub const DEFAULT_REQUEST_BUDGET: usize = 32 * 1024 * 1024;

impl Subgraphs {
    /// `endpoints` by subgraph name (as the supergraph's `join__Graph` names them).
    pub fn new(
        endpoints: HashMap<String, Endpoint>,
        client: SubgraphClient,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Self {
        let endpoints = endpoints
            .into_iter()
            .map(|(name, endpoint)| {
                let endpoint = endpoint.named(&name);
                (name, endpoint)
            })
            .collect();
        Self {
            endpoints,
            timeouts: HashMap::new(),
            // Fetches answered by another request's are counted as its subgraph's.
            client: client.counting(metrics.clone()),
            metrics,
            budget: DEFAULT_REQUEST_BUDGET,
            tracer: Default::default(),
            local: HashMap::new(),
            entity_cache: None,
        }
    }

    /// Answers the subgraphs `local` names in process.
    pub fn with_local(
        mut self,
        local: HashMap<String, std::sync::Arc<dyn crate::subgraph::local::Local>>,
    ) -> Self {
        self.local = local;
        self
    }

    /// Answers entity fetches from `cache` where it can (see [`crate::entity_cache`]).
    pub fn with_entity_cache(
        mut self,
        cache: std::sync::Arc<crate::entity_cache::EntityCache>,
    ) -> Self {
        self.entity_cache = Some(cache);
        self
    }

    /// Records a span per fetch with `tracer`.
    pub fn with_tracer(mut self, tracer: telemetry::otel::Tracer) -> Self {
        self.tracer = tracer;
        self
    }

    /// Bounds the bytes of subgraph answers one request may hold.
    pub fn with_budget(mut self, bytes: usize) -> Self {
        self.budget = bytes;
        self
    }

    /// Gives the named subgraphs their own timeouts instead of the client's.
    pub fn with_timeouts(mut self, timeouts: HashMap<String, std::time::Duration>) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Where the subgraph `name` is reached.
    pub fn url(&self, name: &str) -> Option<&Uri> {
        self.endpoints.get(name).map(Endpoint::url)
    }

    /// Where the subgraph `name` is reached, and how.
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.get(name)
    }

    /// How long the subgraph `name` may take to answer.
    pub fn timeout(&self, name: &str) -> std::time::Duration {
        self.timeouts
            .get(name)
            .copied()
            .unwrap_or_else(|| self.client.timeout())
    }

    /// Asks subgraph `name` `{ __typename }` within `deadline`: `Ok` when it
    /// answers without errors, else why in words fit for the public (the
    /// details are logged).
    pub async fn probe(&self, name: &str, deadline: std::time::Duration) -> Result<(), String> {
        let Some(endpoint) = self.endpoints.get(name) else {
            return Err("unknown subgraph".into());
        };
        let request = SubgraphRequest {
            query: "{ __typename }",
            operation_name: None,
            variables: Value::Object(Map::new()),
            headers: HeaderMap::new(),
            shareable: false,
            idempotent: true,
        };
        match tokio::time::timeout(deadline, self.client.fetch(endpoint, request)).await {
            Ok(Ok(response)) if response.errors.is_empty() => Ok(()),
            Ok(Ok(response)) => {
                tracing::warn!(subgraph = name, errors = ?response.errors, "a subgraph answered its readiness query with errors");
                Err("answered errors".into())
            }
            Ok(Err(err)) => {
                tracing::warn!(subgraph = name, error = %err, "a subgraph did not answer its readiness query");
                Err(err.public())
            }
            Err(_) => Err(format!("no answer within {deadline:?}")),
        }
    }
}
