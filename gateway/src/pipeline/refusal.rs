//! [`Refusal`]: why a request is answered before anything runs, with the
//! status and errors it is answered with.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use serde_json::{Value, json};

use crate::pipeline::{
    answer::cap_errors,
    persisted,
    planning::PlanError,
    ratelimit,
    response::{accepts_graphql_json, error_body, respond, with_media},
    usage,
};

/// Why a request is answered before anything runs.
pub struct Refusal {
    pub status: StatusCode,
    pub errors: Value,
    /// Not GraphQL at all (no query, bad variables, a mutation over GET), or
    /// rate limited: its 4xx stands whatever the media type.
    pub malformed: bool,
    /// When a rate-limited caller may try again (`Retry-After`).
    pub retry_after: Option<std::time::Duration>,
    /// Where the caller stands against its quotas (`RateLimit-Policy`, `RateLimit`).
    pub quota: Option<usage::Standing>,
}

impl Refusal {
    pub fn malformed(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            errors: error_body(message, "BAD_REQUEST"),
            malformed: true,
            retry_after: None,
            quota: None,
        }
    }

    pub fn graphql(status: StatusCode, message: &str, code: &str) -> Self {
        Self {
            status,
            errors: error_body(message, code),
            malformed: false,
            retry_after: None,
            quota: None,
        }
    }

    pub fn plan(err: &PlanError) -> Self {
        let (status, errors) = plan_error_body(err);
        Self {
            status,
            errors,
            // A document over a limit is refused with 400 whatever the media
            // type, as the mainstream routers do: it is not a GraphQL error
            // the client can read a partial answer from.
            malformed: matches!(err, PlanError::Limit(_) | PlanError::TimedOut),
            retry_after: None,
            quota: None,
        }
    }

    pub fn persisted(refused: persisted::Refused) -> Self {
        let status = match refused.code {
            // APQ clients expect the miss in a 200 body, then retry with the document.
            "PERSISTED_QUERY_NOT_FOUND" | "PERSISTED_QUERY_NOT_SUPPORTED" => StatusCode::OK,
            "PERSISTED_QUERY_REQUIRED" => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::graphql(status, &refused.message, refused.code)
    }

    pub fn rate_limited(limited: ratelimit::Limited, kind: ratelimit::Kind) -> Self {
        let seconds = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let whom = match limited.scope {
            ratelimit::Scope::User => "this user",
            ratelimit::Scope::Ip => "this address",
        };
        let message = format!(
            "too many {}s from {whom}; retry in {seconds} s",
            kind.label()
        );
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            errors: json!({ "errors": [{
                "message": message,
                "extensions": { "code": "RATE_LIMITED", "retryAfter": seconds },
            }] }),
            malformed: true,
            retry_after: Some(std::time::Duration::from_secs(seconds)),
            quota: None,
        }
    }

    /// A trusted document over one of its client's quotas (`standing`).
    pub fn over_quota(standing: usage::Standing, document: &str) -> Self {
        let (period, seconds) = standing
            .over()
            .map_or(("day", 1), |i| (i.period.label(), i.reset.max(1)));
        let message =
            format!("the quota per {period} of {document:?} is used up; retry in {seconds} s");
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            errors: json!({ "errors": [{
                "message": message,
                "extensions": { "code": "RATE_LIMITED", "retryAfter": seconds, "quota": period },
            }] }),
            malformed: true,
            retry_after: Some(std::time::Duration::from_secs(seconds)),
            quota: Some(standing),
        }
    }

    /// This refusal with at most `max` errors (see [`cap_errors`]).
    pub fn capped(mut self, max: usize) -> Self {
        if let Some(Value::Array(errors)) = self.errors.get_mut("errors") {
            cap_errors(errors, max);
        }
        self
    }

    pub fn into_response(self, headers: &HeaderMap) -> Response {
        let mut response = if self.malformed {
            with_media(self.status, self.errors, accepts_graphql_json(headers))
        } else {
            respond(headers, self.status, self.errors)
        };
        if let Some(after) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
        if let Some(quota) = &self.quota {
            quota.write(response.headers_mut());
        }
        response
    }
}

pub fn plan_error_body(err: &PlanError) -> (StatusCode, Value) {
    let errors: Vec<Value> = match err {
        PlanError::Validation(errors) => errors
            .iter()
            .map(|e| {
                json!({
                    "message": e.message,
                    "locations": e.locations.iter().map(|l| json!({ "line": l.line, "column": l.column })).collect::<Vec<_>>(),
                    "extensions": { "code": err.code() },
                })
            })
            .collect(),
        other => vec![json!({ "message": other.to_string(), "extensions": { "code": other.code() } })],
    };
    let status = if matches!(err, PlanError::Planning(_)) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, json!({ "errors": errors }))
}
