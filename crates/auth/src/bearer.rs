//! Where callers put their bearer token besides the `Authorization` header:
//! the `connection_init` payload of a GraphQL WebSocket, which browsers
//! cannot give headers. Subgraphs and the gateway read it the same way.

/// The bearer token of a `connection_init` payload, where clients put it:
/// `authorization` (or `Authorization`, `headers.authorization`), with or
/// without the `Bearer` scheme, else `token`.
pub fn init_token(payload: &serde_json::Value) -> Option<String> {
    let raw = ["authorization", "Authorization"]
        .iter()
        .find_map(|k| payload.get(*k))
        .or_else(|| payload.get("headers").and_then(|h| h.get("authorization")))
        .or_else(|| payload.get("headers").and_then(|h| h.get("Authorization")))
        .and_then(|v| v.as_str())
        .map(|v| match v.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => v.trim(),
        })
        .or_else(|| payload.get("token").and_then(|v| v.as_str()))?;
    (!raw.is_empty()).then(|| raw.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::init_token;

    #[test]
    fn finds_the_token_where_clients_put_it() {
        for payload in [
            json!({ "authorization": "Bearer abc" }),
            json!({ "Authorization": "bearer abc" }),
            json!({ "headers": { "authorization": "Bearer abc" } }),
            json!({ "headers": { "Authorization": "abc" } }),
            json!({ "token": "abc" }),
        ] {
            assert_eq!(init_token(&payload).as_deref(), Some("abc"), "{payload}");
        }
        assert_eq!(init_token(&json!({ "authorization": "Bearer " })), None);
        assert_eq!(init_token(&json!({})), None);
    }
}
