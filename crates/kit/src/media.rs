//! GraphQL over HTTP, the parts the spec makes depend on the request: the
//! media type and status of an answer, and whether a request is a mutation
//! (which GET may not carry).
//!
//! async-graphql-axum answers `application/graphql-response+json` to every
//! client, which a client accepting only `application/json` must not get.
//! Here the client's `Accept` decides, as at the gateway: the newer media
//! type when named, else `application/json` (also for `*/*` and no `Accept`,
//! the spec's legacy default).

use async_graphql::{
    Request, Response, ServerError, Value,
    parser::types::{DocumentOperations, OperationType},
};
use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::IntoResponse,
};

const GRAPHQL_JSON: &str = "application/graphql-response+json";

/// Whether the client named `application/graphql-response+json` in `Accept`.
pub fn accepts_graphql_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|accept| accept.contains(GRAPHQL_JSON))
}

/// `response` as HTTP for a client that sent `headers`.
///
/// A request refused before execution (no data, and no error with a path:
/// the document did not parse or validate, a variable did not coerce, the
/// input rule refused it) is answered without a `data` entry, and with
/// `application/graphql-response+json` as a 400, as the spec asks; with
/// `application/json` every GraphQL answer is a 200.
pub fn answer(response: Response, headers: &HeaderMap) -> axum::response::Response {
    let graphql_json = accepts_graphql_json(headers);
    let request_error = response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let body = if request_error {
        serde_json::to_vec(&RequestError {
            errors: &response.errors,
        })
    } else {
        serde_json::to_vec(&response)
    };
    // Serializing values and errors cannot fail; the fallback is for form's sake.
    let body =
        body.unwrap_or_else(|_| br#"{"errors":[{"message":"internal server error"}]}"#.to_vec());
    let status = if graphql_json && request_error {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let media = if graphql_json {
        GRAPHQL_JSON
    } else {
        "application/json"
    };
    let mut answer = (status, body).into_response();
    let answer_headers = answer.headers_mut();
    answer_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if response.is_ok()
        && let Some(cache_control) = response.cache_control.value()
        && let Ok(value) = HeaderValue::from_str(&cache_control)
    {
        answer_headers.insert(header::CACHE_CONTROL, value);
    }
    answer_headers.extend(response.http_headers);
    answer
}

#[derive(serde::Serialize)]
struct RequestError<'a> {
    errors: &'a [ServerError],
}

/// Whether the operation `request` selects is a mutation. A document that
/// does not parse, or does not say which operation runs, is not: the schema
/// refuses it in its own words.
pub fn is_mutation(request: &mut Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name.as_str()),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.is_some_and(|op| op.node.ty == OperationType::Mutation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn media_type_follows_accept() {
        let media = |headers: &HeaderMap| {
            answer(Response::new(Value::Null), headers).headers()[header::CONTENT_TYPE].clone()
        };
        assert_eq!(media(&accept("application/json")), "application/json");
        assert_eq!(media(&accept("*/*")), "application/json");
        assert_eq!(media(&HeaderMap::new()), "application/json");
        assert_eq!(
            media(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            GRAPHQL_JSON
        );
    }

    #[test]
    fn request_errors_are_400_only_for_graphql_json() {
        let refused = || Response::from_errors(vec![ServerError::new("no", None)]);
        let graphql_json = answer(refused(), &accept(GRAPHQL_JSON));
        assert_eq!(graphql_json.status(), StatusCode::BAD_REQUEST);
        let json = answer(refused(), &accept("application/json"));
        assert_eq!(json.status(), StatusCode::OK);
    }

    #[test]
    fn finds_the_selected_operation_kind() {
        let kind = |query: &str, name: Option<&str>| {
            let mut request = Request::new(query);
            if let Some(name) = name {
                request = request.operation_name(name);
            }
            is_mutation(&mut request)
        };
        assert!(kind("mutation { a }", None));
        assert!(!kind("{ a }", None));
        assert!(kind("query Q { a } mutation M { b }", Some("M")));
        assert!(!kind("query Q { a } mutation M { b }", Some("Q")));
        assert!(!kind("query Q { a } mutation M { b }", None));
        assert!(!kind("mutation {", None));
    }
}
