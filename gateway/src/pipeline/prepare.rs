//! [`prepare`]: every check before execution, in order, ending in a
//! [`Ready`] operation or a [`Refusal`]; [`plan`]: a cached plan or one
//! made on the blocking pool, cancelled with its request.

use std::{net::IpAddr, sync::Arc};
use telemetry::otel::{self, Kind};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::pipeline::{
    persisted,
    planning::{PlanError, Prepared},
    ratelimit,
    refusal::Refusal,
    request::{GraphqlRequest, Report, bearer},
    state::{Loaded, Pipeline},
    usage,
};

/// An operation ready to execute: planned against the supergraph it will
/// run on, with its variables coerced.
pub struct Ready {
    /// The caller, when a token was sent and the gateway verifies tokens.
    pub claims: Option<crate::pipeline::auth::Claims>,
    pub loaded: Arc<Loaded>,
    pub prepared: Prepared,
    pub variables: Map<String, Value>,
    /// Where a partner's trusted document stands against its quotas.
    pub quota: Option<usage::Standing>,
}

impl Ready {
    /// The verified user's id, if a token was sent and verified.
    pub fn caller(&self) -> Option<String> {
        self.claims.as_ref().map(|c| c.sub.to_string())
    }

    /// A query: not a mutation, not a subscription.
    pub fn is_query(&self) -> bool {
        matches!(
            self.prepared.operation.operation_kind,
            None | Some(hive_router_query_planner::state::supergraph_state::OperationKind::Query)
        )
    }

    pub fn is_subscription(&self) -> bool {
        matches!(
            self.prepared.operation.operation_kind,
            Some(hive_router_query_planner::state::supergraph_state::OperationKind::Subscription)
        )
    }
}

/// Every check before execution: a token that verifies, a document (sent,
/// persisted or trusted) the caller may run, sane variables, a plan,
/// variables that fit it, introspection allowed, the caller within its rate.
pub async fn prepare(
    gw: &Pipeline,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    request: GraphqlRequest,
    via_get: bool,
    report: &mut Report,
) -> Result<Ready, Refusal> {
    let claims = match (&gw.verifier, bearer(headers)) {
        (Some(auth), Some(token)) => match auth.verify(token).await {
            Ok(claims) => Some(claims),
            // Revocations not loaded yet: nothing is wrong with the token.
            Err(err @ auth::TokenError::CutoffsUnknown) => {
                return Err(Refusal::graphql(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &err.to_string(),
                    "SERVICE_UNAVAILABLE",
                ));
            }
            Err(err) => {
                return Err(Refusal::graphql(
                    StatusCode::UNAUTHORIZED,
                    &err.to_string(),
                    "UNAUTHENTICATED",
                ));
            }
        },
        _ => None,
    };
    let restricted = gw.documents.only()
        || claims
            .as_ref()
            .is_some_and(|c| gw.documents.only_for(&c.role));
    let client = persisted::client_name(headers);
    let manifests = gw.documents.manifests();
    report.usage = client.map(|client| usage::Tally::of(client, &manifests));
    let resolution = gw
        .documents
        .resolve(
            request.query.as_deref(),
            request.document_id.as_deref(),
            request.extensions.as_ref(),
            client,
            restricted,
        )
        .await
        .map_err(|refused| {
            report.outcome = refused.outcome();
            Refusal::persisted(refused)
        })?;
    let Some(query) = resolution
        .query
        .or(request.query)
        .filter(|q| !q.trim().is_empty())
    else {
        return Err(Refusal::malformed(
            StatusCode::BAD_REQUEST,
            "the request has no query",
        ));
    };
    let given: Map<String, Value> = match request.variables {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(Refusal::malformed(
                StatusCode::BAD_REQUEST,
                "variables must be an object",
            ));
        }
    };
    let loaded = gw.current();
    loaded
        .supergraph
        .limits()
        .check_variables(&given)
        .map_err(|exceeded| Refusal::plan(&PlanError::Limit(exceeded)))?;
    // The caller's rate is checked before planning: a flood of distinct
    // documents is refused before it costs planner time. The kind comes
    // from the operation's keyword; the plan confirms it below.
    if gw.limiter.enabled() {
        let kind = ratelimit::Kind::of(&query, request.operation_name.as_deref());
        let ip = gw.limiter.client_ip(headers, peer);
        gw.limiter
            .check(kind, claims.as_ref().map(|c| c.sub), ip)
            .await
            .map_err(|limited| Refusal::rate_limited(limited, kind))?;
    }
    // A client's trusted document is counted and held to its quotas once
    // the caller is within its rate: a flood refused above costs no quota.
    let quota = match (report.usage.as_mut(), resolution.document, client) {
        (Some(tally), Some(document), Some(client)) => {
            let none = usage::quota::Quotas::default();
            let quotas = manifests.client(client).map_or(&none, |(_, m)| &m.quotas);
            tally.document = document;
            match gw.usage.admit(tally, quotas).await {
                Ok(standing) => Some(standing),
                Err(standing) => {
                    return Err(Refusal::over_quota(standing, &tally.document));
                }
            }
        }
        _ => None,
    };
    let register = resolution.register.map(|hash| (hash, query.clone()));
    let mut span = gw
        .options
        .tracer
        .child_of_headers(headers, "plan", Kind::Internal);
    let prepared = plan(gw, &loaded, query, request.operation_name.clone()).await;
    operation_attributes(&mut span, &prepared);
    let prepared = prepared.map_err(|err| Refusal::plan(&err))?;
    drop(span);
    if report.operation.is_none() {
        report.operation = prepared.operation.name.clone();
    }
    use hive_router_query_planner::state::supergraph_state::OperationKind;
    let kind = match prepared.operation.operation_kind {
        Some(OperationKind::Mutation) => ratelimit::Kind::Mutation,
        Some(OperationKind::Subscription) => ratelimit::Kind::Subscription,
        _ => ratelimit::Kind::Query,
    };
    if via_get && kind == ratelimit::Kind::Mutation {
        return Err(Refusal::malformed(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations are not allowed over GET",
        ));
    }
    let variables = loaded
        .supergraph
        .coerce_variables(&prepared, &given)
        .map_err(|err| Refusal::plan(&err))?;
    if !prepared.introspection.is_empty() && loaded.introspection.is_none() {
        return Err(Refusal::graphql(
            StatusCode::BAD_REQUEST,
            "introspection is disabled on this gateway",
            "GRAPHQL_VALIDATION_FAILED",
        ));
    }
    // A document registers only once it planned: nothing invalid is kept.
    if let Some((hash, query)) = register {
        gw.documents.register(hash, &query).await;
    }
    Ok(Ready {
        claims,
        loaded,
        prepared,
        variables,
        quota,
    })
}

/// What a plan span says of the operation planned: its name and type
/// (OpenTelemetry's GraphQL conventions), or why planning failed.
fn operation_attributes(span: &mut otel::Span, prepared: &Result<Prepared, PlanError>) {
    if !span.is_recording() {
        return;
    }
    match prepared {
        Ok(prepared) => {
            use hive_router_query_planner::state::supergraph_state::OperationKind;
            if let Some(name) = &prepared.operation.name {
                span.set("graphql.operation.name", name.as_str());
            }
            span.set(
                "graphql.operation.type",
                match prepared.operation.operation_kind {
                    Some(OperationKind::Mutation) => "mutation",
                    Some(OperationKind::Subscription) => "subscription",
                    _ => "query",
                },
            );
        }
        Err(err) => span.fail(|| err.to_string()),
    }
}

/// The plan of `query`: a repeat is a cache lookup; only new operations are
/// planned, on the blocking pool.
pub async fn plan(
    gw: &Pipeline,
    loaded: &Loaded,
    query: String,
    operation_name: Option<String>,
) -> Result<Prepared, PlanError> {
    let cached = loaded.supergraph.cached(&query, operation_name.as_deref());
    gw.metrics.plan_cache(cached.is_some());
    if let Some(prepared) = cached {
        return Ok(prepared);
    }
    let supergraph = loaded.supergraph.clone();
    // Planning stops when the request is given up (the client left, the
    // request timed out): dropping this future cancels the token.
    let cancel = Arc::new(supergraph.plan_deadline());
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    tokio::task::spawn_blocking(move || {
        supergraph.plan_cancellable(&query, operation_name.as_deref(), &cancel)
    })
    .await
    .unwrap_or_else(|_| Err(PlanError::Planning("the planner panicked".into())))
}

/// Cancels planning when the request that waits for it is dropped.
struct CancelOnDrop(Arc<hive_router_query_planner::utils::cancellation::CancellationToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
