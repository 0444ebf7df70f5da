//! One rule for every string a client sends to any subgraph: PostgreSQL's
//! text types refuse U+0000, so a NUL byte that reached a query would fail
//! there as an `INTERNAL_SERVER_ERROR`. It is refused here instead, before
//! anything runs, as `BAD_USER_INPUT` naming the argument (`extensions.field`,
//! e.g. `input.deviceId` or `items.0.sku`).
//!
//! [`Checked`] wraps a subgraph's executor (kit's server does it for every
//! subgraph, HTTP and WebSocket alike) and walks the arguments of the
//! operation's fields and directives: literal values and the variables they
//! use, through lists and input objects. Unused variables cannot reach a
//! resolver, so they are not looked at. The document is parsed once: the
//! schema reuses the parse (`Request::parsed_query`).

use std::{future::Future, sync::Arc};

use async_graphql::{
    Data, Executor, Name, Pos, Positioned, Request, Response, ServerError, Value as ConstValue,
    Variables,
    parser::types::{Directive, ExecutableDocument, Selection, SelectionSet},
};
use async_graphql_value::Value;
use futures::stream::{BoxStream, StreamExt};

/// A subgraph's executor that refuses input PostgreSQL cannot store before running it.
#[derive(Clone)]
pub struct Checked<E>(pub E);

impl<E: Executor> Executor for Checked<E> {
    fn execute(&self, mut request: Request) -> impl Future<Output = Response> + Send {
        let refused = refusal(&mut request);
        async move {
            match refused {
                Some(error) => Response::from_errors(vec![error]),
                None => self.0.execute(request).await,
            }
        }
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match refusal(&mut request) {
            Some(error) => {
                futures::stream::once(async move { Response::from_errors(vec![error]) }).boxed()
            }
            None => self.0.execute_stream(request, session_data),
        }
    }
}

/// Why a text value cannot be stored, if it cannot.
pub fn unstorable(text: &str) -> Option<&'static str> {
    // Rust strings are valid UTF-8 and JSON cannot carry lone surrogates
    // into them, so NUL is the one character PostgreSQL's text refuses.
    text.contains('\0')
        .then_some("contains a NUL character (U+0000), which cannot be stored")
}

/// The error for the first unstorable value the request's operation uses;
/// `None` when there is none, or when the document does not parse (the
/// schema then reports that).
fn refusal(request: &mut Request) -> Option<ServerError> {
    let variables = std::mem::take(&mut request.variables);
    let found = match request.parsed_query() {
        Ok(document) => first_unstorable(document, &variables),
        Err(_) => None,
    };
    request.variables = variables;
    let (field, why, pos) = found?;
    let mut error = ServerError::new(format!("{field} {why}"), Some(pos));
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", "BAD_USER_INPUT");
    extensions.set("field", field);
    Some(error)
}

/// Walks every selection of the document (fragments included) without
/// recursion: a deep document cannot overflow the stack here.
fn first_unstorable(
    document: &ExecutableDocument,
    variables: &Variables,
) -> Option<(String, &'static str, Pos)> {
    let mut sets: Vec<&SelectionSet> = Vec::new();
    for (_, operation) in document.operations.iter() {
        let operation = &operation.node;
        for definition in &operation.variable_definitions {
            if let Some(default) = &definition.node.default_value
                && let Some((path, why)) = const_unstorable(&default.node)
            {
                let field = join(&format!("${}", definition.node.name.node), &path);
                return Some((field, why, default.pos));
            }
        }
        if let Some(found) = directives(&operation.directives, variables) {
            return Some(found);
        }
        sets.push(&operation.selection_set.node);
    }
    for fragment in document.fragments.values() {
        if let Some(found) = directives(&fragment.node.directives, variables) {
            return Some(found);
        }
        sets.push(&fragment.node.selection_set.node);
    }
    while let Some(set) = sets.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if let Some(found) = arguments(&field.arguments, variables)
                        .or_else(|| directives(&field.directives, variables))
                    {
                        return Some(found);
                    }
                    sets.push(&field.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(found) = directives(&spread.node.directives, variables) {
                        return Some(found);
                    }
                }
                Selection::InlineFragment(inline) => {
                    if let Some(found) = directives(&inline.node.directives, variables) {
                        return Some(found);
                    }
                    sets.push(&inline.node.selection_set.node);
                }
            }
        }
    }
    None
}

fn directives(
    directives: &[Positioned<Directive>],
    variables: &Variables,
) -> Option<(String, &'static str, Pos)> {
    directives
        .iter()
        .find_map(|d| arguments(&d.node.arguments, variables))
}

/// The first unstorable value among `arguments`, as `argument.path` and its position.
fn arguments(
    arguments: &[(Positioned<Name>, Positioned<Value>)],
    variables: &Variables,
) -> Option<(String, &'static str, Pos)> {
    for (name, argument) in arguments {
        // Values inside an argument carry no position of their own.
        let pos = argument.pos;
        let mut stack = vec![(name.node.to_string(), &argument.node)];
        while let Some((path, value)) = stack.pop() {
            match value {
                Value::String(text) => {
                    if let Some(why) = unstorable(text) {
                        return Some((path, why, pos));
                    }
                }
                Value::Variable(variable) => {
                    if let Some((inner, why)) = variables.get(variable).and_then(const_unstorable) {
                        return Some((join(&path, &inner), why, pos));
                    }
                }
                Value::List(items) => stack.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| (format!("{path}.{i}"), item)),
                ),
                Value::Object(fields) => {
                    for (key, item) in fields {
                        if let Some(why) = unstorable(key) {
                            return Some((path, why, pos));
                        }
                        stack.push((format!("{path}.{key}"), item));
                    }
                }
                Value::Null
                | Value::Number(_)
                | Value::Boolean(_)
                | Value::Binary(_)
                | Value::Enum(_) => {}
            }
        }
    }
    None
}

/// The first unstorable text in a constant value (a variable's value or a
/// default): its path below the value (empty for the value itself) and why.
fn const_unstorable(value: &ConstValue) -> Option<(String, &'static str)> {
    let mut stack = vec![(String::new(), value)];
    while let Some((path, value)) = stack.pop() {
        match value {
            ConstValue::String(text) => {
                if let Some(why) = unstorable(text) {
                    return Some((path, why));
                }
            }
            ConstValue::List(items) => stack.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (join(&path, &i.to_string()), item)),
            ),
            ConstValue::Object(fields) => {
                for (key, item) in fields {
                    if let Some(why) = unstorable(key) {
                        return Some((path, why));
                    }
                    stack.push((join(&path, key), item));
                }
            }
            ConstValue::Null
            | ConstValue::Number(_)
            | ConstValue::Boolean(_)
            | ConstValue::Binary(_)
            | ConstValue::Enum(_) => {}
        }
    }
    None
}

/// `outer.inner`, or `outer` alone when `inner` is empty.
fn join(outer: &str, inner: &str) -> String {
    match (outer.is_empty(), inner.is_empty()) {
        (_, true) => outer.to_owned(),
        (true, false) => inner.to_owned(),
        (false, false) => format!("{outer}.{inner}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(query: &str, variables: serde_json::Value) -> Option<String> {
        let mut request = Request::new(query).variables(Variables::from_json(variables));
        refusal(&mut request).map(|e| {
            let ext = e.extensions.expect("extensions");
            assert_eq!(ext.get("code"), Some(&ConstValue::from("BAD_USER_INPUT")));
            match ext.get("field") {
                Some(ConstValue::String(field)) => field.clone(),
                other => panic!("field: {other:?}"),
            }
        })
    }

    #[test]
    fn names_the_argument_a_nul_reaches() {
        use serde_json::json;
        assert_eq!(
            field_of(
                r#"mutation { addToCart(sku: "A\u0000", quantity: 1) { id } }"#,
                json!({})
            ),
            Some("sku".into())
        );
        assert_eq!(
            field_of(
                "mutation($i: RegisterInput!) { register(input: $i) { id } }",
                json!({ "i": { "deviceId": "fridge\u{0}", "password": "x" } })
            ),
            Some("input.deviceId".into())
        );
        assert_eq!(
            field_of(
                "query($s: [String!]) { a { b(skus: $s) } }",
                json!({ "s": ["ok", "no\u{0}"] })
            ),
            Some("skus.1".into())
        );
        assert_eq!(
            field_of(
                r#"query($s: String = "d\u0000") { a(x: {y: [{z: "ok"}]}) ...F } fragment F on Query { b(q: $s) }"#,
                json!({})
            ),
            Some("$s".into())
        );
        assert_eq!(
            field_of(
                r#"{ ...F } fragment F on Query { b(q: "\u0000") @include(if: true) }"#,
                json!({})
            ),
            Some("q".into())
        );
        assert_eq!(
            field_of(
                r#"{ a @skip(if: false) { b(where: {k: "\u0000"}) } }"#,
                json!({})
            ),
            Some("where.k".into())
        );
    }

    #[test]
    fn leaves_clean_and_unused_input_alone() {
        use serde_json::json;
        assert_eq!(
            field_of(
                r#"query($x: String) { a(b: "fine", c: [1, 2], d: {e: ENUM}) }"#,
                json!({ "x": "fine", "unused": "\u{0}" })
            ),
            None
        );
        // A document that does not parse is the schema's to report.
        assert_eq!(field_of("{ a(b: ", json!({})), None);
    }
}
