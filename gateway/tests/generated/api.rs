//! The API schema as the generator walks it: every type by name, with fields,
//! arguments, interface implementations and union members resolved up front.

use std::collections::BTreeMap;

use graphql_tools::parser::schema::{Definition, Document, Type, TypeDefinition};

/// A reference to a type: `Name`, `[T]` or `T!`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeRef {
    Named(String),
    List(Box<TypeRef>),
    NonNull(Box<TypeRef>),
}

impl TypeRef {
    fn from_ast(ty: &Type<'static, String>) -> Self {
        match ty {
            Type::NamedType(name) => Self::Named(name.clone()),
            Type::ListType(inner) => Self::List(Box::new(Self::from_ast(inner))),
            Type::NonNullType(inner) => Self::NonNull(Box::new(Self::from_ast(inner))),
        }
    }

    /// The named type at the bottom of the lists and non-nulls.
    pub fn named(&self) -> &str {
        match self {
            Self::Named(name) => name,
            Self::List(inner) | Self::NonNull(inner) => inner.named(),
        }
    }

    /// Whether a value is required (`T!`).
    pub fn is_non_null(&self) -> bool {
        matches!(self, Self::NonNull(_))
    }
}

impl std::fmt::Display for TypeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Named(name) => f.write_str(name),
            Self::List(inner) => write!(f, "[{inner}]"),
            Self::NonNull(inner) => write!(f, "{inner}!"),
        }
    }
}

/// An argument or an input object field.
#[derive(Clone, Debug, PartialEq)]
pub struct InputField {
    pub name: String,
    pub ty: TypeRef,
    pub has_default: bool,
}

impl InputField {
    /// Whether it must be given: non-null with no default.
    pub fn required(&self) -> bool {
        self.ty.is_non_null() && !self.has_default
    }
}

/// An output field.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputField {
    pub name: String,
    pub args: Vec<InputField>,
    pub ty: TypeRef,
}

/// A named type.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeDef {
    Scalar,
    Object(Vec<OutputField>),
    /// Fields and the object types implementing it.
    Interface(Vec<OutputField>, Vec<String>),
    Union(Vec<String>),
    Enum(Vec<String>),
    Input(Vec<InputField>),
}

/// A schema, walked once.
#[derive(Debug, PartialEq)]
pub struct Api {
    pub types: BTreeMap<String, TypeDef>,
    pub query: String,
    pub mutation: Option<String>,
}

fn input_fields(
    fields: &[graphql_tools::parser::schema::InputValue<'static, String>],
) -> Vec<InputField> {
    fields
        .iter()
        .map(|f| InputField {
            name: f.name.clone(),
            ty: TypeRef::from_ast(&f.value_type),
            has_default: f.default_value.is_some(),
        })
        .collect()
}

fn output_fields(
    fields: &[graphql_tools::parser::schema::Field<'static, String>],
) -> Vec<OutputField> {
    fields
        .iter()
        // Federation plumbing a subgraph SDL may still show.
        .filter(|f| !f.name.starts_with("_"))
        .map(|f| OutputField {
            name: f.name.clone(),
            args: input_fields(&f.arguments),
            ty: TypeRef::from_ast(&f.field_type),
        })
        .collect()
}

const BUILT_IN: [&str; 5] = ["Int", "Float", "String", "Boolean", "ID"];

impl Api {
    /// Walks `document` (an API schema: no federation directives needed).
    pub fn new(document: &Document<'static, String>) -> Self {
        let mut types: BTreeMap<String, TypeDef> = BUILT_IN
            .iter()
            .map(|n| ((*n).to_owned(), TypeDef::Scalar))
            .collect();
        let (mut query, mut mutation) = ("Query".to_owned(), None);
        let mut implementations: Vec<(String, String)> = Vec::new();
        for definition in &document.definitions {
            match definition {
                Definition::SchemaDefinition(schema) => {
                    query = schema.query.clone().unwrap_or(query);
                    mutation = schema.mutation.clone();
                }
                Definition::TypeDefinition(def) => {
                    let (name, def) = match def {
                        TypeDefinition::Scalar(s) => (&s.name, TypeDef::Scalar),
                        TypeDefinition::Object(o) => {
                            implementations.extend(
                                o.implements_interfaces
                                    .iter()
                                    .map(|i| (i.clone(), o.name.clone())),
                            );
                            (&o.name, TypeDef::Object(output_fields(&o.fields)))
                        }
                        TypeDefinition::Interface(i) => (
                            &i.name,
                            TypeDef::Interface(output_fields(&i.fields), Vec::new()),
                        ),
                        TypeDefinition::Union(u) => (&u.name, TypeDef::Union(u.types.clone())),
                        TypeDefinition::Enum(e) => (
                            &e.name,
                            TypeDef::Enum(e.values.iter().map(|v| v.name.clone()).collect()),
                        ),
                        TypeDefinition::InputObject(i) => {
                            (&i.name, TypeDef::Input(input_fields(&i.fields)))
                        }
                    };
                    if !name.starts_with("__") && !name.starts_with('_') {
                        types.insert(name.clone(), def);
                    }
                }
                _ => {}
            }
        }
        for (interface, object) in implementations {
            if let Some(TypeDef::Interface(_, objects)) = types.get_mut(&interface) {
                objects.push(object);
                objects.sort();
            }
        }
        if mutation.is_none() && types.contains_key("Mutation") {
            mutation = Some("Mutation".into());
        }
        // Sorted so that two schemas listing the same API in another order compare equal.
        for def in types.values_mut() {
            match def {
                TypeDef::Object(fields) | TypeDef::Interface(fields, _) => {
                    fields.sort_by(|a, b| a.name.cmp(&b.name))
                }
                TypeDef::Input(fields) => fields.sort_by(|a, b| a.name.cmp(&b.name)),
                TypeDef::Union(members) | TypeDef::Enum(members) => members.sort(),
                TypeDef::Scalar => {}
            }
        }
        Self {
            types,
            query,
            mutation,
        }
    }

    /// The fields of an object or interface type.
    pub fn fields(&self, ty: &str) -> &[OutputField] {
        match self.types.get(ty) {
            Some(TypeDef::Object(fields) | TypeDef::Interface(fields, _)) => fields,
            _ => &[],
        }
    }

    /// Whether `ty` has a selection set (object, interface or union).
    pub fn is_composite(&self, ty: &str) -> bool {
        matches!(
            self.types.get(ty),
            Some(TypeDef::Object(_) | TypeDef::Interface(..) | TypeDef::Union(_))
        )
    }
}
