//! Invalid requests, made by damaging valid ones: each kind names the
//! refusal it must get. Token noise may leave a document valid, so its
//! outcome is asked of the reference instead.

use rand::{Rng, rngs::StdRng, seq::SliceRandom};
use serde_json::{Value, json};

use super::api::{Api, TypeDef, TypeRef};
use super::document::{Arg, Directive, Field, Fragment, Selection, Val, Variable};
use super::generator::{self, Case};

/// What an invalid request must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// This `extensions.code`.
    Code(&'static str),
    /// Some refusal (4xx, a code other than INTERNAL_SERVER_ERROR): a limit
    /// may well catch it before the stage that would.
    Refused,
    /// Whatever the reference makes of it: refused if it refuses, the
    /// reference's data if it runs it.
    Oracle,
}

/// A damaged request.
#[derive(Clone, Debug)]
pub struct Invalid {
    pub kind: &'static str,
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: serde_json::Map<String, Value>,
    pub expect: Expect,
}

const PARSE: Expect = Expect::Code("GRAPHQL_PARSE_FAILED");
const VALIDATION: Expect = Expect::Code("GRAPHQL_VALIDATION_FAILED");
const INPUT: Expect = Expect::Code("BAD_USER_INPUT");

fn field(name: &str, selection: Vec<Selection>) -> Selection {
    Selection::Field(Field {
        alias: None,
        name: name.into(),
        args: Vec::new(),
        directives: Vec::new(),
        selection,
    })
}

/// Calls `change` on the `pick`-th item `select` accepts, if there is one.
fn change_nth_field(
    case: &mut Case,
    select: &dyn Fn(&Field) -> bool,
    rng: &mut StdRng,
    change: &mut dyn FnMut(&mut Field),
) -> bool {
    let mut count = 0;
    case.document
        .visit_fields(&mut |f| count += usize::from(select(f)));
    if count == 0 {
        return false;
    }
    let pick = rng.gen_range(0..count);
    let mut seen = 0;
    case.document.visit_fields(&mut |f| {
        if select(f) {
            if seen == pick {
                change(f);
            }
            seen += 1;
        }
    });
    true
}

fn push_into_some_set(case: &mut Case, rng: &mut StdRng, item: Selection) {
    let mut count = 0;
    case.document.visit_sets(&mut |_| count += 1);
    let pick = rng.gen_range(0..count);
    let mut seen = 0;
    case.document.visit_sets(&mut |set| {
        if seen == pick {
            set.push(item.clone());
        }
        seen += 1;
    });
}

/// A literal no value of `ty` accepts; `None` for custom scalars (they take anything).
fn wrong_literal(api: &Api, ty: &TypeRef) -> Option<&'static str> {
    let named = ty.named();
    match (named, api.types.get(named)) {
        ("Int", _) => Some("1.5"),
        ("Float" | "String" | "ID" | "Boolean", _) => Some("{wrong: 1}"),
        (_, Some(TypeDef::Enum(_))) => Some("\"NOT_A_VALUE\""),
        (_, Some(TypeDef::Input(_))) => Some("{doesNotExist: 1}"),
        _ => None,
    }
}

/// The index of the operation `case` runs.
fn chosen(case: &Case) -> usize {
    case.document
        .operations
        .iter()
        .position(|op| op.name.is_some() && op.name == case.operation_name)
        .unwrap_or(0)
}

/// A damaged version of a valid case of `api`.
pub fn invalid(api: &Api, vocabulary: &[&str], rng: &mut StdRng) -> Invalid {
    let mut case = generator::valid(api, vocabulary, rng, false);
    let kinds = [
        "unknown_field",
        "wrong_argument_type",
        "missing_argument",
        "undefined_variable",
        "unused_variable",
        "fragment_cycle",
        "unknown_fragment",
        "leaf_with_selection",
        "unbalanced_braces",
        "nul_byte",
        "token_noise",
        "huge_int",
        "wrong_variable_value",
        "missing_variable",
        "deep_selection",
        "deep_fragments",
        "deep_list",
        "duplicate_operation",
        "unknown_operation",
    ];
    let kind = *kinds.choose(rng).unwrap();
    let mut text = None;
    let expect = match kind {
        "unknown_field" => {
            push_into_some_set(&mut case, rng, field("doesNotExist", Vec::new()));
            VALIDATION
        }
        "wrong_argument_type" => {
            let wrong = |f: &Field| {
                f.args
                    .iter()
                    .any(|a| matches!(a.value, Val::Lit(_)) && wrong_literal(api, &a.ty).is_some())
            };
            let done = change_nth_field(&mut case, &wrong, rng, &mut |f| {
                let arg = f
                    .args
                    .iter_mut()
                    .find(|a| matches!(a.value, Val::Lit(_)) && wrong_literal(api, &a.ty).is_some())
                    .unwrap();
                arg.value = Val::Lit(wrong_literal(api, &arg.ty).unwrap().into());
            });
            if !done {
                // No literal to spoil: an argument the field does not have.
                change_nth_field(&mut case, &|_| true, rng, &mut |f| {
                    f.args.push(Arg {
                        name: "doesNotExist".into(),
                        ty: TypeRef::Named("Int".into()),
                        required: false,
                        value: Val::Lit("1".into()),
                    })
                });
            }
            VALIDATION
        }
        "missing_argument" => {
            let has = |f: &Field| f.args.iter().any(|a| a.required);
            if !change_nth_field(&mut case, &has, rng, &mut |f| {
                f.args.retain(|a| !a.required)
            }) {
                push_into_some_set(
                    &mut case,
                    rng,
                    field("__typename", vec![field("x", Vec::new())]),
                );
            }
            VALIDATION
        }
        "undefined_variable" => {
            change_nth_field(&mut case, &|_| true, rng, &mut |f| {
                f.directives.push(Directive {
                    name: "include",
                    condition: Val::Var("undefinedVariable".into()),
                })
            });
            VALIDATION
        }
        "unused_variable" => {
            let i = chosen(&case);
            case.document.operations[i].variables.push(Variable {
                name: "unused".into(),
                ty: "Int".into(),
                default: None,
            });
            VALIDATION
        }
        "fragment_cycle" => {
            let root = api.query.clone();
            let spread = |name: &str| Selection::Spread {
                name: name.into(),
                directives: Vec::new(),
            };
            case.document.fragments.push(Fragment {
                name: "CycleA".into(),
                on: root.clone(),
                selection: vec![spread("CycleB")],
            });
            case.document.fragments.push(Fragment {
                name: "CycleB".into(),
                on: root,
                selection: vec![field("__typename", Vec::new()), spread("CycleA")],
            });
            let i = chosen(&case);
            case.document.operations[i].selection.push(spread("CycleA"));
            VALIDATION
        }
        "unknown_fragment" => {
            push_into_some_set(
                &mut case,
                rng,
                Selection::Spread {
                    name: "Nowhere".into(),
                    directives: Vec::new(),
                },
            );
            VALIDATION
        }
        "leaf_with_selection" => {
            let leaf = |f: &Field| f.selection.is_empty();
            change_nth_field(&mut case, &leaf, rng, &mut |f| {
                f.selection.push(field("__typename", Vec::new()))
            });
            VALIDATION
        }
        "unbalanced_braces" => {
            let mut query = case.query();
            if rng.gen_bool(0.5) {
                let at = query.rfind('}').unwrap();
                query.remove(at);
            } else {
                query.insert(0, '{');
            }
            text = Some(query);
            PARSE
        }
        "nul_byte" => {
            let query = case.query();
            let spaces: Vec<usize> = query.match_indices(' ').map(|(i, _)| i).collect();
            let at = *spaces.choose(rng).unwrap();
            text = Some(format!("{}\0{}", &query[..at], &query[at + 1..]));
            PARSE
        }
        "token_noise" => {
            text = Some(token_noise(&case.query(), rng));
            Expect::Oracle
        }
        "huge_int" => {
            let int = |f: &Field| {
                f.args
                    .iter()
                    .any(|a| a.ty.named() == "Int" && matches!(a.value, Val::Lit(_)))
            };
            // Past 64 bits the parser refuses it; past 32, validation.
            let huge = ["99999999999999999999", "2147483648", "-2147483649"]
                .choose(rng)
                .unwrap();
            let expect = if huge.len() > 12 {
                Expect::Refused
            } else {
                VALIDATION
            };
            if !change_nth_field(&mut case, &int, rng, &mut |f| {
                let arg = f
                    .args
                    .iter_mut()
                    .find(|a| a.ty.named() == "Int" && matches!(a.value, Val::Lit(_)))
                    .unwrap();
                arg.value = Val::Lit((*huge).into());
            }) {
                push_into_some_set(&mut case, rng, field("doesNotExist", Vec::new()));
                return finish(kind, case, None, VALIDATION);
            }
            expect
        }
        "wrong_variable_value" => {
            let i = chosen(&case);
            let spoilable: Vec<String> = case.document.operations[i]
                .variables
                .iter()
                .filter(|v| wrong_literal(api, &parse_type(&v.ty)).is_some())
                .map(|v| v.name.clone())
                .collect();
            match spoilable.choose(rng) {
                Some(name) => {
                    case.variables
                        .insert(name.clone(), json!({ "doesNotExist": [1] }));
                    INPUT
                }
                None => needs_a_variable(&mut case, rng),
            }
        }
        "missing_variable" => {
            let i = chosen(&case);
            let required: Vec<String> = case.document.operations[i]
                .variables
                .iter()
                .filter(|v| v.ty.ends_with('!') && v.default.is_none())
                .map(|v| v.name.clone())
                .collect();
            match required.choose(rng) {
                Some(name) => {
                    case.variables.remove(name);
                    INPUT
                }
                None => needs_a_variable(&mut case, rng),
            }
        }
        "deep_selection" => {
            // Introspection's `ofType` nests without end: deeper than any limit.
            let mut inner = field("name", Vec::new());
            for _ in 0..rng.gen_range(20..60) {
                inner = field("ofType", vec![inner]);
            }
            text = Some(format!(
                "{{ __schema {{ queryType {{ fields {{ type {{ {} }} }} }} }} }}",
                render_items(&[inner])
            ));
            Expect::Refused
        }
        "deep_fragments" => {
            let depth = rng.gen_range(100..3000);
            text = Some(format!(
                "{{ {}__typename{} }}",
                "... { ".repeat(depth),
                " }".repeat(depth)
            ));
            Expect::Refused
        }
        "deep_list" => {
            let depth = rng.gen_range(100..3000);
            text = Some(format!(
                "{{ __type(name: {}\"Query\"{}) {{ name }} }}",
                "[".repeat(depth),
                "]".repeat(depth)
            ));
            Expect::Refused
        }
        "duplicate_operation" => {
            let mut op = case.document.operations[0].clone();
            op.name = Some("Twice".into());
            case.document.operations = vec![op.clone(), op];
            case.operation_name = Some("Twice".into());
            VALIDATION
        }
        "unknown_operation" => {
            case.operation_name = Some("NoSuchOperation".into());
            VALIDATION
        }
        _ => unreachable!(),
    };
    finish(kind, case, text, expect)
}

fn finish(kind: &'static str, case: Case, text: Option<String>, expect: Expect) -> Invalid {
    Invalid {
        kind,
        query: text.unwrap_or_else(|| case.query()),
        operation_name: case.operation_name,
        variables: case.variables,
        expect,
    }
}

/// Declares `$needed: Boolean!`, uses it on a root field and gives no value.
fn needs_a_variable(case: &mut Case, rng: &mut StdRng) -> Expect {
    let i = chosen(case);
    let op = &mut case.document.operations[i];
    op.variables.push(Variable {
        name: "needed".into(),
        ty: "Boolean!".into(),
        default: None,
    });
    op.selection.push(Selection::Field(Field {
        alias: None,
        name: "__typename".into(),
        args: Vec::new(),
        directives: vec![Directive {
            name: if rng.gen_bool(0.5) { "skip" } else { "include" },
            condition: Val::Var("needed".into()),
        }],
        selection: Vec::new(),
    }));
    INPUT
}

fn parse_type(text: &str) -> TypeRef {
    if let Some(inner) = text.strip_suffix('!') {
        TypeRef::NonNull(Box::new(parse_type(inner)))
    } else if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        TypeRef::List(Box::new(parse_type(inner)))
    } else {
        TypeRef::Named(text.into())
    }
}

fn render_items(items: &[Selection]) -> String {
    let document = super::document::Document {
        operations: vec![super::document::Operation {
            kind: "query",
            name: None,
            variables: Vec::new(),
            selection: items.to_vec(),
        }],
        fragments: Vec::new(),
    };
    let text = document.render();
    // Without the outer braces of the shorthand operation.
    text.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim()
        .to_owned()
}

/// Deletes, duplicates or inserts a few tokens of `query`.
fn token_noise(query: &str, rng: &mut StdRng) -> String {
    let mut tokens: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in query.chars() {
        if c.is_alphanumeric() || c == '_' || c == '$' || c == '"' || c == '.' {
            word.push(c);
        } else {
            if !word.is_empty() {
                tokens.push(std::mem::take(&mut word));
            }
            // Commas are insignificant in GraphQL, but async-graphql's parser
            // refuses some (`, ,`): left out, so the reference stays a fair oracle.
            if !c.is_whitespace() && c != ',' {
                tokens.push(c.to_string());
            }
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    const NOISE: [&str; 12] = [
        "{", "}", "(", ")", ":", "$", "...", "@skip", "on", "query", "\"", "!",
    ];
    for _ in 0..rng.gen_range(1..=3) {
        let at = rng.gen_range(0..tokens.len().max(1));
        match rng.gen_range(0..3) {
            0 if !tokens.is_empty() => {
                tokens.remove(at);
            }
            1 if !tokens.is_empty() => {
                let t = tokens[at].clone();
                tokens.insert(at, t);
            }
            _ => tokens.insert(at, (*NOISE.choose(rng).unwrap()).into()),
        }
    }
    tokens.join(" ")
}
