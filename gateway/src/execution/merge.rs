//! Merging subgraph answers into the response tree: a root fetch's data
//! deep-merged, and each `_entities` answer merged back into every object
//! its representation came from.

use std::sync::Arc;

use hive_router_query_planner::planner::plan_nodes::{FetchRewrite, FlattenNodePathSegment};
use serde_json::Value as Json;

use super::{
    context::Execution,
    paths::{at_path_mut, walk_targets},
    representations::{Batch, rewrite},
};
use crate::value::Value;
use crate::value::{deep_merge, deep_merge_ref};
use crate::{execution::projection::Shapes, subgraph::SubgraphResponse};

/// Gives back the objects a subgraph sent as null while reporting errors
/// inside them (see [`crate::execution::entity_errors::reopen_emptied`]): the errors
/// from `first` on are this fetch's, placed at their response paths.
pub(super) fn reopen_emptied(state: &mut Execution, first: usize) {
    let Execution { data, errors } = state;
    for error in &errors[first..] {
        if let Some(path) = error.get("path").and_then(Json::as_array) {
            crate::execution::entity_errors::reopen_emptied(data, path);
        }
    }
}

/// Merges the answered `entities` into the objects `batch` made their
/// representations from, walking the flatten `paths` once.
pub(super) fn merge_entities(
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
pub(super) fn merge_entity(
    target: &mut Value,
    entity: &mut Value,
    abstract_name: bool,
    last: bool,
) {
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
pub(super) fn merge_entity_ref(target: &mut Value, entity: &Value, abstract_name: bool) {
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
pub(super) enum Answer<'r> {
    Owned(Value),
    Shared(&'r Value),
}

impl<'r> Answer<'r> {
    /// The whole data (`key` none) or its field `key`; null when absent.
    pub(super) fn of(response: &'r mut Arc<SubgraphResponse>, key: Option<&str>) -> Self {
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
    pub(super) fn to_mut(&mut self) -> &mut Value {
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
    pub(super) fn merge_into(&mut self, target: &mut Value, last: bool) {
        match self {
            Answer::Owned(value) if last => deep_merge(target, value.take()),
            Answer::Owned(value) => deep_merge_ref(target, value),
            Answer::Shared(value) => deep_merge_ref(target, value),
        }
    }
}

/// The entities of an [`Answer`].
pub(super) enum Entities<'a> {
    Owned(&'a mut [Value]),
    Shared(&'a [Value]),
}

impl Entities<'_> {
    pub(super) fn as_slice(&self) -> &[Value] {
        match self {
            Entities::Owned(list) => list,
            Entities::Shared(list) => list,
        }
    }
}

/// The errors of an answer: taken when this request holds it alone.
pub(super) fn answer_errors(response: &mut Arc<SubgraphResponse>) -> Vec<Json> {
    match Arc::get_mut(response) {
        Some(response) => std::mem::take(&mut response.errors),
        None => response.errors.clone(),
    }
}

pub(super) fn has_typename(target: &Value) -> bool {
    target.get("__typename").is_some_and(|own| !own.is_null())
}
