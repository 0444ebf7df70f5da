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

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::future::{BoxFuture, join_all};
use hive_router_query_planner::state::supergraph_state::OperationKind;
use hive_router_query_planner::{
    ast::{selection_item::SelectionItem, selection_set::SelectionSet},
    planner::plan_nodes::{
        BatchFetchNode, FetchNode, FetchNodePathSegment, FetchRewrite, FlattenNodePath,
        FlattenNodePathSegment, PlanNode, QueryPlan,
    },
};
use hyper::HeaderMap;
use serde_json::{Value as Json, json};

use crate::value::{Map, Str, Value};
use crate::{
    execution::projection::Shapes,
    subgraph::{FetchError, SubgraphRequest, SubgraphResponse, Subgraphs},
};

/// The merged answer of a plan: data (planner fields included) and errors.
#[derive(Debug, Default)]
pub struct Execution {
    pub data: Value,
    pub errors: Vec<Json>,
}

struct Context<'a> {
    subgraphs: &'a Subgraphs,
    /// Which object types a type condition covers.
    types: &'a Shapes,
    variables: &'a serde_json::Map<String, Json>,
    headers: &'a HeaderMap,
    /// Running for one event of a subscription whose primary fetch already
    /// answered: its `Subscription` node is the data already in place.
    event: bool,
    /// Whether this plan's fetches may share another request's identical
    /// fetch in flight: not in a mutation's plan, whose reads must see its
    /// own writes (a fetch that started before them would not).
    shareable: bool,
    /// Bytes of subgraph answers this request has received so far.
    spent: std::sync::atomic::AtomicUsize,
}

/// Runs `plan` with the client's coerced `variables`, forwarding `headers`.
pub async fn execute(
    plan: &QueryPlan,
    subgraphs: &Subgraphs,
    types: &Shapes,
    variables: &serde_json::Map<String, Json>,
    headers: &HeaderMap,
) -> Execution {
    let ctx = Context {
        subgraphs,
        types,
        variables,
        headers,
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

/// One step of a response path: an object key (borrowed from the plan, so
/// paths cost no string copies) or a list index.
#[derive(Clone, Copy, Debug, Eq)]
enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

impl PartialEq for Seg<'_> {
    /// Keys borrowed from the same place in the plan are the same string:
    /// the merge walk compares paths made by the same walk, so that is the
    /// usual answer, found without reading the bytes.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Seg::Key(a), Seg::Key(b)) => {
                std::ptr::eq(*a, *b) || crate::value::key_eq(a.as_bytes(), b.as_bytes())
            }
            (Seg::Index(a), Seg::Index(b)) => a == b,
            _ => false,
        }
    }
}

impl Seg<'_> {
    fn to_json(self) -> Json {
        match self {
            Seg::Key(k) => Json::String(k.to_owned()),
            Seg::Index(i) => Json::from(i),
        }
    }
}

/// A concrete position in the response: object keys and list indexes.
type ResponsePath<'p> = Vec<Seg<'p>>;

fn path_json(path: &[Seg<'_>]) -> Vec<Json> {
    path.iter().map(|s| s.to_json()).collect()
}

/// Calls `visit` with each object a flatten path designates in `data`, in
/// document order, and with its concrete path (`at` is where the walk starts).
fn walk_targets<'p>(
    types: &Shapes,
    value: &mut Value,
    rest: &'p [FlattenNodePathSegment],
    at: &mut ResponsePath<'p>,
    visit: &mut dyn FnMut(&[Seg<'p>], &mut Value),
) {
    walk_hinted(types, value, rest, &mut vec![0; rest.len()], at, visit)
}

/// [`walk_targets`], with where each of `rest`'s keys was last found (`hints`
/// goes along with `rest`): every object one segment reaches is of the same
/// type, its keys in the same order.
fn walk_hinted<'p>(
    types: &Shapes,
    value: &mut Value,
    rest: &'p [FlattenNodePathSegment],
    hints: &mut [u32],
    at: &mut ResponsePath<'p>,
    visit: &mut dyn FnMut(&[Seg<'p>], &mut Value),
) {
    match (rest.first(), &mut *value) {
        (_, Value::Null) => {}
        (_, Value::Array(items)) => {
            // Lists are walked element by element whether or not the path says `@`.
            let (rest, hints) = if matches!(rest.first(), Some(FlattenNodePathSegment::List)) {
                (&rest[1..], &mut hints[1..])
            } else {
                (rest, hints)
            };
            for (i, item) in items.iter_mut().enumerate() {
                at.push(Seg::Index(i));
                walk_hinted(types, item, rest, hints, at, visit);
                at.pop();
            }
        }
        (None, Value::Object(_)) => visit(at, value),
        (Some(FlattenNodePathSegment::Field(key)), Value::Object(map)) => {
            let (hint, hints) = hints.split_first_mut().expect("a hint per segment");
            if let Some(child) = map.get_mut_hinted(key, hint) {
                at.push(Seg::Key(key));
                walk_hinted(types, child, &rest[1..], hints, at, visit);
                at.pop();
            }
        }
        (Some(FlattenNodePathSegment::TypeCondition(conditions)), Value::Object(map)) => {
            let matches = map
                .get("__typename")
                .and_then(Value::as_str)
                .is_none_or(|t| conditions.iter().any(|c| types.applies(c, t)));
            if matches {
                walk_hinted(types, value, &rest[1..], &mut hints[1..], at, visit);
            }
        }
        (Some(FlattenNodePathSegment::List), Value::Object(_)) => {
            walk_hinted(types, value, &rest[1..], &mut hints[1..], at, visit)
        }
        _ => {}
    }
}

/// The concrete paths of the objects a flatten path designates in `data`.
fn targets<'p>(
    data: &mut Value,
    path: &'p [FlattenNodePathSegment],
    types: &Shapes,
) -> Vec<ResponsePath<'p>> {
    let mut out = Vec::new();
    walk_targets(types, data, path, &mut Vec::new(), &mut |at, _| {
        out.push(at.to_vec())
    });
    out
}

fn at_path_mut<'v>(data: &'v mut Value, path: &[Seg<'_>]) -> Option<&'v mut Value> {
    path.iter().try_fold(data, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k),
        Seg::Index(i) => v.item_mut(*i),
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
            .collect::<Option<Box<[_]>>>()
            .map(Value::Array),
        Value::Object(map) if !selections.items.is_empty() => {
            let mut out = Map::new();
            project_into(map, selections, types, &mut out)?;
            Some(Value::Object(out))
        }
        other => Some(other.clone()),
    }
}

fn project_into(map: &Map, selections: &SelectionSet, types: &Shapes, out: &mut Map) -> Option<()> {
    for item in &selections.items {
        match item {
            SelectionItem::Field(field) => {
                let value = map.get(&field.name)?;
                let projected = project(value, &field.selections, types)?;
                let key = field.alias.as_ref().unwrap_or(&field.name);
                match out.get_mut(key) {
                    Some(existing) => deep_merge(existing, projected),
                    None => out.push(Str::new(key), projected),
                }
            }
            SelectionItem::InlineFragment(fragment) => {
                let typename = map.get("__typename").and_then(Value::as_str);
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
                    map.insert(key.as_str(), Value::from(setter.set_value_to.as_str()));
                }
                FetchRewrite::KeyRenamer(renamer) => {
                    if let Some(v) = map.remove(key) {
                        map.insert(renamer.rename_key_to.as_str(), v);
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
        (Value::Object(a), Value::Object(b)) => a.merge_with(b, deep_merge),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter_mut().zip(b.into_vec()) {
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
        (Value::Object(a), Value::Object(b)) => a.merge_with_ref(b, None, deep_merge_ref),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter_mut().zip(b) {
                deep_merge_ref(x, y);
            }
        }
        (into, Value::Null) if !into.is_null() => {}
        (into, from) => *into = from.clone(),
    }
}

/// What one entity fetch sends, and where each answer goes.
#[derive(Debug, Default)]
struct Batch<'p> {
    /// The representations, deduplicated.
    reps: Vec<Value>,
    /// Per representation, the paths (in `paths`) of the objects that share
    /// it, in document order.
    owners: Vec<Vec<PathId>>,
    paths: Paths<'p>,
    /// Each object the flatten paths met, in walk order: the representation
    /// it shares and which of that one's owners it is (none: it gave no
    /// representation). Merging walks the same paths and checks each object's
    /// path against this, instead of walking down from the root per owner.
    visits: Vec<Option<(usize, usize)>>,
}

impl<'p> Batch<'p> {
    /// Per representation, the paths of its owners, written out (for errors).
    fn owner_paths(&self) -> Vec<Vec<ResponsePath<'p>>> {
        self.owners
            .iter()
            .map(|ids| ids.iter().map(|&id| self.paths.path(id)).collect())
            .collect()
    }
}

/// A path in [`Paths`].
type PathId = u32;

/// The root of [`Paths`]: the empty path.
const ROOT: PathId = PathId::MAX;

/// Response paths stored as a tree: each node is one segment and its
/// parent. The objects a flatten path meets share all but their last few
/// segments (`users.3.reviews.0.product` and `users.3.reviews.1.product`),
/// so a path costs a node or two, not a copy of every segment.
#[derive(Debug, Default)]
struct Paths<'p> {
    nodes: Vec<(PathId, Seg<'p>)>,
    /// The nodes of the path added last, root first: where the next one
    /// branches off.
    last: Vec<PathId>,
}

impl<'p> Paths<'p> {
    fn add(&mut self, at: &[Seg<'p>]) -> PathId {
        let shared = self
            .last
            .iter()
            .zip(at)
            .take_while(|&(&id, seg)| self.nodes[id as usize].1 == *seg)
            .count();
        self.last.truncate(shared);
        for seg in &at[shared..] {
            let parent = self.last.last().copied().unwrap_or(ROOT);
            self.nodes.push((parent, *seg));
            self.last.push((self.nodes.len() - 1) as PathId);
        }
        self.last.last().copied().unwrap_or(ROOT)
    }

    /// Whether the path `id` is `at`.
    fn is(&self, mut id: PathId, at: &[Seg<'_>]) -> bool {
        for seg in at.iter().rev() {
            let Some(&(parent, own)) = self.nodes.get(id as usize) else {
                return false;
            };
            if own != *seg {
                return false;
            }
            id = parent;
        }
        id == ROOT
    }

    fn path(&self, mut id: PathId) -> ResponsePath<'p> {
        let mut path = Vec::new();
        while let Some(&(parent, seg)) = self.nodes.get(id as usize) {
            path.push(seg);
            id = parent;
        }
        path.reverse();
        path
    }
}

/// Representations of the objects the flatten `paths` designate in `data`.
fn representations<'p>(
    data: &mut Value,
    paths: &[&'p [FlattenNodePathSegment]],
    requires: &SelectionSet,
    input_rewrites: Option<&Vec<FetchRewrite>>,
    types: &Shapes,
) -> Batch<'p> {
    let mut batch = Batch::default();
    // Representations by hash (equal ones compared in full): deduplication
    // without printing each one.
    let mut seen: rustc_hash::FxHashMap<u64, Vec<usize>> = Default::default();
    for path in paths {
        walk_targets(types, data, path, &mut Vec::new(), &mut |at, entity| {
            let index = representation_of(
                entity,
                requires,
                input_rewrites,
                types,
                &mut batch,
                &mut seen,
            );
            batch.visits.push(index.map(|i| (i, batch.owners[i].len())));
            if let Some(i) = index {
                let id = batch.paths.add(at);
                batch.owners[i].push(id);
            }
        });
    }
    batch
}

/// The index in `batch` of the representation of `entity`, added when new;
/// `None` when it has none (what the subgraph needs is missing).
fn representation_of(
    entity: &Value,
    requires: &SelectionSet,
    input_rewrites: Option<&Vec<FetchRewrite>>,
    types: &Shapes,
    batch: &mut Batch<'_>,
    seen: &mut rustc_hash::FxHashMap<u64, Vec<usize>>,
) -> Option<usize> {
    // Most paths repeat an entity already seen: without rewrites, its
    // representation is hashed and compared where it stands, and built
    // only the first time.
    if input_rewrites.is_none() && !requires.items.is_empty() {
        let Value::Object(map) = entity else {
            return None;
        };
        let mut h = rustc_hash::FxHasher::default();
        if matches!(projected_hash(map, requires, types, &mut h), Some(0) | None) {
            return None;
        }
        let hash = std::hash::Hasher::finish(&h);
        let known = seen.get(&hash).and_then(|same| {
            same.iter()
                .copied()
                .find(|&i| projects_to(entity, requires, types, &batch.reps[i]))
        });
        return match known {
            Some(i) => Some(i),
            None => project(entity, requires, types).map(|rep| find_or_add(batch, seen, hash, rep)),
        };
    }
    let mut rep = project(entity, requires, types)?;
    if let Some(rewrites) = input_rewrites {
        rewrite(&mut rep, rewrites, types);
    }
    if rep.as_object().is_none_or(|m| m.is_empty()) {
        return None;
    }
    let hash = value_hash(&rep);
    Some(find_or_add(batch, seen, hash, rep))
}

/// The index of `rep` among `reps` (by `hash`, compared in full), added with
/// no owners yet when it is new.
fn find_or_add(
    batch: &mut Batch<'_>,
    seen: &mut rustc_hash::FxHashMap<u64, Vec<usize>>,
    hash: u64,
    rep: Value,
) -> usize {
    let same = seen.entry(hash).or_default();
    if let Some(&i) = same.iter().find(|&&i| batch.reps[i] == rep) {
        return i;
    }
    batch.reps.push(rep);
    batch.owners.push(Vec::new());
    same.push(batch.reps.len() - 1);
    batch.reps.len() - 1
}

/// Feeds `h` what [`project`] would build from the object `map` (response
/// keys and leaves in the order it would write them), without building it;
/// answers how many fields it would write, `None` where `project` would fail.
/// Only ever compared with other such hashes.
fn projected_hash(
    map: &Map,
    selections: &SelectionSet,
    types: &Shapes,
    h: &mut rustc_hash::FxHasher,
) -> Option<usize> {
    use std::hash::Hash;
    let mut written = 0;
    // Subgraphs answer fields in the order they were selected.
    let mut cursor = 0;
    for item in &selections.items {
        match item {
            SelectionItem::Field(field) => {
                let value = map.get_next(&field.name, &mut cursor)?;
                field.alias.as_ref().unwrap_or(&field.name).hash(h);
                projected_value_hash(value, &field.selections, types, h)?;
                written += 1;
            }
            SelectionItem::InlineFragment(fragment) => {
                let typename = map.get("__typename").and_then(Value::as_str);
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
    h: &mut rustc_hash::FxHasher,
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
    map: &Map,
    selections: &SelectionSet,
    types: &Shapes,
    out: &Map,
    matched: &mut usize,
) -> bool {
    // Both hold their keys in the order of the selection, nearly always.
    let (mut at, mut at_out) = (0, 0);
    for item in &selections.items {
        match item {
            SelectionItem::Field(field) => {
                let key = field.alias.as_ref().unwrap_or(&field.name);
                let (Some(value), Some(rep)) = (
                    map.get_next(&field.name, &mut at),
                    out.get_next(key, &mut at_out),
                ) else {
                    return false;
                };
                if !projects_to(value, &field.selections, types, rep) {
                    return false;
                }
                *matched += 1;
            }
            SelectionItem::InlineFragment(fragment) => {
                let typename = map.get("__typename").and_then(Value::as_str);
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
    let mut h = rustc_hash::FxHasher::default();
    value_feed(value, &mut h);
    std::hash::Hasher::finish(&h)
}

fn value_feed(value: &Value, h: &mut rustc_hash::FxHasher) {
    use std::hash::Hash;
    match value {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, *b).hash(h),
        Value::Number(n) => (2u8, n.as_f64().map(f64::to_bits), n.as_i64()).hash(h),
        Value::String(s) => (3u8, s.as_str()).hash(h),
        Value::Array(items) => {
            (4u8, items.len()).hash(h);
            items.iter().for_each(|v| value_feed(v, h));
        }
        Value::Object(map) => {
            (5u8, map.len()).hash(h);
            for (k, v) in map.iter() {
                k.hash(h);
                value_feed(v, h);
            }
        }
    }
}

fn variables_for(usages: Option<&std::collections::BTreeSet<String>>, ctx: &Context<'_>) -> Map {
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

async fn send(
    service: &str,
    query: &str,
    kind: Option<&OperationKind>,
    variables: Map,
    ctx: &Context<'_>,
) -> Result<Arc<SubgraphResponse>, FetchError> {
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
        // Only a query's read may be answered from another request's fetch.
        shareable: ctx.shareable && matches!(kind, Some(OperationKind::Query)),
        idempotent: matches!(kind, Some(OperationKind::Query)),
    };
    use std::sync::atomic::Ordering::Relaxed;
    let budget = ctx.subgraphs.budget;
    if ctx.spent.load(Relaxed) > budget {
        return Err(FetchError::OverBudget(budget));
    }
    let started = std::time::Instant::now();
    crate::busy_poll::fetching();
    let result = ctx
        .subgraphs
        .client
        .fetch_shared_within(url, request, ctx.subgraphs.timeout(service))
        .await;
    let took = started.elapsed();
    crate::busy_poll::answered(took);
    ctx.subgraphs.metrics.fetch(service, took, result.is_err());
    let answer = result?;
    // An answer that takes the request past its budget is dropped here:
    // what the request holds stays within the budget and one answer.
    if ctx.spent.fetch_add(answer.bytes, Relaxed) + answer.bytes > budget {
        return Err(FetchError::OverBudget(budget));
    }
    Ok(answer)
}

fn gateway_error(message: &str) -> Json {
    json!({ "message": message, "extensions": { "code": "INTERNAL_SERVER_ERROR" } })
}

/// A failed fetch, reported once however many objects it was to fill:
/// `path` when that was one place in the response (`one`), and for an
/// entity fetch `extensions.affectedPath`, the plan's path to the objects
/// (`@` for list items), as Hive Router reports it.
fn fetch_failed(
    service: &str,
    err: &FetchError,
    one: Option<Vec<Json>>,
    affected: Option<String>,
) -> Json {
    // The details (address, OS error, answer text) are for the logs only.
    tracing::warn!(subgraph = service, error = %err, "a subgraph fetch failed");
    let mut e = json!({
        "message": format!("subgraph {service} failed: {}", err.public()),
        "extensions": { "code": "SUBGRAPH_ERROR", "serviceName": service },
    });
    if let Some(path) = one {
        e["path"] = Json::Array(path);
    }
    if let Some(affected) = affected {
        e["extensions"]["affectedPath"] = Json::String(affected);
    }
    e
}

/// The one response path an entity fetch's objects share, if they are one.
fn only_path(mut owners: Vec<Vec<ResponsePath<'_>>>) -> Option<Vec<Json>> {
    match owners.as_mut_slice() {
        [one] if one.len() == 1 => one.pop().map(|p| path_json(&p)),
        _ => None,
    }
}

/// The response key of a root fetch's only field (switched-off ones aside):
/// where its failure shows.
fn only_root_key(selections: &SelectionSet, ctx: &Context<'_>) -> Option<Vec<Json>> {
    let mut on = selections.items.iter().filter(|item| match item {
        SelectionItem::Field(f) => !switched_off(&f.skip_if, &f.include_if, ctx),
        _ => true,
    });
    match (on.next(), on.next()) {
        (Some(SelectionItem::Field(f)), None) => Some(vec![Json::String(
            f.alias.clone().unwrap_or_else(|| f.name.clone()),
        )]),
        _ => None,
    }
}

/// Flatten paths as the planner writes them (`products.@.reviews|[Review]`).
fn flatten_path_text(paths: &[&[FlattenNodePathSegment]]) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    for (i, path) in paths.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        for (j, segment) in path.iter().enumerate() {
            if j > 0 && !matches!(segment, FlattenNodePathSegment::TypeCondition(_)) {
                text.push('.');
            }
            let _ = write!(text, "{segment}");
        }
    }
    text
}

/// A subgraph error re-pathed: `_entities.i.rest` (under `alias`) becomes each owner's path + rest.
///
/// Some subgraphs (async-graphql among them) leave the index out:
/// `_entities.rest`; `unindexed` is then the entity it belongs to, as
/// [`crate::execution::entity_errors::place_unindexed`] found it, and without one the
/// error loses its path.
fn repath(
    mut error: Json,
    service: &str,
    alias: &str,
    owners: &[Vec<ResponsePath<'_>>],
    unindexed: Option<usize>,
) -> Vec<Json> {
    error = with_service(error, service);
    let path = error
        .get("path")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let placed = match path.get(1) {
        _ if path.first().and_then(Json::as_str) != Some(alias) => None,
        Some(Json::Number(i)) => i.as_u64().map(|i| (i as usize, &path[2..])),
        _ => unindexed.map(|i| (i, &path[1..])),
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
            e["path"] = Json::Array(full);
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
    let at_root = fetch.requires.is_none() && path.is_empty();
    if selects_nothing(
        &fetch.operation.document.operation.selection_set,
        at_root,
        ctx,
    ) {
        return;
    }
    let service = fetch.service_name.as_str();
    let mut variables = variables_for(fetch.variable_usages.as_ref(), ctx);
    let (operation, kind) = (&fetch.operation.document_str, fetch.operation_kind.as_ref());
    let Some(requires) = &fetch.requires else {
        // A root fetch (or a re-entry at a path): its data merges into every target.
        let response = send(service, operation, kind, variables, ctx).await;
        let state = &mut *lock(state);
        match response {
            Ok(mut response) => {
                let errors = answer_errors(&mut response);
                let mut data = Answer::of(&mut response, None);
                if let Some(rewrites) = &fetch.output_rewrites {
                    rewrite(data.to_mut(), rewrites, ctx.types);
                }
                let paths = if path.is_empty() {
                    vec![Vec::new()]
                } else {
                    targets(&mut state.data, path, ctx.types)
                };
                for (i, p) in paths.iter().enumerate() {
                    if let Some(target) = at_path_mut(&mut state.data, p) {
                        data.merge_into(target, i + 1 == paths.len());
                    }
                }
                let before = state.errors.len();
                state
                    .errors
                    .extend(errors.into_iter().map(|e| with_service(e, service)));
                if path.is_empty() {
                    reopen_emptied(state, before);
                }
            }
            Err(err) => {
                let one = path
                    .is_empty()
                    .then(|| only_root_key(&fetch.operation.document.operation.selection_set, ctx))
                    .flatten();
                state.errors.push(fetch_failed(service, &err, one, None));
            }
        }
        return;
    };
    let mut batch = representations(
        &mut lock(state).data,
        &[path],
        requires,
        fetch.input_rewrites.as_ref(),
        ctx.types,
    );
    if batch.reps.is_empty() {
        return;
    }
    variables.insert(
        "representations",
        Value::Array(std::mem::take(&mut batch.reps).into()),
    );
    let response = send(service, operation, kind, variables, ctx).await;
    let state = &mut *lock(state);
    match response {
        Ok(mut response) => {
            // Errors first: re-pathing looks at which entities came back null.
            let errors = answer_errors(&mut response);
            let owners = if errors.is_empty() {
                Vec::new()
            } else {
                batch.owner_paths()
            };
            let placed = crate::execution::entity_errors::place_unindexed(
                &errors,
                "_entities",
                response.data.get("_entities"),
            );
            let before = state.errors.len();
            for (error, unindexed) in errors.into_iter().zip(placed) {
                state
                    .errors
                    .extend(repath(error, service, "_entities", &owners, unindexed));
            }
            merge_entities(
                state,
                Answer::of(&mut response, Some("_entities")),
                &batch,
                &[path],
                fetch.output_rewrites.as_ref(),
                ctx.types,
            );
            reopen_emptied(state, before);
        }
        Err(err) => state.errors.push(fetch_failed(
            service,
            &err,
            only_path(batch.owner_paths()),
            Some(flatten_path_text(&[path])),
        )),
    }
}

/// Gives back the objects a subgraph sent as null while reporting errors
/// inside them (see [`crate::execution::entity_errors::reopen_emptied`]): the errors
/// from `first` on are this fetch's, placed at their response paths.
fn reopen_emptied(state: &mut Execution, first: usize) {
    let Execution { data, errors } = state;
    for error in &errors[first..] {
        if let Some(path) = error.get("path").and_then(Json::as_array) {
            crate::execution::entity_errors::reopen_emptied(data, path);
        }
    }
}

/// Whether a fetch's operation would ask the subgraph for nothing the
/// gateway does not know already: every selection is switched off by an
/// `@include`/`@skip` on this request's variables, or (`at_root`, a root
/// fetch) is the root type's `__typename`, which projection writes itself.
/// The planner wraps entity fetches in `Condition` nodes, but leaves a root
/// field's directive inside its fetch, and sends `{ __typename }` (a health
/// check's query) to a subgraph; an `_entities` field counts as nothing when
/// everything under it is.
fn selects_nothing(selections: &SelectionSet, at_root: bool, ctx: &Context<'_>) -> bool {
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
fn switched_off(skip_if: &Option<String>, include_if: &Option<String>, ctx: &Context<'_>) -> bool {
    let on = |name: &Option<String>| {
        name.as_ref()
            .map(|v| matches!(ctx.variables.get(v), Some(Json::Bool(true))))
    };
    on(skip_if) == Some(true) || on(include_if) == Some(false)
}

/// Merges the answered `entities` into the objects `batch` made their
/// representations from, walking the flatten `paths` once.
fn merge_entities(
    state: &mut Execution,
    mut entities: Answer<'_>,
    batch: &Batch<'_>,
    paths: &[&[FlattenNodePathSegment]],
    output_rewrites: Option<&Vec<FetchRewrite>>,
    types: &Shapes,
) {
    if let Some(rewrites) = output_rewrites
        && let Value::Array(list) = entities.to_mut()
    {
        for entity in list {
            rewrite(entity, rewrites, types);
        }
    }
    let mut entities = match &mut entities {
        Answer::Owned(Value::Array(list)) => Entities::Owned(list),
        Answer::Shared(Value::Array(list)) => Entities::Shared(list),
        _ => return,
    };
    // An `@interfaceObject` subgraph answers with the interface's name: an
    // object that already has its concrete type keeps it.
    let abstract_names: Vec<bool> = entities
        .as_slice()
        .iter()
        .map(|entity| {
            entity
                .get("__typename")
                .and_then(Value::as_str)
                .is_some_and(|t| types.is_abstract(t))
        })
        .collect();
    // An answer of this request's own moves each entity into the last
    // object that shares it and copies it into the others; a shared answer
    // is copied into every one.
    let mut merge = |visit: (usize, usize), target: &mut Value| {
        let (rep, owner) = visit;
        let last = owner + 1 == batch.owners[rep].len();
        match &mut entities {
            Entities::Owned(list) => {
                if let Some(entity) = list.get_mut(rep) {
                    merge_entity(target, entity, abstract_names[rep], last);
                }
            }
            Entities::Shared(list) => {
                if let Some(entity) = list.get(rep) {
                    merge_entity_ref(target, entity, abstract_names[rep]);
                }
            }
        }
    };
    let mut done = 0;
    let mut lost = false;
    for path in paths {
        walk_targets(
            types,
            &mut state.data,
            path,
            &mut Vec::new(),
            &mut |at, target| {
                if lost {
                    return;
                }
                match batch.visits.get(done) {
                    Some(None) => {}
                    Some(Some((rep, owner))) if batch.paths.is(batch.owners[*rep][*owner], at) => {
                        merge((*rep, *owner), target)
                    }
                    _ => {
                        lost = true;
                        return;
                    }
                }
                done += 1;
            },
        );
    }
    // A parallel branch changed the tree under the flatten paths since the
    // representations were made: the rest are found by their paths.
    for &(rep, owner) in batch.visits[done..].iter().flatten() {
        let path = batch.paths.path(batch.owners[rep][owner]);
        if let Some(target) = at_path_mut(&mut state.data, &path) {
            merge((rep, owner), target);
        }
    }
}

/// Merges one answered entity into one object: moved when `last`, copied otherwise.
fn merge_entity(target: &mut Value, entity: &mut Value, abstract_name: bool, last: bool) {
    if !last {
        return merge_entity_ref(target, entity, abstract_name);
    }
    if abstract_name
        && has_typename(target)
        && let Value::Object(fields) = entity
    {
        fields.remove("__typename");
    }
    deep_merge(target, entity.take());
}

/// Merges a copy of one answered entity into one object.
fn merge_entity_ref(target: &mut Value, entity: &Value, abstract_name: bool) {
    let keep_own = abstract_name && has_typename(target);
    match (&mut *target, entity) {
        (Value::Object(into), Value::Object(fields)) if keep_own => {
            into.merge_with_ref(fields, Some("__typename"), deep_merge_ref)
        }
        _ => deep_merge_ref(target, entity),
    }
}

/// A part of a subgraph's answer: taken when this request is its only
/// holder, read in place while other requests share it (see
/// [`crate::subgraph::client::SubgraphClient::fetch_shared_within`]).
enum Answer<'r> {
    Owned(Value),
    Shared(&'r Value),
}

impl<'r> Answer<'r> {
    /// The whole data (`key` none) or its field `key`; null when absent.
    fn of(response: &'r mut Arc<SubgraphResponse>, key: Option<&str>) -> Self {
        if Arc::get_mut(response).is_some() {
            let response = Arc::get_mut(response).expect("checked just above");
            let part = match key {
                None => Some(&mut response.data),
                Some(key) => response.data.get_mut(key),
            };
            Answer::Owned(part.map(Value::take).unwrap_or_default())
        } else {
            let part = match key {
                None => Some(&response.data),
                Some(key) => response.data.get(key),
            };
            part.map_or(Answer::Owned(Value::Null), Answer::Shared)
        }
    }

    /// Its own copy, to change.
    fn to_mut(&mut self) -> &mut Value {
        if let Answer::Shared(value) = self {
            *self = Answer::Owned(value.clone());
        }
        match self {
            Answer::Owned(value) => value,
            Answer::Shared(_) => unreachable!("made owned just above"),
        }
    }

    /// Merges it into `target`: moved on the `last` merge of an owned
    /// answer, copied otherwise.
    fn merge_into(&mut self, target: &mut Value, last: bool) {
        match self {
            Answer::Owned(value) if last => deep_merge(target, value.take()),
            Answer::Owned(value) => deep_merge_ref(target, value),
            Answer::Shared(value) => deep_merge_ref(target, value),
        }
    }
}

/// The entities of an [`Answer`].
enum Entities<'a> {
    Owned(&'a mut [Value]),
    Shared(&'a [Value]),
}

impl Entities<'_> {
    fn as_slice(&self) -> &[Value] {
        match self {
            Entities::Owned(list) => list,
            Entities::Shared(list) => list,
        }
    }
}

/// The errors of an answer: taken when this request holds it alone.
fn answer_errors(response: &mut Arc<SubgraphResponse>) -> Vec<Json> {
    match Arc::get_mut(response) {
        Some(response) => std::mem::take(&mut response.errors),
        None => response.errors.clone(),
    }
}

fn has_typename(target: &Value) -> bool {
    target.get("__typename").is_some_and(|own| !own.is_null())
}

/// A subgraph's error as the client sees it: the subgraph named, and its
/// `locations` dropped (they point into the gateway's query to the
/// subgraph, not into the client's document).
pub fn with_service(mut error: Json, service: &str) -> Json {
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
    if selects_nothing(
        &batch.operation.document.operation.selection_set,
        false,
        ctx,
    ) {
        return;
    }
    let service = batch.service_name.as_str();
    let mut variables = variables_for(batch.variable_usages.as_ref(), ctx);
    let mut batches = Vec::new();
    {
        let mut current = lock(state);
        for alias in &batch.entity_batch.aliases {
            let paths: Vec<&[FlattenNodePathSegment]> = alias
                .merge_paths
                .iter()
                .map(FlattenNodePath::as_slice)
                .collect();
            let mut found = representations(
                &mut current.data,
                &paths,
                &alias.requires,
                alias.input_rewrites.as_ref(),
                ctx.types,
            );
            variables.insert(
                alias.representations_variable_name.as_str(),
                Value::Array(std::mem::take(&mut found.reps).into()),
            );
            batches.push((found, paths));
        }
    }
    if batches.iter().all(|(found, _)| found.owners.is_empty()) {
        return;
    }
    let response = send(
        service,
        &batch.operation.document_str,
        batch.operation_kind.as_ref(),
        variables,
        ctx,
    )
    .await;
    let state = &mut *lock(state);
    match response {
        Ok(mut response) => {
            // Errors first: re-pathing looks at which entities came back null.
            let before = state.errors.len();
            let errors = answer_errors(&mut response);
            for (i, entity_alias) in batch.entity_batch.aliases.iter().enumerate() {
                let alias = entity_alias.alias.as_str();
                let of_alias: Vec<Json> = errors
                    .iter()
                    .filter(|e| {
                        e.get("path").and_then(|p| p.get(0)).and_then(Json::as_str) == Some(alias)
                    })
                    .cloned()
                    .collect();
                if of_alias.is_empty() {
                    continue;
                }
                let placed = crate::execution::entity_errors::place_unindexed(
                    &of_alias,
                    alias,
                    response.data.get(alias),
                );
                let owners = batches[i].0.owner_paths();
                for (error, unindexed) in of_alias.into_iter().zip(placed) {
                    state
                        .errors
                        .extend(repath(error, service, alias, &owners, unindexed));
                }
            }
            let aliases = &batch.entity_batch.aliases;
            for error in errors.into_iter().filter(|e| {
                let first = e.get("path").and_then(|p| p.get(0)).and_then(Json::as_str);
                !aliases.iter().any(|a| Some(a.alias.as_str()) == first)
            }) {
                state.errors.extend(repath(error, service, "", &[], None));
            }
            for (alias, (found, paths)) in batch.entity_batch.aliases.iter().zip(&batches) {
                merge_entities(
                    state,
                    Answer::of(&mut response, Some(&alias.alias)),
                    found,
                    paths,
                    alias.output_rewrites.as_ref(),
                    ctx.types,
                );
            }
            reopen_emptied(state, before);
        }
        Err(err) => {
            let owners = batches.iter().flat_map(|(found, _)| found.owner_paths());
            // The paths of the aliases that had objects to fill, each once.
            let mut paths: Vec<&[FlattenNodePathSegment]> = Vec::new();
            for (_, alias_paths) in batches.iter().filter(|(found, _)| !found.owners.is_empty()) {
                for path in alias_paths {
                    if !paths.contains(path) {
                        paths.push(path);
                    }
                }
            }
            state.errors.push(fetch_failed(
                service,
                &err,
                only_path(owners.collect()),
                Some(flatten_path_text(&paths)),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_paths_read_as_the_planner_writes_them() {
        use FlattenNodePathSegment::{Field, List, TypeCondition};
        let products = [
            Field("products".into()),
            List,
            TypeCondition(["Book".to_owned(), "Film".to_owned()].into()),
            Field("reviews".into()),
        ];
        let me = [Field("me".into())];
        assert_eq!(
            flatten_path_text(&[&products, &me]),
            "products.@|[Book|Film].reviews, me"
        );
    }

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
        let mut data = Value::from(json!({ "ps": [
            { "__typename": "P", "upc": "1", "name": "a" },
            { "__typename": "P", "upc": "2", "name": "b" },
            { "__typename": "P", "upc": "1", "name": "c" },
            { "__typename": "P", "name": "no key" },
        ] }));
        let ps = [
            FlattenNodePathSegment::Field("ps".into()),
            FlattenNodePathSegment::List,
        ];
        let paths: &[&[FlattenNodePathSegment]] = &[&ps];
        let requires = fields(&[("__typename", None), ("upc", None)]);
        let batch = representations(&mut data, paths, &requires, None, &types);
        let owners = batch.owner_paths();
        let Batch { reps, visits, .. } = batch;
        assert_eq!(
            reps,
            [
                Value::from(json!({ "__typename": "P", "upc": "1" })),
                Value::from(json!({ "__typename": "P", "upc": "2" }))
            ]
        );
        assert_eq!(owners.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(owners[0][1], [Seg::Key("ps"), Seg::Index(2)]);
        assert_eq!(visits, [Some((0, 0)), Some((1, 0)), Some((0, 1)), None]);
        // Written under an alias, compared under it.
        let aliased = fields(&[("__typename", None), ("upc", Some("key"))]);
        let reps = representations(&mut data, paths, &aliased, None, &types).reps;
        assert_eq!(
            reps[0],
            Value::from(json!({ "__typename": "P", "key": "1" }))
        );
        assert_eq!(reps.len(), 2);
        // A key selected twice still lands on one representation.
        let twice = fields(&[("__typename", None), ("upc", None), ("upc", None)]);
        let Batch { reps, owners, .. } = representations(&mut data, paths, &twice, None, &types);
        let owners: Vec<Vec<PathId>> = owners;
        assert_eq!(reps.len(), 2);
        assert_eq!(owners[0].len(), 2);
        assert!(!projects_to(&data["ps"][0], &twice, &types, &reps[0]));
        assert!(projects_to(
            &data["ps"][2],
            &requires,
            &types,
            &Value::from(json!({ "__typename": "P", "upc": "1" }))
        ));
        assert!(!projects_to(
            &data["ps"][1],
            &requires,
            &types,
            &Value::from(json!({ "__typename": "P", "upc": "1" }))
        ));
    }

    #[test]
    fn answers_reach_every_owner_even_when_the_tree_moved_meanwhile() {
        let schema = hive_router_query_planner::utils::parsing::safe_parse_schema(
            "type Query { ps: [P] } type P { upc: String, name: String }",
        )
        .unwrap();
        let types = Shapes::new(&schema);
        let ps = [
            FlattenNodePathSegment::Field("ps".into()),
            FlattenNodePathSegment::List,
        ];
        let paths: &[&[FlattenNodePathSegment]] = &[&ps];
        let requires = fields(&[("__typename", None), ("upc", None)]);
        let mut data = Value::from(json!({ "ps": [
            { "__typename": "P", "upc": "1" },
            { "__typename": "P", "upc": "2" },
            { "__typename": "P", "upc": "1" },
        ] }));
        let batch = representations(&mut data, paths, &requires, None, &types);
        let answer = Value::from(json!([{ "name": "one" }, { "name": "two" }]));
        let names = |data: &Value| -> Vec<Json> {
            (0..3).map(|i| Json::from(&data["ps"][i]["name"])).collect()
        };
        let merged = |data: Value| {
            // Taken from an answer of its own, or copied from one shared
            // with other requests: the same result.
            let [owned, shared] =
                [Answer::Owned(answer.clone()), Answer::Shared(&answer)].map(|entities| {
                    let mut state = Execution {
                        data: data.clone(),
                        errors: Vec::new(),
                    };
                    merge_entities(&mut state, entities, &batch, paths, None, &types);
                    state.data
                });
            assert_eq!(owned, shared);
            owned
        };
        assert_eq!(
            names(&merged(data.clone())),
            [json!("one"), json!("two"), json!("one")]
        );
        // Another branch appended an object: the walk meets one more than was asked for.
        let mut longer = data.clone();
        if let Some(Value::Array(items)) = longer.get_mut("ps") {
            let mut more = std::mem::take(items).into_vec();
            more.push(Value::from(json!({ "__typename": "P", "upc": "3" })));
            *items = more.into();
        }
        let longer = merged(longer);
        assert_eq!(names(&longer), [json!("one"), json!("two"), json!("one")]);
        assert_eq!(longer["ps"][3].get("name"), None);
        // The walk no longer meets the second object: the rest go by their paths.
        let mut gap = data;
        if let Some(Value::Array(items)) = gap.get_mut("ps") {
            items[1] = Value::Null;
        }
        let gap = merged(gap);
        assert_eq!(gap["ps"][0]["name"], Value::from("one"));
        assert_eq!(gap["ps"][2]["name"], Value::from("one"));
    }

    #[test]
    fn paths_share_prefixes_and_answer_exactly_the_path_added() {
        use Seg::{Index as I, Key as K};
        let added: [&[Seg<'_>]; 6] = [
            &[K("users"), I(0), K("reviews"), I(0), K("product")],
            &[K("users"), I(0), K("reviews"), I(1), K("product")],
            &[K("users"), I(1), K("reviews"), I(0), K("product")],
            &[K("users"), I(1)],
            &[],
            &[K("top"), I(0)],
        ];
        let mut paths = Paths::default();
        let ids: Vec<PathId> = added.iter().map(|at| paths.add(at)).collect();
        // Each of the later ones branched off its predecessor: 5 + 2 + 4 + 0 + 0 + 2 nodes.
        assert_eq!(paths.nodes.len(), 13);
        let up = |id: PathId, n: usize| (0..n).fold(id, |id, _| paths.nodes[id as usize].0);
        assert_eq!(
            up(ids[2], 3),
            ids[3],
            "a prefix of an added path is a node of it"
        );
        assert_eq!(ids[4], ROOT);
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(paths.path(id), added[i]);
            for (j, other) in added.iter().enumerate() {
                assert_eq!(paths.is(id, other), i == j, "{:?} is {:?}", added[i], other);
            }
        }
        assert!(!paths.is(ids[0], &[K("users"), I(0), K("reviews"), I(0)]));
        assert!(!paths.is(
            ids[0],
            &[K("x"), K("users"), I(0), K("reviews"), I(0), K("product")]
        ));
    }

    #[test]
    fn a_shared_answer_is_read_in_place_and_an_unshared_one_taken() {
        let response = SubgraphResponse {
            data: Value::from(json!({ "_entities": [{ "name": "one" }] })),
            errors: vec![json!({ "message": "half" })],
            bytes: 0,
        };
        let mut mine = Arc::new(response.clone());
        let mut ours = Arc::new(response.clone());
        let other = ours.clone();
        assert_eq!(answer_errors(&mut ours), response.errors);
        assert!(matches!(
            Answer::of(&mut ours, Some("_entities")),
            Answer::Shared(v) if *v == response.data["_entities"]
        ));
        assert_eq!(
            other.errors, response.errors,
            "the other holder's copy is intact"
        );
        assert_eq!(answer_errors(&mut mine), response.errors);
        assert!(mine.errors.is_empty(), "taken, not copied");
        assert!(matches!(
            Answer::of(&mut mine, Some("_entities")),
            Answer::Owned(v) if v == response.data["_entities"]
        ));
        assert!(matches!(
            Answer::of(&mut mine, Some("none")),
            Answer::Owned(Value::Null)
        ));
        // Changing a shared answer changes a copy.
        let mut part = Answer::of(&mut ours, None);
        *part.to_mut() = Value::Null;
        assert_eq!(other.data, response.data);
    }

    #[test]
    fn deep_merge_adds_fields_and_keeps_data_over_null() {
        let into =
            Value::from(json!({ "p": [{ "sku": "A" }, { "sku": "B" }], "x": 1, "s": "old" }));
        let from = Value::from(
            json!({ "p": [{ "stock": 1 }, { "stock": 2 }], "x": null, "s": "new", "n": { "a": [1] } }),
        );
        let merged = Value::from(
            json!({ "p": [{ "sku": "A", "stock": 1 }, { "sku": "B", "stock": 2 }], "x": 1, "s": "new", "n": { "a": [1] } }),
        );
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
        let mut data = Value::from(
            json!({ "products": { "edges": [{ "node": { "sku": "A" } }, { "node": null }, { "node": { "sku": "B" } }] } }),
        );
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
        let found = targets(&mut data, &path, &Shapes::new(&schema));
        let found: Vec<Vec<Json>> = found.iter().map(|p| path_json(p)).collect();
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
}
