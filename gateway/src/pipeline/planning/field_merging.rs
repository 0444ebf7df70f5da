//! The spec's "field selection merging" rule (FieldsInSetCanMerge), in time
//! that grows with the operation, not with its square.
//!
//! graphql-tools' rule (like graphql-js') compares every pair of fields that
//! share a response name: 4,000 copies of `sku` in one selection set took
//! 8.6 s in a debug build, 20,000 copies 17.5 s of a release gateway. This
//! check follows the grouping of "Xing" (the algorithm Apollo's and
//! graphql-java's validators adopted) and splits the rule in two:
//!
//! - **same response shape**: every field of one response name, whatever its
//!   parent, returns a type of the same shape (nullability, lists, leaf type);
//! - **same for common parents**: fields of one response name whose parents
//!   could be the same object are the same field with the same arguments.
//!
//! Within a group each field is compared with the group's first one, not with
//! every other, and the subfields of a whole group are checked together as
//! one set. A field reached twice through the same fragment is the same node
//! and is kept once, so repeated spreads add nothing. The cost limits
//! ([`crate::pipeline::limits`]) run first and bound the expanded operation.

use std::collections::{HashMap, HashSet};

use graphql_tools::static_graphql::{
    query::{Definition, Document, Field, Selection, SelectionSet, TypeCondition},
    schema::{self, TypeDefinition},
};

/// A field as selected: the type it was selected on and its node.
#[derive(Clone, Copy)]
struct Selected<'a> {
    parent: &'a str,
    field: &'a Field,
}

/// A conflict: the response path and why its fields cannot merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub path: Vec<String>,
    pub reason: String,
}

impl Conflict {
    /// The message clients see, in graphql-js' words.
    pub fn message(&self) -> String {
        format!(
            "Fields \"{}\" conflict because {}. Use different aliases on the fields to fetch both if this was intentional.",
            self.path.join("."),
            self.reason
        )
    }
}

struct Checker<'a> {
    types: HashMap<&'a str, &'a TypeDefinition>,
    fragments: HashMap<&'a str, &'a graphql_tools::static_graphql::query::FragmentDefinition>,
    conflicts: Vec<Conflict>,
    /// Response paths already reported, so one conflict is said once.
    reported: HashSet<Vec<String>>,
}

/// Every merging conflict in the operations of `document` (at most `max`).
pub fn conflicts(schema: &schema::Document, document: &Document, max: usize) -> Vec<Conflict> {
    let mut types = HashMap::new();
    for definition in &schema.definitions {
        if let schema::Definition::TypeDefinition(t) = definition {
            types.insert(t.name(), t);
        }
    }
    let mut fragments = HashMap::new();
    for definition in &document.definitions {
        if let Definition::Fragment(fragment) = definition {
            fragments.insert(fragment.name.as_str(), fragment);
        }
    }
    let mut checker = Checker {
        types,
        fragments,
        conflicts: Vec::new(),
        reported: HashSet::new(),
    };
    for definition in &document.definitions {
        let Definition::Operation(operation) = definition else {
            continue;
        };
        use graphql_tools::static_graphql::query::OperationDefinition as Op;
        let (root, set) = match operation {
            Op::SelectionSet(set) => (schema_root(schema, "query"), set),
            Op::Query(q) => (schema_root(schema, "query"), &q.selection_set),
            Op::Mutation(m) => (schema_root(schema, "mutation"), &m.selection_set),
            Op::Subscription(s) => (schema_root(schema, "subscription"), &s.selection_set),
        };
        let Some(root) = root else { continue };
        let mut fields = Vec::new();
        checker.collect(root, set, &mut fields, &mut HashSet::new());
        checker.check(&fields, &mut Vec::new(), max);
        if checker.conflicts.len() >= max {
            break;
        }
    }
    checker.conflicts
}

/// The name of the root type of `kind` (`query`, `mutation`, `subscription`).
fn schema_root<'a>(schema: &'a schema::Document, kind: &str) -> Option<&'a str> {
    for definition in &schema.definitions {
        if let schema::Definition::SchemaDefinition(def) = definition {
            let named = match kind {
                "query" => def.query.as_deref(),
                "mutation" => def.mutation.as_deref(),
                _ => def.subscription.as_deref(),
            };
            return named;
        }
    }
    Some(match kind {
        "query" => "Query",
        "mutation" => "Mutation",
        _ => "Subscription",
    })
}

fn response_name(field: &Field) -> &str {
    field.alias.as_deref().unwrap_or(&field.name)
}

/// How a type's value looks in a response; composite types compare by their subfields.
#[derive(PartialEq, Eq, Debug)]
enum Shape<'a> {
    NonNull(Box<Shape<'a>>),
    List(Box<Shape<'a>>),
    Leaf(&'a str),
    Composite,
}

impl<'a> Checker<'a> {
    /// Fields of `set` selected on `parent`, through inline fragments and
    /// spreads (each fragment once per collection: repeats add nothing).
    fn collect(
        &self,
        parent: &'a str,
        set: &'a SelectionSet,
        out: &mut Vec<Selected<'a>>,
        spread: &mut HashSet<(&'a str, &'a str)>,
    ) {
        for selection in &set.items {
            match selection {
                Selection::Field(field) => out.push(Selected { parent, field }),
                Selection::InlineFragment(inline) => {
                    let on = match &inline.type_condition {
                        Some(TypeCondition::On(name)) => name.as_str(),
                        None => parent,
                    };
                    self.collect(on, &inline.selection_set, out, spread);
                }
                Selection::FragmentSpread(s) => {
                    let Some(fragment) = self.fragments.get(s.fragment_name.as_str()) else {
                        continue;
                    };
                    let TypeCondition::On(on) = &fragment.type_condition;
                    // Keyed by the parent too: the same fragment under
                    // another parent selects other fields.
                    if spread.insert((fragment.name.as_str(), parent)) {
                        self.collect(on, &fragment.selection_set, out, spread);
                    }
                }
            }
        }
    }

    fn definition(&self, selected: Selected<'a>) -> Option<&'a schema::Field> {
        self.types
            .get(selected.parent)?
            .field_by_name(&selected.field.name)
    }

    /// The type `selected` returns; `__typename` is `String!`.
    fn return_type(&self, selected: Selected<'a>) -> Option<ReturnType<'a>> {
        if selected.field.name == "__typename" {
            return Some(ReturnType::Typename);
        }
        self.definition(selected)
            .map(|d| ReturnType::Declared(&d.field_type))
    }

    fn shape(&self, t: &ReturnType<'a>) -> Shape<'a> {
        match t {
            ReturnType::Typename => Shape::NonNull(Box::new(Shape::Leaf("String"))),
            ReturnType::Declared(t) => self.shape_of(t),
        }
    }

    fn shape_of(&self, t: &'a schema::Type) -> Shape<'a> {
        match t {
            schema::Type::NonNullType(inner) => Shape::NonNull(Box::new(self.shape_of(inner))),
            schema::Type::ListType(inner) => Shape::List(Box::new(self.shape_of(inner))),
            schema::Type::NamedType(name) => match self.types.get(name.as_str()) {
                Some(TypeDefinition::Object(_) | TypeDefinition::Interface(_))
                | Some(TypeDefinition::Union(_)) => Shape::Composite,
                _ => Shape::Leaf(name),
            },
        }
    }

    fn is_object(&self, name: &str) -> bool {
        matches!(self.types.get(name), Some(TypeDefinition::Object(_)))
    }

    fn report(&mut self, path: &[String], reason: String) {
        if self.reported.insert(path.to_vec()) {
            self.conflicts.push(Conflict {
                path: path.to_vec(),
                reason,
            });
        }
    }

    /// Checks one merged set of fields; `path` is the response path above it.
    fn check(&mut self, fields: &[Selected<'a>], path: &mut Vec<String>, max: usize) {
        let mut groups: Vec<(&'a str, Vec<Selected<'a>>)> = Vec::new();
        let mut index: HashMap<&'a str, usize> = HashMap::new();
        for &selected in fields {
            let name = response_name(selected.field);
            let at = *index.entry(name).or_insert_with(|| {
                groups.push((name, Vec::new()));
                groups.len() - 1
            });
            groups[at].1.push(selected);
        }
        for (name, group) in groups {
            if self.conflicts.len() >= max {
                return;
            }
            path.push(name.to_owned());
            self.check_group(&group, path, max);
            path.pop();
        }
    }

    fn check_group(&mut self, group: &[Selected<'a>], path: &mut Vec<String>, max: usize) {
        // Same response shape, whatever the parents.
        let first = group[0];
        let first_type = self.return_type(first);
        if let Some(first_type) = &first_type {
            let first_shape = self.shape(first_type);
            for &other in &group[1..] {
                let Some(other_type) = self.return_type(other) else {
                    continue;
                };
                if self.shape(&other_type) != first_shape {
                    let reason = format!(
                        "they return conflicting types \"{}\" and \"{}\"",
                        first_type.display(),
                        other_type.display()
                    );
                    return self.report(path, reason);
                }
            }
        }
        // Same field and arguments where the parents may be the same object:
        // the same parent type, or either parent abstract.
        let mut by_parent: Vec<(&'a str, Selected<'a>)> = Vec::new();
        let mut abstract_first: Option<Selected<'a>> = None;
        for &selected in group {
            if !self.is_object(selected.parent) {
                match abstract_first {
                    None => abstract_first = Some(selected),
                    Some(first) => {
                        if let Some(reason) = differs(first.field, selected.field) {
                            return self.report(path, reason);
                        }
                    }
                }
                continue;
            }
            match by_parent.iter().find(|(p, _)| *p == selected.parent) {
                Some((_, first)) => {
                    if let Some(reason) = differs(first.field, selected.field) {
                        return self.report(path, reason);
                    }
                }
                None => by_parent.push((selected.parent, selected)),
            }
        }
        if let Some(abstract_first) = abstract_first {
            for (_, first) in &by_parent {
                if let Some(reason) = differs(abstract_first.field, first.field) {
                    return self.report(path, reason);
                }
            }
        }
        // The subfields of the whole group merge into one response object.
        let mut subfields = Vec::new();
        let mut seen = HashSet::new();
        for &selected in group {
            // The same node reached twice (one fragment spread twice) is one field.
            if !seen.insert((selected.field as *const Field, selected.parent)) {
                continue;
            }
            if selected.field.selection_set.items.is_empty() {
                continue;
            }
            let Some(ReturnType::Declared(t)) = self.return_type(selected) else {
                continue;
            };
            let inner = t.inner_type();
            self.collect(
                inner,
                &selected.field.selection_set,
                &mut subfields,
                &mut HashSet::new(),
            );
        }
        if !subfields.is_empty() {
            self.check(&subfields, path, max);
        }
    }
}

enum ReturnType<'a> {
    Typename,
    Declared(&'a schema::Type),
}

impl ReturnType<'_> {
    fn display(&self) -> String {
        match self {
            Self::Typename => "String!".into(),
            Self::Declared(t) => t.to_string(),
        }
    }
}

/// Why `a` and `b` are not the same field with the same arguments, if they are not.
fn differs(a: &Field, b: &Field) -> Option<String> {
    if a.name != b.name {
        return Some(format!(
            "\"{}\" and \"{}\" are different fields",
            a.name, b.name
        ));
    }
    let same_arguments = a.arguments.len() == b.arguments.len()
        && a.arguments.iter().all(|(name, value)| {
            b.arguments
                .iter()
                .any(|(other, other_value)| other == name && other_value == value)
        });
    (!same_arguments).then(|| "they have differing arguments".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_router_query_planner::utils::parsing::{safe_parse_operation, safe_parse_schema};

    const SCHEMA: &str = "
        type Query { pet: Pet  dog: Dog  node(id: ID): Dog  n: Int }
        interface Pet { name: String }
        type Dog implements Pet { name: String  color: String  barks: Boolean  size: Int  friend: Dog }
        type Cat implements Pet { name: String  size: String  meows: Boolean }
    ";

    fn reasons(operation: &str) -> Vec<String> {
        let schema = safe_parse_schema(SCHEMA).unwrap();
        let document = safe_parse_operation(operation).unwrap();
        conflicts(&schema, &document, 100)
            .into_iter()
            .map(|c| format!("{}: {}", c.path.join("."), c.reason))
            .collect()
    }

    #[test]
    fn identical_fields_merge_however_many_there_are() {
        let many = format!("{{ dog {{ {} }} }}", "name ".repeat(20_000));
        assert!(reasons(&many).is_empty());
        assert!(
            reasons("{ dog { ...F ...F friend { name } } } fragment F on Dog { friend { barks } }")
                .is_empty()
        );
    }

    #[test]
    fn different_fields_or_arguments_under_one_name_conflict() {
        assert_eq!(
            reasons("{ dog { x: name x: color } }"),
            ["dog.x: \"name\" and \"color\" are different fields"]
        );
        assert_eq!(
            reasons("{ node(id: 1) { name } node(id: 2) { name } }"),
            ["node: they have differing arguments"]
        );
        // Found in subfields merged from two places, and said once.
        assert_eq!(
            reasons(
                "{ dog { friend { a: name } } dog { friend { a: color } } dog { friend { a: color } } }"
            ),
            ["dog.friend.a: \"name\" and \"color\" are different fields"]
        );
    }

    #[test]
    fn fields_of_different_objects_may_differ_but_not_in_shape() {
        assert!(reasons("{ pet { ... on Dog { x: barks } ... on Cat { x: meows } } }").is_empty());
        assert_eq!(
            reasons("{ pet { ... on Dog { size } ... on Cat { size } } }"),
            ["pet.size: they return conflicting types \"Int\" and \"String\""]
        );
        // An abstract parent may be either object: its field must match both.
        assert_eq!(
            reasons("{ pet { x: name ... on Dog { x: barks } } }"),
            ["pet.x: they return conflicting types \"String\" and \"Boolean\""]
        );
    }
}
