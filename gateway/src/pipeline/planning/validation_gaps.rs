//! What graphql-tools' validation rules let through, checked here.
//!
//! Its `LeafFieldSelections` and `KnownArgumentNames` look only at fields
//! the schema defines, so the meta-fields `__typename`, `__schema` and
//! `__type` are never checked: `__typename { x }` reached the planner (a
//! 500) and `__typename(doesNotExist: 1)` was quietly ignored. Its
//! `ValuesOfCorrectType` checks object literals only where an input object
//! is expected, so `trackingId: {wrong: 1}` for an `ID!` reached the
//! subgraph. This rule walks every operation and fragment once (fragments
//! are checked where they are defined, not where they are spread) and
//! reports both, with graphql-js' wording.

use std::collections::HashMap;

use graphql_tools::{
    static_graphql::{
        query::{Definition, Document, Field, Selection, SelectionSet, TypeCondition, Value},
        schema::{self, InputValue, Type, TypeDefinition},
    },
    validation::utils::ValidationError,
};

/// The meta-fields' arguments: `__type(name: String!)`; the others take none.
fn meta_arguments(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "__typename" | "__schema" => Some(&[]),
        "__type" => Some(&["name"]),
        _ => None,
    }
}

struct Checker<'a> {
    types: HashMap<&'a str, &'a TypeDefinition>,
    directives: HashMap<&'a str, &'a schema::DirectiveDefinition>,
    errors: Vec<ValidationError>,
    max: usize,
}

/// The errors graphql-tools' rules miss in `document` (at most `max`).
pub fn errors(schema: &schema::Document, document: &Document, max: usize) -> Vec<ValidationError> {
    let mut checker = Checker {
        types: HashMap::new(),
        directives: HashMap::new(),
        errors: Vec::new(),
        max,
    };
    let mut roots = ("Query", "Mutation", "Subscription");
    for definition in &schema.definitions {
        match definition {
            schema::Definition::TypeDefinition(t) => {
                checker.types.insert(t.name(), t);
            }
            schema::Definition::DirectiveDefinition(d) => {
                checker.directives.insert(d.name.as_str(), d);
            }
            schema::Definition::SchemaDefinition(s) => {
                roots = (
                    s.query.as_deref().unwrap_or(roots.0),
                    s.mutation.as_deref().unwrap_or(roots.1),
                    s.subscription.as_deref().unwrap_or(roots.2),
                );
            }
            _ => {}
        }
    }
    for definition in &document.definitions {
        use graphql_tools::static_graphql::query::OperationDefinition as Op;
        let (parent, set, variables) = match definition {
            Definition::Fragment(f) => {
                let TypeCondition::On(on) = &f.type_condition;
                (on.as_str(), &f.selection_set, &[][..])
            }
            Definition::Operation(Op::SelectionSet(set)) => (roots.0, set, &[][..]),
            Definition::Operation(Op::Query(q)) => {
                (roots.0, &q.selection_set, &q.variable_definitions[..])
            }
            Definition::Operation(Op::Mutation(m)) => {
                (roots.1, &m.selection_set, &m.variable_definitions[..])
            }
            Definition::Operation(Op::Subscription(s)) => {
                (roots.2, &s.selection_set, &s.variable_definitions[..])
            }
        };
        for variable in variables {
            if let Some(default) = &variable.default_value {
                checker.literal(default, &variable.var_type);
            }
        }
        checker.selection_set(parent, set);
        if checker.errors.len() >= checker.max {
            break;
        }
    }
    checker.errors.truncate(max);
    checker.errors
}

impl<'a> Checker<'a> {
    fn report(&mut self, field: Option<&Field>, message: String, code: &'static str) {
        self.errors.push(ValidationError {
            locations: field.map(|f| vec![f.position]).unwrap_or_default(),
            message,
            error_code: code,
        });
    }

    fn fields_of(&self, parent: &str) -> &'a [schema::Field] {
        match self.types.get(parent) {
            Some(TypeDefinition::Object(o)) => &o.fields,
            Some(TypeDefinition::Interface(i)) => &i.fields,
            _ => &[],
        }
    }

    fn selection_set(&mut self, parent: &str, set: &SelectionSet) {
        for selection in &set.items {
            if self.errors.len() >= self.max {
                return;
            }
            match selection {
                Selection::Field(field) => self.field(parent, field),
                Selection::InlineFragment(inline) => {
                    self.directives(&inline.directives, None);
                    let on = match &inline.type_condition {
                        Some(TypeCondition::On(on)) => on.as_str(),
                        None => parent,
                    };
                    self.selection_set(on, &inline.selection_set);
                }
                Selection::FragmentSpread(spread) => self.directives(&spread.directives, None),
            }
        }
    }

    fn field(&mut self, parent: &str, field: &Field) {
        self.directives(&field.directives, Some(field));
        if let Some(known) = meta_arguments(&field.name) {
            for (name, _) in &field.arguments {
                if !known.contains(&name.as_str()) {
                    self.report(
                        Some(field),
                        format!(
                            "Unknown argument \"{name}\" on field \"{parent}.{}\".",
                            field.name
                        ),
                        "KnownArgumentNames",
                    );
                }
            }
            if field.name == "__typename" && !field.selection_set.items.is_empty() {
                self.report(
                    Some(field),
                    "Field \"__typename\" must not have a selection since type \"String!\" has no subfields.".into(),
                    "LeafFieldSelections",
                );
            }
            // Below `__schema`/`__type` lie introspection types, which the
            // API schema does not hold: the gateway answers them itself.
            return;
        }
        let Some(definition) = self.fields_of(parent).iter().find(|f| f.name == field.name) else {
            return;
        };
        for (name, value) in &field.arguments {
            if let Some(argument) = definition.arguments.iter().find(|a| &a.name == name) {
                self.literal(value, &argument.value_type);
            }
        }
        let inner = definition.field_type.inner_type();
        self.selection_set(inner, &field.selection_set);
    }

    fn directives(
        &mut self,
        directives: &[graphql_tools::static_graphql::query::Directive],
        at: Option<&Field>,
    ) {
        for directive in directives {
            let definition = self.directives.get(directive.name.as_str()).copied();
            for (name, value) in &directive.arguments {
                let declared = match (directive.name.as_str(), name.as_str(), definition) {
                    (_, _, Some(d)) => d
                        .arguments
                        .iter()
                        .find(|a| &a.name == name)
                        .map(|a| a.value_type.clone()),
                    // The built-in conditions, which an API schema need not declare.
                    ("skip" | "include", "if", None) => Some(Type::NonNullType(Box::new(
                        Type::NamedType("Boolean".into()),
                    ))),
                    _ => None,
                };
                if let Some(declared) = declared {
                    let before = self.errors.len();
                    self.literal(value, &declared);
                    if let (Some(field), Some(error)) = (at, self.errors.get_mut(before)) {
                        error.locations.push(field.position);
                    }
                }
            }
        }
    }

    /// Reports a list or object literal where `expected` takes neither;
    /// other mismatches (a string for an Int, an unknown input field) are
    /// graphql-tools' to report.
    fn literal(&mut self, value: &Value, expected: &Type) {
        match (expected, value) {
            (_, Value::Variable(_) | Value::Null) => {}
            (Type::NonNullType(inner), _) => self.literal(value, inner),
            (Type::ListType(item), Value::List(items)) => {
                for element in items {
                    self.literal(element, item);
                }
            }
            // One value where a list is expected is a list of one.
            (Type::ListType(item), _) => self.literal(value, item),
            (Type::NamedType(name), _) => {
                let definition = self.types.get(name.as_str()).copied();
                match (definition, value) {
                    (Some(TypeDefinition::InputObject(input)), Value::Object(fields)) => {
                        for (key, field_value) in fields {
                            if let Some(InputValue { value_type, .. }) =
                                input.fields.iter().find(|f| &f.name == key)
                            {
                                self.literal(field_value, value_type);
                            }
                        }
                    }
                    (_, Value::Object(_) | Value::List(_)) => self.report(
                        None,
                        format!("Expected value of type \"{name}\", found {value}."),
                        "ValuesOfCorrectType",
                    ),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "type Query { product(sku: String!): Product products(first: Int, filter: Filter, tags: [String!]): [Product!]! }
        input Filter { tags: [String!] min: Int }
        type Product { sku: String! name: String }";

    fn messages(query: &str) -> Vec<String> {
        let schema = graphql_tools::parser::parse_schema::<String>(SCHEMA)
            .unwrap()
            .into_static();
        let document = graphql_tools::parser::parse_query::<String>(query)
            .unwrap()
            .into_static();
        errors(&schema, &document, 100)
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn a_selection_on_typename_is_refused() {
        assert_eq!(
            messages("{ products { __typename { x } } }"),
            [
                "Field \"__typename\" must not have a selection since type \"String!\" has no subfields."
            ]
        );
        assert_eq!(
            messages("query { ...F } fragment F on Query { __typename { x } }").len(),
            1,
            "in a fragment too"
        );
    }

    #[test]
    fn arguments_the_meta_fields_lack_are_refused() {
        assert_eq!(
            messages("{ products { __typename(doesNotExist: 1) } }"),
            ["Unknown argument \"doesNotExist\" on field \"Product.__typename\"."]
        );
        assert_eq!(messages("{ __schema(x: 1) { types { name } } }").len(), 1);
        assert!(messages("{ __type(name: \"Product\") { name } }").is_empty());
    }

    #[test]
    fn object_and_list_literals_for_leaves_are_refused() {
        assert_eq!(
            messages("{ product(sku: {wrong: 1}) { sku } }"),
            ["Expected value of type \"String\", found {wrong: 1}."]
        );
        assert_eq!(messages("{ product(sku: [\"a\"]) { sku } }").len(), 1);
        assert_eq!(
            messages("{ products(filter: {tags: [{a: 1}], min: [1]}) { sku } }").len(),
            2,
            "inside input objects too"
        );
        assert_eq!(
            messages("query($s: String = {a: 1}) { product(sku: $s) { sku } }").len(),
            1,
            "and in variables' defaults"
        );
        assert_eq!(
            messages("{ product(sku: \"a\") @include(if: {a: 1}) { sku } }").len(),
            1,
            "and in directives' arguments"
        );
    }

    #[test]
    fn well_typed_literals_pass() {
        assert!(
            messages(
                "query($t: [String!] = [\"x\"]) { products(first: 2, tags: \"one\", filter: {tags: [\"a\"], min: 1}) { sku name } a: products(tags: $t) { sku } }"
            )
            .is_empty()
        );
    }
}
