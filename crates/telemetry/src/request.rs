//! Request ids and the line logged when a request finished.

use std::time::Instant;

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderValue, header::HeaderName},
    middleware::Next,
    response::Response,
};

/// `x-request-id`: a request's id, from the caller or made up, passed to
/// every subgraph and written in every log line about it. Named once: a
/// header looked up by its text is parsed on every lookup.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The caller's `x-request-id` when it is sane (printable, at most 128
/// bytes), else a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id)
}

/// A new random (v4 UUID) request id. Its bytes come from the thread's
/// cryptographic generator (seeded from the OS, reseeded now and then):
/// `Uuid::new_v4` asks the kernel (`getrandom`) on every call, a syscall
/// per request.
pub fn new_request_id() -> String {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut text).to_owned()
}

/// Runs the rest of the stack for a request whose span is open, logs how it
/// ended and gives the caller its id back.
pub async fn finish_logged(request: Request, next: Next, id: &str) -> Response {
    let started = Instant::now();
    let mut response = next.run(request).await;
    log_finished(&mut response, id, started);
    response
}

/// What [`finish_logged`] does once the response is there: logs how the
/// request that began at `started` ended and gives the caller its id back.
pub fn log_finished(response: &mut Response, id: &str, started: Instant) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request finished"
    );
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_sane_caller_id_and_replaces_any_other() {
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID.clone(), HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers), "abc-123");
        for bad in ["", "has space", &"x".repeat(129)] {
            headers.insert(X_REQUEST_ID.clone(), HeaderValue::from_str(bad).unwrap());
            let id = request_id(&headers);
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
    }

    #[test]
    fn new_ids_are_v4_uuids_and_differ() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 4);
    }
}
