//! Projection: the merged response tree, shaped into exactly what the client
//! asked for.
//!
//! Walks the client's normalized operation over the tree: response keys are
//! aliases where given, `__typename` is answered, `@skip`/`@include` on
//! variables apply, inline fragments apply by the object's type (or a type it
//! implements), and anything the planner added (keys, requires inputs) is
//! left out. A null in a non-null position nulls the nearest nullable parent,
//! up to `data` itself, as the GraphQL spec prescribes.

use std::cell::RefCell;

use crate::fxhash::{FxHashMap, FxHashSet};

use graphql_tools::parser::schema::{Definition, Document, Type, TypeDefinition};
use hive_router_query_planner::{
    ast::{
        operation::OperationDefinition, selection_item::SelectionItem, selection_set::SelectionSet,
    },
    state::supergraph_state::OperationKind,
};
use serde_json::{Map, Value};

/// A field's declared type.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    Named { name: String, non_null: bool },
    List { item: Box<Shape>, non_null: bool },
}

impl Shape {
    fn from_type(t: &Type<'static, String>) -> Self {
        match t {
            Type::NamedType(name) => Shape::Named {
                name: name.clone(),
                non_null: false,
            },
            Type::ListType(inner) => Shape::List {
                item: Box::new(Self::from_type(inner)),
                non_null: false,
            },
            Type::NonNullType(inner) => match Self::from_type(inner) {
                Shape::Named { name, .. } => Shape::Named {
                    name,
                    non_null: true,
                },
                Shape::List { item, .. } => Shape::List {
                    item,
                    non_null: true,
                },
            },
        }
    }

    fn non_null(&self) -> bool {
        match self {
            Shape::Named { non_null, .. } | Shape::List { non_null, .. } => *non_null,
        }
    }
}

/// What projection needs of the API schema: field types, root types, and which
/// object types each interface or union stands for.
pub struct Shapes {
    fields: FxHashMap<String, FxHashMap<String, Shape>>,
    possible: FxHashMap<String, FxHashSet<String>>,
    /// Each enum's values as clients see them: a subgraph may know values the
    /// API schema hides (`@inaccessible`, or not shared by every subgraph).
    enums: FxHashMap<String, FxHashSet<String>>,
    roots: [String; 3],
}

impl Shapes {
    /// Reads the API schema.
    pub fn new(schema: &Document<'static, String>) -> Self {
        let mut fields: FxHashMap<String, FxHashMap<String, Shape>> = FxHashMap::default();
        let mut possible: FxHashMap<String, FxHashSet<String>> = FxHashMap::default();
        let mut enums: FxHashMap<String, FxHashSet<String>> = FxHashMap::default();
        let mut roots = [
            "Query".to_owned(),
            "Mutation".to_owned(),
            "Subscription".to_owned(),
        ];
        for definition in &schema.definitions {
            match definition {
                Definition::SchemaDefinition(s) => {
                    for (slot, name) in
                        roots
                            .iter_mut()
                            .zip([&s.query, &s.mutation, &s.subscription])
                    {
                        if let Some(name) = name {
                            *slot = name.clone();
                        }
                    }
                }
                Definition::TypeDefinition(TypeDefinition::Object(o)) => {
                    let entry = fields.entry(o.name.clone()).or_default();
                    for f in &o.fields {
                        entry.insert(f.name.clone(), Shape::from_type(&f.field_type));
                    }
                    for interface in &o.implements_interfaces {
                        possible
                            .entry(interface.clone())
                            .or_default()
                            .insert(o.name.clone());
                    }
                }
                Definition::TypeDefinition(TypeDefinition::Interface(i)) => {
                    let entry = fields.entry(i.name.clone()).or_default();
                    for f in &i.fields {
                        entry.insert(f.name.clone(), Shape::from_type(&f.field_type));
                    }
                }
                Definition::TypeDefinition(TypeDefinition::Enum(e)) => {
                    enums.insert(
                        e.name.clone(),
                        e.values.iter().map(|v| v.name.clone()).collect(),
                    );
                }
                Definition::TypeDefinition(TypeDefinition::Union(u)) => {
                    possible
                        .entry(u.name.clone())
                        .or_default()
                        .extend(u.types.iter().cloned());
                }
                _ => {}
            }
        }
        Self {
            fields,
            possible,
            enums,
            roots,
        }
    }

    fn field(&self, parent: &str, name: &str) -> Option<&Shape> {
        self.fields.get(parent)?.get(name)
    }

    /// Whether `name` is an interface or a union.
    pub fn is_abstract(&self, name: &str) -> bool {
        self.possible.contains_key(name)
    }

    /// Whether a type condition on `condition` applies to an object of type `actual`.
    pub fn applies(&self, condition: &str, actual: &str) -> bool {
        condition == actual
            || self
                .possible
                .get(condition)
                .is_some_and(|types| types.contains(actual))
    }
}

/// A null that must travel up to the nearest nullable position.
struct Bubble;

/// A shaped response: the data and the errors shaping found (values the
/// API schema cannot represent).
#[derive(Debug)]
pub struct Projected {
    pub data: Value,
    pub errors: Vec<Value>,
}

/// `data` shaped by `operation`; `data` is null when a null reached it.
pub fn project(
    data: &Value,
    operation: &OperationDefinition,
    shapes: &Shapes,
    variables: &Map<String, Value>,
) -> Projected {
    let root = match operation.operation_kind {
        Some(OperationKind::Mutation) => &shapes.roots[1],
        Some(OperationKind::Subscription) => &shapes.roots[2],
        _ => &shapes.roots[0],
    };
    let Value::Object(map) = data else {
        return Projected {
            data: Value::Null,
            errors: Vec::new(),
        };
    };
    let walker = Walker {
        shapes,
        variables,
        path: RefCell::default(),
        errors: RefCell::default(),
    };
    let data = match walker.object(map, root, &operation.selection_set) {
        Ok(value) => value,
        Err(Bubble) => Value::Null,
    };
    Projected {
        data,
        errors: walker.errors.into_inner(),
    }
}

#[derive(Clone, Copy)]
enum PathSeg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Walker<'a> {
    shapes: &'a Shapes,
    variables: &'a Map<String, Value>,
    /// Where the walk is, for errors (response keys borrowed from the operation).
    path: RefCell<Vec<PathSeg<'a>>>,
    errors: RefCell<Vec<Value>>,
}

impl<'a> Walker<'a> {
    /// A value at the current path that the API schema cannot represent.
    fn error(&self, message: String) {
        let error = serde_json::json!({
            "message": message,
            "path": self.path_json(),
            "extensions": { "code": "INTERNAL_SERVER_ERROR" },
        });
        self.errors.borrow_mut().push(error);
    }

    fn path_json(&self) -> Value {
        Value::Array(
            self.path
                .borrow()
                .iter()
                .map(|s| match s {
                    PathSeg::Key(k) => Value::String((*k).to_owned()),
                    PathSeg::Index(i) => Value::from(*i),
                })
                .collect(),
        )
    }

    fn included(&self, skip_if: &Option<String>, include_if: &Option<String>) -> bool {
        let var = |name: &String| matches!(self.variables.get(name), Some(Value::Bool(true)));
        !skip_if.as_ref().is_some_and(var) && include_if.as_ref().is_none_or(var)
    }

    fn object(
        &self,
        map: &Map<String, Value>,
        declared: &str,
        selections: &'a SelectionSet,
    ) -> Result<Value, Bubble> {
        let actual = map
            .get("__typename")
            .and_then(Value::as_str)
            .unwrap_or(declared);
        if !self.shapes.fields.contains_key(actual) {
            // A type the API schema hides (`@inaccessible`): the object
            // cannot be shown, and its name is not told.
            self.error(format!(
                "Cannot return a value of type \"{declared}\" here: its type is not part of the API"
            ));
            return Ok(Value::Null);
        }
        let mut out = Map::new();
        self.fill(map, actual, selections, &mut out)?;
        Ok(Value::Object(out))
    }

    fn fill(
        &self,
        map: &Map<String, Value>,
        actual: &str,
        selections: &'a SelectionSet,
        out: &mut Map<String, Value>,
    ) -> Result<(), Bubble> {
        for item in &selections.items {
            match item {
                SelectionItem::Field(field) => {
                    if field.omit_from_response || !self.included(&field.skip_if, &field.include_if)
                    {
                        continue;
                    }
                    let key = field.alias.as_deref().unwrap_or(&field.name);
                    if field.name == "__typename" {
                        out.insert(key.to_owned(), Value::String(actual.to_owned()));
                        continue;
                    }
                    let Some(shape) = self.shapes.field(actual, &field.name) else {
                        continue;
                    };
                    let raw = map.get(key).unwrap_or(&Value::Null);
                    self.path.borrow_mut().push(PathSeg::Key(key));
                    let completed = self.complete(raw, shape, &field.selections);
                    self.path.borrow_mut().pop();
                    let value = match completed {
                        Ok(value) => value,
                        Err(Bubble) if shape.non_null() => return Err(Bubble),
                        Err(Bubble) => Value::Null,
                    };
                    if value.is_null() && shape.non_null() {
                        return Err(Bubble);
                    }
                    match out.get_mut(key) {
                        Some(existing) => crate::execution::deep_merge(existing, value),
                        None => {
                            out.insert(key.to_owned(), value);
                        }
                    }
                }
                SelectionItem::InlineFragment(fragment) => {
                    if self.included(&fragment.skip_if, &fragment.include_if)
                        && self.shapes.applies(&fragment.type_condition, actual)
                    {
                        self.fill(map, actual, &fragment.selections, out)?;
                    }
                }
                SelectionItem::FragmentSpread(_) => {}
            }
        }
        Ok(())
    }

    fn complete(
        &self,
        raw: &Value,
        shape: &Shape,
        selections: &'a SelectionSet,
    ) -> Result<Value, Bubble> {
        match (shape, raw) {
            (_, Value::Null) => Ok(Value::Null),
            (Shape::List { item, .. }, Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, element) in items.iter().enumerate() {
                    self.path.borrow_mut().push(PathSeg::Index(i));
                    let completed = self.complete(element, item, selections);
                    self.path.borrow_mut().pop();
                    let value = completed?;
                    if value.is_null() && item.non_null() {
                        return Err(Bubble);
                    }
                    out.push(value);
                }
                Ok(Value::Array(out))
            }
            (Shape::Named { name, .. }, Value::Object(map)) if !selections.items.is_empty() => {
                self.object(map, name, selections)
            }
            (Shape::Named { name, .. }, leaf) if self.shapes.enums.contains_key(name) => {
                let known = leaf
                    .as_str()
                    .is_some_and(|v| self.shapes.enums[name].contains(v));
                if known {
                    Ok(leaf.clone())
                } else {
                    self.error(format!("Enum \"{name}\" cannot represent value: {leaf}"));
                    Ok(Value::Null)
                }
            }
            (_, leaf) => Ok(leaf.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use hive_router_query_planner::utils::parsing::{safe_parse_operation, safe_parse_schema};
    use serde_json::json;

    use super::*;

    const SCHEMA: &str = "type Query { products: [Product!]! me: User }
        interface Named { name: String! }
        type Product implements Named { sku: String! name: String! stock: Stock! price: String kind: Kind }
        enum Kind { FRESH FROZEN }
        type Stock { available: Int! }
        type User implements Named { name: String! }";

    fn run(query: &str, data: Value, variables: Value) -> Value {
        let schema = safe_parse_schema(SCHEMA).unwrap();
        let document = safe_parse_operation(query).unwrap();
        let operation = document
            .definitions
            .iter()
            .find_map(|d| match d {
                graphql_tools::parser::query::Definition::Operation(op) => Some(op.clone()),
                _ => None,
            })
            .unwrap();
        let operation = OperationDefinition::from(operation);
        let Value::Object(vars) = variables else {
            panic!()
        };
        project(&data, &operation, &Shapes::new(&schema), &vars).data
    }

    #[test]
    fn keeps_only_what_was_asked_under_its_alias() {
        // As merged from subgraphs: client aliases kept, key fields added by the planner.
        let data = json!({ "products": [{ "__typename": "Product", "id": "A", "sku": "A", "stock": { "available": 3, "onHand": 9 } }] });
        let out = run(
            "{ products { id: sku __typename stock { available } } }",
            data,
            json!({}),
        );
        assert_eq!(
            out,
            json!({ "products": [{ "id": "A", "__typename": "Product", "stock": { "available": 3 } }] })
        );
    }

    #[test]
    fn a_null_in_a_non_null_field_nulls_the_nearest_nullable_parent() {
        // stock is non-null on Product, Product is non-null in a non-null list: all the way up.
        let data = json!({ "products": [{ "sku": "A", "stock": null }], "me": { "name": "Ann" } });
        let out = run(
            "{ products { sku stock { available } } me { name } }",
            data,
            json!({}),
        );
        assert_eq!(
            out,
            Value::Null,
            "products is non-null at the root, so data itself is null"
        );
        let data = json!({ "me": { "name": null } });
        assert_eq!(
            run("{ me { name } }", data, json!({})),
            json!({ "me": null })
        );
    }

    #[test]
    fn enum_values_the_api_schema_does_not_have_become_null_with_an_error() {
        let schema = safe_parse_schema(SCHEMA).unwrap();
        let document = safe_parse_operation("{ products { sku kind } }").unwrap();
        let operation = document
            .definitions
            .iter()
            .find_map(|d| match d {
                graphql_tools::parser::query::Definition::Operation(op) => Some(op.clone()),
                _ => None,
            })
            .unwrap();
        let data = json!({ "products": [{ "sku": "A", "kind": "FRESH" }, { "sku": "B", "kind": "HIDDEN" }] });
        let out = project(
            &data,
            &OperationDefinition::from(operation),
            &Shapes::new(&schema),
            &Map::new(),
        );
        assert_eq!(
            out.data,
            json!({ "products": [{ "sku": "A", "kind": "FRESH" }, { "sku": "B", "kind": null }] })
        );
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0]["path"], json!(["products", 1, "kind"]));
    }

    #[test]
    fn conditions_and_fragments_follow_variables_and_types() {
        let data = json!({ "me": { "__typename": "User", "name": "Ann", "n": "Ann" } });
        let query = "query($show: Boolean!) { me { ... on Named { name } ... on Product { sku } n: name @include(if: $show) } }";
        assert_eq!(
            run(query, data.clone(), json!({ "show": true })),
            json!({ "me": { "name": "Ann", "n": "Ann" } })
        );
        assert_eq!(
            run(query, data, json!({ "show": false })),
            json!({ "me": { "name": "Ann" } })
        );
    }
}
