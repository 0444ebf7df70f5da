//! One REST request: its route found, its body read (JSON, bounded), its
//! variables made, then the route's trusted document run by
//! [`crate::pipeline::prepare`] and [`crate::pipeline::answer`] exactly as a
//! GraphQL request naming that document would be (edge token, persisted
//! rules, limits, rate limits, plan cache, fetches, metrics), and the
//! answer shaped.

use std::{collections::HashMap, sync::Arc, time::Instant};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::Response,
};
use serde_json::Value;

use crate::{
    metrics::Outcome,
    pipeline::{
        GraphqlRequest, MAX_BODY_BYTES, Pipeline, REQUEST_TIMEOUT, Report, answer, bearer, peer_of,
        prepare,
    },
    rest::{
        Rest,
        input::{self, Invalid},
        output::{self, Out, RestError},
        routes::{ErrorRules, Found, Route, Token},
    },
};

static CLIENT_NAME: header::HeaderName = header::HeaderName::from_static("graphql-client-name");

/// Serves `request` from `rest`'s routes.
pub async fn serve(pipeline: &Pipeline, rest: &Rest, request: axum::extract::Request) -> Response {
    let started = Instant::now();
    let table = rest.table();
    let (parts, body) = request.into_parts();
    let (label, response) = match table.find(&parts.method, parts.uri.path()) {
        Found::Route(route, params) => {
            let label = route.label.clone();
            let response = match tokio::time::timeout(
                REQUEST_TIMEOUT,
                run(pipeline, &route, params, parts, body),
            )
            .await
            {
                Ok(Ok(out)) => out,
                Ok(Err(error)) => respond_error(error),
                Err(_) => respond_error(output::plain(
                    &route.errors,
                    StatusCode::GATEWAY_TIMEOUT,
                    "GATEWAY_TIMEOUT",
                    "the request took too long",
                    None,
                )),
            };
            (label, response)
        }
        Found::OtherMethods(methods) => {
            let allow = methods
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let mut response = respond_error(output::plain(
                &default_rules(&table),
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                &format!(
                    "{} is not served here; this path takes {allow}",
                    parts.method
                ),
                None,
            ));
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            ("other".to_owned(), response)
        }
        Found::None => (
            "unknown".to_owned(),
            respond_error(output::plain(
                &default_rules(&table),
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such endpoint",
                None,
            )),
        ),
    };
    rest.observe(&label, response.status().as_u16(), started.elapsed());
    response
}

/// The error rules of answers no route makes (404, 405): the first file's.
fn default_rules(table: &crate::rest::Table) -> Arc<ErrorRules> {
    table.routes().next().map_or_else(
        || {
            Arc::new(ErrorRules {
                statuses: HashMap::new(),
                body: vec![("status".into(), Value::String("error".into()))],
            })
        },
        |route| route.errors.clone(),
    )
}

/// `route` for one request: the answer, or the error it ends in.
async fn run(
    pipeline: &Pipeline,
    route: &Route,
    params: HashMap<String, String>,
    parts: axum::http::request::Parts,
    body: Body,
) -> Result<Response, RestError> {
    let refuse = |status, code: &str, message: &str| {
        output::plain(&route.errors, status, code, message, None)
    };
    let mut headers = parts.headers;
    let token = bearer(&headers).map(str::to_owned);
    if route.token == Token::Access && token.is_none() {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "this endpoint needs an access token: Authorization: Bearer <token>",
        ));
    }
    let json = if route.reads_body() {
        Some(read_json(&headers, body, &route.errors).await?)
    } else {
        None
    };
    let query: HashMap<String, String> =
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .map_err(|e| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    &format!("invalid query string: {e}"),
                )
            })?;
    let variables = input::variables(
        route,
        &input::Request {
            body: json.as_ref(),
            path: &params,
            query: &query,
            headers: &headers,
            bearer: token.as_deref(),
        },
    )
    .map_err(|Invalid(message)| refuse(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", &message))?;
    // What the pipeline sees: the route's document by id, its manifest as
    // the client, and a bearer only where it is an access token.
    let peer = peer_of(&parts.extensions);
    crate::pipeline::request::forward_client(&pipeline.limiter, &mut headers, peer);
    if route.token != Token::Access {
        headers.remove(header::AUTHORIZATION);
    }
    if let Ok(client) = HeaderValue::from_str(&route.document.manifest) {
        headers.insert(CLIENT_NAME.clone(), client);
    }
    let request = GraphqlRequest {
        query: None,
        operation_name: Some(route.document.name.clone()),
        variables: Some(Value::Object(variables)),
        extensions: None,
        document_id: Some(route.document.id.clone()),
    };
    let started = Instant::now();
    let mut report = Report::new(Some(route.document.name.clone()));
    let result = execute(pipeline, route, &headers, peer, request, &mut report).await;
    report.finish(pipeline, started.elapsed()).await;
    result
}

async fn execute(
    pipeline: &Pipeline,
    route: &Route,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
    request: GraphqlRequest,
    report: &mut Report,
) -> Result<Response, RestError> {
    let ready = match prepare(pipeline, headers, peer, request, false, report).await {
        Ok(ready) => ready,
        Err(refusal) => {
            let first = refusal
                .errors
                .get("errors")
                .and_then(|e| e.get(0))
                .cloned()
                .unwrap_or(Value::Null);
            let mut error = output::error_or(&route.errors, &first, Some(refusal.status));
            error.retry_after = error
                .retry_after
                .or(refusal.retry_after.map(|d| d.as_secs()));
            error.quota = refusal.quota;
            return Err(error);
        }
    };
    let caller = ready.caller();
    let answered = answer(
        &ready.loaded,
        &ready.prepared,
        &ready.variables,
        headers,
        caller.as_deref(),
    )
    .await;
    report.outcome = if answered.clean {
        Outcome::Ok
    } else {
        Outcome::Errors
    };
    let graphql: Value = serde_json::from_slice(&answered.body).unwrap_or(Value::Null);
    if let Some(first) = graphql
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        let mut error = output::error(&route.errors, first);
        error.retry_after = error.retry_after.or(answered.retry_after);
        error.quota = ready.quota;
        return Err(error);
    }
    let data = graphql.get("data").unwrap_or(&Value::Null);
    let mut response = respond(route.status, &output::shape(&route.answer, data));
    if let Some(quota) = &ready.quota {
        quota.write(response.headers_mut());
    }
    Ok(response)
}

/// The JSON body of a request that must send one: 415 unless it is
/// declared JSON, 413 past [`MAX_BODY_BYTES`], 400 unless it is a JSON object.
async fn read_json(
    headers: &HeaderMap,
    body: Body,
    rules: &ErrorRules,
) -> Result<Value, RestError> {
    use http_body_util::BodyExt;
    let refuse =
        |status, code: &str, message: &str| output::plain(rules, status, code, message, None);
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok());
    let json = media.is_some_and(|m| {
        (m.essence_str() == "application/json" || m.suffix() == Some(mime::JSON))
            && m.get_param(mime::CHARSET)
                .is_none_or(|c| c.as_str().eq_ignore_ascii_case("utf-8"))
    });
    if !json {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "the body must be JSON: send content-type: application/json",
        ));
    }
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let bytes = match http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(err) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("the body could not be read: {err}"),
            ));
        }
    };
    // serde_json refuses nesting past 128 levels, so a deep body costs little.
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the body must be a JSON object",
        )),
        Err(err) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            &format!("malformed JSON: {err}"),
        )),
    }
}

fn respond(status: StatusCode, body: &Out) -> Response {
    let mut response = Response::new(Body::from(body.to_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn respond_error(error: RestError) -> Response {
    let mut response = respond(error.status, &error.body);
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(quota) = &error.quota {
        quota.write(response.headers_mut());
    }
    response
}
