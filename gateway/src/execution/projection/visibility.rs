//! Whether an error's path is part of the answer the client asked for.
//!
//! The planner may fetch an entity for every place it occurs, including
//! places the client's `@skip`/`@include` switched off or never selected
//! (a representation shared by several flatten paths, a fetch outside a
//! condition): a subgraph error placed there points at nothing the client
//! asked for, and the spec's errors describe the response. Such errors are
//! dropped; the walk follows the client's operation (fragments applied by
//! each object's type, conditions by the variables) along the path.

use hive_router_query_planner::ast::{operation::OperationDefinition, selection_set::SelectionSet};
use serde_json::{Map, Value as Json};

use super::{Shape, Shapes, Walker, root_type};
use crate::value::Value;

/// Whether `path` (response keys as the response tree spells them) leads
/// to a field `operation` selects, for the objects `data` holds.
pub fn shows(
    data: &Value,
    operation: &OperationDefinition,
    shapes: &Shapes,
    variables: &Map<String, Json>,
    path: &[Json],
) -> bool {
    let walker = Walker {
        shapes,
        variables,
        path: Default::default(),
        errors: Default::default(),
        groups: Default::default(),
    };
    let mut declared: &str = root_type(operation, shapes);
    let mut sets: Vec<&SelectionSet> = vec![&operation.selection_set];
    let mut value = Some(data);
    for segment in path {
        match segment {
            Json::Number(n) => {
                value = value.and_then(|v| v.item(n.as_u64().unwrap_or(u64::MAX) as usize));
            }
            Json::String(key) => {
                let actual = value
                    .and_then(|v| v.get("__typename"))
                    .and_then(Value::as_str)
                    .and_then(|t| shapes.fields.get_key_value(t))
                    .map_or(declared, |(t, _)| t.as_str());
                let groups = walker.groups(&sets, actual);
                let Some(group) = groups.iter().find(|g| g.read == key.as_str()) else {
                    return false;
                };
                let Some(shape) = group.shape else {
                    return true;
                };
                declared = named(shape);
                sets = group.selections.clone();
                value = value.and_then(|v| v.get(key));
            }
            _ => return false,
        }
    }
    true
}

fn named(shape: &Shape) -> &str {
    match shape {
        Shape::Named { name, .. } => name,
        Shape::List { item, .. } => named(item),
    }
}
