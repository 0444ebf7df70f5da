//! Valid documents, generated from an API schema by a seeded RNG: fields
//! with arguments (literals, variables, variables inside literals), aliases
//! (some named like sibling fields), inline fragments on abstract types,
//! named fragments spread more than once, `@include`/`@skip` with literals
//! and variables, `__typename`, and nested selections to a bounded depth.
//!
//! Validity is kept by construction: every response name in a merged
//! selection set either is new or repeats exactly the same leaf field,
//! anything else gets a fresh alias (so overlapping fields always merge);
//! a variable's type is exactly its location's type; every fragment is
//! spread where its type condition is the parent type.

use std::collections::HashMap;

use rand::{Rng, rngs::StdRng, seq::SliceRandom};
use serde_json::{Map, Value, json};

use super::api::{Api, InputField, TypeDef, TypeRef};
use super::document::{
    Arg, Directive, Document, Field, Fragment, Operation, Selection, Val, Variable,
};

/// A generated request: the document, the operation to run and its variables.
#[derive(Clone, Debug)]
pub struct Case {
    pub document: Document,
    pub operation_name: Option<String>,
    pub variables: Map<String, Value>,
}

impl Case {
    /// The document as text.
    pub fn query(&self) -> String {
        self.document.render()
    }
}

/// How far a generated document may go: kept well inside the gateway's
/// default limits (depth 15, 30 aliases, 20 root fields).
const MAX_DEPTH: usize = 8;
const MAX_ALIASES: usize = 20;
const MAX_FIELDS: usize = 60;
const MAX_ROOT_FIELDS: usize = 15;

/// What one response name means in a merged selection set.
#[derive(Clone, PartialEq)]
struct Meaning {
    field: String,
    args: String,
    ty: String,
    leaf: bool,
}

type Scope = HashMap<String, Meaning>;

struct Made {
    fragment: Fragment,
    scope: Scope,
    /// The level its fields start at: it may be spread at that level or deeper.
    depth: usize,
}

/// Builds one document.
struct Builder<'a> {
    api: &'a Api,
    vocabulary: &'a [&'a str],
    rng: &'a mut StdRng,
    variables: Vec<Variable>,
    values: Map<String, Value>,
    fragments: Vec<Made>,
    /// Fragments before this index belong to an earlier operation.
    own_fragments: usize,
    aliases: usize,
    fields: usize,
    /// Fields at the root, counted as the gateway does (fragments inlined).
    root_fields: usize,
    names: usize,
    max_depth: usize,
}

/// Generates valid cases for `api`, with string arguments drawn from `vocabulary`.
pub fn valid(api: &Api, vocabulary: &[&str], rng: &mut StdRng, with_mutations: bool) -> Case {
    let max_depth = rng.gen_range(2..=MAX_DEPTH);
    let mut b = Builder {
        api,
        vocabulary,
        rng,
        variables: Vec::new(),
        values: Map::new(),
        fragments: Vec::new(),
        own_fragments: 0,
        aliases: 0,
        fields: 0,
        root_fields: 0,
        names: 0,
        max_depth,
    };
    let count = if b.rng.gen_bool(0.15) { 2 } else { 1 };
    let chosen = b.rng.gen_range(0..count);
    let mut document = Document::default();
    let mut variables = Map::new();
    for i in 0..count {
        let kind = match &api.mutation {
            Some(_) if with_mutations && b.rng.gen_bool(0.3) => "mutation",
            _ => "query",
        };
        let root = if kind == "mutation" {
            api.mutation.clone().unwrap()
        } else {
            api.query.clone()
        };
        b.own_fragments = b.fragments.len();
        b.root_fields = 0;
        let selection = b.selection(&root, 1, &mut Scope::new());
        let name = (count > 1 || b.rng.gen_bool(0.3)).then(|| format!("Op{i}"));
        let values = std::mem::take(&mut b.values);
        if i == chosen {
            variables = values;
        }
        document.operations.push(Operation {
            kind,
            name,
            variables: std::mem::take(&mut b.variables),
            selection,
        });
    }
    let operation_name = if count > 1 {
        document.operations[chosen].name.clone()
    } else {
        None
    };
    document.fragments = b.fragments.into_iter().map(|m| m.fragment).collect();
    Case {
        document,
        operation_name,
        variables,
    }
}

impl Builder<'_> {
    fn fresh(&mut self, prefix: &str) -> String {
        self.names += 1;
        format!("{prefix}{}", self.names)
    }

    fn typename(&mut self, scope: &mut Scope) -> Selection {
        let meaning = Meaning {
            field: "__typename".into(),
            args: String::new(),
            ty: "String!".into(),
            leaf: true,
        };
        let alias = (self.aliases < MAX_ALIASES && self.rng.gen_bool(0.1)).then(|| {
            self.aliases += 1;
            self.fresh("t")
        });
        scope.insert(
            alias.clone().unwrap_or_else(|| "__typename".into()),
            meaning,
        );
        Selection::Field(Field {
            alias,
            name: "__typename".into(),
            args: Vec::new(),
            directives: Vec::new(),
            selection: Vec::new(),
        })
    }

    fn selection(&mut self, ty: &str, depth: usize, scope: &mut Scope) -> Vec<Selection> {
        let n = self.rng.gen_range(1..=4);
        let mut items: Vec<Selection> =
            (0..n).filter_map(|_| self.item(ty, depth, scope)).collect();
        if items.is_empty() {
            items.push(self.typename(scope));
        }
        items
    }

    fn item(&mut self, ty: &str, depth: usize, scope: &mut Scope) -> Option<Selection> {
        if depth == 1 {
            if self.root_fields >= MAX_ROOT_FIELDS {
                return None;
            }
            // A spread or fragment may add several; counted by the item it adds.
            self.root_fields += 1;
        }
        if self.fields >= MAX_FIELDS {
            return Some(self.typename(scope));
        }
        let roll: f64 = self.rng.r#gen();
        match self.api.types.get(ty)? {
            TypeDef::Union(members) => {
                if roll < 0.8 {
                    let on = members.choose(self.rng)?.clone();
                    Some(self.inline(Some(on.clone()), &on, depth, scope))
                } else {
                    Some(self.typename(scope))
                }
            }
            TypeDef::Interface(_, objects) => {
                if roll < 0.55 {
                    self.field(ty, depth, scope)
                } else if roll < 0.85 {
                    let on = objects.choose(self.rng)?.clone();
                    Some(self.inline(Some(on.clone()), &on, depth, scope))
                } else if roll < 0.92 {
                    Some(self.inline(None, ty, depth, scope))
                } else {
                    Some(self.typename(scope))
                }
            }
            TypeDef::Object(_) => {
                if roll < 0.72 {
                    self.field(ty, depth, scope)
                } else if roll < 0.78 {
                    Some(self.typename(scope))
                } else if roll < 0.86 {
                    let on = self.rng.gen_bool(0.5).then(|| ty.to_owned());
                    Some(self.inline(on, ty, depth, scope))
                } else if roll < 0.90 {
                    // An interface the object implements, as a type condition.
                    let interfaces: Vec<String> = self
                        .api
                        .types
                        .iter()
                        .filter(|(_, d)| matches!(d, TypeDef::Interface(_, o) if o.iter().any(|o| o == ty)))
                        .map(|(n, _)| n.clone())
                        .collect();
                    let on = interfaces
                        .choose(self.rng)
                        .cloned()
                        .unwrap_or_else(|| ty.to_owned());
                    Some(self.inline(Some(on.clone()), &on, depth, scope))
                } else {
                    self.spread(ty, depth, scope)
                }
            }
            _ => None,
        }
    }

    /// An inline fragment (`on` its type condition, if any) selecting from `ty`.
    fn inline(
        &mut self,
        on: Option<String>,
        ty: &str,
        depth: usize,
        scope: &mut Scope,
    ) -> Selection {
        let directives = self.directives();
        let selection = self.selection(ty, depth, scope);
        Selection::Inline {
            on,
            directives,
            selection,
        }
    }

    fn spread(&mut self, ty: &str, depth: usize, scope: &mut Scope) -> Option<Selection> {
        let reusable: Vec<usize> = (self.own_fragments..self.fragments.len())
            .filter(|&i| {
                self.fragments[i].fragment.on == ty && self.fragments[i].depth <= depth && depth > 1
            })
            .filter(|&i| compatible(&self.fragments[i].scope, scope))
            .collect();
        let index = match reusable.choose(self.rng) {
            Some(&i) if self.rng.gen_bool(0.6) => i,
            _ => {
                // Generated against the names already here, so it merges with
                // them; its scope keeps them too, which only makes reuse stricter.
                let mut own = scope.clone();
                let selection = self.selection(ty, depth, &mut own);
                let name = self.fresh("F");
                self.fragments.push(Made {
                    fragment: Fragment {
                        name,
                        on: ty.to_owned(),
                        selection,
                    },
                    scope: own,
                    depth,
                });
                self.fragments.len() - 1
            }
        };
        scope.extend(self.fragments[index].scope.clone());
        let directives = self.directives();
        Some(Selection::Spread {
            name: self.fragments[index].fragment.name.clone(),
            directives,
        })
    }

    fn field(&mut self, ty: &str, depth: usize, scope: &mut Scope) -> Option<Selection> {
        let def = self.api.fields(ty).choose(self.rng)?.clone();
        let composite = self.api.is_composite(def.ty.named());
        if composite && depth >= self.max_depth {
            return None;
        }
        self.fields += 1;
        // Variables the arguments declare are taken back if the field is dropped.
        let declared = self.variables.len();
        let mut args = Vec::new();
        for a in &def.args {
            if a.required() || self.rng.gen_bool(0.4) {
                let value = self.argument(a);
                args.push(Arg {
                    name: a.name.clone(),
                    ty: a.ty.clone(),
                    required: a.required(),
                    value,
                });
            }
        }
        let printed_args = Document::args_text(&args);
        let meaning = Meaning {
            field: def.name.clone(),
            args: printed_args,
            ty: def.ty.to_string(),
            leaf: !composite,
        };
        let mut alias = None;
        if self.rng.gen_bool(0.12) && self.aliases < MAX_ALIASES {
            // Sometimes named like a sibling field, to catch projection by name.
            let sibling = self.api.fields(ty).choose(self.rng).map(|f| f.name.clone());
            alias = Some(match sibling {
                Some(name) if self.rng.gen_bool(0.5) => name,
                _ => self.fresh("a"),
            });
        }
        let mut response = alias.clone().unwrap_or_else(|| def.name.clone());
        match scope.get(&response) {
            Some(existing) if *existing == meaning && meaning.leaf => {}
            Some(_) => {
                if self.aliases >= MAX_ALIASES {
                    for dropped in self.variables.split_off(declared) {
                        self.values.remove(&dropped.name);
                    }
                    return None;
                }
                response = self.fresh("a");
                alias = Some(response.clone());
            }
            None => {}
        }
        if alias.is_some() {
            self.aliases += 1;
        }
        scope.insert(response, meaning);
        let directives = self.directives();
        let selection = if composite {
            self.selection(def.ty.named(), depth + 1, &mut Scope::new())
        } else {
            Vec::new()
        };
        Some(Selection::Field(Field {
            alias,
            name: def.name,
            args,
            directives,
            selection,
        }))
    }

    /// `@include`/`@skip` on one item in seven, with a literal or a variable.
    fn directives(&mut self) -> Vec<Directive> {
        if !self.rng.gen_bool(0.15) {
            return Vec::new();
        }
        let name = if self.rng.gen_bool(0.5) {
            "include"
        } else {
            "skip"
        };
        let condition = if self.rng.gen_bool(0.5) {
            Val::Lit(self.rng.gen_bool(0.5).to_string())
        } else if self.rng.gen_bool(0.8) {
            Val::Var(self.variable(&TypeRef::NonNull(Box::new(TypeRef::Named(
                "Boolean".into(),
            )))))
        } else {
            // A nullable variable with a default, allowed where Boolean! is expected.
            let name = self.fresh("v");
            let default = self.rng.gen_bool(0.5);
            self.variables.push(Variable {
                name: name.clone(),
                ty: "Boolean".into(),
                default: Some((default.to_string(), json!(default))),
            });
            if self.rng.gen_bool(0.5) {
                self.values
                    .insert(name.clone(), json!(self.rng.gen_bool(0.5)));
            }
            Val::Var(name)
        };
        vec![Directive { name, condition }]
    }

    fn argument(&mut self, arg: &InputField) -> Val {
        if self.rng.gen_bool(0.25) {
            Val::Var(self.variable(&arg.ty))
        } else {
            Val::Lit(self.literal(&arg.ty, 0))
        }
    }

    /// Declares a variable of exactly `ty` and picks its value.
    fn variable(&mut self, ty: &TypeRef) -> String {
        let name = self.fresh("v");
        let default = self.rng.gen_bool(0.2).then(|| {
            let value = self.value(ty, 0);
            (self.printed(&value, ty), value)
        });
        self.variables.push(Variable {
            name: name.clone(),
            ty: ty.to_string(),
            default: default.clone(),
        });
        let roll: f64 = self.rng.r#gen();
        let optional = default.is_some() || !ty.is_non_null();
        if optional && roll < 0.15 {
            // Omitted: the default, or nothing, applies.
        } else if !ty.is_non_null() && roll < 0.25 {
            self.values.insert(name.clone(), Value::Null);
        } else {
            let value = self.value(ty, 0);
            self.values.insert(name.clone(), value);
        }
        name
    }

    /// A literal of `ty`, sometimes with variables inside.
    fn literal(&mut self, ty: &TypeRef, nesting: usize) -> String {
        match ty {
            TypeRef::NonNull(inner) => self.literal(inner, nesting),
            TypeRef::List(inner) => {
                if self.rng.gen_bool(0.2) {
                    // A single value where a list is expected: coerced to a list of one.
                    return self.literal(inner, nesting + 1);
                }
                let n = self.rng.gen_range(0..=3);
                let items: Vec<String> = (0..n)
                    .map(|_| self.literal_or_variable(inner, nesting + 1))
                    .collect();
                format!("[{}]", items.join(", "))
            }
            TypeRef::Named(name) => match self.api.types.get(name) {
                Some(TypeDef::Input(fields)) => {
                    let fields = fields.clone();
                    let mut items = Vec::new();
                    for f in &fields {
                        if f.required() || (nesting < 3 && self.rng.gen_bool(0.5)) {
                            items.push(format!(
                                "{}: {}",
                                f.name,
                                self.literal_or_variable(&f.ty, nesting + 1)
                            ));
                        }
                    }
                    format!("{{{}}}", items.join(", "))
                }
                _ => {
                    let value = self.value(ty, nesting);
                    self.printed(&value, ty)
                }
            },
        }
    }

    fn literal_or_variable(&mut self, ty: &TypeRef, nesting: usize) -> String {
        if self.rng.gen_bool(0.15) {
            format!("${}", self.variable(ty))
        } else {
            self.literal(ty, nesting)
        }
    }

    /// A JSON value valid for `ty` (a variable's value).
    fn value(&mut self, ty: &TypeRef, nesting: usize) -> Value {
        match ty {
            TypeRef::NonNull(inner) => self.value(inner, nesting),
            TypeRef::List(inner) => {
                if self.rng.gen_bool(0.1) {
                    return self.value(inner, nesting + 1);
                }
                let n = self.rng.gen_range(0..=3);
                Value::Array((0..n).map(|_| self.value(inner, nesting + 1)).collect())
            }
            TypeRef::Named(name) => match (name.as_str(), self.api.types.get(name)) {
                ("Int", _) => json!([-1, 0, 1, 2, 3, 5, 10, 100].choose(self.rng)),
                ("Float", _) => json!([0.5, 2.0, -1.25, 3.0].choose(self.rng)),
                ("Boolean", _) => json!(self.rng.gen_bool(0.5)),
                ("ID", _) if self.rng.gen_bool(0.1) => json!(self.rng.gen_range(0..5)),
                (_, Some(TypeDef::Enum(values))) => json!(values.choose(self.rng)),
                (_, Some(TypeDef::Input(fields))) => {
                    let fields = fields.clone();
                    let mut object = Map::new();
                    for f in &fields {
                        if f.required() || (nesting < 3 && self.rng.gen_bool(0.5)) {
                            let v = self.value(&f.ty, nesting + 1);
                            object.insert(f.name.clone(), v);
                        }
                    }
                    Value::Object(object)
                }
                _ => json!(self.vocabulary.choose(self.rng).copied().unwrap_or("x")),
            },
        }
    }

    /// `value` written as a GraphQL literal of `ty`.
    fn printed(&self, value: &Value, ty: &TypeRef) -> String {
        let named = ty.named();
        let is_enum = matches!(self.api.types.get(named), Some(TypeDef::Enum(_)));
        match value {
            Value::String(s) if is_enum => s.clone(),
            Value::Array(items) => {
                let inner = match ty {
                    TypeRef::NonNull(t) => match &**t {
                        TypeRef::List(i) => (**i).clone(),
                        other => other.clone(),
                    },
                    TypeRef::List(i) => (**i).clone(),
                    other => other.clone(),
                };
                let items: Vec<String> = items.iter().map(|v| self.printed(v, &inner)).collect();
                format!("[{}]", items.join(", "))
            }
            Value::Object(map) => {
                let fields = match self.api.types.get(named) {
                    Some(TypeDef::Input(fields)) => fields.clone(),
                    _ => Vec::new(),
                };
                let items: Vec<String> = map
                    .iter()
                    .map(|(k, v)| {
                        let ty = fields.iter().find(|f| &f.name == k).map(|f| f.ty.clone());
                        format!(
                            "{k}: {}",
                            self.printed(v, &ty.unwrap_or(TypeRef::Named(String::new())))
                        )
                    })
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            other => other.to_string(),
        }
    }
}

/// Whether a fragment's response names merge with those already in `scope`.
fn compatible(fragment: &Scope, scope: &Scope) -> bool {
    fragment
        .iter()
        .all(|(name, meaning)| scope.get(name).is_none_or(|m| m == meaning && m.leaf))
}
