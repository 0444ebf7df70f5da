//! [`answer`]: a planned query or mutation run and its GraphQL response
//! written, with at most `MAX_ERRORS` errors.

use axum::http::HeaderMap;
use hive_router_query_planner::ast::value::Value as PlannerValue;
use serde_json::{Map, Value, json};

use crate::{
    execution::{self, projection},
    pipeline::{admission, planning::Prepared, state::Loaded},
};

/// A query's or mutation's GraphQL response, written.
pub struct Answered {
    /// The response as JSON bytes.
    pub body: Vec<u8>,
    /// Whether it has no errors.
    pub clean: bool,
    /// The longest `retryAfter` of a subgraph's `RATE_LIMITED` error, in
    /// seconds (failed logins are throttled by the users subgraph): sent on
    /// as the answer's `Retry-After`.
    pub retry_after: Option<u64>,
}

/// Runs a planned query or mutation for `caller` (the verified user's id,
/// if any) and writes its GraphQL response.
pub async fn answer(
    loaded: &Loaded,
    prepared: &Prepared,
    variables: &Map<String, Value>,
    headers: &HeaderMap,
    caller: Option<&str>,
) -> Answered {
    let _slot = admission::slot().await;
    let mut result = execution::execute(
        &prepared.plan,
        &loaded.subgraphs,
        loaded.supergraph.shapes(),
        variables,
        headers,
        caller,
    )
    .await;
    if let (Some(intro), crate::value::Value::Object(data)) =
        (&loaded.introspection, &mut result.data)
    {
        for field in prepared.introspection.iter() {
            let value = if field.name == "__schema" {
                intro.schema.clone()
            } else {
                let name = match field
                    .arguments
                    .as_ref()
                    .and_then(|a| a.get_argument("name"))
                {
                    Some(PlannerValue::String(name)) => Some(name.clone()),
                    Some(PlannerValue::Variable(var)) => variables
                        .get(var)
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    _ => None,
                };
                name.map_or(Value::Null, |n| intro.type_named(&n))
            };
            data.insert(
                field.alias.as_deref().unwrap_or(&field.name),
                crate::value::Value::from(value),
            );
        }
    }
    let retry_after = result
        .errors
        .iter()
        .filter(|e| e["extensions"]["code"] == "RATE_LIMITED")
        .filter_map(|e| e["extensions"]["retryAfter"].as_u64())
        .max();
    let (body, clean) = write_response(&result, prepared, loaded, variables);
    Answered {
        body,
        clean,
        retry_after,
    }
}

/// Writes the GraphQL response of `result` as JSON bytes, shaped by the
/// client's `operation`; `true` when it has no errors. The answer is written
/// straight to bytes: no second response tree.
pub fn write_response(
    result: &execution::Execution,
    prepared: &Prepared,
    loaded: &Loaded,
    variables: &Map<String, Value>,
) -> (Vec<u8>, bool) {
    use std::sync::atomic::Ordering::Relaxed;
    // The size of the last answer (bounded: one huge answer does not make
    // every later one reserve as much).
    let size = prepared.answer_size.load(Relaxed).clamp(1024, 8 << 20);
    let mut body = Vec::with_capacity(size + size / 16);
    body.extend_from_slice(b"{\"data\":");
    let shaping = projection::project_into(
        &result.data,
        &prepared.operation,
        loaded.supergraph.shapes(),
        variables,
        &mut body,
    );
    let shapes = loaded.supergraph.shapes();
    let prefix = shapes.alias_prefix();
    // Errors placed where the client asked nothing (a switched-off fragment
    // the planner fetched anyway) describe no part of the answer.
    let shown = result.errors.iter().filter(|e| {
        e.get("path").and_then(Value::as_array).is_none_or(|path| {
            projection::shows(&result.data, &prepared.operation, shapes, variables, path)
        })
    });
    // Subgraph errors carry the planner's response keys.
    let subgraphs: Vec<std::borrow::Cow<'_, Value>> = shown
        .map(|e| {
            if prefix.is_active() {
                let mut e = e.clone();
                prefix.restore(&mut e);
                std::borrow::Cow::Owned(e)
            } else {
                std::borrow::Cow::Borrowed(e)
            }
        })
        .collect();
    let clean = subgraphs.is_empty() && shaping.is_empty();
    if !clean {
        body.extend_from_slice(b",\"errors\":");
        let total = subgraphs.len() + shaping.len();
        let max = loaded.max_errors.max(1);
        let kept = if total > max { max - 1 } else { total };
        let summary = (total > max).then(|| dropped_errors(total - kept));
        let all: Vec<&Value> = subgraphs
            .iter()
            .map(AsRef::as_ref)
            .chain(&shaping)
            .take(kept)
            .chain(&summary)
            .collect();
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut body, &all);
    }
    body.push(b'}');
    prepared.answer_size.store(body.len(), Relaxed);
    (body, clean)
}

/// How many errors a response carries unless configured (`MAX_ERRORS`):
/// a client learns as much from the first hundred as from thousands, and a
/// document of repeated mistakes no longer buys an answer many times its size.
pub const DEFAULT_MAX_ERRORS: usize = 100;

/// Keeps at most `max` (at least one) of `errors`: past it, the first
/// `max - 1` and a last one that says how many were dropped.
pub fn cap_errors(errors: &mut Vec<Value>, max: usize) {
    let max = max.max(1);
    if errors.len() > max {
        let dropped = errors.len() - (max - 1);
        errors.truncate(max - 1);
        errors.push(dropped_errors(dropped));
    }
}

/// The error that stands for `dropped` errors left out of a response.
fn dropped_errors(dropped: usize) -> Value {
    json!({
        "message": format!("{dropped} more errors were left out of this response"),
        "extensions": { "code": "TOO_MANY_ERRORS", "dropped": dropped },
    })
}
