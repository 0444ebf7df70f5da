//! Introspection: `__schema` and `__type` answered by the gateway from the
//! API schema. The planner does not plan these fields; the gateway builds the
//! standard introspection value once per supergraph, and projection applies the
//! client's selection to it like to any other data.

use std::collections::{BTreeMap, BTreeSet};

use graphql_tools::parser::schema::{
    Definition, Directive, Document, EnumValue, Field, InputValue, Type, TypeDefinition,
};
use serde_json::{Value, json};

const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

/// The built-in directives, introspection types and scalars as the
/// reference implementation (graphql-js) defines them, descriptions
/// included; the planner's API schema has older definitions (`@oneOf` on
/// objects, `@deprecated` not on arguments, no descriptions).
const SPEC_BUILT_INS: &str = include_str!("introspection.graphql");

/// `schema` (the planner's API schema) with the built-ins of
/// [`SPEC_BUILT_INS`] in place of its own, so validation and introspection
/// agree with the specification.
pub fn with_spec_built_ins(schema: &Document<'static, String>) -> Document<'static, String> {
    let spec = graphql_tools::parser::schema::parse_schema::<String>(SPEC_BUILT_INS)
        .expect("the built-ins parse")
        .into_static();
    let name = |d: &Definition<'static, String>| -> Option<String> {
        match d {
            Definition::DirectiveDefinition(d) => Some(format!("@{}", d.name)),
            Definition::TypeDefinition(TypeDefinition::Object(t)) => Some(t.name.clone()),
            Definition::TypeDefinition(TypeDefinition::Enum(t)) => Some(t.name.clone()),
            Definition::TypeDefinition(TypeDefinition::Scalar(t)) => Some(t.name.clone()),
            _ => None,
        }
    };
    let replaced: BTreeSet<String> = spec.definitions.iter().filter_map(name).collect();
    let mut document = schema.clone();
    document
        .definitions
        .retain(|d| name(d).is_none_or(|n| !replaced.contains(&n)));
    document.definitions.extend(spec.definitions);
    document
}

fn description(d: &Option<String>) -> Value {
    d.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

fn deprecation(directives: &[Directive<'static, String>]) -> (bool, Value) {
    match directives.iter().find(|d| d.name == "deprecated") {
        None => (false, Value::Null),
        Some(d) => {
            let reason = d
                .arguments
                .iter()
                .find(|(name, _)| name == "reason")
                .map(|(_, v)| v.to_string().trim_matches('"').to_owned())
                .unwrap_or_else(|| "No longer supported".into());
            (true, Value::String(reason))
        }
    }
}

fn type_ref(t: &Type<'static, String>, kinds: &BTreeMap<String, &'static str>) -> Value {
    match t {
        Type::NamedType(name) => {
            json!({ "kind": kinds.get(name).copied().unwrap_or("SCALAR"), "name": name, "ofType": null })
        }
        Type::ListType(inner) => {
            json!({ "kind": "LIST", "name": null, "ofType": type_ref(inner, kinds) })
        }
        Type::NonNullType(inner) => {
            json!({ "kind": "NON_NULL", "name": null, "ofType": type_ref(inner, kinds) })
        }
    }
}

fn input_value(v: &InputValue<'static, String>, kinds: &BTreeMap<String, &'static str>) -> Value {
    let (deprecated, reason) = deprecation(&v.directives);
    json!({
        "name": v.name,
        "description": description(&v.description),
        "type": type_ref(&v.value_type, kinds),
        "defaultValue": v.default_value.as_ref().map(|d| Value::String(d.to_string())).unwrap_or(Value::Null),
        "isDeprecated": deprecated,
        "deprecationReason": reason,
    })
}

fn field(f: &Field<'static, String>, kinds: &BTreeMap<String, &'static str>) -> Value {
    let (deprecated, reason) = deprecation(&f.directives);
    json!({
        "name": f.name,
        "description": description(&f.description),
        "args": f.arguments.iter().map(|a| input_value(a, kinds)).collect::<Vec<_>>(),
        "type": type_ref(&f.field_type, kinds),
        "isDeprecated": deprecated,
        "deprecationReason": reason,
    })
}

fn enum_value(v: &EnumValue<'static, String>) -> Value {
    let (deprecated, reason) = deprecation(&v.directives);
    json!({ "name": v.name, "description": description(&v.description), "isDeprecated": deprecated, "deprecationReason": reason })
}

/// Every type name a field, argument or input field of `schema` refers to.
fn referenced_types(schema: &Document<'static, String>) -> BTreeSet<String> {
    fn named<'t>(t: &'t Type<'static, String>) -> &'t str {
        match t {
            Type::NamedType(name) => name,
            Type::ListType(inner) | Type::NonNullType(inner) => named(inner),
        }
    }
    let mut names = BTreeSet::new();
    let inputs = |args: &[InputValue<'static, String>], names: &mut BTreeSet<String>| {
        for a in args {
            names.insert(named(&a.value_type).to_owned());
        }
    };
    for definition in &schema.definitions {
        match definition {
            Definition::TypeDefinition(TypeDefinition::Object(o)) => {
                for f in &o.fields {
                    names.insert(named(&f.field_type).to_owned());
                    inputs(&f.arguments, &mut names);
                }
            }
            Definition::TypeDefinition(TypeDefinition::Interface(i)) => {
                for f in &i.fields {
                    names.insert(named(&f.field_type).to_owned());
                    inputs(&f.arguments, &mut names);
                }
            }
            Definition::TypeDefinition(TypeDefinition::InputObject(i)) => {
                inputs(&i.fields, &mut names)
            }
            Definition::DirectiveDefinition(d) => inputs(&d.arguments, &mut names),
            _ => {}
        }
    }
    names
}

/// The `__Schema` value of `schema` (the API schema), with every type by name.
pub struct Introspection {
    pub schema: Value,
    types: BTreeMap<String, Value>,
}

impl Introspection {
    /// Builds the introspection value of `schema`.
    pub fn new(schema: &Document<'static, String>) -> Self {
        let mut kinds: BTreeMap<String, &'static str> = BUILT_IN_SCALARS
            .iter()
            .map(|s| ((*s).to_owned(), "SCALAR"))
            .collect();
        let mut implementors: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut roots = [Some("Query".to_owned()), None, None];
        for definition in &schema.definitions {
            match definition {
                Definition::TypeDefinition(t) => {
                    let (name, kind) = match t {
                        TypeDefinition::Scalar(s) => (&s.name, "SCALAR"),
                        TypeDefinition::Object(o) => {
                            for i in &o.implements_interfaces {
                                implementors
                                    .entry(i.clone())
                                    .or_default()
                                    .insert(o.name.clone());
                            }
                            (&o.name, "OBJECT")
                        }
                        TypeDefinition::Interface(i) => (&i.name, "INTERFACE"),
                        TypeDefinition::Union(u) => {
                            implementors
                                .entry(u.name.clone())
                                .or_default()
                                .extend(u.types.iter().cloned());
                            (&u.name, "UNION")
                        }
                        TypeDefinition::Enum(e) => (&e.name, "ENUM"),
                        TypeDefinition::InputObject(i) => (&i.name, "INPUT_OBJECT"),
                    };
                    kinds.insert(name.clone(), kind);
                }
                Definition::SchemaDefinition(s) => {
                    roots = [
                        s.query.clone().or(Some("Query".into())),
                        s.mutation.clone(),
                        s.subscription.clone(),
                    ];
                }
                _ => {}
            }
        }
        if roots[1].is_none() && kinds.contains_key("Mutation") {
            roots[1] = Some("Mutation".into());
        }
        if roots[2].is_none() && kinds.contains_key("Subscription") {
            roots[2] = Some("Subscription".into());
        }
        let mut types: BTreeMap<String, Value> = BUILT_IN_SCALARS
            .iter()
            .map(|s| ((*s).to_owned(), json!({ "kind": "SCALAR", "name": s, "description": null, "specifiedByURL": null,
                "fields": null, "inputFields": null, "interfaces": null, "enumValues": null, "possibleTypes": null, "isOneOf": null })))
            .collect();
        let mut directives = Vec::new();
        for definition in &schema.definitions {
            match definition {
                Definition::TypeDefinition(t) => {
                    let base = |name: &str, kind: &str, desc: &Option<String>| {
                        json!({ "kind": kind, "name": name, "description": description(desc), "specifiedByURL": null,
                            "fields": null, "inputFields": null, "interfaces": null, "enumValues": null, "possibleTypes": null, "isOneOf": null })
                    };
                    let (name, value) = match t {
                        TypeDefinition::Scalar(s) => {
                            (&s.name, base(&s.name, "SCALAR", &s.description))
                        }
                        TypeDefinition::Object(o) => {
                            let mut v = base(&o.name, "OBJECT", &o.description);
                            // Introspection's own entry points are not fields clients list.
                            v["fields"] = o
                                .fields
                                .iter()
                                .filter(|f| !f.name.starts_with("__"))
                                .map(|f| field(f, &kinds))
                                .collect();
                            v["interfaces"] = o
                                .implements_interfaces
                                .iter()
                                .map(|i| json!({ "kind": "INTERFACE", "name": i, "ofType": null }))
                                .collect();
                            (&o.name, v)
                        }
                        TypeDefinition::Interface(i) => {
                            let mut v = base(&i.name, "INTERFACE", &i.description);
                            v["fields"] = i.fields.iter().map(|f| field(f, &kinds)).collect();
                            v["interfaces"] = i
                                .implements_interfaces
                                .iter()
                                .map(|n| json!({ "kind": "INTERFACE", "name": n, "ofType": null }))
                                .collect();
                            v["possibleTypes"] = implementors
                                .get(&i.name)
                                .into_iter()
                                .flatten()
                                .map(|n| json!({ "kind": "OBJECT", "name": n, "ofType": null }))
                                .collect();
                            (&i.name, v)
                        }
                        TypeDefinition::Union(u) => {
                            let mut v = base(&u.name, "UNION", &u.description);
                            v["possibleTypes"] = u
                                .types
                                .iter()
                                .map(|n| json!({ "kind": "OBJECT", "name": n, "ofType": null }))
                                .collect();
                            (&u.name, v)
                        }
                        TypeDefinition::Enum(e) => {
                            let mut v = base(&e.name, "ENUM", &e.description);
                            v["enumValues"] = e.values.iter().map(enum_value).collect();
                            (&e.name, v)
                        }
                        TypeDefinition::InputObject(i) => {
                            let mut v = base(&i.name, "INPUT_OBJECT", &i.description);
                            v["isOneOf"] =
                                Value::Bool(i.directives.iter().any(|d| d.name == "oneOf"));
                            v["inputFields"] =
                                i.fields.iter().map(|f| input_value(f, &kinds)).collect();
                            (&i.name, v)
                        }
                    };
                    types.insert(name.clone(), value);
                }
                Definition::DirectiveDefinition(d) => directives.push(json!({
                    "name": d.name,
                    "description": description(&d.description),
                    "locations": d.locations.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
                    "args": d.arguments.iter().map(|a| input_value(a, &kinds)).collect::<Vec<_>>(),
                    "isRepeatable": d.repeatable,
                })),
                _ => {}
            }
        }
        let root = |name: &Option<String>| {
            name.as_ref()
                .map_or(Value::Null, |n| json!({ "kind": "OBJECT", "name": n }))
        };
        // Built-in scalars are listed where the schema uses them (String and
        // Boolean always: the introspection types do), as graphql-js lists them.
        let referenced = referenced_types(schema);
        types.retain(|name, _| {
            !BUILT_IN_SCALARS.contains(&name.as_str()) || referenced.contains(name.as_str())
        });
        // The September 2025 draft (graphql-js 16.15) lets directive
        // arguments be deprecated; the AST this is read from cannot name
        // that location, so it is added here.
        for directive in &mut directives {
            if directive["name"] == "deprecated"
                && let Some(Value::Array(locations)) = directive.get_mut("locations")
            {
                locations.push(json!("DIRECTIVE_DEFINITION"));
            }
        }
        let schema = json!({
            "description": null,
            "queryType": root(&roots[0]),
            "mutationType": root(&roots[1]),
            "subscriptionType": root(&roots[2]),
            "types": types.values().cloned().collect::<Vec<_>>(),
            "directives": directives,
        });
        Self { schema, types }
    }

    /// The `__Type` value of `name`, if the schema has it.
    pub fn type_named(&self, name: &str) -> Value {
        self.types.get(name).cloned().unwrap_or(Value::Null)
    }
}
