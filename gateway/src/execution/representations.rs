//! Representations for entity fetches: each object at a flatten path picked
//! through the fetch's `requires` selection ([`pick`]), renamed as the
//! fetch's rewrites say, and deduplicated by a hash of what was picked, so
//! one `_entities` call carries each distinct object once.

use hive_router_query_planner::{
    ast::{selection_item::SelectionItem, selection_set::SelectionSet},
    planner::plan_nodes::{FetchNodePathSegment, FetchRewrite, FlattenNodePathSegment},
};

use super::paths::{PathId, Paths, ResponsePath, walk_targets};
use crate::execution::projection::Shapes;
use crate::value::deep_merge;
use crate::value::{Map, Str, Value};

/// `value` projected through `selections` (a representation from the
/// requires selection): fields are read under their name in the response
/// tree and written under their alias (the planner aliases a required field
/// it fetched under another response key), inline fragments apply by
/// `__typename`. `None` when a selected field is missing: the object lacks
/// what the subgraph needs (an earlier fetch failed or answered null).
pub(super) fn pick(value: &Value, selections: &SelectionSet, types: &Shapes) -> Option<Value> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| pick(v, selections, types))
            .collect::<Option<Box<[_]>>>()
            .map(Value::Array),
        Value::Object(map) if !selections.items.is_empty() => {
            let mut out = Map::new();
            pick_into(map, selections, types, &mut out)?;
            Some(Value::Object(out))
        }
        other => Some(other.clone()),
    }
}

pub(super) fn pick_into(
    map: &Map,
    selections: &SelectionSet,
    types: &Shapes,
    out: &mut Map,
) -> Option<()> {
    for item in &selections.items {
        match item {
            SelectionItem::Field(field) => {
                let value = map.get(&field.name)?;
                let projected = pick(value, &field.selections, types)?;
                let key = field.alias.as_ref().unwrap_or(&field.name);
                match out.get_mut(key) {
                    Some(existing) => deep_merge(existing, projected),
                    None => out.push(Str::new(key), projected),
                }
            }
            SelectionItem::InlineFragment(fragment) => {
                let typename = map.get("__typename").and_then(Value::as_str);
                if typename.is_none_or(|t| types.applies(&fragment.type_condition, t)) {
                    pick_into(map, &fragment.selections, types, out)?;
                }
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
    Some(())
}

/// Applies value setters and key renamers (the planner's input/output rewrites).
pub(super) fn rewrite(value: &mut Value, rewrites: &[FetchRewrite], types: &Shapes) {
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

/// What one entity fetch sends, and where each answer goes.
#[derive(Debug, Default)]
pub(super) struct Batch<'p> {
    /// The representations, deduplicated.
    pub(super) reps: Vec<Value>,
    /// Per representation, the paths (in `paths`) of the objects that share
    /// it, in document order.
    pub(super) owners: Vec<Vec<PathId>>,
    pub(super) paths: Paths<'p>,
    /// Each object the flatten paths met, in walk order: the representation
    /// it shares and which of that one's owners it is (none: it gave no
    /// representation). Merging walks the same paths and checks each object's
    /// path against this, instead of walking down from the root per owner.
    pub(super) visits: Vec<Option<(usize, usize)>>,
}

impl<'p> Batch<'p> {
    /// Per representation, the paths of its owners, written out (for errors).
    pub(super) fn owner_paths(&self) -> Vec<Vec<ResponsePath<'p>>> {
        self.owners
            .iter()
            .map(|ids| ids.iter().map(|&id| self.paths.path(id)).collect())
            .collect()
    }
}

/// Representations of the objects the flatten `paths` designate in `data`.
pub(super) fn representations<'p>(
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
pub(super) fn representation_of(
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
            None => pick(entity, requires, types).map(|rep| find_or_add(batch, seen, hash, rep)),
        };
    }
    let mut rep = pick(entity, requires, types)?;
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
pub(super) fn find_or_add(
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
pub(super) fn projected_hash(
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

pub(super) fn projected_value_hash(
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
pub(super) fn projects_to(
    value: &Value,
    selections: &SelectionSet,
    types: &Shapes,
    rep: &Value,
) -> bool {
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

pub(super) fn fields_project_to(
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
pub(super) fn value_hash(value: &Value) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    value_feed(value, &mut h);
    std::hash::Hasher::finish(&h)
}

pub(super) fn value_feed(value: &Value, h: &mut rustc_hash::FxHasher) {
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
