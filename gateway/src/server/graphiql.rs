//! GraphiQL, shipped inside the gateway: the page a browser's GET `/graphql`
//! gets when `GRAPHIQL` is on, and the files it loads, embedded from
//! `gateway/graphiql/dist/` (built by `gateway/graphiql/build.sh` from pinned
//! npm versions; the tests below hold the files to its `manifest.json`). The
//! page asks no other host for anything, so it works offline.
//!
//! The files are served under `/graphiql/assets/<bundle>/<file>`, where
//! `<bundle>` is a hash of every file's bytes: a URL always names the same
//! bytes, so it is cached for a year as `immutable`, and the files can name
//! each other relatively (the style sheet its font). Each has an ETag and a
//! gzip variant built beside it, and the page's tags carry its Subresource
//! Integrity hash.
//!
//! The page's Content-Security-Policy lets scripts, workers, fonts and images
//! come from the gateway alone, and connections go to it alone (HTTP, and
//! WebSocket for subscriptions). Styles may also be inline: Monaco, GraphiQL's
//! editor, writes `style` attributes and `<style>` elements as it lays out
//! text, and cannot give them a nonce.
//!
//! Uses nothing of the gateway; [`crate::server::routes`] serves it.

use std::sync::LazyLock;

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine;
use sha2::{Digest, Sha384};

/// The route of the assets, for the router.
pub const ASSETS_ROUTE: &str = "/graphiql/assets/{*file}";

/// The editor's first text: what the page is and how to sign in.
const DEFAULT_QUERY: &str = "\
# GraphiQL, served by the gateway itself (it needs no other site).
#
# Queries and mutations go over HTTP POST to /graphql, subscriptions
# over WebSocket (graphql-transport-ws) on the same URL.
#
# To sign in, run the login mutation, copy accessToken from its answer
# and paste it into the Headers tab below, as
#   {\"authorization\": \"Bearer <access token from the login mutation>\"}
# Subscriptions send the same headers when they connect.
#
# Run with Ctrl-Enter; Ctrl-Space completes; Docs (left) shows the schema.

{
  __typename
}
";

/// The headers editor's first text. GraphiQL reads it as JSON with
/// comments, so the token's line waits there, commented out.
const DEFAULT_HEADERS: &str = r#"{
  // To sign in, run the login mutation,
  // uncomment the line below and put
  // its accessToken in place of the <…>:
  // "authorization": "Bearer <access token from the login mutation>"
}
"#;

/// A file of `gateway/graphiql/dist/`, embedded with its gzip variant.
struct File {
    name: &'static str,
    media: &'static str,
    body: &'static [u8],
    gzip: &'static [u8],
}

macro_rules! dist {
    ($name:literal, $media:expr) => {
        File {
            name: $name,
            media: $media,
            body: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/graphiql/dist/",
                $name
            )),
            gzip: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/graphiql/dist/",
                $name,
                ".gz"
            )),
        }
    };
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Every file build.sh writes but the manifest.
static FILES: [File; 7] = [
    dist!("graphiql.js", JAVASCRIPT),
    dist!("graphiql.css", "text/css; charset=utf-8"),
    dist!("editor.worker.js", JAVASCRIPT),
    dist!("json.worker.js", JAVASCRIPT),
    dist!("graphql.worker.js", JAVASCRIPT),
    dist!("codicon.ttf", "font/ttf"),
    dist!("THIRD-PARTY-LICENSES.txt", "text/plain; charset=utf-8"),
];

/// A file as served: its URL path, integrity and ETags.
struct Asset {
    file: &'static File,
    /// `/graphiql/assets/<bundle>/<name>`.
    path: String,
    /// `sha384-<base64>`, for the page's tags.
    integrity: String,
    etag: HeaderValue,
    gzip_etag: HeaderValue,
}

/// The files with their hashes, computed once, when GraphiQL is first asked for.
static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    let digests: Vec<_> = FILES.iter().map(|f| Sha384::digest(f.body)).collect();
    let mut bundle = Sha384::new();
    for digest in &digests {
        bundle.update(digest);
    }
    let bundle = hex(&bundle.finalize()[..8]);
    FILES
        .iter()
        .zip(&digests)
        .map(|(file, digest)| {
            let tag = hex(&digest[..12]);
            Asset {
                file,
                path: format!("/graphiql/assets/{bundle}/{}", file.name),
                integrity: format!(
                    "sha384-{}",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                ),
                etag: HeaderValue::try_from(format!("\"{tag}\"")).expect("hex is a header value"),
                gzip_etag: HeaderValue::try_from(format!("\"{tag}-gzip\""))
                    .expect("hex is a header value"),
            }
        })
        .collect()
});

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn asset(name: &str) -> &'static Asset {
    ASSETS
        .iter()
        .find(|a| a.file.name == name)
        .expect("an embedded file")
}

/// The GraphiQL page, for a browser's GET `/graphql`.
pub fn page(headers: &HeaderMap) -> Response {
    // Relative URLs (the page is `/graphql`): they hold behind a proxy
    // that serves the gateway under a path of its own.
    let relative = |name: &str| asset(name).path[1..].to_owned();
    let config = serde_json::json!({
        "endpoint": "graphql",
        "workers": {
            "editor": relative("editor.worker.js"),
            "json": relative("json.worker.js"),
            "graphql": relative("graphql.worker.js"),
        },
        "defaultQuery": DEFAULT_QUERY,
        "defaultHeaders": DEFAULT_HEADERS,
    })
    .to_string()
    // Inside <script>, `</script>` would end it: JSON may spell `<` as \u003c.
    .replace('<', "\\u003c");
    let (script, style) = (asset("graphiql.js"), asset("graphiql.css"));
    let html = format!(
        "<!doctype html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>GraphiQL</title>\n\
         <link rel=\"icon\" href=\"data:,\">\n\
         <link rel=\"stylesheet\" href=\"{}\" integrity=\"{}\">\n\
         <script id=\"graphiql-config\" type=\"application/json\">{config}</script>\n\
         <script src=\"{}\" integrity=\"{}\" defer></script>\n\
         </head>\n\
         <body>\n\
         <div id=\"graphiql\">Loading GraphiQL…<noscript> (it needs JavaScript)</noscript></div>\n\
         </body>\n\
         </html>\n",
        relative(style.file.name),
        style.integrity,
        relative(script.file.name),
        script.integrity,
    );
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        html,
    )
        .into_response();
    if let Ok(policy) = HeaderValue::try_from(content_security_policy(headers)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// The page's policy: everything from the gateway, nothing from elsewhere.
/// Its WebSocket address is named as well (`'self'` covers `ws:` only in
/// browsers that follow CSP level 3), from the `Host` the browser sent
/// when it is a plain host and port.
fn content_security_policy(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    let sockets = host.map_or(String::new(), |h| format!(" ws://{h} wss://{h}"));
    format!(
        "default-src 'none'; script-src 'self'; worker-src 'self'; \
         style-src 'self' 'unsafe-inline'; font-src 'self'; img-src 'self' data:; \
         connect-src 'self'{sockets}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

/// GET (and HEAD) `/graphiql/assets/<bundle>/<file>`: the file, gzipped
/// when the client accepts it; 304 when the client has it; 404 for any
/// other path (the path is compared as sent, never decoded or mapped to
/// the file system).
pub async fn serve_asset(request: Request) -> Response {
    let path = request.uri().path();
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let headers = request.headers();
    let gzip = accepts_gzip(headers);
    let (body, etag) = if gzip {
        (asset.file.gzip, &asset.gzip_etag)
    } else {
        (asset.file.body, &asset.etag)
    };
    let mut response = if has_current(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Body::from(Bytes::from_static(body)).into_response();
        let set = response.headers_mut();
        set.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.file.media),
        );
        if gzip {
            set.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    };
    let set = response.headers_mut();
    set.insert(header::ETAG, etag.clone());
    set.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    set.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    set.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Whether `Accept-Encoding` lists gzip with a weight above zero.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let weight = parts
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, q)| q.trim().parse::<f32>().unwrap_or(0.0));
            (name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip"))
                && weight > 0.0
        })
}

/// Whether `If-None-Match` names `etag` (or `*`): the client's copy is
/// current. Compared weakly, as RFC 9110 asks for this header.
fn has_current(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| {
            tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == etag.as_bytes()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dist/manifest.json` as build.sh wrote it.
    fn manifest() -> serde_json::Value {
        serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/graphiql/dist/manifest.json"
        )))
        .unwrap()
    }

    #[test]
    fn the_embedded_files_are_the_ones_build_sh_wrote() {
        let manifest = manifest();
        let listed = manifest["files"].as_object().unwrap();
        let embedded: Vec<_> = FILES.iter().map(|f| f.name).collect();
        let mut names: Vec<_> = listed.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut sorted = embedded.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted, names,
            "FILES and dist/manifest.json list other files"
        );
        for file in &FILES {
            let entry = &listed[file.name];
            let sha384 =
                base64::engine::general_purpose::STANDARD.encode(Sha384::digest(file.body));
            assert_eq!(
                entry["sha384"], sha384,
                "dist/{} is not what gateway/graphiql/build.sh built: rebuild it with the script, never by hand",
                file.name
            );
            assert_eq!(entry["bytes"], file.body.len(), "{}", file.name);
            assert_eq!(entry["gzip"], file.gzip.len(), "dist/{}.gz", file.name);
        }
    }

    #[test]
    fn gzip_is_offered_only_when_accepted() {
        let accepts = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            accepts_gzip(&headers)
        };
        assert!(accepts("gzip, deflate, br, zstd"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("br, identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_compares_weakly_and_in_lists() {
        let etag = HeaderValue::from_static("\"abc\"");
        let current = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            has_current(&headers, &etag)
        };
        assert!(current("\"abc\""));
        assert!(current("W/\"abc\""));
        assert!(current("\"old\", \"abc\""));
        assert!(current("*"));
        assert!(!current("\"abc-gzip\""));
        assert!(!current("abc"));
    }

    #[test]
    fn the_policy_names_the_gateways_websocket_only_for_a_plain_host() {
        let policy = |host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            content_security_policy(&headers)
        };
        assert!(
            policy("127.0.0.1:4000")
                .contains("connect-src 'self' ws://127.0.0.1:4000 wss://127.0.0.1:4000;")
        );
        assert!(policy("[::1]:4000").contains("ws://[::1]:4000 "));
        assert!(policy("evil; script-src *").contains("connect-src 'self';"));
        assert!(!policy("evil; script-src *").contains("evil"));
    }
}
