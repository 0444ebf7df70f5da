//! CORS for browser frontends: which origins may call the API, and correct
//! answers to preflight requests. Credentials are off unless enabled.

use std::{collections::HashSet, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// Which origins may call the API from a browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origins {
    /// No browser origin (the default outside `dev`).
    None,
    /// Any origin (`*`); never combined with credentials.
    Any,
    /// `http(s)://localhost` and `127.0.0.1` on any port (`dev`).
    Localhost,
    /// Exactly these origins.
    List(HashSet<String>),
}

/// The CORS policy of the gateway.
#[derive(Clone, Debug)]
pub struct CorsPolicy {
    pub origins: Origins,
    /// Whether browsers may send cookies and credentials.
    pub credentials: bool,
    /// What a preflight answers in `Access-Control-Allow-Headers`: the
    /// headers clients send, the CSRF marks included (see [`Self::allowing`]).
    allow_headers: HeaderValue,
}

impl Default for CorsPolicy {
    fn default() -> Self {
        Self {
            origins: Origins::None,
            credentials: false,
            allow_headers: HeaderValue::from_static(ALLOWED_HEADERS),
        }
    }
}

impl CorsPolicy {
    /// Parses `CORS_ORIGINS`: `*`, `localhost`, or a comma-separated list of origins.
    pub fn parse(origins: &str, credentials: bool) -> Self {
        let origins = match origins.trim() {
            "" => Origins::None,
            "*" => Origins::Any,
            "localhost" => Origins::Localhost,
            list => Origins::List(
                list.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .collect(),
            ),
        };
        Self {
            origins,
            credentials,
            ..Self::default()
        }
    }

    /// This policy, with preflights also allowing `headers` (the CSRF marks
    /// a browser client must be able to send: see [`crate::server::csrf`];
    /// a deployment's own, `CORS_ALLOW_HEADERS`). Names that are not header
    /// names are left out.
    pub fn allowing<'a>(mut self, headers: impl IntoIterator<Item = &'a str>) -> Self {
        let mut list = self
            .allow_headers
            .to_str()
            .unwrap_or(ALLOWED_HEADERS)
            .to_owned();
        for name in headers {
            let name = name.trim();
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                continue;
            }
            if !list.split(", ").any(|h| h.eq_ignore_ascii_case(name)) {
                list.push_str(", ");
                list.push_str(name);
            }
        }
        // Header names joined by ", " are a valid value; keep the old one if not.
        if let Ok(value) = HeaderValue::from_str(&list) {
            self.allow_headers = value;
        }
        self
    }

    fn allows(&self, origin: &str) -> bool {
        match &self.origins {
            Origins::None => false,
            Origins::Any => true,
            Origins::Localhost => {
                let host = origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                    .unwrap_or("");
                let host = host.rsplit_once(':').map_or(host, |(h, port)| {
                    if port.chars().all(|c| c.is_ascii_digit()) {
                        h
                    } else {
                        host
                    }
                });
                host == "localhost" || host == "127.0.0.1" || host == "[::1]"
            }
            Origins::List(list) => list.contains(origin),
        }
    }

    fn decorate(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        let any = self.origins == Origins::Any && !self.credentials;
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            if any {
                HeaderValue::from_static("*")
            } else {
                origin.clone()
            },
        );
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }

    /// [`Self::decorate`] for an answer a script reads (not a preflight's).
    fn decorate_answer(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        self.decorate(origin, headers);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
}

/// The headers clients send: what every preflight allows. Besides the
/// request's own (`content-type`, `authorization`, trace context), the
/// client names and versions GraphQL clients add (Apollo Client sends
/// `apollographql-client-name`/`-version` whenever an app names itself,
/// and GraphQL over HTTP's `graphql-client-name`/`-version`), and the token
/// of an SSE reservation: refused in a preflight, every request of such an
/// app fails in the browser.
const ALLOWED_HEADERS: &str = "content-type, authorization, x-request-id, traceparent, \
     tracestate, graphql-client-name, graphql-client-version, apollographql-client-name, \
     apollographql-client-version, x-apollo-operation-name, x-graphql-event-stream-token";

/// The response headers a page's script may read: the request's id (to
/// quote in a support ticket) and when to retry a rate-limited call.
const EXPOSED_HEADERS: &str = "x-request-id, retry-after";

/// The request's `Origin` when the policy lets it call.
pub fn allowed_origin(policy: &CorsPolicy, headers: &HeaderMap) -> Option<HeaderValue> {
    headers
        .get(header::ORIGIN)
        .filter(|o| o.to_str().is_ok_and(|o| policy.allows(o)))
        .cloned()
}

/// Adds the CORS headers of an allowed `origin` (see [`allowed_origin`]) to
/// an answer that is not a preflight's.
pub fn decorate(policy: &CorsPolicy, origin: Option<&HeaderValue>, response: &mut Response) {
    if let Some(origin) = origin {
        policy.decorate_answer(origin, response.headers_mut());
    }
}

/// Answers preflights and adds the CORS headers to responses for allowed origins.
pub async fn layer(
    State(policy): State<Arc<CorsPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let origin = allowed_origin(&policy, request.headers());
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Some(origin) = &origin {
            let headers = response.headers_mut();
            policy.decorate(origin, headers);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                // PUT and DELETE: SSE's single-connection mode.
                HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                policy.allow_headers.clone(),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        return response;
    }
    let mut response = next.run(request).await;
    decorate(&policy, origin.as_ref(), &mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_matched_exactly_or_as_localhost() {
        let dev = CorsPolicy::parse("localhost", false);
        assert!(dev.allows("http://localhost:5173"));
        assert!(dev.allows("http://127.0.0.1:3000"));
        assert!(!dev.allows("http://localhost.evil.example"));
        assert!(!dev.allows("https://example.com"));
        let listed = CorsPolicy::parse("https://shop.example, https://admin.example/", false);
        assert!(listed.allows("https://admin.example"));
        assert!(!listed.allows("https://shop.example.evil"));
        assert!(!CorsPolicy::default().allows("http://localhost:3000"));
    }

    #[test]
    fn preflights_allow_the_csrf_marks() {
        let policy = CorsPolicy::parse("*", false).allowing([
            "apollo-require-preflight",
            "x-csrf",
            "content-type",
        ]);
        let allowed = policy.allow_headers.to_str().unwrap();
        assert_eq!(
            allowed,
            format!("{ALLOWED_HEADERS}, apollo-require-preflight, x-csrf"),
            "each once, content-type not repeated"
        );
    }
}
