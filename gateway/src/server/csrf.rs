//! Cross-site request forgery prevention, by Apollo Router's rules: an
//! operation runs only when a browser would have asked the CORS policy first
//! (a preflight), so a page on another origin cannot make a visitor's
//! browser run one, whatever the CORS policy lets it read afterwards.
//!
//! A browser sends without a preflight a GET or POST whose content type is
//! missing or one of the three an HTML form can produce (`text/plain`,
//! `application/x-www-form-urlencoded`, `multipart/form-data`) and which
//! carries no header of the page's own. So a request counts as preflighted
//! when its content type is anything else (`application/json`) or when it
//! carries one of the required headers (present, whatever its value), which
//! only a script can add and which then triggers the preflight. A content
//! type that does not parse as one media type counts as not preflighted,
//! erring on the safe side as Apollo Router does. Used by
//! [`crate::server::routes`] for POST `/graphql`.
//!
//! A GET query cannot change anything (mutations over GET are refused with
//! 405), and a page on another site cannot read its answer (CORS), so GET is
//! refused only when the browser itself says the request comes from another
//! site (Fetch Metadata: `Sec-Fetch-Site: cross-site` or `same-site`) and it
//! carries no mark. Apollo Router refuses every unmarked GET instead; that
//! also refuses every client that is not a browser and sends no mark (the
//! GraphQL-over-HTTP audit's GETs among them), for no protection a browser
//! does not already give.

use axum::http::{HeaderMap, HeaderName, header};

/// The content types a browser sends cross-site without a preflight.
pub const SIMPLE_CONTENT_TYPES: [&str; 3] = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
];

/// The headers that mark a request as sent by a script, by default:
/// Apollo's two (Apollo Client and Apollo's tooling send them) and
/// `graphql-preflight`.
pub const DEFAULT_REQUIRED_HEADERS: [&str; 3] = [
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "graphql-preflight",
];

/// The `extensions.code` of a refused request (Apollo Router's).
pub const CODE: &str = "CSRF_ERROR";

/// Which requests run without a preflight-proof mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrfPolicy {
    /// Off lets simple requests run (unsafe outside tests and trusted networks).
    pub enabled: bool,
    /// Headers any of which marks a request as preflighted.
    pub required_headers: Vec<HeaderName>,
}

impl Default for CsrfPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            required_headers: DEFAULT_REQUIRED_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect(),
        }
    }
}

impl CsrfPolicy {
    /// Off: every request runs (`CSRF_PREVENTION=false`).
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Parses `CSRF_REQUIRED_HEADERS`: comma-separated header names; blank
    /// means the defaults. The bad names, if any, as the error.
    pub fn with_headers(list: &str) -> Result<Self, String> {
        if list.trim().is_empty() {
            return Ok(Self::default());
        }
        let mut required_headers = Vec::new();
        let mut bad = Vec::new();
        for name in list.split(',').map(str::trim) {
            match HeaderName::try_from(name.to_ascii_lowercase()) {
                // A name a browser sets itself would mark every request.
                Ok(h) if !name.is_empty() && !is_safelisted(&h) => required_headers.push(h),
                _ => bad.push(format!("{name:?}")),
            }
        }
        if bad.is_empty() {
            Ok(Self {
                enabled: true,
                required_headers,
            })
        } else {
            Err(format!(
                "{} not usable (header names a browser does not set on its own)",
                bad.join(", ")
            ))
        }
    }

    /// `None` when the request may run; else the refusal's message, which
    /// says what to add.
    pub fn refusal(&self, headers: &HeaderMap) -> Option<String> {
        if !self.enabled || preflighted(headers, &self.required_headers) {
            return None;
        }
        let names: Vec<&str> = self.required_headers.iter().map(|h| h.as_str()).collect();
        Some(format!(
            "This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). \
             Please either specify a 'content-type' header (with a mime-type that is not one of \
             {}) or provide one of the following headers: {}",
            SIMPLE_CONTENT_TYPES.join(", "),
            names.join(", ")
        ))
    }

    /// [`Self::refusal`] for a GET query: only when a browser says it was
    /// sent from another site (see the module doc).
    pub fn refusal_of_get(&self, headers: &HeaderMap) -> Option<String> {
        let from_another_site = headers
            .get("sec-fetch-site")
            .is_some_and(|site| site != "same-origin" && site != "none");
        if from_another_site {
            self.refusal(headers)
        } else {
            None
        }
    }

    /// The header names CORS preflights must allow for these to be sent.
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        self.required_headers.iter().map(HeaderName::as_str)
    }
}

/// Whether a browser would have preflighted a request with `headers`.
pub fn preflighted(headers: &HeaderMap, required: &[HeaderName]) -> bool {
    content_type_needs_preflight(headers) || required.iter().any(|h| headers.contains_key(h))
}

/// The CORS-safelisted request headers (fetch spec) a page may set without a
/// preflight: none of them can serve as the mark.
fn is_safelisted(name: &HeaderName) -> bool {
    [
        header::ACCEPT,
        header::ACCEPT_LANGUAGE,
        header::CONTENT_LANGUAGE,
        header::CONTENT_TYPE,
        header::RANGE,
    ]
    .contains(name)
}

/// Whether the content type (every `Content-Type` line, combined as the
/// fetch spec combines them) is one a browser preflights: it parses as one
/// media type that is not a form's. Absent or unparsable: no.
fn content_type_needs_preflight(headers: &HeaderMap) -> bool {
    let mut combined = String::new();
    for value in headers.get_all(header::CONTENT_TYPE) {
        let Ok(text) = value.to_str() else {
            return false;
        };
        if !combined.is_empty() {
            combined.push_str(", ");
        }
        combined.push_str(&text.trim().replace('\t', " "));
    }
    match combined.parse::<mime::Mime>() {
        Ok(media) => !SIMPLE_CONTENT_TYPES.contains(&media.essence_str()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn simple_requests_are_refused_unless_marked() {
        let policy = CsrfPolicy::default();
        for simple in [
            &[][..],
            &[("content-type", "text/plain")],
            &[("content-type", "text/plain; charset=utf-8")],
            &[("content-type", "TEXT/PLAIN")],
            &[("content-type", "application/x-www-form-urlencoded")],
            &[("content-type", "multipart/form-data; boundary=x")],
            // Not one media type: not trusted to have been preflighted.
            &[("content-type", "application/json, text/plain")],
            &[
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
            ],
            &[("content-type", "json")],
            &[("content-type", "")],
            &[
                ("origin", "http://evil.example"),
                ("content-type", "text/plain"),
            ],
        ] {
            let message = policy.refusal(&headers(simple));
            assert!(
                message
                    .as_deref()
                    .is_some_and(|m| m.contains("apollo-require-preflight")),
                "{simple:?}: {message:?}"
            );
        }
        for marked in [
            &[("content-type", "application/json")][..],
            &[("content-type", "application/json; charset=utf-8")],
            &[("content-type", "application/graphql-response+json")],
            &[
                ("content-type", "text/plain"),
                ("apollo-require-preflight", "true"),
            ],
            &[("x-apollo-operation-name", "")],
            &[("graphql-preflight", "1")],
        ] {
            assert_eq!(policy.refusal(&headers(marked)), None, "{marked:?}");
        }
        assert_eq!(CsrfPolicy::disabled().refusal(&headers(&[])), None);
    }

    #[test]
    fn required_headers_are_configurable_but_never_safelisted_ones() {
        let policy = CsrfPolicy::with_headers(" X-Requested-By ,x-csrf").unwrap();
        assert_eq!(
            policy.header_names().collect::<Vec<_>>(),
            ["x-requested-by", "x-csrf"]
        );
        assert_eq!(policy.refusal(&headers(&[("x-requested-by", "app")])), None);
        assert!(
            policy
                .refusal(&headers(&[("apollo-require-preflight", "1")]))
                .is_some()
        );
        assert_eq!(
            CsrfPolicy::with_headers("  ").unwrap(),
            CsrfPolicy::default()
        );
        for bad in ["accept", "content-type,x-ok", "x ok", "x-ok,,", "\u{0}"] {
            let err = CsrfPolicy::with_headers(bad).unwrap_err();
            assert!(err.contains("not usable"), "{bad:?}: {err}");
        }
    }
}
