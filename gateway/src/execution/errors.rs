//! Subgraph errors in the client's terms: a failed fetch becomes one error
//! at the paths it left unset, and a subgraph's own error paths are
//! re-pathed from its `_entities` answer to the response objects.

use hive_router_query_planner::{
    ast::{selection_item::SelectionItem, selection_set::SelectionSet},
    planner::plan_nodes::FlattenNodePathSegment,
};
use serde_json::{Value as Json, json};

use super::{
    context::{Context, switched_off},
    paths::{ResponsePath, path_json},
};
use crate::subgraph::FetchError;

pub(super) fn gateway_error(message: &str) -> Json {
    json!({ "message": message, "extensions": { "code": "INTERNAL_SERVER_ERROR" } })
}

/// A failed fetch, reported once however many objects it was to fill:
/// `path` when that was one place in the response (`one`), and for an
/// entity fetch `extensions.affectedPath`, the plan's path to the objects
/// (`@` for list items), as Hive Router reports it.
pub(super) fn fetch_failed(
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
pub(super) fn only_path(mut owners: Vec<Vec<ResponsePath<'_>>>) -> Option<Vec<Json>> {
    match owners.as_mut_slice() {
        [one] if one.len() == 1 => one.pop().map(|p| path_json(&p)),
        _ => None,
    }
}

/// The response key of a root fetch's only field (switched-off ones aside):
/// where its failure shows.
pub(super) fn only_root_key(selections: &SelectionSet, ctx: &Context<'_>) -> Option<Vec<Json>> {
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
pub(super) fn flatten_path_text(paths: &[&[FlattenNodePathSegment]]) -> String {
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
pub(super) fn repath(
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
