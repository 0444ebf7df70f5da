//! Calling a router in-process, and what tests assert of GraphQL answers.

/// Calls a router (a subgraph's, the gateway's) in-process, the way HTTP clients would.
pub struct TestClient {
    router: axum::Router,
}

impl TestClient {
    /// A client of `router`.
    pub fn new(router: axum::Router) -> Self {
        Self { router }
    }

    /// Any request; answers the status and the body parsed as JSON (or as a string).
    pub async fn http(
        &self,
        request: axum::http::Request<axum::body::Body>,
    ) -> (u16, serde_json::Value) {
        let (status, _, body) = self.exchange(request).await;
        (status, body)
    }

    /// Any request; answers the status, the headers and the body parsed as JSON (or as a string).
    pub async fn exchange(
        &self,
        request: axum::http::Request<axum::body::Body>,
    ) -> (u16, axum::http::HeaderMap, serde_json::Value) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router answers");
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, parts.headers, body)
    }

    /// A GraphQL POST, with a bearer token when given.
    pub async fn gql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let mut request =
            axum::http::Request::post("/graphql").header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
        self.http(request.body(axum::body::Body::from(body)).expect("request"))
            .await
            .1
    }
}

/// Fails the test when the response carries errors.
#[track_caller]
pub fn assert_no_errors(resp: &serde_json::Value) {
    assert!(resp.get("errors").is_none(), "unexpected errors: {resp:#}");
}

/// The `extensions.code` of the first error.
#[track_caller]
pub fn code(resp: &serde_json::Value) -> &str {
    resp["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code: {resp:#}"))
}
