//! The hostile corpus of configuration files (`grocery serve gateway
//! --config`): each file, and a fragment of the problem it must be refused
//! with (file, line and key path where it has one). Nothing of a refused
//! file is used: the gateway does not start.

/// One hostile configuration file.
pub struct ConfigEntry {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    /// What the list of problems must contain.
    pub problem: String,
}

fn entry(name: &'static str, bytes: impl Into<Vec<u8>>, problem: &str) -> ConfigEntry {
    ConfigEntry {
        name,
        bytes: bytes.into(),
        problem: problem.to_owned(),
    }
}

/// Every hostile file; `file` is the path they are written to.
pub fn config_entries(file: &str) -> Vec<ConfigEntry> {
    let many_headers: String = (0..40).map(|i| format!("      x-h{i}: v\n")).collect();
    vec![
        entry(
            "huge: 2 MiB of comments",
            "# padding\n".repeat(210_000),
            "larger than 1048576 bytes",
        ),
        entry(
            "deep: flow lists 100,000 deep",
            format!("introspection: {}", "[".repeat(100_000)),
            "nested deeper than 32 levels",
        ),
        entry(
            "deep: block lists 100,000 deep on one line",
            format!("introspection:\n  {}x\n", "- ".repeat(100_000)),
            "nested deeper than 32 levels",
        ),
        entry(
            "deep: mappings indented 1,000 levels",
            (0..1_000)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                .collect::<String>(),
            "nested deeper than 32 levels",
        ),
        entry("NUL byte", "graphiql: true\0\n", "holds a NUL byte"),
        entry(
            "invalid UTF-8",
            b"graphiql: \xff\xfe\n".to_vec(),
            "is not UTF-8",
        ),
        entry(
            "malformed: an unclosed flow mapping",
            "limits: {max_depth: 3\n",
            &format!("{file}:"),
        ),
        entry(
            "repeated: a key twice",
            "introspection: true\nintrospection: false\n",
            "Duplicate key \"introspection\"",
        ),
        entry(
            "bomb: anchors and aliases",
            "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
            "Unexpected definition of anchor",
        ),
        entry(
            "alias without an anchor",
            "graphiql: *x\n",
            &format!("{file}:"),
        ),
        entry(
            "a YAML tag",
            "graphiql: !!binary aGk=\n",
            "Unexpected use of YAML tag",
        ),
        entry(
            "top level a list",
            "- introspection\n",
            "Top level must be a mapping",
        ),
        entry(
            "wrong type: a number for a group",
            "limits: 5\n",
            &format!("{file}:1: limits: expected a mapping, got \"5\""),
        ),
        entry(
            "wrong type: text for a number",
            "limits:\n  max_depth: deep\n",
            &format!("{file}:2: limits.max_depth: expected a whole number, got \"deep\""),
        ),
        entry(
            "wrong type: a quoted number",
            "limits:\n  max_depth: \"15\"\n",
            "limits.max_depth: expected a whole number, got \"15\"",
        ),
        entry(
            "wrong type: a negative number",
            "limits:\n  max_depth: -1\n",
            "limits.max_depth: expected a whole number, got \"-1\"",
        ),
        entry(
            "wrong type: a quoted boolean",
            "graphiql: \"yes\"\n",
            "graphiql: expected true or false, got \"yes\"",
        ),
        entry(
            "wrong type: request deduplication as text",
            "request_deduplication: \"on\"\n",
            "request_deduplication: expected true or false, got \"on\"",
        ),
        entry(
            "wrong type: request deduplication as a mapping",
            "request_deduplication:\n  enabled: true\n",
            "request_deduplication: expected true or false",
        ),
        entry(
            "wrong type: a list for a number",
            "serving:\n  threads: [1, 2]\n",
            "serving.threads: expected a whole number, got a list",
        ),
        entry(
            "wrong type: a nested list item",
            "cors:\n  allow_headers: [[x-a]]\n",
            "cors.allow_headers: expected a list of texts, got a list in it",
        ),
        entry(
            "unknown key at the top",
            "introspection: true\nlistner:\n  port: 1\n",
            &format!("{file}:2: listner: unknown key"),
        ),
        entry(
            "unknown key of a subgraph",
            "subgraphs:\n  orders:\n    timout: 5s\n",
            &format!("{file}:3: subgraphs.orders.timout: unknown key"),
        ),
        entry(
            "bad duration",
            "subgraphs:\n  orders:\n    timeout: abc\n",
            &format!(
                "{file}:3: subgraphs.orders.timeout: expected a duration such as \"5s\", got \"abc\""
            ),
        ),
        entry(
            "a subgraph name that would split its variable",
            "subgraphs:\n  \"a=b,c\":\n    timeout: 1s\n",
            "subgraphs.a=b,c: a subgraph name is letters, digits, `_` and `-`",
        ),
        entry(
            "a comma in a subgraph's URL",
            "subgraphs:\n  orders:\n    url: http://a,b=http://c\n",
            "subgraphs.orders.url: a subgraph's value cannot hold a comma",
        ),
        entry(
            "hop-by-hop header",
            "subgraphs:\n  orders:\n    headers:\n      Connection: close\n",
            "subgraphs.orders.headers.Connection: connection is a header the gateway sets \
             itself or a hop-by-hop one",
        ),
        entry(
            "a forwarded header set statically",
            "subgraphs:\n  orders:\n    headers:\n      authorization: Bearer x\n",
            "subgraphs.orders.headers.authorization: authorization is a header the gateway",
        ),
        entry(
            "invalid header name",
            "subgraphs:\n  orders:\n    headers:\n      \"x tenant\": a\n",
            "subgraphs.orders.headers.x tenant: \"x tenant\" is not a header name",
        ),
        entry(
            "header value with a line break",
            "subgraphs:\n  orders:\n    headers:\n      x-a: \"a\\r\\nx-b: smuggled\"\n",
            "the value of x-a has a character a header may not carry",
        ),
        entry(
            "header value of 100 KB",
            format!(
                "subgraphs:\n  orders:\n    headers:\n      x-a: {}\n",
                "v".repeat(100_000)
            ),
            "the value of x-a is longer than 8192 bytes",
        ),
        entry(
            "40 headers for one subgraph",
            format!("subgraphs:\n  orders:\n    headers:\n{many_headers}"),
            "subgraphs.orders.headers: more than 32 headers",
        ),
        entry(
            "headers as a list",
            "subgraphs:\n  orders:\n    headers: [x-a]\n",
            "subgraphs.orders.headers: expected a mapping of header names to values, got a list",
        ),
        entry(
            "a subgraph's value its setting's reader refuses, at that subgraph's line",
            "subgraphs:\n  users:\n    url: http://users:4001/graphql\n  orders:\n    url: ftp://orders\n",
            &format!("{file}:5: subgraphs.orders.url: SUBGRAPH_URLS: \"orders=ftp://orders\""),
        ),
        entry(
            "a value the setting's reader refuses",
            "limits:\n  max_errors: 0\n",
            &format!("{file}:2: limits.max_errors: MAX_ERRORS must be at least 1"),
        ),
    ]
}
