//! Variable coercion: the client's variables checked against the operation's
//! declared types and the API schema's input types before anything is planned
//! or fetched (GraphQL spec, "CoerceVariableValues").
//!
//! Missing variables take their declared defaults; a missing or null value for
//! a non-null type, a value of the wrong kind, an unknown enum value or input
//! field, and an `Int` outside 32 bits are refused with `BAD_USER_INPUT`. A
//! single value given for a list type becomes a one-element list, as the spec
//! prescribes. Custom scalars pass as they are: their subgraph owns them.

use std::collections::{HashMap, HashSet};

use graphql_tools::parser::schema::{Definition, Document, Type, TypeDefinition};
use hive_router_query_planner::{
    ast::{operation::VariableDefinition, value::Value as AstValue},
    state::supergraph_state::TypeNode,
};
use serde_json::{Map, Number, Value};

/// A declared input type, owned.
#[derive(Clone, Debug)]
enum InputType {
    Named(String),
    List(Box<InputType>),
    NonNull(Box<InputType>),
}

impl InputType {
    fn from_schema(t: &Type<'static, String>) -> Self {
        match t {
            Type::NamedType(n) => Self::Named(n.clone()),
            Type::ListType(inner) => Self::List(Box::new(Self::from_schema(inner))),
            Type::NonNullType(inner) => Self::NonNull(Box::new(Self::from_schema(inner))),
        }
    }

    fn from_node(t: &TypeNode) -> Self {
        match t {
            TypeNode::Named(n) => Self::Named(n.clone()),
            TypeNode::List(inner) => Self::List(Box::new(Self::from_node(inner))),
            TypeNode::NonNull(inner) => Self::NonNull(Box::new(Self::from_node(inner))),
        }
    }
}

impl std::fmt::Display for InputType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Named(n) => f.write_str(n),
            Self::List(inner) => write!(f, "[{inner}]"),
            Self::NonNull(inner) => write!(f, "{inner}!"),
        }
    }
}

struct InputField {
    name: String,
    ty: InputType,
    default: Option<Value>,
}

enum Kind {
    Enum(HashSet<String>),
    Object(Vec<InputField>),
    Scalar,
}

/// The API schema's input types.
pub struct InputTypes {
    kinds: HashMap<String, Kind>,
}

impl InputTypes {
    /// Reads the enums, input objects and scalars of `schema`.
    pub fn new(schema: &Document<'static, String>) -> Self {
        let mut kinds = HashMap::new();
        for definition in &schema.definitions {
            let Definition::TypeDefinition(t) = definition else {
                continue;
            };
            match t {
                TypeDefinition::Enum(e) => {
                    let values = e.values.iter().map(|v| v.name.clone()).collect();
                    kinds.insert(e.name.clone(), Kind::Enum(values));
                }
                TypeDefinition::InputObject(o) => {
                    let fields = o
                        .fields
                        .iter()
                        .map(|f| InputField {
                            name: f.name.clone(),
                            ty: InputType::from_schema(&f.value_type),
                            default: f.default_value.as_ref().map(schema_value_to_json),
                        })
                        .collect();
                    kinds.insert(o.name.clone(), Kind::Object(fields));
                }
                TypeDefinition::Scalar(s) => {
                    kinds.insert(s.name.clone(), Kind::Scalar);
                }
                _ => {}
            }
        }
        Self { kinds }
    }

    /// The variables `definitions` declare, coerced from `given`.
    pub fn coerce(
        &self,
        definitions: &[VariableDefinition],
        given: &Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let mut out = Map::with_capacity(definitions.len());
        for def in definitions {
            let ty = InputType::from_node(&def.variable_type);
            match given.get(&def.name) {
                None => match &def.default_value {
                    Some(default) => {
                        out.insert(def.name.clone(), ast_value_to_json(default));
                    }
                    None if matches!(ty, InputType::NonNull(_)) => {
                        return Err(format!(
                            "Variable \"${}\" of required type \"{ty}\" was not provided.",
                            def.name
                        ));
                    }
                    None => {}
                },
                Some(value) => {
                    let coerced = self.value(value, &ty).map_err(|why| {
                        format!(
                            "Variable \"${}\" got invalid value {}; {why}",
                            def.name,
                            short(value)
                        )
                    })?;
                    out.insert(def.name.clone(), coerced);
                }
            }
        }
        Ok(out)
    }

    fn value(&self, value: &Value, ty: &InputType) -> Result<Value, String> {
        match ty {
            InputType::NonNull(inner) => {
                if value.is_null() {
                    return Err(format!(
                        "expected non-nullable type \"{ty}\" not to be null."
                    ));
                }
                self.value(value, inner)
            }
            _ if value.is_null() => Ok(Value::Null),
            InputType::List(item) => match value {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        self.value(v, item)
                            .map_err(|e| format!("at index {i}: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                single => Ok(Value::Array(vec![self.value(single, item)?])),
            },
            InputType::Named(name) => self.named(value, name),
        }
    }

    fn named(&self, value: &Value, name: &str) -> Result<Value, String> {
        let wrong = || format!("{} is not a valid {name}.", short(value));
        match name {
            "Int" => match value.as_i64() {
                Some(i) if i32::try_from(i).is_ok() => Ok(value.clone()),
                Some(_) => Err(format!(
                    "Int cannot represent non 32-bit signed integer value: {value}"
                )),
                None => match value.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() <= i32::MAX as f64 => {
                        Ok(Value::Number(Number::from(f as i64)))
                    }
                    _ => Err(format!(
                        "Int cannot represent non-integer value: {}",
                        short(value)
                    )),
                },
            },
            "Float" => match value {
                Value::Number(_) => Ok(value.clone()),
                _ => Err(format!(
                    "Float cannot represent non numeric value: {}",
                    short(value)
                )),
            },
            "String" => match value {
                Value::String(_) => Ok(value.clone()),
                _ => Err(format!(
                    "String cannot represent a non string value: {}",
                    short(value)
                )),
            },
            "Boolean" => match value {
                Value::Bool(_) => Ok(value.clone()),
                _ => Err(format!(
                    "Boolean cannot represent a non boolean value: {}",
                    short(value)
                )),
            },
            "ID" => match value {
                Value::String(_) => Ok(value.clone()),
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Value::String(n.to_string())),
                _ => Err(format!("ID cannot represent value: {}", short(value))),
            },
            _ => match self.kinds.get(name) {
                Some(Kind::Enum(values)) => match value {
                    Value::String(s) if values.contains(s) => Ok(value.clone()),
                    Value::String(s) => {
                        Err(format!("Value \"{s}\" does not exist in \"{name}\" enum."))
                    }
                    _ => Err(format!(
                        "Enum \"{name}\" cannot represent non-string value: {}",
                        short(value)
                    )),
                },
                Some(Kind::Object(fields)) => {
                    let Value::Object(given) = value else {
                        return Err(format!("Expected type \"{name}\" to be an object."));
                    };
                    if let Some(unknown) =
                        given.keys().find(|k| !fields.iter().any(|f| &f.name == *k))
                    {
                        return Err(format!(
                            "Field \"{unknown}\" is not defined by type \"{name}\"."
                        ));
                    }
                    let mut out = Map::with_capacity(fields.len());
                    for field in fields {
                        match given.get(&field.name) {
                            Some(v) => {
                                let coerced = self
                                    .value(v, &field.ty)
                                    .map_err(|e| format!("at \"{}\": {e}", field.name))?;
                                out.insert(field.name.clone(), coerced);
                            }
                            None => match &field.default {
                                Some(default) => {
                                    out.insert(field.name.clone(), default.clone());
                                }
                                None if matches!(field.ty, InputType::NonNull(_)) => {
                                    return Err(format!(
                                        "Field \"{}\" of required type \"{}\" was not provided.",
                                        field.name, field.ty
                                    ));
                                }
                                None => {}
                            },
                        }
                    }
                    Ok(Value::Object(out))
                }
                // Custom scalars are their subgraph's to judge.
                Some(Kind::Scalar) => Ok(value.clone()),
                None => Err(wrong()),
            },
        }
    }
}

/// A value short enough to quote in an error.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 80 {
        let cut = (0..=80)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}…", &text[..cut])
    } else {
        text
    }
}

fn ast_value_to_json(value: &AstValue) -> Value {
    match value {
        AstValue::Variable(_) | AstValue::Null => Value::Null,
        AstValue::Int(i) => Value::Number((*i).into()),
        AstValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        AstValue::String(s) | AstValue::Enum(s) => Value::String(s.clone()),
        AstValue::Boolean(b) => Value::Bool(*b),
        AstValue::List(items) => Value::Array(items.iter().map(ast_value_to_json).collect()),
        AstValue::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), ast_value_to_json(v)))
                .collect(),
        ),
    }
}

fn schema_value_to_json(value: &graphql_tools::parser::schema::Value<'static, String>) -> Value {
    use graphql_tools::parser::schema::Value as V;
    match value {
        V::Variable(_) | V::Null => Value::Null,
        V::Int(i) => i.as_i64().map_or(Value::Null, |i| Value::Number(i.into())),
        V::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        V::String(s) | V::Enum(s) => Value::String(s.clone()),
        V::Boolean(b) => Value::Bool(*b),
        V::List(items) => Value::Array(items.iter().map(schema_value_to_json).collect()),
        V::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), schema_value_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use hive_router_query_planner::utils::parsing::safe_parse_schema;
    use serde_json::json;

    use super::*;

    const SCHEMA: &str = "type Query { a: Int }
        enum Color { RED GREEN }
        scalar Decimal
        input Line { sku: String! quantity: Int! = 1 color: Color note: String }";

    fn def(name: &str, ty: TypeNode, default: Option<AstValue>) -> VariableDefinition {
        VariableDefinition {
            name: name.into(),
            variable_type: ty,
            default_value: default,
        }
    }

    fn nn(t: TypeNode) -> TypeNode {
        TypeNode::NonNull(Box::new(t))
    }

    fn named(n: &str) -> TypeNode {
        TypeNode::Named(n.into())
    }

    fn types() -> InputTypes {
        InputTypes::new(&safe_parse_schema(SCHEMA).unwrap())
    }

    fn given(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_fill_in_and_required_ones_must_be_given() {
        let t = types();
        let defs = [
            def("n", named("Int"), Some(AstValue::Int(3))),
            def("s", nn(named("String")), None),
        ];
        let out = t.coerce(&defs, &given(json!({ "s": "x" }))).unwrap();
        assert_eq!(Value::Object(out), json!({ "n": 3, "s": "x" }));
        let err = t.coerce(&defs, &given(json!({}))).unwrap_err();
        assert!(err.contains("\"$s\" of required type \"String!\""), "{err}");
        let err = t.coerce(&defs, &given(json!({ "s": null }))).unwrap_err();
        assert!(err.contains("not to be null"), "{err}");
    }

    #[test]
    fn scalars_refuse_the_wrong_kind() {
        let t = types();
        let int = [def("v", named("Int"), None)];
        assert!(t.coerce(&int, &given(json!({ "v": "1" }))).is_err());
        assert!(t.coerce(&int, &given(json!({ "v": 1.5 }))).is_err());
        assert!(
            t.coerce(&int, &given(json!({ "v": 4_000_000_000i64 })))
                .is_err()
        );
        assert_eq!(t.coerce(&int, &given(json!({ "v": 7 }))).unwrap()["v"], 7);
        let id = [def("v", named("ID"), None)];
        assert_eq!(t.coerce(&id, &given(json!({ "v": 7 }))).unwrap()["v"], "7");
        let custom = [def("v", named("Decimal"), None)];
        assert_eq!(
            t.coerce(&custom, &given(json!({ "v": "1.50" }))).unwrap()["v"],
            "1.50"
        );
        let unknown = [def("v", named("Nope"), None)];
        assert!(t.coerce(&unknown, &given(json!({ "v": 1 }))).is_err());
    }

    #[test]
    fn input_objects_enums_and_lists() {
        let t = types();
        let defs = [def(
            "lines",
            nn(TypeNode::List(Box::new(nn(named("Line"))))),
            None,
        )];
        // A single object for a list type becomes a list of one; defaults apply inside.
        let out = t
            .coerce(
                &defs,
                &given(json!({ "lines": { "sku": "A", "color": "RED" } })),
            )
            .unwrap();
        assert_eq!(
            out["lines"],
            json!([{ "sku": "A", "quantity": 1, "color": "RED" }])
        );
        for bad in [
            json!({ "lines": [{ "sku": "A", "color": "BLUE" }] }),
            json!({ "lines": [{ "sku": "A", "extra": 1 }] }),
            json!({ "lines": [{ "quantity": 2 }] }),
            json!({ "lines": [null] }),
            json!({ "lines": ["A"] }),
        ] {
            assert!(t.coerce(&defs, &given(bad.clone())).is_err(), "{bad}");
        }
    }
}
