//! Execution: runs a query plan against the subgraphs and merges their
//! answers into one response tree.
//!
//! `Sequence` runs in order, `Parallel` concurrently, `Condition` on a boolean
//! variable. A `Fetch` at the root merges its data into the response; under a
//! `Flatten` (or in a `BatchFetch`) it is an entity fetch: the objects at the
//! flatten path are projected through `requires` into representations
//! (deduplicated, one `_entities` call per subgraph per step), and each answer
//! is merged back into every object it came from. Subgraph errors are re-pathed
//! to the response paths of those objects; a subgraph that fails leaves its
//! fields unset and adds an error, never failing the whole request.
//!
//! The response tree still holds what the planner added (keys, `__typename`);
//! projecting it onto the client's selection (aliases, null propagation) is
//! the next stage.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use futures::future::{BoxFuture, join_all};
use hive_router_query_planner::{
    ast::{selection_item::SelectionItem, selection_set::SelectionSet},
    planner::plan_nodes::{
        BatchFetchNode, FetchNode, FetchNodePathSegment, FetchRewrite, FlattenNodePath,
        FlattenNodePathSegment, PlanNode, QueryPlan,
    },
};
use hyper::{HeaderMap, Uri};
use serde_json::{Map, Value, json};

use crate::small_map;
use crate::{
    fetch::{FetchError, SubgraphClient, SubgraphRequest},
    projection::Shapes,
};

/// Where each subgraph is reached, and the client that reaches them.
pub struct Subgraphs {
    urls: HashMap<String, Uri>,
    /// Timeouts of subgraphs that do not use the client's.
    timeouts: HashMap<String, std::time::Duration>,
    client: SubgraphClient,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Subgraphs {
    /// `urls` by subgraph name (as the supergraph's `join__Graph` names them).
    pub fn new(
        urls: HashMap<String, Uri>,
        client: SubgraphClient,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            urls,
            timeouts: HashMap::new(),
            client,
            metrics,
        }
    }

    /// Gives the named subgraphs their own timeouts instead of the client's.
    pub fn with_timeouts(mut self, timeouts: HashMap<String, std::time::Duration>) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Where the subgraph `name` is reached.
    pub fn url(&self, name: &str) -> Option<&Uri> {
        self.urls.get(name)
    }

    /// How long the subgraph `name` may take to answer.
    pub fn timeout(&self, name: &str) -> std::time::Duration {
        self.timeouts
            .get(name)
            .copied()
            .unwrap_or_else(|| self.client.timeout())
    }

    /// Asks every subgraph `{ __typename }` within `deadline`; the ones that
    /// did not answer, with why.
    pub async fn unreachable(&self, deadline: std::time::Duration) -> Vec<(String, String)> {
        let probes = self.urls.iter().map(|(name, url)| async move {
            let request = SubgraphRequest {
                query: "{ __typename }",
                operation_name: None,
                variables: Value::Object(Map::new()),
                headers: HeaderMap::new(),
            };
            match tokio::time::timeout(deadline, self.client.fetch(url, request)).await {
                Ok(Ok(response)) if response.errors.is_empty() => None,
                Ok(Ok(response)) => Some((
                    name.clone(),
                    format!("answered errors: {:?}", response.errors),
                )),
                Ok(Err(err)) => Some((name.clone(), err.to_string())),
                Err(_) => Some((name.clone(), format!("no answer within {deadline:?}"))),
            }
        });
        let mut down: Vec<_> = join_all(probes).await.into_iter().flatten().collect();
        down.sort();
        down
    }
}

/// The merged answer of a plan: data (planner fields included) and errors.
#[derive(Debug, Default)]
pub struct Execution {
    pub data: Value,
    pub errors: Vec<Value>,
}

struct Context<'a> {
    subgraphs: &'a Subgraphs,
    /// Which object types a type condition covers.
    types: &'a Shapes,
    variables: &'a Map<String, Value>,
    headers: &'a HeaderMap,
    /// Running for one event of a subscription whose primary fetch already
    /// answered: its `Subscription` node is the data already in place.
    event: bool,
}

/// Runs `plan` with the client's coerced `variables`, forwarding `headers`.
pub async fn execute(
    plan: &QueryPlan,
    subgraphs: &Subgraphs,
    types: &Shapes,
    variables: &Map<String, Value>,
    headers: &HeaderMap,
) -> Execution {
    let ctx = Context {
        subgraphs,
        types,
        variables,
        headers,
        event: false,
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
    variables: &Map<String, Value>,
    headers: &HeaderMap,
    event: Execution,
) -> Execution {
    let ctx = Context {
        subgraphs,
        types,
        variables,
        headers,
        event: true,
    };
    let mut event = event;
    if let Some(rewrites) = subscription_primary(plan).and_then(|f| f.output_rewrites.as_ref()) {
        rewrite(&mut event.data, rewrites, types);
    }
    run_plan(plan, &ctx, event).await
}

async fn run_plan(plan: &QueryPlan, ctx: &Context<'_>, start: Execution) -> Execution {
    let state = Mutex::new(start);
    if let Some(node) = &plan.node {
        run(node, ctx, &state).await;
    }
    state.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// The response being built, shared by parallel branches (futures polled by
/// one task, so the lock is never contended): each fetch locks it to build
/// its representations, releases it while waiting for the subgraph, and locks
/// it again to merge the answer. No lock is held across an `.await`.
type State = Mutex<Execution>;

fn lock(state: &State) -> MutexGuard<'_, Execution> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run<'a>(node: &'a PlanNode, ctx: &'a Context<'a>, state: &'a State) -> BoxFuture<'a, ()> {
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
                let on = matches!(ctx.variables.get(&cond.condition), Some(Value::Bool(true)));
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

/// One step of a response path: an object key (borrowed from the plan, so
/// paths cost no string copies) or a list index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

impl Seg<'_> {
    fn to_json(self) -> Value {
        match self {
            Seg::Key(k) => Value::String(k.to_owned()),
            Seg::Index(i) => Value::from(i),
        }
    }
}

/// A concrete position in the response: object keys and list indexes.
type ResponsePath<'p> = Vec<Seg<'p>>;

fn path_json(path: &[Seg<'_>]) -> Vec<Value> {
    path.iter().map(|s| s.to_json()).collect()
}

/// The concrete paths of the objects a flatten path designates in `data`.
fn targets<'p>(
    data: &Value,
    path: &'p [FlattenNodePathSegment],
    types: &Shapes,
) -> Vec<ResponsePath<'p>> {
    fn walk<'p>(
        types: &Shapes,
        value: &Value,
        rest: &'p [FlattenNodePathSegment],
        at: &mut ResponsePath<'p>,
        out: &mut Vec<ResponsePath<'p>>,
    ) {
        match (rest.first(), value) {
            (_, Value::Null) => {}
            (_, Value::Array(items)) => {
                // Lists are walked element by element whether or not the path says `@`.
                let rest = if matches!(rest.first(), Some(FlattenNodePathSegment::List)) {
                    &rest[1..]
                } else {
                    rest
                };
                for (i, item) in items.iter().enumerate() {
                    at.push(Seg::Index(i));
                    walk(types, item, rest, at, out);
                    at.pop();
                }
            }
            (None, Value::Object(_)) => out.push(at.clone()),
            (Some(FlattenNodePathSegment::Field(key)), Value::Object(map)) => {
                if let Some(child) = small_map::get(map, key) {
                    at.push(Seg::Key(key));
                    walk(types, child, &rest[1..], at, out);
                    at.pop();
                }
            }
            (Some(FlattenNodePathSegment::TypeCondition(conditions)), Value::Object(map)) => {
                let matches = small_map::get(map, "__typename")
                    .and_then(Value::as_str)
                    .is_none_or(|t| conditions.iter().any(|c| types.applies(c, t)));
                if matches {
                    walk(types, value, &rest[1..], at, out);
                }
            }
            (Some(FlattenNodePathSegment::List), Value::Object(_)) => {
                walk(types, value, &rest[1..], at, out)
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(types, data, path, &mut Vec::new(), &mut out);
    out
}

fn at_path<'v>(data: &'v Value, path: &[Seg<'_>]) -> Option<&'v Value> {
    path.iter().try_fold(data, |v, seg| match seg {
        Seg::Key(k) => small_map::field(v, k),
        Seg::Index(i) => v.get(*i),
    })
}

fn at_path_mut<'v>(data: &'v mut Value, path: &[Seg<'_>]) -> Option<&'v mut Value> {
    path.iter().try_fold(data, |v, seg| match seg {
        Seg::Key(k) => small_map::field_mut(v, k),
        Seg::Index(i) => v.get_mut(*i),
    })
}

/// `value` projected through `selections` (a representation from the
/// requires selection): fields are read under their name in the response
/// tree and written under their alias (the planner aliases a required field
/// it fetched under another response key), inline fragments apply by
/// `__typename`. `None` when a selected field is missing: the object lacks
/// what the subgraph needs (an earlier fetch failed or answered null).
fn project(value: &Value, selections: &SelectionSet, types: &Shapes) -> Option<Value> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| project(v, selections, types))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        Value::Object(map) if !selections.items.is_empty() => {
            let mut out = Map::new();
            project_into(map, selections, types, &mut out)?;
            Some(Value::Object(out))
        }
        other => Some(other.clone()),
    }
}

fn project_into(
    map: &Map<String, Value>,
    selections: &SelectionSet,
    types: &Shapes,
    out: &mut Map<String, Value>,
) -> Option<()> {
    for item in &selections.items {
        match item {
            SelectionItem::Field(field) => {
                let value = small_map::get(map, &field.name)?;
                let projected = project(value, &field.selections, types)?;
                let key = field.alias.as_ref().unwrap_or(&field.name);
                match small_map::get_mut(out, key) {
                    Some(existing) => deep_merge(existing, projected),
                    None => {
                        out.insert(key.clone(), projected);
                    }
                }
            }
            SelectionItem::InlineFragment(fragment) => {
                let typename = small_map::get(map, "__typename").and_then(Value::as_str);
                if typename.is_none_or(|t| types.applies(&fragment.type_condition, t)) {
                    project_into(map, &fragment.selections, types, out)?;
                }
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
    Some(())
}

/// Applies value setters and key renamers (the planner's input/output rewrites).
fn rewrite(value: &mut Value, rewrites: &[FetchRewrite], types: &Shapes) {
    fn apply(
        value: &mut Value,
        path: &[FetchNodePathSegment],
        rewrite: &FetchRewrite,
        types: &Shapes,
    ) {
        if let Value::Array(items) = value {
            items
                .iter_mut()
                .for_each(|v| apply(v, path, rewrite, types));
            return;
        }
        let Value::Object(map) = value else { return };
        match path {
            [] => {}
            [FetchNodePathSegment::TypenameEquals(conditions), rest @ ..] => {
                if map
                    .get("__typename")
                    .and_then(Value::as_str)
                    .is_some_and(|t| conditions.iter().any(|c| types.applies(c, t)))
                {
                    apply(value, rest, rewrite, types);
                }
            }
            [FetchNodePathSegment::Key(key)] => match rewrite {
                FetchRewrite::ValueSetter(setter) => {
                    map.insert(key.clone(), Value::String(setter.set_value_to.clone()));
                }
                FetchRewrite::KeyRenamer(renamer) => {
                    if let Some(v) = map.remove(key) {
                        map.insert(renamer.rename_key_to.clone(), v);
                    }
                }
            },
            [FetchNodePathSegment::Key(key), rest @ ..] => {
                if let Some(child) = map.get_mut(key) {
                    apply(child, rest, rewrite, types);
                }
            }
        }
    }
    for r in rewrites {
        let path = match r {
            FetchRewrite::ValueSetter(s) => &s.path,
            FetchRewrite::KeyRenamer(k) => &k.path,
        };
        apply(value, path, r, types);
    }
}

/// Merges `from` into `into`: objects key by key, lists element-wise, anything else replaced.
pub fn deep_merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match small_map::get_mut(a, &k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter_mut().zip(b) {
                deep_merge(x, y);
            }
        }
        (into, Value::Null) if !into.is_null() => {}
        (into, from) => *into = from,
    }
}

/// [`deep_merge`] of a copy of `from`, copying only what `into` lacks.
fn deep_merge_ref(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge_field_ref(a, k, v);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter_mut().zip(b) {
                deep_merge_ref(x, y);
            }
        }
        (into, Value::Null) if !into.is_null() => {}
        (into, from) => *into = from.clone(),
    }
}

fn merge_field_ref(into: &mut Map<String, Value>, key: &str, value: &Value) {
    match small_map::get_mut(into, key) {
        Some(existing) => deep_merge_ref(existing, value),
        None => {
            into.insert(key.to_owned(), value.clone());
        }
    }
}

/// Representations of the objects at `paths`, deduplicated; returns them and,
/// per representation, the paths that share it.
fn representations<'p>(
    data: &Value,
    paths: Vec<ResponsePath<'p>>,
    requires: &SelectionSet,
    input_rewrites: Option<&Vec<FetchRewrite>>,
    types: &Shapes,
) -> (Vec<Value>, Vec<Vec<ResponsePath<'p>>>) {
    let mut reps: Vec<Value> = Vec::new();
    let mut owners: Vec<Vec<ResponsePath<'p>>> = Vec::new();
    // Representations by hash (equal ones compared in full): deduplication
    // without printing each one.
    let mut seen: crate::fxhash::FxHashMap<u64, Vec<usize>> = Default::default();
    for path in paths {
        let Some(entity) = at_path(data, &path) else {
            continue;
        };
        // Most paths repeat an entity already seen: without rewrites, its
        // representation is hashed and compared where it stands, and built
        // only the first time.
        let index = if input_rewrites.is_none() && !requires.items.is_empty() {
            let Value::Object(map) = entity else {
                continue;
            };
            let mut h = crate::fxhash::FxHasher::default();
            if matches!(projected_hash(map, requires, types, &mut h), Some(0) | None) {
                continue;
            }
            let hash = std::hash::Hasher::finish(&h);
            let known = seen.get(&hash).and_then(|same| {
                same.iter()
                    .copied()
                    .find(|&i| projects_to(entity, requires, types, &reps[i]))
            });
            match known {
                Some(i) => i,
                None => match project(entity, requires, types) {
                    Some(rep) => find_or_add(&mut reps, &mut owners, &mut seen, hash, rep),
                    None => continue,
                },
            }
        } else {
            let Some(mut rep) = project(entity, requires, types) else {
                continue;
            };
            if let Some(rewrites) = input_rewrites {
                rewrite(&mut rep, rewrites, types);
            }
            if rep.as_object().is_none_or(|m| m.is_empty()) {
                continue;
            }
            let hash = value_hash(&rep);
            find_or_add(&mut reps, &mut owners, &mut seen, hash, rep)
        };
        owners[index].push(path);
    }
    (reps, owners)
}

/// The index of `rep` among `reps` (by `hash`, compared in full), added with
/// no owners yet when it is new.
fn find_or_add<'p>(
    reps: &mut Vec<Value>,
    owners: &mut Vec<Vec<ResponsePath<'p>>>,
    seen: &mut crate::fxhash::FxHashMap<u64, Vec<usize>>,
    hash: u64,
    rep: Value,
) -> usize {
    let same = seen.entry(hash).or_default();
    if let Some(&i) = same.iter().find(|&&i| reps[i] == rep) {
        return i;
    }
    reps.push(rep);
    owners.push(Vec::new());
    same.push(reps.len() - 1);
    reps.len() - 1
}

/// Feeds `h` what [`project`] would build from the object `map` (response
/// keys and leaves in the order it would write them), without building it;
/// answers how many fields it would write, `None` where `project` would fail.
/// Only ever compared with other such hashes.
fn projected_hash(
    map: &Map<String, Value>,
    selections: &SelectionSet,
    types: &Shapes,
    h: &mut crate::fxhash::FxHasher,
) -> Option<usize> {
    use std::hash::Hash;
    let mut written = 0;
    for item in &selections.items {
        match item {
            SelectionItem::Field(field) => {
                let value = small_map::get(map, &field.name)?;
                field.alias.as_ref().unwrap_or(&field.name).hash(h);
                projected_value_hash(value, &field.selections, types, h)?;
                written += 1;
            }
            SelectionItem::InlineFragment(fragment) => {
                let typename = small_map::get(map, "__typename").and_then(Value::as_str);
                if typename.is_none_or(|t| types.applies(&fragment.type_condition, t)) {
                    written += projected_hash(map, &fragment.selections, types, h)?;
                }
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
    Some(written)
}

fn projected_value_hash(
    value: &Value,
    selections: &SelectionSet,
    types: &Shapes,
    h: &mut crate::fxhash::FxHasher,
) -> Option<()> {
    use std::hash::Hash;
    match value {
        Value::Array(items) => {
            (4u8, items.len()).hash(h);
            for item in items {
                projected_value_hash(item, selections, types, h)?;
            }
        }
        Value::Object(map) if !selections.items.is_empty() => {
            5u8.hash(h);
            projected_hash(map, selections, types, h)?;
        }
        leaf => value_feed(leaf, h),
    }
    Some(())
}

/// Whether [`project`] of `value` through `selections` equals `rep`, without
/// building it. A selection that writes one key twice (merged by `project`)
/// answers false: that only costs a duplicate representation, never a wrong one.
fn projects_to(value: &Value, selections: &SelectionSet, types: &Shapes, rep: &Value) -> bool {
    match (value, rep) {
        (Value::Array(items), Value::Array(reps)) => {
            items.len() == reps.len()
                && items
                    .iter()
                    .zip(reps)
                    .all(|(v, r)| projects_to(v, selections, types, r))
        }
        (Value::Object(map), Value::Object(out)) if !selections.items.is_empty() => {
            let mut matched = 0;
            fields_project_to(map, selections, types, out, &mut matched) && matched == out.len()
        }
        (Value::Object(_), _) if !selections.items.is_empty() => false,
        (leaf, rep) => leaf == rep,
    }
}

fn fields_project_to(
    map: &Map<String, Value>,
    selections: &SelectionSet,
    types: &Shapes,
    out: &Map<String, Value>,
    matched: &mut usize,
) -> bool {
    for item in &selections.items {
        match item {
            SelectionItem::Field(field) => {
                let key = field.alias.as_ref().unwrap_or(&field.name);
                let (Some(value), Some(rep)) =
                    (small_map::get(map, &field.name), small_map::get(out, key))
                else {
                    return false;
                };
                if !projects_to(value, &field.selections, types, rep) {
                    return false;
                }
                *matched += 1;
            }
            SelectionItem::InlineFragment(fragment) => {
                let typename = small_map::get(map, "__typename").and_then(Value::as_str);
                if typename.is_none_or(|t| types.applies(&fragment.type_condition, t))
                    && !fields_project_to(map, &fragment.selections, types, out, matched)
                {
                    return false;
                }
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
    true
}

/// A hash of a JSON value's content (object keys in order, as representations are built).
fn value_hash(value: &Value) -> u64 {
    let mut h = crate::fxhash::FxHasher::default();
    value_feed(value, &mut h);
    std::hash::Hasher::finish(&h)
}

fn value_feed(value: &Value, h: &mut crate::fxhash::FxHasher) {
    use std::hash::Hash;
    match value {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, *b).hash(h),
        Value::Number(n) => (2u8, n.as_f64().map(f64::to_bits), n.as_i64()).hash(h),
        Value::String(s) => (3u8, s).hash(h),
        Value::Array(items) => {
            (4u8, items.len()).hash(h);
            items.iter().for_each(|v| value_feed(v, h));
        }
        Value::Object(map) => {
            (5u8, map.len()).hash(h);
            for (k, v) in map {
                k.hash(h);
                value_feed(v, h);
            }
        }
    }
}

fn variables_for(
    usages: Option<&std::collections::BTreeSet<String>>,
    ctx: &Context<'_>,
) -> Map<String, Value> {
    usages
        .into_iter()
        .flatten()
        .filter_map(|name| ctx.variables.get(name).map(|v| (name.clone(), v.clone())))
        .collect()
}

async fn send(
    service: &str,
    query: &str,
    variables: Map<String, Value>,
    ctx: &Context<'_>,
) -> Result<crate::fetch::SubgraphResponse, FetchError> {
    let url = ctx
        .subgraphs
        .urls
        .get(service)
        .ok_or_else(|| FetchError::Unreachable(format!("no URL for subgraph {service}")))?;
    let request = SubgraphRequest {
        query,
        operation_name: None,
        variables: Value::Object(variables),
        headers: ctx.headers.clone(),
    };
    let started = std::time::Instant::now();
    let result = match ctx.subgraphs.timeouts.get(service) {
        Some(timeout) => {
            ctx.subgraphs
                .client
                .fetch_within(url, request, *timeout)
                .await
        }
        None => ctx.subgraphs.client.fetch(url, request).await,
    };
    ctx.subgraphs
        .metrics
        .fetch(service, started.elapsed(), result.is_err());
    result
}

fn gateway_error(message: &str) -> Value {
    json!({ "message": message, "extensions": { "code": "INTERNAL_SERVER_ERROR" } })
}

/// A failed fetch, reported at each response path it was to fill.
fn fetch_failed(service: &str, err: &FetchError, paths: &[ResponsePath<'_>]) -> Vec<Value> {
    let error = |path: Option<&ResponsePath<'_>>| {
        let mut e = json!({
            "message": format!("subgraph {service} failed: {err}"),
            "extensions": { "code": "SUBGRAPH_ERROR", "serviceName": service },
        });
        if let Some(path) = path {
            e["path"] = Value::Array(path_json(path));
        }
        e
    };
    if paths.is_empty() {
        vec![error(None)]
    } else {
        paths.iter().map(|p| error(Some(p))).collect()
    }
}

/// Whether following `rest` into `entity` ends at nothing (null or absent)
/// before or at its end: where an error at that path left its mark.
fn marked_by_error(entity: &Value, rest: &[Value]) -> bool {
    let mut at = entity;
    if at.is_null() {
        return true;
    }
    for segment in rest {
        let next = match (segment, at) {
            (Value::String(key), Value::Object(map)) => map.get(key),
            (Value::Number(i), Value::Array(items)) => {
                i.as_u64().and_then(|i| items.get(i as usize))
            }
            _ => None,
        };
        match next {
            Some(value) if !value.is_null() => at = value,
            _ => return true,
        }
    }
    false
}

/// A subgraph error re-pathed: `_entities.i.rest` (under `alias`) becomes each owner's path + rest.
///
/// Some subgraphs (async-graphql among them) leave the index out:
/// `_entities.rest`. The error then belongs to the entity of `entities` (the
/// answered list) that the error left null or without `rest`, if exactly one
/// did; otherwise it cannot be placed and loses its path.
fn repath(
    mut error: Value,
    service: &str,
    alias: &str,
    owners: &[Vec<ResponsePath<'_>>],
    entities: Option<&Value>,
) -> Vec<Value> {
    error = with_service(error, service);
    let path = error
        .get("path")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let unindexed = |rest: &[Value]| {
        let entities = entities.and_then(Value::as_array)?;
        let mut marked = entities
            .iter()
            .enumerate()
            .filter(|(_, entity)| marked_by_error(entity, rest))
            .map(|(i, _)| i);
        match (marked.next(), marked.next()) {
            (Some(i), None) => Some(i),
            _ => None,
        }
    };
    let placed = match path.get(1) {
        _ if path.first().and_then(Value::as_str) != Some(alias) => None,
        Some(Value::Number(i)) => i.as_u64().map(|i| (i as usize, &path[2..])),
        _ => unindexed(&path[1..]).map(|i| (i, &path[1..])),
    };
    let Some((index, rest)) = placed else {
        if let Some(map) = error.as_object_mut() {
            map.remove("path");
        }
        return vec![error];
    };
    owners
        .get(index)
        .into_iter()
        .flatten()
        .map(|owner| {
            let mut e = error.clone();
            let mut full = path_json(owner);
            full.extend(rest.iter().cloned());
            e["path"] = Value::Array(full);
            e
        })
        .collect()
}

async fn fetch_at(
    fetch: &FetchNode,
    path: &[FlattenNodePathSegment],
    ctx: &Context<'_>,
    state: &State,
) {
    let service = fetch.service_name.as_str();
    let mut variables = variables_for(fetch.variable_usages.as_ref(), ctx);
    let Some(requires) = &fetch.requires else {
        // A root fetch (or a re-entry at a path): its data merges into every target.
        let response = send(service, &fetch.operation.document_str, variables, ctx).await;
        let state = &mut *lock(state);
        match response {
            Ok(response) => {
                let mut data = response.data;
                if let Some(rewrites) = &fetch.output_rewrites {
                    rewrite(&mut data, rewrites, ctx.types);
                }
                let paths = if path.is_empty() {
                    vec![Vec::new()]
                } else {
                    targets(&state.data, path, ctx.types)
                };
                if let Some((last, rest)) = paths.split_last() {
                    for p in rest {
                        if let Some(target) = at_path_mut(&mut state.data, p) {
                            deep_merge(target, data.clone());
                        }
                    }
                    if let Some(target) = at_path_mut(&mut state.data, last) {
                        deep_merge(target, data);
                    }
                }
                state.errors.extend(
                    response
                        .errors
                        .into_iter()
                        .map(|e| with_service(e, service)),
                );
            }
            Err(err) => state.errors.extend(fetch_failed(service, &err, &[])),
        }
        return;
    };
    let (reps, owners) = {
        let state = lock(state);
        let paths = targets(&state.data, path, ctx.types);
        representations(
            &state.data,
            paths,
            requires,
            fetch.input_rewrites.as_ref(),
            ctx.types,
        )
    };
    if reps.is_empty() {
        return;
    }
    variables.insert("representations".into(), Value::Array(reps));
    let response = send(service, &fetch.operation.document_str, variables, ctx).await;
    let state = &mut *lock(state);
    match response {
        Ok(mut response) => {
            // Errors first: re-pathing looks at which entities came back null.
            for error in std::mem::take(&mut response.errors) {
                let entities = response.data.get("_entities");
                state
                    .errors
                    .extend(repath(error, service, "_entities", &owners, entities));
            }
            merge_entities(
                state,
                response.data.get_mut("_entities").map(Value::take),
                &owners,
                fetch.output_rewrites.as_ref(),
                ctx.types,
            );
        }
        Err(err) => state
            .errors
            .extend(fetch_failed(service, &err, &owners.concat())),
    }
}

fn merge_entities(
    state: &mut Execution,
    entities: Option<Value>,
    owners: &[Vec<ResponsePath<'_>>],
    output_rewrites: Option<&Vec<FetchRewrite>>,
    types: &Shapes,
) {
    let Some(Value::Array(entities)) = entities else {
        return;
    };
    // The entities are the subgraph's answer, owned: each moves into the
    // tree (cloned only for the extra paths that share a representation).
    for (mut entity, paths) in entities.into_iter().zip(owners) {
        if let Some(rewrites) = output_rewrites {
            rewrite(&mut entity, rewrites, types);
        }
        // An `@interfaceObject` subgraph answers with the interface's name:
        // an object that already has its concrete type keeps it.
        let abstract_name = entity
            .get("__typename")
            .and_then(Value::as_str)
            .is_some_and(|t| types.is_abstract(t));
        let Some((last, rest)) = paths.split_last() else {
            continue;
        };
        for p in rest {
            if let Some(target) = at_path_mut(&mut state.data, p) {
                let keep_own = abstract_name && has_typename(target);
                match (&mut *target, &entity) {
                    (Value::Object(into), Value::Object(fields)) if keep_own => {
                        for (k, v) in fields.iter().filter(|(k, _)| *k != "__typename") {
                            merge_field_ref(into, k, v);
                        }
                    }
                    _ => deep_merge_ref(target, &entity),
                }
            }
        }
        if let Some(target) = at_path_mut(&mut state.data, last) {
            if abstract_name
                && has_typename(target)
                && let Value::Object(fields) = &mut entity
            {
                fields.remove("__typename");
            }
            deep_merge(target, entity);
        }
    }
}

fn has_typename(target: &Value) -> bool {
    small_map::field(target, "__typename").is_some_and(|own| !own.is_null())
}

/// A subgraph's error as the client sees it: the subgraph named, and its
/// `locations` dropped (they point into the gateway's query to the
/// subgraph, not into the client's document).
pub(crate) fn with_service(mut error: Value, service: &str) -> Value {
    if let Some(map) = error.as_object_mut() {
        map.remove("locations");
        let extensions = map.entry("extensions").or_insert_with(|| json!({}));
        if let Some(ext) = extensions.as_object_mut() {
            ext.entry("serviceName").or_insert_with(|| json!(service));
        }
    }
    error
}

async fn batch_fetch(batch: &BatchFetchNode, ctx: &Context<'_>, state: &State) {
    let service = batch.service_name.as_str();
    let mut variables = variables_for(batch.variable_usages.as_ref(), ctx);
    let mut all_owners = Vec::new();
    {
        let current = lock(state);
        for alias in &batch.entity_batch.aliases {
            let paths: Vec<ResponsePath<'_>> = alias
                .merge_paths
                .iter()
                .flat_map(|p: &FlattenNodePath| targets(&current.data, p.as_slice(), ctx.types))
                .collect();
            let (reps, owners) = representations(
                &current.data,
                paths,
                &alias.requires,
                alias.input_rewrites.as_ref(),
                ctx.types,
            );
            variables.insert(
                alias.representations_variable_name.clone(),
                Value::Array(reps),
            );
            all_owners.push(owners);
        }
    }
    if all_owners.iter().all(Vec::is_empty) {
        return;
    }
    let response = send(service, &batch.operation.document_str, variables, ctx).await;
    let state = &mut *lock(state);
    match response {
        Ok(mut response) => {
            // Errors first: re-pathing looks at which entities came back null.
            for error in std::mem::take(&mut response.errors) {
                let alias = error
                    .get("path")
                    .and_then(|p| p.get(0))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let owners = batch
                    .entity_batch
                    .aliases
                    .iter()
                    .position(|a| a.alias == alias)
                    .map(|i| all_owners[i].as_slice())
                    .unwrap_or(&[]);
                state.errors.extend(repath(
                    error,
                    service,
                    &alias,
                    owners,
                    response.data.get(&alias),
                ));
            }
            for (alias, owners) in batch.entity_batch.aliases.iter().zip(&all_owners) {
                merge_entities(
                    state,
                    response.data.get_mut(&alias.alias).map(Value::take),
                    owners,
                    alias.output_rewrites.as_ref(),
                    ctx.types,
                );
            }
        }
        Err(err) => {
            let paths: Vec<ResponsePath<'_>> = all_owners.into_iter().flatten().flatten().collect();
            state.errors.extend(fetch_failed(service, &err, &paths));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[(&str, Option<&str>)]) -> SelectionSet {
        SelectionSet {
            items: names
                .iter()
                .map(|(name, alias)| {
                    SelectionItem::Field(
                        hive_router_query_planner::ast::selection_set::FieldSelection {
                            name: (*name).into(),
                            alias: alias.map(Into::into),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn representations_are_deduplicated_without_building_repeats() {
        let schema = hive_router_query_planner::utils::parsing::safe_parse_schema(
            "type Query { ps: [P] } type P { upc: String, name: String }",
        )
        .unwrap();
        let types = Shapes::new(&schema);
        let data = json!({ "ps": [
            { "__typename": "P", "upc": "1", "name": "a" },
            { "__typename": "P", "upc": "2", "name": "b" },
            { "__typename": "P", "upc": "1", "name": "c" },
            { "__typename": "P", "name": "no key" },
        ] });
        let paths: Vec<ResponsePath<'_>> = (0..4)
            .map(|i| vec![Seg::Key("ps"), Seg::Index(i)])
            .collect();
        let requires = fields(&[("__typename", None), ("upc", None)]);
        let (reps, owners) = representations(&data, paths.clone(), &requires, None, &types);
        assert_eq!(
            reps,
            [
                json!({ "__typename": "P", "upc": "1" }),
                json!({ "__typename": "P", "upc": "2" })
            ]
        );
        assert_eq!(owners.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        // Written under an alias, compared under it.
        let aliased = fields(&[("__typename", None), ("upc", Some("key"))]);
        let (reps, _) = representations(&data, paths.clone(), &aliased, None, &types);
        assert_eq!(reps[0], json!({ "__typename": "P", "key": "1" }));
        assert_eq!(reps.len(), 2);
        // A key selected twice still lands on one representation.
        let twice = fields(&[("__typename", None), ("upc", None), ("upc", None)]);
        let (reps, owners) = representations(&data, paths, &twice, None, &types);
        assert_eq!(reps.len(), 2);
        assert_eq!(owners[0].len(), 2);
        assert!(!projects_to(&data["ps"][0], &twice, &types, &reps[0]));
        assert!(projects_to(
            &data["ps"][2],
            &requires,
            &types,
            &json!({ "__typename": "P", "upc": "1" })
        ));
        assert!(!projects_to(
            &data["ps"][1],
            &requires,
            &types,
            &json!({ "__typename": "P", "upc": "1" })
        ));
    }

    #[test]
    fn deep_merge_adds_fields_and_keeps_data_over_null() {
        let into = json!({ "p": [{ "sku": "A" }, { "sku": "B" }], "x": 1, "s": "old" });
        let from = json!({ "p": [{ "stock": 1 }, { "stock": 2 }], "x": null, "s": "new", "n": { "a": [1] } });
        let merged = json!({ "p": [{ "sku": "A", "stock": 1 }, { "sku": "B", "stock": 2 }], "x": 1, "s": "new", "n": { "a": [1] } });
        let mut a = into.clone();
        deep_merge(&mut a, from.clone());
        assert_eq!(a, merged);
        // The copying merge answers the same.
        let mut b = into;
        deep_merge_ref(&mut b, &from);
        assert_eq!(b, merged);
    }

    #[test]
    fn flatten_paths_find_every_object_through_lists() {
        let data = json!({ "products": { "edges": [{ "node": { "sku": "A" } }, { "node": null }, { "node": { "sku": "B" } }] } });
        let path = [
            FlattenNodePathSegment::Field("products".into()),
            FlattenNodePathSegment::Field("edges".into()),
            FlattenNodePathSegment::List,
            FlattenNodePathSegment::Field("node".into()),
        ];
        let schema = hive_router_query_planner::utils::parsing::safe_parse_schema(
            "type Query { products: Products } type Products { edges: [Edge] } type Edge { node: Node } type Node { sku: String }",
        )
        .unwrap();
        let found = targets(&data, &path, &Shapes::new(&schema));
        let found: Vec<Vec<Value>> = found.iter().map(|p| path_json(p)).collect();
        assert_eq!(
            found,
            [
                vec![json!("products"), json!("edges"), json!(0), json!("node")],
                vec![json!("products"), json!("edges"), json!(2), json!("node")]
            ]
        );
    }

    #[test]
    fn entity_errors_land_on_every_owner_path() {
        let owners = vec![vec![
            vec![Seg::Key("a"), Seg::Index(0)],
            vec![Seg::Key("b")],
        ]];
        let error = json!({
            "message": "boom",
            "path": ["_entities", 0, "stock"],
            "locations": [{ "line": 1, "column": 80 }],
        });
        let repathed = repath(error, "inventory", "_entities", &owners, None);
        assert!(
            repathed.iter().all(|e| e.get("locations").is_none()),
            "subgraph locations do not describe the client's document"
        );
        assert_eq!(repathed.len(), 2);
        assert_eq!(repathed[0]["path"], json!(["a", 0, "stock"]));
        assert_eq!(repathed[1]["path"], json!(["b", "stock"]));
        assert_eq!(repathed[1]["extensions"]["serviceName"], "inventory");
    }

    #[test]
    fn entity_errors_without_an_index_land_on_the_one_entity_they_marked() {
        // async-graphql: `_entities.rest`, and the failed field left out (or the entity null).
        let owners: Vec<Vec<ResponsePath<'_>>> = (0..3)
            .map(|i| vec![vec![Seg::Key("p"), Seg::Index(i)]])
            .collect();
        let entities = json!([{ "a": 1, "b": 2 }, { "b": 2 }, { "a": 3, "b": 2 }]);
        let error = json!({ "message": "boom", "path": ["_entities", "a"] });
        let repathed = repath(error, "s", "_entities", &owners, Some(&entities));
        assert_eq!(repathed.len(), 1);
        assert_eq!(repathed[0]["path"], json!(["p", 1, "a"]));
        let entities = json!([{ "a": 1 }, { "a": 1 }, null]);
        let error = json!({ "message": "boom", "path": ["_entities", "a"] });
        let repathed = repath(error, "s", "_entities", &owners, Some(&entities));
        assert_eq!(repathed[0]["path"], json!(["p", 2, "a"]));
        // Two candidates: the error cannot be placed.
        let entities = json!([{ "b": 1 }, null, null]);
        let error = json!({ "message": "boom", "path": ["_entities", "a"] });
        let repathed = repath(error, "s", "_entities", &owners, Some(&entities));
        assert_eq!(repathed.len(), 1);
        assert_eq!(repathed[0].get("path"), None);
    }
}
