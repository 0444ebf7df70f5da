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

use rustc_hash::{FxHashMap, FxHashSet};

use graphql_tools::parser::schema::{Definition, Document, Type, TypeDefinition};
use hive_router_query_planner::{
    ast::{
        operation::OperationDefinition, selection_item::SelectionItem, selection_set::SelectionSet,
    },
    state::supergraph_state::OperationKind,
};
use serde_json::{Map, Value as Json};

use crate::{execution::projection::aliases::AliasPrefix, value::Value};

/// A field's declared type.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    Named {
        name: String,
        non_null: bool,
        /// An enum's (its values are checked against the API schema's):
        /// known when the schema is read, not looked up for every leaf.
        is_enum: bool,
    },
    List {
        item: Box<Shape>,
        non_null: bool,
    },
}

impl Shape {
    fn from_type(t: &Type<'static, String>) -> Self {
        match t {
            Type::NamedType(name) => Shape::Named {
                name: name.clone(),
                non_null: false,
                is_enum: false,
            },
            Type::ListType(inner) => Shape::List {
                item: Box::new(Self::from_type(inner)),
                non_null: false,
            },
            Type::NonNullType(inner) => match Self::from_type(inner) {
                Shape::Named { name, is_enum, .. } => Shape::Named {
                    name,
                    non_null: true,
                    is_enum,
                },
                Shape::List { item, .. } => Shape::List {
                    item,
                    non_null: true,
                },
            },
        }
    }

    /// Marks the enums among the types this shape names.
    fn mark_enums(&mut self, enums: &FxHashMap<String, FxHashSet<String>>) {
        match self {
            Shape::Named { name, is_enum, .. } => *is_enum = enums.contains_key(name),
            Shape::List { item, .. } => item.mark_enums(enums),
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
    /// Where client aliases live in the response tree (see [`crate::pipeline::planning::planner_input`]).
    alias_prefix: AliasPrefix,
    /// Each entity type's key fields (the top-level names of every
    /// `@join__type(key:)` of the supergraph), for the entity cache.
    entity_keys: FxHashMap<String, Vec<String>>,
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
        // Enums may be defined after the fields that use them.
        for shape in fields.values_mut().flat_map(|f| f.values_mut()) {
            shape.mark_enums(&enums);
        }
        Self {
            fields,
            possible,
            enums,
            roots,
            alias_prefix: AliasPrefix::default(),
            entity_keys: FxHashMap::default(),
        }
    }

    /// The same shapes, reading client aliases under `prefix` in the response tree.
    pub fn with_alias_prefix(mut self, prefix: AliasPrefix) -> Self {
        self.alias_prefix = prefix;
        self
    }

    /// Where client aliases live in the response tree.
    pub fn alias_prefix(&self) -> &AliasPrefix {
        &self.alias_prefix
    }

    /// The same shapes, knowing each entity type's key fields from the
    /// supergraph's `@join__type(key: "...")` directives.
    pub fn with_entity_keys(mut self, supergraph: &Document<'static, String>) -> Self {
        use graphql_tools::parser::schema::{TypeExtension, Value as V};
        for definition in &supergraph.definitions {
            let (name, directives) = match definition {
                Definition::TypeDefinition(TypeDefinition::Object(o)) => (&o.name, &o.directives),
                Definition::TypeDefinition(TypeDefinition::Interface(i)) => {
                    (&i.name, &i.directives)
                }
                Definition::TypeExtension(TypeExtension::Object(o)) => (&o.name, &o.directives),
                _ => continue,
            };
            for directive in directives.iter().filter(|d| d.name == "join__type") {
                let Some((_, V::String(key))) =
                    directive.arguments.iter().find(|(n, _)| n == "key")
                else {
                    continue;
                };
                let fields = self.entity_keys.entry(name.clone()).or_default();
                for field in top_level_fields(key) {
                    if !fields.iter().any(|f| f == field) {
                        fields.push(field.to_owned());
                    }
                }
            }
        }
        self
    }

    /// The key fields of the entity type `name`, if it has any.
    pub fn entity_keys(&self, name: &str) -> Option<&[String]> {
        self.entity_keys.get(name).map(Vec::as_slice)
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
    pub data: Json,
    pub errors: Vec<Json>,
}

/// `data` shaped by `operation`; `data` is null when a null reached it.
pub fn project(
    data: &Value,
    operation: &OperationDefinition,
    shapes: &Shapes,
    variables: &Map<String, Json>,
) -> Projected {
    let mut out = Vec::new();
    let errors = project_into(data, operation, shapes, variables, &mut out);
    Projected {
        data: serde_json::from_slice(&out).unwrap_or(Json::Null),
        errors,
    }
}

/// Writes `data` shaped by `operation` as JSON to `out` (`null` when a null
/// reached it) and returns the errors shaping found. No response tree is
/// built: values are written as the walk meets them, and a null that must
/// travel up rewinds `out` to where the nullable parent began.
pub fn project_into(
    data: &Value,
    operation: &OperationDefinition,
    shapes: &Shapes,
    variables: &Map<String, Json>,
    out: &mut Vec<u8>,
) -> Vec<Json> {
    let root = root_type(operation, shapes);
    let Value::Object(map) = data else {
        out.extend_from_slice(b"null");
        return Vec::new();
    };
    let walker = Walker {
        shapes,
        variables,
        path: RefCell::default(),
        errors: RefCell::default(),
        groups: RefCell::default(),
    };
    let start = out.len();
    let memo = Memo::default();
    if let Err(Bubble) = walker.object(map, root, &[&operation.selection_set], &memo, out) {
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
    walker.errors.into_inner()
}

/// The root type `operation` starts from.
fn root_type<'s>(operation: &OperationDefinition, shapes: &'s Shapes) -> &'s str {
    match operation.operation_kind {
        Some(OperationKind::Mutation) => &shapes.roots[1],
        Some(OperationKind::Subscription) => &shapes.roots[2],
        _ => &shapes.roots[0],
    }
}

#[derive(Clone, Copy)]
enum PathSeg<'a> {
    Key(&'a str),
    Index(usize),
}

/// The fields of one response key in an object: every field node the
/// selections give it (fragments may ask for the same key twice, with
/// different sub-selections), merged as the GraphQL spec's CollectFields does.
struct Group<'a> {
    key: &'a str,
    /// Where the value is in the response tree: `key`, or the planner's
    /// name for a client alias.
    read: std::borrow::Cow<'a, str>,
    /// What precedes the value in the object: `"key":`, written once.
    label: Box<[u8]>,
    /// `None` for `__typename`.
    shape: Option<&'a Shape>,
    selections: Vec<&'a SelectionSet>,
    /// Where in the objects the key was found last (see [`crate::value::Map::get_hinted`]).
    hint: std::cell::Cell<u32>,
    /// What the objects under the key needed last.
    memo: Memo<'a>,
}

/// What the objects under one response key needed last: their type (the
/// API schema's name for it) with its groups, and where their `__typename`
/// was. Objects under one key are nearly always of one type, so the next
/// one finds its groups by comparing a name, not by a hash look-up.
#[derive(Default)]
struct Memo<'a> {
    last: RefCell<Option<(&'a str, Groups<'a>)>>,
    typename: std::cell::Cell<u32>,
}

/// The groups of a list of selection sets on one object type. Every element
/// of a list shares them, so they are computed once per request.
type Groups<'a> = std::rc::Rc<Vec<Group<'a>>>;

/// Groups collected for one list of selection sets (by address).
type Collected<'a> = (Box<[usize]>, Groups<'a>);

/// The type an object names under an alias of `__typename`: when a client
/// asks an abstract field only for `t: __typename`, the planner sends just
/// that, and the object carries no plain `__typename` to go by.
fn aliased_typename<'m>(
    map: &'m crate::value::Map,
    selections: &[&SelectionSet],
    prefix: &AliasPrefix,
) -> Option<&'m str> {
    let find = |set: &SelectionSet| -> Option<&'m str> {
        fn walk<'m>(
            map: &'m crate::value::Map,
            set: &SelectionSet,
            prefix: &AliasPrefix,
        ) -> Option<&'m str> {
            set.items.iter().find_map(|item| match item {
                SelectionItem::Field(f) if f.name == "__typename" => {
                    let read = prefix.key(Some(f.alias.as_deref()?), &f.name);
                    map.get(&read).and_then(Value::as_str)
                }
                SelectionItem::InlineFragment(fragment) => walk(map, &fragment.selections, prefix),
                _ => None,
            })
        }
        walk(map, set, prefix)
    };
    selections.iter().find_map(|set| find(set))
}

struct Walker<'a> {
    shapes: &'a Shapes,
    variables: &'a Map<String, Json>,
    /// Where the walk is, for errors (response keys borrowed from the operation).
    path: RefCell<Vec<PathSeg<'a>>>,
    errors: RefCell<Vec<Json>>,
    /// Collected groups by (first selection set, object type), then by all
    /// the selection sets: looked up with no allocation per object. Both
    /// by address (the type's name too: its bytes are never hashed).
    groups: RefCell<FxHashMap<(usize, usize, usize), Vec<Collected<'a>>>>,
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

    fn path_json(&self) -> Json {
        Json::Array(
            self.path
                .borrow()
                .iter()
                .map(|s| match s {
                    PathSeg::Key(k) => Json::String((*k).to_owned()),
                    PathSeg::Index(i) => Json::from(*i),
                })
                .collect(),
        )
    }

    fn included(&self, skip_if: &Option<String>, include_if: &Option<String>) -> bool {
        let var = |name: &String| matches!(self.variables.get(name), Some(Json::Bool(true)));
        !skip_if.as_ref().is_some_and(var) && include_if.as_ref().is_none_or(var)
    }

    /// The response keys `selections` ask of an object of type `actual`, in order.
    fn groups(&self, selections: &[&'a SelectionSet], actual: &'a str) -> Groups<'a> {
        let address = |s: &&SelectionSet| std::ptr::from_ref(*s) as usize;
        let id = (
            selections.first().map_or(0, address),
            actual.as_ptr() as usize,
            actual.len(),
        );
        if let Some(known) = self.groups.borrow().get(&id) {
            let same = known
                .iter()
                .find(|(sets, _)| sets.iter().copied().eq(selections.iter().map(address)));
            if let Some((_, groups)) = same {
                return groups.clone();
            }
        }
        let mut groups: Vec<Group<'a>> = Vec::new();
        for set in selections {
            self.collect(set, actual, &mut groups);
        }
        let groups = std::rc::Rc::new(groups);
        let sets = selections.iter().map(address).collect();
        self.groups
            .borrow_mut()
            .entry(id)
            .or_default()
            .push((sets, groups.clone()));
        groups
    }

    fn collect(&self, set: &'a SelectionSet, actual: &'a str, groups: &mut Vec<Group<'a>>) {
        for item in &set.items {
            match item {
                SelectionItem::Field(field) => {
                    if field.omit_from_response || !self.included(&field.skip_if, &field.include_if)
                    {
                        continue;
                    }
                    let key = field.alias.as_deref().unwrap_or(&field.name);
                    let shape = if field.name == "__typename" {
                        None
                    } else {
                        match self.shapes.field(actual, &field.name) {
                            Some(shape) => Some(shape),
                            None => continue,
                        }
                    };
                    match groups.iter_mut().find(|g| g.key == key) {
                        Some(group) => group.selections.push(&field.selections),
                        None => groups.push(Group {
                            key,
                            read: self
                                .shapes
                                .alias_prefix
                                .key(field.alias.as_deref(), &field.name),
                            label: {
                                let mut label = Vec::with_capacity(key.len() + 3);
                                write_str(&mut label, key);
                                label.push(b':');
                                label.into()
                            },
                            shape,
                            selections: vec![&field.selections],
                            hint: Default::default(),
                            memo: Memo::default(),
                        }),
                    }
                }
                SelectionItem::InlineFragment(fragment) => {
                    if self.included(&fragment.skip_if, &fragment.include_if)
                        && self.shapes.applies(&fragment.type_condition, actual)
                    {
                        self.collect(&fragment.selections, actual, groups);
                    }
                }
                SelectionItem::FragmentSpread(_) => {}
            }
        }
    }

    /// Whether `selections` ask nothing of any object a field of type
    /// `declared` may hold (every field switched off by its conditions).
    fn selects_nothing(&self, selections: &[&'a SelectionSet], declared: &'a str) -> bool {
        match self.shapes.possible.get(declared) {
            Some(types) => types.iter().all(|t| self.groups(selections, t).is_empty()),
            None => self.groups(selections, declared).is_empty(),
        }
    }

    /// Writes the object; `Ok(true)` when it wrote `null` instead.
    fn object(
        &self,
        map: &'a crate::value::Map,
        declared: &'a str,
        selections: &[&'a SelectionSet],
        memo: &Memo<'a>,
        out: &mut Vec<u8>,
    ) -> Result<bool, Bubble> {
        let named = map
            .get_hinted("__typename", &memo.typename)
            .and_then(Value::as_str)
            .or_else(|| aliased_typename(map, selections, &self.shapes.alias_prefix))
            .unwrap_or(declared);
        let known = memo
            .last
            .borrow()
            .as_ref()
            .filter(|(actual, _)| *actual == named)
            .map(|(actual, groups)| (*actual, groups.clone()));
        let (actual, groups) = match known {
            Some(known) => known,
            None => {
                let Some((actual, _)) = self.shapes.fields.get_key_value(named) else {
                    // A type the API schema hides (`@inaccessible`): the object
                    // cannot be shown, and its name is not told.
                    self.error(format!(
                        "Cannot return a value of type \"{declared}\" here: its type is not part of the API"
                    ));
                    out.extend_from_slice(b"null");
                    return Ok(true);
                };
                let actual = actual.as_str();
                let groups = self.groups(selections, actual);
                *memo.last.borrow_mut() = Some((actual, groups.clone()));
                (actual, groups)
            }
        };
        out.push(b'{');
        for (i, group) in groups.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&group.label);
            let Some(shape) = group.shape else {
                write_str(out, actual);
                continue;
            };
            let raw = map
                .get_hinted(&group.read, &group.hint)
                .unwrap_or(&Value::Null);
            let start = out.len();
            self.path.borrow_mut().push(PathSeg::Key(group.key));
            let completed = self.complete(raw, shape, &group.selections, &group.memo, out);
            self.path.borrow_mut().pop();
            match completed {
                Ok(true) | Err(Bubble) if shape.non_null() => return Err(Bubble),
                Ok(_) => {}
                Err(Bubble) => {
                    out.truncate(start);
                    out.extend_from_slice(b"null");
                }
            }
        }
        out.push(b'}');
        Ok(false)
    }

    /// Writes the value; `Ok(true)` when it wrote `null`.
    fn complete(
        &self,
        raw: &'a Value,
        shape: &'a Shape,
        selections: &[&'a SelectionSet],
        memo: &Memo<'a>,
        out: &mut Vec<u8>,
    ) -> Result<bool, Bubble> {
        match (shape, raw) {
            (
                Shape::Named {
                    name,
                    non_null: true,
                    ..
                },
                Value::Null,
            ) if selections.iter().any(|s| !s.items.is_empty())
                && self.selects_nothing(selections, name) =>
            {
                // An object of which conditions left nothing to ask: some
                // subgraphs (async-graphql) send it as null, but a non-null
                // object with no fields is `{}` whatever it holds.
                out.extend_from_slice(b"{}");
                Ok(false)
            }
            (_, Value::Null) => {
                out.extend_from_slice(b"null");
                Ok(true)
            }
            (Shape::List { item, .. }, Value::Array(items)) => {
                out.push(b'[');
                for (i, element) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let start = out.len();
                    self.path.borrow_mut().push(PathSeg::Index(i));
                    let completed = self.complete(element, item, selections, memo, out);
                    self.path.borrow_mut().pop();
                    match completed {
                        Ok(true) | Err(Bubble) if item.non_null() => return Err(Bubble),
                        Ok(_) => {}
                        Err(Bubble) => {
                            out.truncate(start);
                            out.extend_from_slice(b"null");
                        }
                    }
                }
                out.push(b']');
                Ok(false)
            }
            (Shape::Named { name, .. }, Value::Object(map))
                if selections.iter().any(|s| !s.items.is_empty()) =>
            {
                self.object(map, name, selections, memo, out)
            }
            (
                Shape::Named {
                    name,
                    is_enum: true,
                    ..
                },
                leaf,
            ) => {
                let known = leaf.as_str().is_some_and(|v| {
                    self.shapes
                        .enums
                        .get(name)
                        .is_some_and(|values| values.contains(v))
                });
                if known {
                    write_value(out, leaf);
                    Ok(false)
                } else {
                    self.error(format!("Enum \"{name}\" cannot represent value: {leaf}"));
                    out.extend_from_slice(b"null");
                    Ok(true)
                }
            }
            (_, leaf) => {
                write_value(out, leaf);
                Ok(false)
            }
        }
    }
}

use crate::value::write_str;

fn write_value(out: &mut Vec<u8>, value: &Value) {
    value.write_json(out);
}

pub mod aliases;
mod visibility;
pub use visibility::shows;

/// The top-level field names of a key's field set (`"id org { id }"`: `id`, `org`).
fn top_level_fields(key: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0usize;
    key.split(|c: char| c.is_whitespace() || c == ',')
        .flat_map(|word| {
            // Braces may touch names: `org{id}`.
            let mut parts = Vec::new();
            let mut start = 0;
            for (i, c) in word.char_indices() {
                if c == '{' || c == '}' {
                    parts.push((&word[start..i], None));
                    parts.push(("", Some(c)));
                    start = i + 1;
                }
            }
            parts.push((&word[start..], None));
            parts
        })
        .filter_map(move |(name, brace)| {
            match brace {
                Some('{') => depth += 1,
                Some(_) => depth = depth.saturating_sub(1),
                None if depth == 0 && !name.is_empty() => return Some(name),
                None => {}
            }
            None
        })
}

#[cfg(test)]
mod tests;
