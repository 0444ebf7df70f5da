//! The OpenAPI 3.1 document of the REST routes, generated from the route
//! files: request bodies, parameters and answers typed from the GraphQL
//! types of the variables and picks, and the rules that reshape them; and a
//! page that shows it to people, with nothing loaded from elsewhere.

use std::collections::BTreeSet;

use graphql_tools::parser::schema as s;
use serde_json::{Map, Value, json};

use crate::rest::routes::{Input, Kind, Route, Shape, Source, Table, Token, Ty};

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/openapi.json";
/// Where its page is served.
pub const DOCS_PATH: &str = "/api/docs";

/// The OpenAPI 3.1 document of every route of `table`.
pub fn document(table: &Table) -> Value {
    let (title, version, description) = match table.apis.as_slice() {
        [one] => (
            one.title.clone(),
            one.version.clone(),
            one.description.clone().unwrap_or_default(),
        ),
        apis => (
            "REST endpoints".to_owned(),
            "1".to_owned(),
            apis.iter()
                .map(|a| a.title.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    };
    let mut paths = Map::new();
    for api in &table.apis {
        for route in &api.routes {
            let entry = paths.entry(route.path.clone()).or_insert_with(|| json!({}));
            entry[route.method.as_str().to_ascii_lowercase()] = operation(route, &api.title);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": title, "version": version, "description": description },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "status": { "type": "string", "const": "error" },
                        "code": { "type": "string", "description": "The GraphQL error's extensions.code." },
                        "message": { "type": "string" }
                    },
                    "additionalProperties": true
                }
            }
        }
    })
}

fn operation(route: &Route, tag: &str) -> Value {
    let mut op = Map::new();
    op.insert("tags".into(), json!([tag]));
    op.insert("operationId".into(), json!(route.document.name));
    if let Some(summary) = &route.summary {
        op.insert("summary".into(), json!(summary));
    }
    op.insert(
        "description".into(),
        json!(format!(
            "Runs the trusted document `{}` of manifest `{}`.",
            route.document.name, route.document.manifest
        )),
    );
    let mut parameters = Vec::new();
    let mut seen = BTreeSet::new();
    let mut body = BodySchema::default();
    for variable in &route.variables {
        collect(
            &variable.input,
            &variable.ty,
            &mut body,
            &mut parameters,
            &mut seen,
        );
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    if route.reads_body() {
        op.insert(
            "requestBody".into(),
            json!({
                "required": true,
                "content": { "application/json": { "schema": body.into_schema() } }
            }),
        );
    }
    if route.token != Token::None {
        op.insert("security".into(), json!([{ "bearer": [] }]));
    }
    let mut responses = Map::new();
    responses.insert(
        route.status.as_u16().to_string(),
        json!({
            "description": "Success",
            "content": { "application/json": { "schema": answer_schema(&route.answer, route, "") } }
        }),
    );
    let mut statuses: BTreeSet<u16> = route.errors.statuses.values().map(|s| s.as_u16()).collect();
    statuses.insert(500);
    if route.reads_body() {
        statuses.extend([400, 413, 415]);
    }
    for status in statuses {
        let codes: Vec<&str> = route
            .errors
            .statuses
            .iter()
            .filter(|(_, s)| s.as_u16() == status)
            .map(|(c, _)| c.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let description = if codes.is_empty() {
            default_reason(status).to_owned()
        } else {
            codes.join(", ")
        };
        responses.insert(
            status.to_string(),
            json!({
                "description": description,
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
            }),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

fn default_reason(status: u16) -> &'static str {
    match status {
        400 => "Malformed body",
        413 => "Body too large",
        415 => "Body not JSON",
        _ => "Internal error",
    }
}

/// A request body's fields, as a tree.
#[derive(Default)]
struct BodySchema {
    properties: Map<String, Value>,
    children: Vec<(String, BodySchema)>,
    required: BTreeSet<String>,
    one_of: Vec<Vec<String>>,
}

impl BodySchema {
    fn at(&mut self, path: &[String]) -> &mut BodySchema {
        let Some((first, rest)) = path.split_first() else {
            return self;
        };
        let index = match self.children.iter().position(|(n, _)| n == first) {
            Some(i) => i,
            None => {
                self.children.push((first.clone(), BodySchema::default()));
                self.children.len() - 1
            }
        };
        self.children[index].1.at(rest)
    }

    fn into_schema(self) -> Value {
        let mut properties = self.properties;
        for (name, child) in self.children {
            properties.insert(name, child.into_schema());
        }
        let mut schema = json!({ "type": "object", "properties": properties });
        if !self.required.is_empty() {
            schema["required"] = json!(self.required);
        }
        if !self.one_of.is_empty() {
            let all: Vec<Value> = self
                .one_of
                .iter()
                .map(|names| {
                    json!({ "oneOf": names.iter().map(|n| json!({ "required": [n] })).collect::<Vec<_>>() })
                })
                .collect();
            schema["allOf"] = Value::Array(all);
        }
        schema
    }
}

fn collect(
    input: &Input,
    ty: &Ty,
    body: &mut BodySchema,
    parameters: &mut Vec<Value>,
    seen: &mut BTreeSet<String>,
) {
    match input {
        Input::Value {
            sources,
            one_of,
            decimal,
        } => {
            let mut schema = ty_schema(ty);
            if *decimal {
                schema = json!({ "type": ["number", "string"], "description": "a decimal number" });
            }
            let names: Vec<String> = sources
                .iter()
                .filter_map(|s| match s {
                    Source::Body(path) => path.last().cloned(),
                    _ => None,
                })
                .collect();
            for source in sources {
                match source {
                    Source::Body(path) => {
                        let (leaf, parents) = path.split_last().expect("paths are not empty");
                        let at = body.at(parents);
                        at.properties.insert(leaf.clone(), schema.clone());
                        if !ty.nullable && sources.len() == 1 {
                            at.required.insert(leaf.clone());
                        }
                    }
                    Source::Path(name) | Source::Query(name) => {
                        let place = if matches!(source, Source::Path(_)) {
                            "path"
                        } else {
                            "query"
                        };
                        if seen.insert(format!("{place}:{name}")) {
                            parameters.push(json!({
                                "name": name, "in": place,
                                "required": place == "path" || !ty.nullable,
                                "schema": schema,
                            }));
                        }
                    }
                    Source::Header(name) => {
                        if seen.insert(format!("header:{name}")) {
                            parameters.push(json!({
                                "name": header_case(name.as_str()), "in": "header",
                                "required": !ty.nullable && sources.len() == 1,
                                "schema": { "type": "string" },
                            }));
                        }
                    }
                    Source::Bearer | Source::Const(_) => {}
                }
            }
            if *one_of && names.len() > 1 {
                body.one_of.push(names);
            }
        }
        Input::Each { from, fields } => {
            let Source::Body(path) = from else { return };
            let mut element = BodySchema::default();
            for (_, input, field_ty) in fields {
                collect(input, field_ty, &mut element, parameters, seen);
            }
            let (leaf, parents) = path.split_last().expect("paths are not empty");
            let at = body.at(parents);
            at.properties.insert(
                leaf.clone(),
                json!({ "type": "array", "items": element.into_schema() }),
            );
            if !ty.nullable {
                at.required.insert(leaf.clone());
            }
        }
    }
}

/// `idempotency-key` → `Idempotency-Key`.
fn header_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn ty_schema(ty: &Ty) -> Value {
    match &ty.kind {
        Kind::Int => json!({ "type": "integer" }),
        Kind::Float => json!({ "type": "number" }),
        Kind::String | Kind::Id => json!({ "type": "string" }),
        Kind::Boolean => json!({ "type": "boolean" }),
        Kind::Enum(_, values) => json!({ "type": "string", "enum": values }),
        Kind::Scalar(name) => scalar_schema(name),
        Kind::Object(_, fields) => {
            let properties: Map<String, Value> = fields
                .iter()
                .map(|(n, t)| (n.clone(), ty_schema(t)))
                .collect();
            let required: Vec<&String> = fields
                .iter()
                .filter(|(_, t)| !t.nullable)
                .map(|(n, _)| n)
                .collect();
            json!({ "type": "object", "properties": properties, "required": required })
        }
        Kind::List(item) => json!({ "type": "array", "items": ty_schema(item) }),
        Kind::Any => json!({}),
    }
}

fn scalar_schema(name: &str) -> Value {
    match name {
        "DateTime" => json!({ "type": "string", "format": "date-time" }),
        "Date" => json!({ "type": "string", "format": "date" }),
        "Decimal" => json!({ "type": "string", "description": "a decimal number" }),
        "UUID" => json!({ "type": "string", "format": "uuid" }),
        _ => json!({}),
    }
}

/// The schema of an output type (`s::Type`) of the API schema.
fn output_schema(ty: &s::Type<'static, String>) -> Value {
    match ty {
        s::Type::NonNullType(inner) => output_schema(inner),
        s::Type::ListType(inner) => json!({ "type": "array", "items": output_schema(inner) }),
        s::Type::NamedType(name) => match name.as_str() {
            "Int" => json!({ "type": "integer" }),
            "Float" => json!({ "type": "number" }),
            "String" | "ID" => json!({ "type": "string" }),
            "Boolean" => json!({ "type": "boolean" }),
            other => {
                let scalar = scalar_schema(other);
                if scalar.as_object().is_some_and(|o| !o.is_empty()) {
                    scalar
                } else {
                    json!({ "description": other })
                }
            }
        },
    }
}

fn answer_schema(shape: &Shape, route: &Route, at: &str) -> Value {
    let typed = |at: &str| {
        route
            .answer_types
            .get(at)
            .map_or_else(|| json!({}), output_schema)
    };
    match shape {
        Shape::Const(v) => json!({ "const": v }),
        Shape::Pick(_) => typed(at),
        Shape::Enum(_, renames) => {
            let values: BTreeSet<&String> = renames.values().collect();
            json!({ "type": "string", "description": format!("one of {}, or the GraphQL value when not renamed", values.into_iter().cloned().collect::<Vec<_>>().join(", ")) })
        }
        Shape::Map { .. } => json!({
            "type": "object",
            "additionalProperties": typed(&format!("{at}.value")),
        }),
        Shape::Decimals(_, places) => json!({
            "type": "number",
            "description": format!("written with {places} decimals"),
        }),
        Shape::Timestamp(_) => json!({ "type": "string", "format": "date-time" }),
        Shape::Object(fields) => {
            let properties: Map<String, Value> = fields
                .iter()
                .map(|(name, rule)| {
                    (
                        name.clone(),
                        answer_schema(rule, route, &format!("{at}/{name}")),
                    )
                })
                .collect();
            let required: Vec<&String> = fields.iter().map(|(n, _)| n).collect();
            json!({ "type": "object", "properties": properties, "required": required })
        }
    }
}

/// A page showing `document` (the OpenAPI document) to people: each
/// endpoint, its body, parameters and answers. Self-contained HTML.
pub fn page(document: &Value) -> String {
    let title = document["info"]["title"]
        .as_str()
        .unwrap_or("REST endpoints");
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>\
         body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}\
         h2{{margin-top:2.5rem;border-bottom:1px solid #ddd}} code,pre{{font:13px/1.4 ui-monospace,monospace}}\
         pre{{background:#f6f6f6;padding:.75rem;overflow:auto}} .m{{font-weight:700;color:#0a5}}\
         table{{border-collapse:collapse}} td,th{{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}}\
         </style></head><body><h1>{t}</h1><p>{d}</p>\
         <p>The machine-readable document: <a href=\"{OPENAPI_PATH}\">{OPENAPI_PATH}</a> (OpenAPI 3.1).</p>",
        t = escape(title),
        d = escape(document["info"]["description"].as_str().unwrap_or("")),
    );
    if let Some(paths) = document["paths"].as_object() {
        for (path, methods) in paths {
            for (method, op) in methods.as_object().into_iter().flatten() {
                html.push_str(&format!(
                    "<h2 id=\"{id}\"><span class=\"m\">{m}</span> <code>{p}</code></h2><p>{s}</p><p>{d}</p>",
                    id = escape(op["operationId"].as_str().unwrap_or("")),
                    m = escape(&method.to_ascii_uppercase()),
                    p = escape(path),
                    s = escape(op["summary"].as_str().unwrap_or("")),
                    d = escape(op["description"].as_str().unwrap_or("")),
                ));
                if op.get("security").is_some() {
                    html.push_str("<p>Needs <code>Authorization: Bearer &lt;token&gt;</code>.</p>");
                }
                if let Some(params) = op["parameters"].as_array() {
                    html.push_str("<table><tr><th>Parameter</th><th>In</th><th>Required</th></tr>");
                    for p in params {
                        html.push_str(&format!(
                            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                            escape(p["name"].as_str().unwrap_or("")),
                            escape(p["in"].as_str().unwrap_or("")),
                            p["required"].as_bool().unwrap_or(false)
                        ));
                    }
                    html.push_str("</table>");
                }
                if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
                    html.push_str("<h3>Body</h3><pre>");
                    html.push_str(&escape(
                        &serde_json::to_string_pretty(schema).unwrap_or_default(),
                    ));
                    html.push_str("</pre>");
                }
                html.push_str("<h3>Answers</h3><table><tr><th>Status</th><th>When</th></tr>");
                for (status, response) in op["responses"].as_object().into_iter().flatten() {
                    html.push_str(&format!(
                        "<tr><td>{}</td><td>{}</td></tr>",
                        escape(status),
                        escape(response["description"].as_str().unwrap_or(""))
                    ));
                }
                html.push_str("</table>");
                if let Some((status, ok)) =
                    op["responses"].as_object().and_then(|r| r.iter().next())
                    && let Some(schema) = ok.pointer("/content/application~1json/schema")
                {
                    html.push_str(&format!("<h3>{} answer</h3><pre>", escape(status)));
                    html.push_str(&escape(
                        &serde_json::to_string_pretty(schema).unwrap_or_default(),
                    ));
                    html.push_str("</pre>");
                }
            }
        }
    }
    html.push_str("</body></html>");
    html
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
