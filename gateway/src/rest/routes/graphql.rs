//! The GraphQL side of a route file's check: the API schema's types, a
//! manifest document's operation, and the type of what a pick reaches.

use std::collections::HashMap;

use graphql_tools::parser::{query as q, schema as s};

use super::*;

/// The API schema's types by name, and its root types.
pub(super) struct Schema<'a> {
    pub(super) types: HashMap<&'a str, &'a s::TypeDefinition<'static, String>>,
    pub(super) query: String,
    pub(super) mutation: String,
}

impl<'a> Schema<'a> {
    pub(super) fn new(doc: &'a s::Document<'static, String>) -> Self {
        let mut schema = Self {
            types: HashMap::new(),
            query: "Query".into(),
            mutation: "Mutation".into(),
        };
        for def in &doc.definitions {
            match def {
                s::Definition::TypeDefinition(t) => {
                    schema.types.insert(type_name(t), t);
                }
                s::Definition::SchemaDefinition(d) => {
                    if let Some(q) = &d.query {
                        schema.query = q.clone();
                    }
                    if let Some(m) = &d.mutation {
                        schema.mutation = m.clone();
                    }
                }
                _ => {}
            }
        }
        schema
    }

    /// The output field `name` of type `on`.
    pub(super) fn field(&self, on: &str, name: &str) -> Option<&'a s::Field<'static, String>> {
        match self.types.get(on)? {
            s::TypeDefinition::Object(o) => o.fields.iter().find(|f| f.name == name),
            s::TypeDefinition::Interface(i) => i.fields.iter().find(|f| f.name == name),
            _ => None,
        }
    }

    /// An input type as REST inputs are checked against it.
    pub(super) fn input_ty(&self, ty: &q::Type<'static, String>, depth: usize) -> Ty {
        match ty {
            q::Type::NonNullType(inner) => Ty {
                nullable: false,
                ..self.input_ty(inner, depth)
            },
            q::Type::ListType(inner) => Ty {
                kind: Kind::List(Box::new(self.input_ty(inner, depth + 1))),
                nullable: true,
            },
            q::Type::NamedType(name) => Ty {
                kind: self.named_kind(name, depth),
                nullable: true,
            },
        }
    }

    pub(super) fn named_kind(&self, name: &str, depth: usize) -> Kind {
        if depth > 8 {
            return Kind::Any;
        }
        match name {
            "Int" => return Kind::Int,
            "Float" => return Kind::Float,
            "String" => return Kind::String,
            "Boolean" => return Kind::Boolean,
            "ID" => return Kind::Id,
            _ => {}
        }
        match self.types.get(name) {
            Some(s::TypeDefinition::Enum(e)) => Kind::Enum(
                name.to_owned(),
                e.values.iter().map(|v| v.name.clone()).collect(),
            ),
            Some(s::TypeDefinition::InputObject(o)) => Kind::Object(
                name.to_owned(),
                o.fields
                    .iter()
                    .map(|f| {
                        let mut ty = self.input_ty(&f.value_type, depth + 1);
                        // A field with a default may be left out.
                        ty.nullable |= f.default_value.is_some();
                        (f.name.clone(), ty)
                    })
                    .collect(),
            ),
            _ => Kind::Scalar(name.to_owned()),
        }
    }
}

pub(super) fn type_name<'a>(t: &'a s::TypeDefinition<'static, String>) -> &'a str {
    match t {
        s::TypeDefinition::Scalar(t) => &t.name,
        s::TypeDefinition::Object(t) => &t.name,
        s::TypeDefinition::Interface(t) => &t.name,
        s::TypeDefinition::Union(t) => &t.name,
        s::TypeDefinition::Enum(t) => &t.name,
        s::TypeDefinition::InputObject(t) => &t.name,
    }
}

/// The operation of a manifest document, and its definitions (fragments).
pub(super) struct Operation {
    doc: q::Document<'static, String>,
    index: usize,
}

impl Operation {
    pub(super) fn parse(body: &str) -> Result<Self, String> {
        let doc = q::parse_query::<String>(body)
            .map_err(|e| format!("the document does not parse: {e}"))?
            .into_static();
        let ops: Vec<usize> = doc
            .definitions
            .iter()
            .enumerate()
            .filter(|(_, d)| matches!(d, q::Definition::Operation(_)))
            .map(|(i, _)| i)
            .collect();
        match ops.as_slice() {
            [index] => Ok(Self { index: *index, doc }),
            _ => Err("a route's document holds exactly one operation".into()),
        }
    }

    pub(super) fn op(&self) -> &q::OperationDefinition<'static, String> {
        match &self.doc.definitions[self.index] {
            q::Definition::Operation(op) => op,
            _ => unreachable!("index of an operation"),
        }
    }

    pub(super) fn variables(&self) -> &[q::VariableDefinition<'static, String>] {
        match self.op() {
            q::OperationDefinition::Query(o) => &o.variable_definitions,
            q::OperationDefinition::Mutation(o) => &o.variable_definitions,
            q::OperationDefinition::Subscription(o) => &o.variable_definitions,
            q::OperationDefinition::SelectionSet(_) => &[],
        }
    }

    /// (root type, selection set), or why a route cannot run it.
    pub(super) fn root(
        &self,
        schema: &Schema<'_>,
    ) -> Result<(String, &q::SelectionSet<'static, String>), String> {
        match self.op() {
            q::OperationDefinition::Query(o) => Ok((schema.query.clone(), &o.selection_set)),
            q::OperationDefinition::SelectionSet(set) => Ok((schema.query.clone(), set)),
            q::OperationDefinition::Mutation(o) => Ok((schema.mutation.clone(), &o.selection_set)),
            q::OperationDefinition::Subscription(_) => {
                Err("a subscription cannot be a REST route's document".into())
            }
        }
    }

    /// The fields `set` selects on type `on`, by response key, fragments
    /// included: (field name, selection sets).
    pub(super) fn fields<'s>(
        &'s self,
        set: &'s q::SelectionSet<'static, String>,
        out: &mut Vec<(String, String, &'s q::SelectionSet<'static, String>)>,
        depth: usize,
    ) {
        if depth > 32 {
            return;
        }
        for selection in &set.items {
            match selection {
                q::Selection::Field(f) => out.push((
                    f.alias.clone().unwrap_or_else(|| f.name.clone()),
                    f.name.clone(),
                    &f.selection_set,
                )),
                q::Selection::InlineFragment(i) => self.fields(&i.selection_set, out, depth + 1),
                q::Selection::FragmentSpread(spread) => {
                    for def in &self.doc.definitions {
                        if let q::Definition::Fragment(frag) = def
                            && frag.name == spread.fragment_name
                        {
                            self.fields(&frag.selection_set, out, depth + 1);
                        }
                    }
                }
            }
        }
    }

    /// The type of the field at `path` (response keys) of the answer.
    pub(super) fn type_at(
        &self,
        schema: &Schema<'_>,
        path: &[String],
    ) -> Result<s::Type<'static, String>, String> {
        let (root, set) = self.root(schema)?;
        self.type_in(schema, &root, set, path)
    }

    pub(super) fn type_in(
        &self,
        schema: &Schema<'_>,
        on: &str,
        set: &q::SelectionSet<'static, String>,
        path: &[String],
    ) -> Result<s::Type<'static, String>, String> {
        let (first, rest) = path.split_first().ok_or("an empty path")?;
        let mut fields = Vec::new();
        self.fields(set, &mut fields, 0);
        let Some((_, name, sub)) = fields.iter().find(|(key, _, _)| key == first) else {
            let keys: Vec<&str> = fields.iter().map(|(k, _, _)| k.as_str()).collect();
            return Err(format!(
                "the document selects no `{first}` on {on} (it selects {})",
                keys.join(", ")
            ));
        };
        let field = schema
            .field(on, name)
            .ok_or_else(|| format!("{on} has no field {name}"))?;
        if rest.is_empty() {
            return Ok(field.field_type.clone());
        }
        if is_list(&field.field_type) {
            return Err(format!(
                "`{first}` is a list: pick it whole, or turn it into a map"
            ));
        }
        self.type_in(schema, named(&field.field_type), sub, rest)
    }
}

pub(super) fn named<'t>(ty: &'t s::Type<'static, String>) -> &'t str {
    match ty {
        s::Type::NamedType(n) => n,
        s::Type::ListType(inner) | s::Type::NonNullType(inner) => named(inner),
    }
}

pub(super) fn is_list(ty: &s::Type<'static, String>) -> bool {
    match ty {
        s::Type::NonNullType(inner) => is_list(inner),
        s::Type::ListType(_) => true,
        s::Type::NamedType(_) => false,
    }
}

/// The type of `inner` (a path) inside one element of the list at `list`.
pub(super) fn element_type(
    operation: &Operation,
    schema: &Schema<'_>,
    list: &[String],
    inner: &[String],
) -> Result<s::Type<'static, String>, String> {
    if inner.iter().any(String::is_empty) {
        return Err("is not a field path".into());
    }
    // The list's selection set, found as a pick would, then the inner path in it.
    let (root, set) = operation.root(schema)?;
    let mut on = root;
    let mut set = set;
    for (i, key) in list.iter().enumerate() {
        let mut fields = Vec::new();
        operation.fields(set, &mut fields, 0);
        let (_, name, sub) = fields
            .into_iter()
            .find(|(k, _, _)| k == key)
            .ok_or_else(|| format!("no `{key}`"))?;
        let field = schema
            .field(&on, &name)
            .ok_or_else(|| format!("no field {name}"))?;
        on = named(&field.field_type).to_owned();
        set = sub;
        if i + 1 == list.len() {
            break;
        }
    }
    let ty = operation.type_in(schema, &on, set, inner)?;
    if is_list(&ty) {
        return Err("is a list".into());
    }
    Ok(ty)
}
