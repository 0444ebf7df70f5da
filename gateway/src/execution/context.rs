//! What one plan's run shares: [`Context`] (the subgraphs, type
//! conditions, variables, headers, the byte budget spent) and the
//! [`Execution`] its fetches merge into, with the conditions (`@skip`,
//! `@include`) evaluated against the variables.

use std::sync::{Mutex, MutexGuard, PoisonError};

use hive_router_query_planner::ast::{selection_item::SelectionItem, selection_set::SelectionSet};
use hyper::HeaderMap;
use serde_json::Value as Json;

use crate::value::{Map, Str, Value};
use crate::{execution::projection::Shapes, subgraph::Subgraphs};

/// The merged answer of a plan: data (planner fields included) and errors.
#[derive(Debug, Default)]
pub struct Execution {
    pub data: Value,
    pub errors: Vec<Json>,
}

pub(super) struct Context<'a> {
    pub(super) subgraphs: &'a Subgraphs,
    /// Which object types a type condition covers.
    pub(super) types: &'a Shapes,
    pub(super) variables: &'a serde_json::Map<String, Json>,
    pub(super) headers: &'a HeaderMap,
    /// Running for one event of a subscription whose primary fetch already
    /// answered: its `Subscription` node is the data already in place.
    pub(super) event: bool,
    /// Whether this plan's fetches may share another request's identical
    /// fetch in flight: not in a mutation's plan, whose reads must see its
    /// own writes (a fetch that started before them would not).
    pub(super) shareable: bool,
    /// The verified user the request runs for, if any: whose private
    /// entity-cache entries it may read and write.
    pub(super) caller: Option<&'a str>,
    /// Bytes of subgraph answers this request has received so far.
    pub(super) spent: std::sync::atomic::AtomicUsize,
}

/// The response being built, shared by parallel branches (futures polled by
/// one task, so the lock is never contended): each fetch locks it to build
/// its representations, releases it while waiting for the subgraph, and locks
/// it again to merge the answer. No lock is held across an `.await`.
pub(super) type State = Mutex<Execution>;

pub(super) fn lock(state: &State) -> MutexGuard<'_, Execution> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a fetch's operation would ask the subgraph for nothing the
/// gateway does not know already: every selection is switched off by an
/// `@include`/`@skip` on this request's variables, or (`at_root`, a root
/// fetch) is the root type's `__typename`, which projection writes itself.
/// The planner wraps entity fetches in `Condition` nodes, but leaves a root
/// field's directive inside its fetch, and sends `{ __typename }` (a health
/// check's query) to a subgraph; an `_entities` field counts as nothing when
/// everything under it is.
pub(super) fn selects_nothing(selections: &SelectionSet, at_root: bool, ctx: &Context<'_>) -> bool {
    let off = |skip_if: &Option<String>, include_if: &Option<String>| {
        switched_off(skip_if, include_if, ctx)
    };
    !selections.items.is_empty()
        && selections.items.iter().all(|item| match item {
            SelectionItem::Field(f) => {
                off(&f.skip_if, &f.include_if)
                    || (at_root && f.name == "__typename")
                    || (f.name == "_entities" && selects_nothing(&f.selections, false, ctx))
            }
            SelectionItem::InlineFragment(f) => {
                off(&f.skip_if, &f.include_if) || selects_nothing(&f.selections, at_root, ctx)
            }
            SelectionItem::FragmentSpread(_) => false,
        })
}

/// Whether `@skip(if: $skip_if)` / `@include(if: $include_if)` leave a
/// selection out with this request's (coerced, defaults filled) variables.
pub(super) fn switched_off(
    skip_if: &Option<String>,
    include_if: &Option<String>,
    ctx: &Context<'_>,
) -> bool {
    let on = |name: &Option<String>| {
        name.as_ref()
            .map(|v| matches!(ctx.variables.get(v), Some(Json::Bool(true))))
    };
    on(skip_if) == Some(true) || on(include_if) == Some(false)
}

pub(super) fn variables_for(
    usages: Option<&std::collections::BTreeSet<String>>,
    ctx: &Context<'_>,
) -> Map {
    usages
        .into_iter()
        .flatten()
        .filter_map(|name| {
            ctx.variables
                .get(name)
                .map(|v| (Str::new(name), Value::from(v)))
        })
        .collect()
}
