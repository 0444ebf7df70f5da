//! The hostile corpus: requests an attacker sends, each with the outcome the
//! gateway must give. Shared by the test (`tests/hostile.rs`, which asserts
//! every outcome) and the bench (`benches/hostile.rs`, which prints what each
//! costs the gateway in CPU and memory).
//!
//! Every entry goes over a real socket to a gateway serving the project's
//! own supergraph, its subgraphs replaced by one stub that counts what
//! reaches it, so an entry can assert that nothing was planned or fetched.

#![allow(dead_code)]

/// What the gateway must do with an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Refused with this status and `extensions.code`; nothing planned or fetched.
    Refused(u16, &'static str),
    /// Refused with this status and code once planned (variables are
    /// coerced to the plan's definitions); nothing fetched.
    Invalid(u16, &'static str),
    /// Refused with this status before any GraphQL (no code to check).
    Status(u16),
    /// Answered 200 (the operation is within every limit).
    Answered,
    /// The connection is closed without an answer.
    Closed,
}

/// One hostile request.
pub struct Entry {
    pub name: &'static str,
    /// The bytes sent; `pause` after the first `split` bytes (a slow client).
    pub bytes: Vec<u8>,
    pub outcome: Outcome,
}

/// A `POST /graphql` with a JSON body.
fn post(body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
         accept: application/graphql-response+json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A request to a REST route: `method path`, `headers` as written, `body`.
fn rest(method: &str, path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "{method} {path} HTTP/1.1\r\nhost: gateway\r\n{headers}connection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A JSON POST to a REST route.
fn rest_json(path: &str, body: &[u8]) -> Vec<u8> {
    rest("POST", path, "content-type: application/json\r\n", body)
}

/// A browser's `GET` of `path` (GraphiQL is on in the harness).
fn get(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nhost: gateway\r\naccept-encoding: gzip\r\nconnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// A request without a body: `method path` with `headers`.
fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

const PARTNER_USAGE: &str = "query($client: String!, $from: DateTime!, $to: DateTime!) { partnerUsage(client: $client, from: $from, to: $to) { document hour requests errors } }";

const SET_QUOTA: &str = "mutation($client: String!, $document: String!, $limit: Int) { setPartnerQuota(client: $client, document: $document, period: DAY, limit: $limit) }";

/// The partner manifest's `BrowseCatalog`.
const BROWSE_CATALOG: &str = "c4d98be025a9af9a712fa83f229c8aac280a90377ea9ab6003cb9bfb54cd1e74";

/// A `POST /graphql` of the trusted document `id` that names `client`.
fn as_client(client: &str, id: &str) -> Vec<u8> {
    client_body(client, &serde_json::json!({ "documentId": id }).to_string())
}

/// A `POST /graphql` of `body` that names `client`.
fn client_body(client: &str, body: &str) -> Vec<u8> {
    rest(
        "POST",
        "/graphql",
        &format!("content-type: application/json\r\ngraphql-client-name: {client}\r\n"),
        body.as_bytes(),
    )
}

fn query(text: &str) -> Vec<u8> {
    post(&serde_json::to_vec(&serde_json::json!({ "query": text })).unwrap())
}

fn with_variables(text: &str, variables: serde_json::Value) -> Vec<u8> {
    post(
        &serde_json::to_vec(&serde_json::json!({ "query": text, "variables": variables })).unwrap(),
    )
}

/// `fragment F{i} on Query { ...F{i-1} ...F{i-1} }`, `levels` deep.
fn fragment_bomb(levels: usize) -> String {
    let mut text = format!(
        "query {{ ...F{} }} fragment F0 on Query {{ __typename }}",
        levels - 1
    );
    for i in 1..levels {
        text.push_str(&format!(
            " fragment F{i} on Query {{ ...F{p} ...F{p} }}",
            p = i - 1
        ));
    }
    text
}

fn nested(open: &str, close: &str, levels: usize, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
}

/// `stockChanged` with its SKU list as `$skus`.
const STOCK_CHANGED: &str =
    "subscription($skus: [String!]) { stockChanged(skus: $skus) { sku available } }";

/// `[[…["APPLE"]…]]`, `levels` deep.
fn deep_list(levels: usize) -> serde_json::Value {
    let mut list = serde_json::json!(["APPLE"]);
    for _ in 1..levels {
        list = serde_json::json!([list]);
    }
    list
}

/// Every entry of the corpus.
pub fn entries() -> Vec<Entry> {
    use Outcome::*;
    let products =
        |fields: &str| format!("{{ products(first: 1) {{ edges {{ node {{ {fields} }} }} }} }}");
    let mut deep_json = String::from("1");
    for _ in 0..100 {
        deep_json = format!("[{deep_json}]");
    }
    let mut very_deep_json = String::from("1");
    for _ in 0..5_000 {
        very_deep_json = format!("[{very_deep_json}]");
    }
    vec![
        Entry {
            name: "fragment bomb 2^40 (1.6 KB)",
            bytes: query(&fragment_bomb(40)),
            outcome: Refused(400, "MAX_FIELDS_LIMIT"),
        },
        Entry {
            name: "fragment bomb 2^20",
            bytes: query(&fragment_bomb(20)),
            outcome: Refused(400, "MAX_FIELDS_LIMIT"),
        },
        Entry {
            name: "fragment bomb through nested selections",
            bytes: query(&{
                let mut text = String::from("{ ...N29 } fragment N0 on Query { products(first: 1) { totalCount } }");
                for i in 1..30 {
                    text.push_str(&format!(
                        " fragment N{i} on Query {{ products(first: 1) {{ edges {{ node {{ sku }} }} }} ...N{p} ...N{p} }}",
                        p = i - 1
                    ));
                }
                text
            }),
            outcome: Refused(400, "MAX_FIELDS_LIMIT"),
        },
        Entry {
            name: "aliased fragment bomb",
            bytes: query(&{
                let mut text = String::from("{ ...A24 } fragment A0 on Query { a: __typename }");
                for i in 1..25 {
                    text.push_str(&format!(" fragment A{i} on Query {{ ...A{p} ...A{p} }}", p = i - 1));
                }
                text
            }),
            outcome: Refused(400, "MAX_FIELDS_LIMIT"),
        },
        Entry {
            name: "inline fragments 10,000 deep",
            bytes: query(&nested("{ ... on Query ", "}", 10_000, "{ __typename }")),
            outcome: Refused(400, "GRAPHQL_PARSE_FAILED"),
        },
        Entry {
            name: "inline fragments 60 deep",
            bytes: query(&format!("{{ {} }}", nested("... on Query { ", "} ", 60, "__typename "))),
            outcome: Refused(400, "GRAPHQL_PARSE_FAILED"),
        },
        Entry {
            name: "selections 40 deep",
            bytes: query(&nested("{ me ", "}", 40, "{ id }")),
            outcome: Refused(400, "MAX_DEPTH_LIMIT"),
        },
        Entry {
            name: "selections 18 deep through fragments",
            bytes: query(&{
                let mut text = String::from("{ me { ...C4 } } fragment C0 on User { id }");
                for i in 1..5 {
                    text.push_str(&format!(
                        " fragment C{i} on User {{ orders {{ edges {{ node {{ customer {{ ...C{p} }} }} }} }} }}",
                        p = i - 1
                    ));
                }
                text
            }),
            outcome: Refused(400, "MAX_DEPTH_LIMIT"),
        },
        Entry {
            name: "one field 20,000 times (80 KB)",
            bytes: query(&products(&"sku ".repeat(20_000))),
            outcome: Refused(400, "MAX_TOKENS_LIMIT"),
        },
        Entry {
            name: "one field 4,900 times (within the limits)",
            bytes: query(&products(&"sku ".repeat(4_900))),
            outcome: Answered,
        },
        Entry {
            name: "conflicting arguments 1,000 times",
            bytes: query(&format!(
                "{{ me {{ {} }} }}",
                (0..1_000).map(|i| format!("orders(first: {i}) {{ totalCount }}")).collect::<Vec<_>>().join(" ")
            )),
            outcome: Refused(400, "GRAPHQL_VALIDATION_FAILED"),
        },
        Entry {
            name: "1,000 aliases",
            bytes: query(&products(&(0..1_000).map(|i| format!("a{i}: sku")).collect::<Vec<_>>().join(" "))),
            outcome: Refused(400, "MAX_ALIASES_LIMIT"),
        },
        Entry {
            name: "1,000 directives",
            bytes: query(&products(&"sku @include(if: true) ".repeat(1_000))),
            outcome: Refused(400, "MAX_DIRECTIVES_LIMIT"),
        },
        Entry {
            name: "180 KB of @include",
            bytes: query(&products(&"sku @include(if: false) ".repeat(7_000))),
            outcome: Refused(400, "MAX_TOKENS_LIMIT"),
        },
        Entry {
            name: "100 root fields",
            bytes: query(&format!("{{ {} }}", "me { id } ".repeat(100))),
            outcome: Refused(400, "MAX_ROOT_FIELDS_LIMIT"),
        },
        Entry {
            name: "introspection cycle 14 deep",
            bytes: query(&format!(
                "{{ __schema {{ types {{ {} }} }} }}",
                nested("fields { type { ", "} } ", 6, "name ")
            )),
            outcome: Answered,
        },
        Entry {
            name: "2,000 operations in one document",
            bytes: query(&(0..2_000).map(|i| format!("query Q{i} {{ __typename }}")).collect::<Vec<_>>().join(" ")),
            outcome: Refused(400, "GRAPHQL_VALIDATION_FAILED"),
        },
        Entry {
            name: "1,500 operations sharing one 3,000-field fragment",
            bytes: post(
                &serde_json::to_vec(&serde_json::json!({
                    "query": (0..1_500)
                        .map(|i| format!("query Q{i} {{ ...F }}"))
                        .chain([format!("fragment F on Query {{ me {{ {} }} }}", "id ".repeat(3_000))])
                        .collect::<Vec<_>>()
                        .join(" "),
                    "operationName": "Q0",
                }))
                .unwrap(),
            ),
            outcome: Refused(400, "MAX_FIELDS_LIMIT"),
        },
        Entry {
            name: "100 operations sharing one 40-field fragment (within the limits)",
            bytes: post(
                &serde_json::to_vec(&serde_json::json!({
                    "query": (0..100)
                        .map(|i| format!("query Q{i} {{ ...F }}"))
                        .chain([format!("fragment F on Query {{ me {{ {} }} }}", "id ".repeat(40))])
                        .collect::<Vec<_>>()
                        .join(" "),
                    "operationName": "Q7",
                }))
                .unwrap(),
            ),
            outcome: Answered,
        },
        Entry {
            name: "list literal 10,000 deep",
            bytes: query(&format!("{{ product(sku: {}) {{ sku }} }}", nested("[", "]", 10_000, "\"A\""))),
            outcome: Refused(400, "GRAPHQL_PARSE_FAILED"),
        },
        Entry {
            name: "list literal 60 deep",
            bytes: query(&format!("{{ product(sku: {}) {{ sku }} }}", nested("[", "]", 60, "\"A\""))),
            outcome: Refused(400, "GRAPHQL_PARSE_FAILED"),
        },
        Entry {
            name: "200 KB string literal",
            bytes: query(&format!("{{ product(sku: \"{}\") {{ sku }} }}", "A".repeat(200_000))),
            outcome: Answered,
        },
        Entry {
            name: "variables with 50,000 values",
            bytes: with_variables(
                "query($items: [OrderLineInput!]) { previewOrder(items: $items) { id } }",
                serde_json::json!({ "items": vec![0; 50_000] }),
            ),
            outcome: Refused(400, "MAX_VARIABLES_LIMIT"),
        },
        Entry {
            name: "variables nested 100 deep",
            bytes: post(format!("{{\"query\":\"query($v: String) {{ product(sku: $v) {{ sku }} }}\",\"variables\":{{\"v\":{deep_json}}}}}").as_bytes()),
            outcome: Refused(400, "MAX_VARIABLES_LIMIT"),
        },
        Entry {
            name: "variables nested 5,000 deep",
            bytes: post(format!("{{\"query\":\"{{ __typename }}\",\"variables\":{{\"v\":{very_deep_json}}}}}").as_bytes()),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "variables of the wrong type",
            bytes: with_variables("query($n: Int) { products(first: $n) { totalCount } }", serde_json::json!({ "n": "ten" })),
            outcome: Invalid(400, "BAD_USER_INPUT"),
        },
        Entry {
            name: "a batch of 1,000 operations",
            bytes: post(&serde_json::to_vec(&vec![serde_json::json!({ "query": "{ __typename }" }); 1_000]).unwrap()),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "query of the wrong type",
            bytes: post(br#"{"query": {"a": 1}}"#),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "malformed JSON",
            bytes: post(br#"{"query": "{ __typename }""#),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "invalid UTF-8 in the body",
            bytes: post(b"{\"query\": \"{ __typ\xff\xfeename }\"}"),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "NUL byte in the document",
            bytes: post(b"{\"query\": \"{ __typename \\u0000 }\"}"),
            outcome: Refused(400, "GRAPHQL_PARSE_FAILED"),
        },
        Entry {
            name: "body over 256 KiB",
            bytes: query(&format!("{{ product(sku: \"{}\") {{ sku }} }}", "A".repeat(300_000))),
            outcome: Status(413),
        },
        Entry {
            name: "Content-Length and Transfer-Encoding both (smuggling)",
            bytes: b"POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
                     content-length: 4\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
                     0\r\n\r\nGET /health HTTP/1.1\r\nhost: gateway\r\n\r\n"
                .to_vec(),
            outcome: Status(400),
        },
        Entry {
            name: "two different Content-Lengths (smuggling)",
            bytes: b"POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
                     content-length: 26\r\ncontent-length: 5\r\nconnection: close\r\n\r\n\
                     {\"query\":\"{ __typename }\"}"
                .to_vec(),
            outcome: Status(400),
        },
        Entry {
            name: "150 headers",
            bytes: {
                let mut head = String::from("GET /health HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n");
                for i in 0..150 {
                    head.push_str(&format!("x-h{i}: {i}\r\n"));
                }
                head.push_str("\r\n");
                head.into_bytes()
            },
            outcome: Status(431),
        },
        Entry {
            name: "a 100 KB header",
            bytes: format!(
                "POST /graphql HTTP/1.1\r\nhost: gateway\r\nx-big: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                "a".repeat(100_000)
            )
            .into_bytes(),
            outcome: Status(431),
        },
        Entry {
            name: "GraphiQL asset: a 60 KB path",
            bytes: get(&format!("/graphiql/assets/{}/graphiql.js", "a".repeat(60_000))),
            outcome: Status(404),
        },
        Entry {
            name: "GraphiQL asset: .. out of the folder",
            bytes: get("/graphiql/assets/../../../../etc/passwd"),
            outcome: Status(404),
        },
        Entry {
            name: "GraphiQL asset: .. escaped",
            bytes: get("/graphiql/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd"),
            outcome: Status(404),
        },
        Entry {
            name: "GraphiQL asset: NUL escaped",
            bytes: get("/graphiql/assets/x/graphiql.js%00.png"),
            outcome: Status(404),
        },
        Entry {
            name: "GraphiQL asset: NUL raw",
            bytes: get("/graphiql/assets/x/graphiql.js\0.png"),
            outcome: Status(400),
        },
        Entry {
            name: "GraphiQL asset: repeated slashes",
            bytes: get("//graphiql///assets////graphiql.js"),
            outcome: Status(404),
        },
        Entry {
            name: "GraphiQL asset: wrong method",
            bytes: b"DELETE /graphiql/assets/x/graphiql.js HTTP/1.1\r\nhost: gateway\r\n\
                     connection: close\r\n\r\n"
                .to_vec(),
            outcome: Status(405),
        },
        Entry {
            name: "GraphiQL asset: POST with a body",
            bytes: b"POST /graphiql/assets/x/graphiql.js HTTP/1.1\r\nhost: gateway\r\n\
                     content-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
                .to_vec(),
            outcome: Status(405),
        },
        Entry {
            name: "a head that never ends (slowloris, lane)",
            bytes: b"POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n".to_vec(),
            outcome: Closed,
        },
        Entry {
            name: "a head that never ends (slowloris, hyper)",
            bytes: b"GET /health HTTP/1.1\r\nhost: gateway\r\nx-a: b\r\n".to_vec(),
            outcome: Closed,
        },
        Entry {
            name: "a body that never ends",
            bytes: b"POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"query\"".to_vec(),
            outcome: Closed,
        },
        Entry {
            name: "SSE: a stream opened with a 10 KB token",
            bytes: request("GET", "/graphql", &[("x-graphql-event-stream-token", &"a".repeat(10_000)), ("accept", "text/event-stream")]),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "SSE: a token with a NUL in it",
            bytes: request("GET", &format!("/graphql?token=%00{}", "a".repeat(31)), &[("accept", "text/event-stream")]),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "SSE: a token that is not hex",
            bytes: request("DELETE", "/graphql?operationId=1", &[("x-graphql-event-stream-token", &"z".repeat(32))]),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "SSE: an operation POSTed to an unknown token",
            bytes: {
                let body = br#"{"query":"{ __typename }","extensions":{"operationId":"1"}}"#;
                let mut bytes = format!(
                    "POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
                     x-graphql-event-stream-token: {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
                    "0".repeat(32),
                    body.len()
                )
                .into_bytes();
                bytes.extend_from_slice(body);
                bytes
            },
            outcome: Refused(404, "NOT_FOUND"),
        },
        Entry {
            name: "SSE: a stream opened with an unknown token",
            bytes: request("GET", &format!("/graphql?token={}", "f".repeat(32)), &[("accept", "text/event-stream")]),
            outcome: Refused(404, "NOT_FOUND"),
        },
        Entry {
            name: "SSE: DELETE on an unknown token",
            bytes: request("DELETE", &format!("/graphql?operationId=x&token={}", "1".repeat(32)), &[]),
            outcome: Refused(404, "NOT_FOUND"),
        },
        Entry {
            name: "a connection that sends nothing",
            bytes: Vec::new(),
            outcome: Closed,
        },
        // REST routes (schema/rest/ordering-v1.yaml): refused before any
        // GraphQL runs, with the contract's error body.
        Entry {
            name: "REST: body over 256 KiB",
            bytes: rest_json(
                "/api/client/login",
                format!("{{\"device_id\": \"{}\"}}", "a".repeat(300_000)).as_bytes(),
            ),
            outcome: Refused(413, "PAYLOAD_TOO_LARGE"),
        },
        Entry {
            name: "REST: JSON nested 5,000 deep",
            bytes: rest_json(
                "/api/client/login",
                format!("{{\"device_id\": {very_deep_json}}}").as_bytes(),
            ),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "REST: malformed JSON",
            bytes: rest_json("/api/client/login", b"{\"device_id\": \"a\", "),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "REST: invalid UTF-8 in the body",
            bytes: rest_json("/api/client/login", b"{\"device_id\": \"\xff\xfe\", \"password\": \"x\"}"),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "REST: a body that is not an object",
            bytes: rest_json("/api/client/login", b"[1, 2, 3]"),
            outcome: Refused(400, "BAD_REQUEST"),
        },
        Entry {
            name: "REST: NUL in a field",
            bytes: rest_json(
                "/api/client/login",
                b"{\"device_id\": \"a\\u0000b\", \"password\": \"secret-pass\"}",
            ),
            outcome: Refused(400, "BAD_USER_INPUT"),
        },
        Entry {
            name: "REST: wrong type (a number for a string)",
            bytes: rest_json("/api/client/login", b"{\"device_id\": 7, \"password\": \"secret-pass\"}"),
            outcome: Refused(400, "BAD_USER_INPUT"),
        },
        Entry {
            name: "REST: a field repeated 40,000 times as a list",
            bytes: rest_json(
                "/api/client/login",
                format!(
                    "{{\"device_id\": [{}\"a\"], \"password\": \"secret-pass\"}}",
                    "\"a\",".repeat(40_000)
                )
                .as_bytes(),
            ),
            outcome: Refused(400, "BAD_USER_INPUT"),
        },
        Entry {
            name: "REST: a required field missing",
            bytes: rest_json("/api/client/login", b"{\"password\": \"secret-pass\"}"),
            outcome: Refused(400, "BAD_USER_INPUT"),
        },
        Entry {
            name: "REST: 8,000 order lines",
            bytes: rest(
                "POST",
                "/api/client/order/preview",
                "content-type: application/json\r\nauthorization: Bearer not-verified-here\r\n",
                format!(
                    "{{\"items\": [{}{{\"sku\": \"A\", \"qty\": 1}}]}}",
                    "{\"sku\": \"A\", \"qty\": 1},".repeat(7_999)
                )
                .as_bytes(),
            ),
            outcome: Refused(400, "MAX_VARIABLES_LIMIT"),
        },
        Entry {
            name: "stockChanged: 10,001 SKUs in variables",
            bytes: with_variables(
                STOCK_CHANGED,
                serde_json::json!({ "skus": vec!["APPLE"; 10_001] }),
            ),
            outcome: Refused(400, "MAX_VARIABLES_LIMIT"),
        },
        Entry {
            name: "stockChanged: SKU lists 100 deep",
            bytes: with_variables(STOCK_CHANGED, serde_json::json!({ "skus": deep_list(100) })),
            outcome: Refused(400, "MAX_VARIABLES_LIMIT"),
        },
        Entry {
            name: "stockChanged: a number for the SKU list",
            bytes: query("subscription { stockChanged(skus: 5) { sku } }"),
            outcome: Refused(400, "GRAPHQL_VALIDATION_FAILED"),
        },
        Entry {
            name: "stockChanged: an object in the SKU list variable",
            bytes: with_variables(STOCK_CHANGED, serde_json::json!({ "skus": [{ "sku": "APPLE" }] })),
            outcome: Invalid(400, "BAD_USER_INPUT"),
        },
        Entry {
            name: "stockChanged: null inside the SKU list",
            bytes: with_variables(STOCK_CHANGED, serde_json::json!({ "skus": ["APPLE", null] })),
            outcome: Invalid(400, "BAD_USER_INPUT"),
        },
        Entry {
            // The value itself is inventory's to refuse (BAD_USER_INPUT, its API tests).
            name: "stockChanged: a NUL in a SKU, over plain POST",
            bytes: with_variables(STOCK_CHANGED, serde_json::json!({ "skus": ["APP\u{0}LE"] })),
            outcome: Refused(406, "BAD_REQUEST"),
        },
        Entry {
            name: "stockChanged: an empty SKU list, over plain POST",
            bytes: with_variables(STOCK_CHANGED, serde_json::json!({ "skus": [] })),
            outcome: Refused(406, "BAD_REQUEST"),
        },
        Entry {
            name: "REST: qty and quantity both",
            bytes: rest(
                "POST",
                "/api/client/order/preview",
                "content-type: application/json\r\nauthorization: Bearer not-verified-here\r\n",
                b"{\"items\": [{\"sku\": \"A\", \"qty\": 1, \"quantity\": 1}]}",
            ),
            outcome: Refused(400, "BAD_USER_INPUT"),
        },
        Entry {
            name: "REST: no token where one is needed",
            bytes: rest_json("/api/client/order/preview", b"{\"items\": []}"),
            outcome: Refused(401, "UNAUTHENTICATED"),
        },
        Entry {
            name: "REST: wrong content type",
            bytes: rest(
                "POST",
                "/api/client/login",
                "content-type: text/plain\r\n",
                b"{\"device_id\": \"a\", \"password\": \"b\"}",
            ),
            outcome: Refused(415, "UNSUPPORTED_MEDIA_TYPE"),
        },
        Entry {
            name: "REST: wrong method",
            bytes: rest("DELETE", "/api/client/login", "", b""),
            outcome: Refused(405, "METHOD_NOT_ALLOWED"),
        },
        Entry {
            name: "REST: unknown path",
            bytes: rest_json("/api/client/teleport", b"{}"),
            outcome: Refused(404, "NOT_FOUND"),
        },
        Entry {
            name: "REST: dot segments toward /graphql",
            bytes: rest_json("/api/client/../../graphql", b"{}"),
            outcome: Refused(404, "NOT_FOUND"),
        },
        Entry {
            name: "REST: an encoded NUL in the path",
            bytes: rest_json("/api/client/log%00in", b"{}"),
            outcome: Refused(404, "NOT_FOUND"),
        },
        Entry {
            name: "REST: a 6 KB path",
            bytes: rest_json(&format!("/api/{}", "a/".repeat(3_000)), b"{}"),
            outcome: Refused(404, "NOT_FOUND"),
        },
        // The client name labels partner usage and quotas: whatever it says,
        // it adds no series and names no other client's documents.
        Entry {
            name: "a 6 KB client name with a partner document id",
            bytes: as_client(&"x".repeat(6 * 1024), BROWSE_CATALOG),
            outcome: Refused(200, "PERSISTED_QUERY_NOT_FOUND"),
        },
        Entry {
            name: "another client's name with a partner document id",
            bytes: as_client("ordering-v1", BROWSE_CATALOG),
            outcome: Refused(200, "PERSISTED_QUERY_NOT_FOUND"),
        },
        Entry {
            name: "a client name that is a path",
            bytes: as_client("../partner", BROWSE_CATALOG),
            outcome: Refused(200, "PERSISTED_QUERY_NOT_FOUND"),
        },
        Entry {
            name: "a client name with a NUL byte",
            bytes: as_client("part\0ner", BROWSE_CATALOG),
            outcome: Status(400),
        },
        Entry {
            name: "a client name of non-UTF-8 bytes",
            bytes: {
                let mut bytes = as_client("partner", BROWSE_CATALOG);
                let at = bytes.windows(7).position(|w| w == b"partner").unwrap();
                bytes[at] = 0xff;
                bytes
            },
            // Not a name at all: the request names no client, and any
            // manifest's document runs for a caller without a token.
            outcome: Answered,
        },
        // ADMIN's partner usage and quotas, answered by the gateway's own
        // subgraph in process: every argument checked, nobody without a
        // token let in.
        Entry {
            name: "partnerUsage for a 200 KB client name",
            bytes: with_variables(
                PARTNER_USAGE,
                serde_json::json!({ "client": "x".repeat(200_000), "from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z" }),
            ),
            outcome: Invalid(200, "UNAUTHENTICATED"),
        },
        Entry {
            name: "partnerUsage with a client of the wrong type",
            bytes: query("{ partnerUsage(client: 12, from: \"2026-12-01T00:00:00Z\", to: \"2026-12-02T00:00:00Z\") { hour } }"),
            outcome: Refused(400, "GRAPHQL_VALIDATION_FAILED"),
        },
        Entry {
            name: "setPartnerQuota with a limit of the wrong type",
            bytes: with_variables(SET_QUOTA, serde_json::json!({ "client": "partner", "document": "BrowseCatalog", "limit": "5" })),
            outcome: Invalid(400, "BAD_USER_INPUT"),
        },
        Entry {
            name: "setPartnerQuota with a limit past 32 bits",
            bytes: with_variables(SET_QUOTA, serde_json::json!({ "client": "partner", "document": "BrowseCatalog", "limit": 1e12 })),
            outcome: Invalid(400, "BAD_USER_INPUT"),
        },
        Entry {
            name: "setPartnerQuota with a NUL in the document name",
            bytes: with_variables(SET_QUOTA, serde_json::json!({ "client": "partner", "document": "Browse\u{0}Catalog", "limit": 5 })),
            outcome: Invalid(200, "UNAUTHENTICATED"),
        },
        Entry {
            name: "setPartnerQuota for a period that does not exist",
            bytes: query("mutation { setPartnerQuota(client: \"partner\", document: \"BrowseCatalog\", period: WEEK, limit: 5) }"),
            outcome: Refused(400, "GRAPHQL_VALIDATION_FAILED"),
        },
        Entry {
            name: "a document id of the wrong type beside a client name",
            bytes: client_body("partner", r#"{"documentId": ["c4d98be0", {"a": null}]}"#),
            outcome: Status(400),
        },
    ]
}

#[path = "harness.rs"]
mod harness;
// The test uses all three, the bench only the harness.
#[allow(unused_imports)]
pub use harness::{Answer, HEAD_TIMEOUT, Harness};
