//! A generated GraphQL document: a small AST the generator builds, the
//! mutator damages, and [`Document::render`] prints.

use std::fmt::Write;

use super::api::TypeRef;

/// An argument value: a printed literal or a variable.
#[derive(Clone, Debug)]
pub enum Val {
    Lit(String),
    Var(String),
}

impl Val {
    fn render(&self, out: &mut String) {
        match self {
            Self::Lit(text) => out.push_str(text),
            Self::Var(name) => {
                out.push('$');
                out.push_str(name);
            }
        }
    }
}

/// An argument, with the type it was generated for.
#[derive(Clone, Debug)]
pub struct Arg {
    pub name: String,
    pub ty: TypeRef,
    pub required: bool,
    pub value: Val,
}

/// `@include(if: …)` or `@skip(if: …)`.
#[derive(Clone, Debug)]
pub struct Directive {
    pub name: &'static str,
    pub condition: Val,
}

/// A field with its sub-selection (empty for leaves).
#[derive(Clone, Debug)]
pub struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub args: Vec<Arg>,
    pub directives: Vec<Directive>,
    pub selection: Vec<Selection>,
}

/// One item of a selection set.
#[derive(Clone, Debug)]
pub enum Selection {
    Field(Field),
    Inline {
        on: Option<String>,
        directives: Vec<Directive>,
        selection: Vec<Selection>,
    },
    Spread {
        name: String,
        directives: Vec<Directive>,
    },
}

/// `$name: Type = default`.
#[derive(Clone, Debug)]
pub struct Variable {
    pub name: String,
    pub ty: String,
    /// The default as written, and as JSON.
    pub default: Option<(String, serde_json::Value)>,
}

/// An operation definition.
#[derive(Clone, Debug)]
pub struct Operation {
    pub kind: &'static str,
    pub name: Option<String>,
    pub variables: Vec<Variable>,
    pub selection: Vec<Selection>,
}

/// A named fragment definition.
#[derive(Clone, Debug)]
pub struct Fragment {
    pub name: String,
    pub on: String,
    pub selection: Vec<Selection>,
}

/// A whole document.
#[derive(Clone, Debug, Default)]
pub struct Document {
    pub operations: Vec<Operation>,
    pub fragments: Vec<Fragment>,
}

fn directives(list: &[Directive], out: &mut String) {
    for d in list {
        let _ = write!(out, " @{}(if: ", d.name);
        d.condition.render(out);
        out.push(')');
    }
}

fn selection_set(items: &[Selection], out: &mut String) {
    out.push_str(" {");
    for item in items {
        out.push(' ');
        match item {
            Selection::Field(f) => {
                if let Some(alias) = &f.alias {
                    let _ = write!(out, "{alias}: ");
                }
                out.push_str(&f.name);
                out.push_str(&Document::args_text(&f.args));
                directives(&f.directives, out);
                if !f.selection.is_empty() {
                    selection_set(&f.selection, out);
                }
            }
            Selection::Inline {
                on,
                directives: list,
                selection,
            } => {
                out.push_str("...");
                if let Some(on) = on {
                    let _ = write!(out, " on {on}");
                }
                directives(list, out);
                selection_set(selection, out);
            }
            Selection::Spread {
                name,
                directives: list,
            } => {
                let _ = write!(out, "...{name}");
                directives(list, out);
            }
        }
    }
    out.push_str(" }");
}

impl Document {
    /// `(name: value, …)`, or nothing for no arguments.
    pub fn args_text(args: &[Arg]) -> String {
        let mut out = String::new();
        if !args.is_empty() {
            out.push('(');
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{}: ", arg.name);
                arg.value.render(&mut out);
            }
            out.push(')');
        }
        out
    }

    /// The document as GraphQL text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for op in &self.operations {
            let shorthand = op.kind == "query" && op.name.is_none() && op.variables.is_empty();
            if !shorthand {
                out.push_str(op.kind);
                if let Some(name) = &op.name {
                    let _ = write!(out, " {name}");
                }
                if !op.variables.is_empty() {
                    out.push('(');
                    for (i, v) in op.variables.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        let _ = write!(out, "${}: {}", v.name, v.ty);
                        if let Some((default, _)) = &v.default {
                            let _ = write!(out, " = {default}");
                        }
                    }
                    out.push(')');
                }
            }
            selection_set(&op.selection, &mut out);
            out.push('\n');
        }
        for f in &self.fragments {
            let _ = write!(out, "fragment {} on {}", f.name, f.on);
            selection_set(&f.selection, &mut out);
            out.push('\n');
        }
        out
    }

    /// Calls `visit` on every selection set, operations then fragments, each
    /// before the sets nested in it.
    pub fn visit_sets(&mut self, visit: &mut dyn FnMut(&mut Vec<Selection>)) {
        fn walk(items: &mut Vec<Selection>, visit: &mut dyn FnMut(&mut Vec<Selection>)) {
            visit(items);
            for item in items.iter_mut() {
                match item {
                    Selection::Field(f) if !f.selection.is_empty() => walk(&mut f.selection, visit),
                    Selection::Inline { selection, .. } => walk(selection, visit),
                    _ => {}
                }
            }
        }
        for op in &mut self.operations {
            walk(&mut op.selection, visit);
        }
        for f in &mut self.fragments {
            walk(&mut f.selection, visit);
        }
    }

    /// Calls `visit` on every field, in document order.
    pub fn visit_fields(&mut self, visit: &mut dyn FnMut(&mut Field)) {
        self.visit_sets(&mut |items| {
            for item in items.iter_mut() {
                if let Selection::Field(f) = item {
                    visit(f);
                }
            }
        });
    }
}
