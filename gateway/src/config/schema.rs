//! The JSON Schema (draft 2020-12) of the configuration file, for editors:
//! printed by `grocery config-schema`, committed at
//! `schema/gateway.config.schema.json`, built from the same declarations
//! the reader checks a file against ([`super::shape`]).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use settings::{Kind, Var};

use super::shape::{Leaf, Shape};

/// The schema of a file holding the keys `tables` declare, pretty-printed.
pub fn json_schema(tables: &[&'static [Var]]) -> String {
    let Shape::Group(root) = Shape::of(tables) else {
        unreachable!("the root is a group")
    };
    let mut schema = group(&root);
    let object = schema.as_object_mut().expect("a group is an object");
    object.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    object.insert(
        "title".into(),
        json!("grocery gateway configuration (grocery serve gateway --config)"),
    );
    object.insert(
        "description".into(),
        json!(
            "Every key stands for an environment variable (named in its description); \
             a variable that is set wins over its key. Relative paths are from the \
             gateway's working directory."
        ),
    );
    let mut text = serde_json::to_string_pretty(&schema).expect("JSON");
    text.push('\n');
    text
}

fn group(keys: &BTreeMap<&'static str, Shape>) -> Value {
    let properties: serde_json::Map<String, Value> = keys
        .iter()
        .map(|(key, shape)| ((*key).to_owned(), node(shape)))
        .collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    })
}

fn node(shape: &Shape) -> Value {
    match shape {
        Shape::Group(keys) => group(keys),
        Shape::Each(keys) => json!({
            "type": "object",
            "description": "Settings of one subgraph, by its name in the supergraph.",
            "propertyNames": { "pattern": "^[A-Za-z0-9_-]{1,128}$" },
            "additionalProperties": group(keys),
        }),
        Shape::Leaf(leaf) => self::leaf(leaf),
    }
}

fn leaf(leaf: &Leaf) -> Value {
    let mut value = match leaf.kind {
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Integer => json!({ "type": "integer", "minimum": 0 }),
        Kind::Number => json!({ "type": "number" }),
        Kind::Duration => json!({
            "type": "string",
            "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*(ms|s)\\s*$",
            "examples": ["5s", "500ms"],
        }),
        Kind::Text => json!({ "type": "string" }),
        Kind::List => json!({
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string", "pattern": "^[^,]+$" } },
            ],
        }),
        Kind::Headers => json!({
            "type": "object",
            "maxProperties": crate::subgraph::options::MAX_STATIC_HEADERS,
            "propertyNames": { "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
            "additionalProperties": { "type": "string" },
        }),
    };
    let row = leaf.row;
    let description = format!(
        "{}. Environment variable: `{}` (wins over this key). Default: {}. Read by: {}.",
        row.meaning.trim_end_matches('.'),
        leaf.name,
        row.default,
        row.used_by
    );
    value
        .as_object_mut()
        .expect("a leaf is an object")
        .insert("description".into(), json!(description));
    value
}
