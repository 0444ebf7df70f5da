//! The gateway's introspection against the reference implementation: for
//! the standard introspection query with every option on (descriptions,
//! `specifiedByURL`, `isRepeatable`, the schema's description, deprecated
//! arguments and input fields, `isOneOf`), the gateway's answer over the
//! committed supergraph equals what graphql-js (npm `graphql`) answers for
//! the same API schema, built-in directives included.

mod support;

use std::{io::Write, process::Command, sync::Arc};

use graphql_tools::parser::schema::{Definition, Document, TypeDefinition};
use serde_json::{Value, json};

/// The API schema as SDL graphql-js can build: without the introspection
/// types and entry points, the built-in scalars and directives (graphql-js
/// brings its own).
fn api_sdl(schema: &Document<'static, String>) -> String {
    const BUILT_IN_DIRECTIVES: [&str; 5] =
        ["skip", "include", "deprecated", "specifiedBy", "oneOf"];
    const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];
    let mut document = schema.clone();
    document
        .definitions
        .retain_mut(|definition| match definition {
            Definition::DirectiveDefinition(d) => !BUILT_IN_DIRECTIVES.contains(&d.name.as_str()),
            Definition::TypeDefinition(TypeDefinition::Scalar(s)) => {
                !BUILT_IN_SCALARS.contains(&s.name.as_str())
            }
            Definition::TypeDefinition(TypeDefinition::Object(o)) => {
                o.fields.retain(|f| !f.name.starts_with("__"));
                !o.name.starts_with("__")
            }
            Definition::TypeDefinition(TypeDefinition::Enum(e)) => !e.name.starts_with("__"),
            _ => true,
        });
    document.to_string()
}

/// Types and directives in name order (their order in the list is not
/// part of the contract); everything else as answered.
fn normalized(mut schema: Value) -> Value {
    for list in ["types", "directives"] {
        if let Some(Value::Array(items)) = schema.get_mut(list) {
            items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        }
    }
    schema
}

#[tokio::test]
async fn introspection_answers_as_graphql_js_does() {
    let sdl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/supergraph.graphql"
    ))
    .unwrap();
    let options = gateway::GatewayOptions {
        introspection: true,
        ..Default::default()
    };
    let gw = Arc::new(gateway::Gateway::new(&sdl, None, &options).unwrap());
    let api = api_sdl(gw.current().supergraph.api_schema());

    let dir = support::node::package("graphql-http");
    let mut child = Command::new("node")
        .arg("introspection.mjs")
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(api.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "graphql-js refused the API schema: {}\n{api}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();

    use tower::ServiceExt;
    let request = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({ "query": reference["query"] }).to_string(),
        ))
        .unwrap();
    let response = gateway::router(gw).oneshot(request).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert!(answer.get("errors").is_none(), "{answer}");

    let ours = normalized(answer["data"]["__schema"].clone());
    let theirs = normalized(reference["data"]["__schema"].clone());
    let mut differences = Vec::new();
    for key in [
        "description",
        "queryType",
        "mutationType",
        "subscriptionType",
    ] {
        if ours[key] != theirs[key] {
            differences.push(format!(
                "{key}: ours {} graphql-js {}",
                ours[key], theirs[key]
            ));
        }
    }
    for list in ["types", "directives"] {
        let names = |v: &Value| -> Vec<String> {
            v[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect()
        };
        if names(&ours) != names(&theirs) {
            differences.push(format!(
                "{list}: ours {:?}\n graphql-js {:?}",
                names(&ours),
                names(&theirs)
            ));
            continue;
        }
        for (a, b) in ours[list]
            .as_array()
            .unwrap()
            .iter()
            .zip(theirs[list].as_array().unwrap())
        {
            if a != b {
                differences.push(format!("{}:\n ours       {a}\n graphql-js {b}", a["name"]));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences from graphql-js {}:\n{}",
        differences.len(),
        reference["version"],
        differences.join("\n")
    );
}
