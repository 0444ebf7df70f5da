//! The reference's answer made exact. async-graphql 7 (the reference, like
//! every stub) departs from the GraphQL spec in three ways the gateway must
//! not copy: a field error leaves the key out instead of null, with no null
//! propagation to the nearest nullable parent; an object whose every key was
//! left out (or skipped) becomes null; and `@skip`/`@include` read a missing
//! variable as false, ignoring its default. The reference is asked a
//! slightly different request (defaults filled in, `zzRef: __typename` in
//! every selection set so no object is empty) and its answer is completed
//! here: every error's field set to null and propagated as the spec says.

use serde_json::{Map, Value};

use super::api::{Api, TypeRef};
use super::document::{Document, Field, Selection};
use super::generator::Case;

/// The response key added to every selection set of the reference's document.
const PADDING: &str = "zzRef";

/// What the reference is asked for `case`: the padded document and the
/// variables with every omitted one that has a default filled in.
pub fn request(case: &Case) -> (String, Map<String, Value>) {
    let mut document = case.document.clone();
    document.visit_sets(&mut |set| {
        set.push(Selection::Field(Field {
            alias: Some(PADDING.into()),
            name: "__typename".into(),
            args: Vec::new(),
            directives: Vec::new(),
            selection: Vec::new(),
        }))
    });
    let mut variables = case.variables.clone();
    for variable in &document.operations[operation(case)].variables {
        if let (Some((_, default)), false) =
            (&variable.default, variables.contains_key(&variable.name))
        {
            variables.insert(variable.name.clone(), default.clone());
        }
    }
    (document.render(), variables)
}

fn operation(case: &Case) -> usize {
    let named =
        |op: &&super::document::Operation| op.name.is_some() && op.name == case.operation_name;
    case.document
        .operations
        .iter()
        .position(|op| named(&op))
        .unwrap_or(0)
}

/// Completes the reference's `answer` to `case` as the spec has it.
pub fn complete(mut answer: Value, case: &Case, api: &Api) -> Value {
    let root = match case.document.operations[operation(case)].kind {
        "mutation" => api.mutation.clone().unwrap_or_default(),
        _ => api.query.clone(),
    };
    let paths: Vec<Vec<Value>> = answer["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("path")?.as_array().cloned())
        .collect();
    for path in paths {
        let Some(types) = position_types(&case.document, operation(case), &root, api, &path) else {
            continue;
        };
        let data = &mut answer["data"];
        let mut i = path.len() - 1;
        set_null(data, &path[..=i]);
        while types[i].is_non_null() {
            if i == 0 {
                *data = Value::Null;
                break;
            }
            i -= 1;
            set_null(data, &path[..=i]);
        }
    }
    strip(&mut answer["data"]);
    answer
}

fn set_null(data: &mut Value, path: &[Value]) {
    let (last, parents) = path.split_last().unwrap();
    let mut at = data;
    for segment in parents {
        at = match (segment, at) {
            (Value::String(key), Value::Object(map)) => match map.get_mut(key) {
                Some(next) => next,
                None => return,
            },
            (Value::Number(i), Value::Array(items)) => {
                match items.get_mut(i.as_u64().unwrap() as usize) {
                    Some(next) => next,
                    None => return,
                }
            }
            _ => return,
        };
    }
    match (last, at) {
        (Value::String(key), Value::Object(map)) => {
            map.insert(key.clone(), Value::Null);
        }
        (Value::Number(i), Value::Array(items)) => {
            if let Some(item) = items.get_mut(i.as_u64().unwrap() as usize) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove(PADDING);
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

/// The declared type at each prefix of `path` (a field's type, or a list's item type).
fn position_types(
    document: &Document,
    op: usize,
    root: &str,
    api: &Api,
    path: &[Value],
) -> Option<Vec<TypeRef>> {
    let mut sets: Vec<(&[Selection], String)> =
        vec![(&document.operations[op].selection, root.to_owned())];
    let mut current: Option<TypeRef> = None;
    let mut types = Vec::new();
    for segment in path {
        let next = match segment {
            Value::String(key) => {
                let mut found = Vec::new();
                for (set, parent) in &sets {
                    collect(document, api, set, parent, key, &mut found);
                }
                let ty = found.first()?.0.clone();
                sets = found
                    .into_iter()
                    .map(|(_, set)| (set, ty.named().to_owned()))
                    .collect();
                ty
            }
            _ => match current? {
                TypeRef::NonNull(inner) => match *inner {
                    TypeRef::List(item) => *item,
                    _ => return None,
                },
                TypeRef::List(item) => *item,
                TypeRef::Named(_) => return None,
            },
        };
        types.push(next.clone());
        current = Some(next);
    }
    Some(types)
}

/// The fields under response `key` in `set` (on `parent`), through fragments.
fn collect<'d>(
    document: &'d Document,
    api: &Api,
    set: &'d [Selection],
    parent: &str,
    key: &str,
    found: &mut Vec<(TypeRef, &'d [Selection])>,
) {
    for item in set {
        match item {
            Selection::Field(f) if f.alias.as_deref().unwrap_or(&f.name) == key => {
                if let Some(def) = api.fields(parent).iter().find(|d| d.name == f.name) {
                    found.push((def.ty.clone(), &f.selection));
                }
            }
            Selection::Field(_) => {}
            Selection::Inline { on, selection, .. } => collect(
                document,
                api,
                selection,
                on.as_deref().unwrap_or(parent),
                key,
                found,
            ),
            Selection::Spread { name, .. } => {
                if let Some(fragment) = document.fragments.iter().find(|f| &f.name == name) {
                    collect(document, api, &fragment.selection, &fragment.on, key, found);
                }
            }
        }
    }
}
