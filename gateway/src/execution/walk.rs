//! The plan walk: `Sequence` runs in order, `Parallel` concurrently,
//! `Condition` on a boolean variable, fetches by [`super::fetch`]; a
//! subscription's events run the rest of its plan.

use std::sync::{Mutex, PoisonError};

use futures::future::{BoxFuture, join_all};
use hive_router_query_planner::planner::plan_nodes::{FetchNode, PlanNode, QueryPlan};
use hive_router_query_planner::state::supergraph_state::OperationKind;
use hyper::HeaderMap;
use serde_json::Value as Json;

use super::{
    context::{Context, Execution, State, lock},
    errors::gateway_error,
    fetch::{batch_fetch, fetch_at},
    representations::rewrite,
};
use crate::value::{Map, Value};
use crate::{execution::projection::Shapes, subgraph::Subgraphs};

/// Runs `plan` with the client's coerced `variables`, forwarding `headers`,
/// for `caller` (the verified user's id, if any).
pub async fn execute(
    plan: &QueryPlan,
    subgraphs: &Subgraphs,
    types: &Shapes,
    variables: &serde_json::Map<String, Json>,
    headers: &HeaderMap,
    caller: Option<&str>,
) -> Execution {
    let ctx = Context {
        subgraphs,
        types,
        variables,
        headers,
        caller,
        event: false,
        shareable: !mutates(plan),
        spent: Default::default(),
    };
    let start = Execution {
        data: Value::Object(Map::new()),
        errors: Vec::new(),
    };
    run_plan(plan, &ctx, start).await
}

/// The fetch a subscription plan opens its stream with: where the events
/// come from. `None` for a plan that is not a subscription's.
pub fn subscription_primary(plan: &QueryPlan) -> Option<&FetchNode> {
    fn find(node: &PlanNode) -> Option<&FetchNode> {
        match node {
            PlanNode::Subscription(sub) => Some(&sub.primary),
            PlanNode::Sequence(seq) => seq.nodes.iter().find_map(find),
            PlanNode::Parallel(par) => par.nodes.iter().find_map(find),
            _ => None,
        }
    }
    plan.node.as_ref().and_then(find)
}

/// Completes one event of a subscription: `event` is the primary fetch's
/// answer for it (its data and errors); the rest of the plan resolves the
/// fields other subgraphs own, exactly as for a query.
pub async fn execute_event(
    plan: &QueryPlan,
    subgraphs: &Subgraphs,
    types: &Shapes,
    variables: &serde_json::Map<String, Json>,
    headers: &HeaderMap,
    event: Execution,
) -> Execution {
    let ctx = Context {
        subgraphs,
        types,
        variables,
        headers,
        // An event's fields are resolved for whoever follows the stream:
        // no private entry is read or kept for them.
        caller: None,
        event: true,
        shareable: !mutates(plan),
        spent: Default::default(),
    };
    let mut event = event;
    if let Some(rewrites) = subscription_primary(plan).and_then(|f| f.output_rewrites.as_ref()) {
        rewrite(&mut event.data, rewrites, types);
    }
    run_plan(plan, &ctx, event).await
}

/// Whether any fetch of `plan` is a mutation.
pub fn mutates(plan: &QueryPlan) -> bool {
    fn node(n: &PlanNode) -> bool {
        match n {
            PlanNode::Fetch(f) => matches!(f.operation_kind, Some(OperationKind::Mutation)),
            PlanNode::BatchFetch(b) => matches!(b.operation_kind, Some(OperationKind::Mutation)),
            PlanNode::Sequence(s) => s.nodes.iter().any(node),
            PlanNode::Parallel(p) => p.nodes.iter().any(node),
            PlanNode::Flatten(f) => node(&f.node),
            PlanNode::Condition(c) => c.if_clause.iter().chain(&c.else_clause).any(|n| node(n)),
            PlanNode::Subscription(_) | PlanNode::Defer(_) => false,
        }
    }
    plan.node.as_ref().is_some_and(node)
}

pub(super) async fn run_plan(plan: &QueryPlan, ctx: &Context<'_>, start: Execution) -> Execution {
    let state = Mutex::new(start);
    if let Some(node) = &plan.node {
        run(node, ctx, &state).await;
    }
    state.into_inner().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn run<'a>(
    node: &'a PlanNode,
    ctx: &'a Context<'a>,
    state: &'a State,
) -> BoxFuture<'a, ()> {
    Box::pin(async move {
        match node {
            PlanNode::Sequence(seq) => {
                for child in &seq.nodes {
                    run(child, ctx, state).await;
                }
            }
            PlanNode::Parallel(par) => {
                join_all(par.nodes.iter().map(|child| run(child, ctx, state))).await;
            }
            PlanNode::Condition(cond) => {
                let on = matches!(ctx.variables.get(&cond.condition), Some(Json::Bool(true)));
                let chosen = if on {
                    &cond.if_clause
                } else {
                    &cond.else_clause
                };
                if let Some(child) = chosen {
                    run(child, ctx, state).await;
                }
            }
            PlanNode::Fetch(fetch) => fetch_at(fetch, &[], ctx, state).await,
            PlanNode::Flatten(flatten) => match flatten.node.as_ref() {
                PlanNode::Fetch(fetch) => {
                    fetch_at(fetch, flatten.path.as_slice(), ctx, state).await
                }
                other => lock(state).errors.push(gateway_error(&format!(
                    "unsupported node under Flatten: {other:?}"
                ))),
            },
            PlanNode::BatchFetch(batch) => batch_fetch(batch, ctx, state).await,
            PlanNode::Subscription(_) if ctx.event => {}
            PlanNode::Subscription(_) => lock(state).errors.push(gateway_error(
                "subscriptions are served over WebSocket (graphql-transport-ws) and \
                 text/event-stream, not as a single answer",
            )),
            PlanNode::Defer(_) => lock(state)
                .errors
                .push(gateway_error("@defer is not supported by this gateway")),
        }
    })
}
