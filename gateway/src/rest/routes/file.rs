//! Route files read: every key known, every route's document, variables
//! and sources checked, problems reported with their line.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::Arc,
};

use anyhow::{anyhow, bail};
use axum::http::{HeaderName, Method, StatusCode};
use graphql_tools::parser::query as q;
use marked_yaml::{
    Node,
    types::{MarkedMappingNode, MarkedScalarNode},
};
use serde_json::Value;

use super::*;
use super::{answer::*, graphql::*};

/// A manifest's documents by name and by id: (id, body).
pub(super) fn manifest_documents(path: &Path) -> anyhow::Result<Vec<(String, String, String)>> {
    #[derive(serde::Deserialize)]
    struct File {
        operations: Vec<Op>,
    }
    #[derive(serde::Deserialize)]
    struct Op {
        id: String,
        #[serde(default)]
        name: Option<String>,
        body: String,
    }
    let text = std::fs::read_to_string(path)?;
    // The pipeline's own reader checks the format first.
    crate::pipeline::persisted::parse_manifest(&text)?;
    let file: File = serde_json::from_str(&text)?;
    Ok(file
        .operations
        .into_iter()
        .map(|o| (o.id, o.name.unwrap_or_default(), o.body))
        .collect())
}

/// The line a node starts on.
pub(super) fn line(node: &Node) -> usize {
    node.span().start().map_or(0, |m| m.line())
}

pub(super) fn scalar_line(node: &MarkedScalarNode) -> usize {
    node.span().start().map_or(0, |m| m.line())
}

/// Reads and checks one route file.
pub(super) fn read_file(file: &Path, manifests: &Path, schema: &Schema<'_>) -> anyhow::Result<Api> {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        bail!("{}: larger than {MAX_FILE_BYTES} bytes", file.display());
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let options = marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true);
    let root = marked_yaml::parse_yaml_with_options(0, &text, options)
        .map_err(|err| anyhow!("{}: {err}", file.display()))?;
    let at = |line: usize, message: String| anyhow!("{}:{line}: {message}", file.display());
    let map = root
        .as_mapping()
        .ok_or_else(|| at(line(&root), "a route file is a mapping".into()))?;
    known_keys(
        map,
        &[
            "title",
            "version",
            "description",
            "manifest",
            "errors",
            "routes",
        ],
    )
    .map_err(|(l, m)| at(l, m))?;
    let text_of = |key: &str| map.get_scalar(key).map(|s| s.as_str().to_owned());
    let manifest = text_of("manifest").ok_or_else(|| {
        at(
            line(&root),
            "`manifest:` is missing: the trusted-document manifest (file stem) its documents are in"
                .into(),
        )
    })?;
    if manifest.is_empty()
        || !manifest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        || manifest.starts_with('.')
    {
        bail!(
            "{}: manifest {manifest:?} is not a manifest's file stem",
            file.display()
        );
    }
    let manifest_path = manifests.join(format!("{manifest}.json"));
    let documents = manifest_documents(&manifest_path).map_err(|err| {
        at(
            map.get_node("manifest").map_or(0, line),
            format!("manifest {}: {err:#}", manifest_path.display()),
        )
    })?;
    let errors = Arc::new(match map.get_node("errors") {
        Some(node) => error_rules(node).map_err(|(l, m)| at(l, m))?,
        None => ErrorRules {
            statuses: HashMap::new(),
            body: Vec::new(),
        },
    });
    let routes_node = map
        .get_sequence("routes")
        .ok_or_else(|| at(line(&root), "`routes:` (a list) is missing".into()))?;
    let mut routes = Vec::new();
    for node in routes_node.iter() {
        let route =
            read_route(node, &manifest, &documents, schema, &errors).map_err(|(l, m)| at(l, m))?;
        routes.push(Arc::new(route));
    }
    Ok(Api {
        title: text_of("title").unwrap_or_else(|| name.clone()),
        version: text_of("version").unwrap_or_else(|| "1".into()),
        description: text_of("description"),
        name,
        routes,
    })
}

pub(super) type Problem = (usize, String);

/// Refuses keys of `map` not in `known`.
pub(super) fn known_keys(map: &MarkedMappingNode, known: &[&str]) -> Result<(), Problem> {
    for (key, _) in map.iter() {
        if !known.contains(&key.as_str()) {
            return Err((
                scalar_line(key),
                format!(
                    "unknown key `{}` (known here: {})",
                    key.as_str(),
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn status_of(node: &Node, successful: bool) -> Result<StatusCode, Problem> {
    let raw = node.as_scalar().map(|s| s.as_str()).unwrap_or_default();
    let status = raw
        .parse::<u16>()
        .ok()
        .and_then(|n| StatusCode::from_u16(n).ok())
        .filter(|s| {
            if successful {
                s.is_success()
            } else {
                s.as_u16() >= 400
            }
        });
    status.ok_or_else(|| {
        (
            line(node),
            format!(
                "{raw:?} is not {}",
                if successful {
                    "a success status (200–299)"
                } else {
                    "an error status (400–599)"
                }
            ),
        )
    })
}

pub(super) fn error_rules(node: &Node) -> Result<ErrorRules, Problem> {
    let map = node
        .as_mapping()
        .ok_or_else(|| (line(node), "`errors:` is a mapping".into()))?;
    known_keys(map, &["statuses", "body"])?;
    let statuses = match map.get_node("statuses") {
        Some(node) => statuses(node)?,
        None => HashMap::new(),
    };
    let mut body = Vec::new();
    if let Some(node) = map.get_node("body") {
        let fields = node
            .as_mapping()
            .ok_or_else(|| (line(node), "`body:` is a mapping of constants".into()))?;
        for (key, value) in fields.iter() {
            if matches!(key.as_str(), "code" | "message") {
                return Err((
                    scalar_line(key),
                    format!(
                        "`{}` is the error's own; it cannot be a constant",
                        key.as_str()
                    ),
                ));
            }
            body.push((key.as_str().to_owned(), constant(value)?));
        }
    }
    Ok(ErrorRules { statuses, body })
}

pub(super) fn statuses(node: &Node) -> Result<HashMap<String, StatusCode>, Problem> {
    let map = node
        .as_mapping()
        .ok_or_else(|| (line(node), "a mapping of extensions.code → status".into()))?;
    let mut out = HashMap::new();
    for (code, status) in map.iter() {
        out.insert(code.as_str().to_owned(), status_of(status, false)?);
    }
    Ok(out)
}

/// A YAML value as JSON: plain scalars may be booleans, null or numbers;
/// quoted ones are strings.
pub(super) fn constant(node: &Node) -> Result<Value, Problem> {
    Ok(match node {
        Node::Scalar(s) => scalar_value(s),
        Node::Sequence(items) => {
            Value::Array(items.iter().map(constant).collect::<Result<_, _>>()?)
        }
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.as_str().to_owned(), constant(v)?)))
                .collect::<Result<_, Problem>>()?,
        ),
    })
}

pub(super) fn scalar_value(s: &MarkedScalarNode) -> Value {
    if s.may_coerce() {
        if let Some(b) = s.as_bool() {
            return Value::Bool(b);
        }
        match s.as_str() {
            "null" | "~" | "" => return Value::Null,
            raw => {
                if let Ok(n) = raw.parse::<i64>() {
                    return Value::from(n);
                }
                if let Some(n) = raw
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .and_then(serde_json::Number::from_f64)
                {
                    return Value::Number(n);
                }
            }
        }
    }
    Value::String(s.as_str().to_owned())
}

pub(super) fn read_route(
    node: &Node,
    manifest: &str,
    documents: &[(String, String, String)],
    schema: &Schema<'_>,
    errors: &Arc<ErrorRules>,
) -> Result<Route, Problem> {
    let here = line(node);
    let map = node
        .as_mapping()
        .ok_or_else(|| (here, "a route is a mapping".into()))?;
    known_keys(
        map,
        &[
            "route",
            "summary",
            "document",
            "token",
            "trim",
            "variables",
            "status",
            "answer",
            "errors",
        ],
    )?;
    let route_node = map.get_scalar("route").ok_or_else(|| {
        (
            here,
            "`route:` (like `POST /api/orders/{id}`) is missing".into(),
        )
    })?;
    let (method, path) = route_node
        .as_str()
        .split_once(' ')
        .ok_or_else(|| (scalar_line(route_node), "`route:` is `METHOD /path`".into()))?;
    let method = match method {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        other => {
            return Err((
                scalar_line(route_node),
                format!("method {other:?} is not GET, POST, PUT, PATCH or DELETE"),
            ));
        }
    };
    let path = path.trim().to_owned();
    let segments = parse_path(&path).map_err(|m| (scalar_line(route_node), m))?;
    let label = format!("{method} {path}");
    let document_node = map
        .get_scalar("document")
        .ok_or_else(|| (here, format!("{label}: `document:` is missing")))?;
    let wanted = document_node.as_str();
    let Some((id, name, body)) = documents
        .iter()
        .find(|(id, name, _)| name == wanted || id == wanted)
    else {
        return Err((
            scalar_line(document_node),
            format!("{label}: manifest {manifest} has no document {wanted:?}"),
        ));
    };
    let in_doc = |m: String| {
        (
            scalar_line(document_node),
            format!("{label}: document {name}: {m}"),
        )
    };
    let operation = Operation::parse(body).map_err(in_doc)?;
    operation.root(schema).map_err(in_doc)?;
    let token = match map.get_scalar("token").map(|s| s.as_str()) {
        None | Some("access") => Token::Access,
        Some("none") => Token::None,
        Some("refresh") => Token::Refresh,
        Some(other) => {
            return Err((
                map.get_node("token").map_or(here, line),
                format!("{label}: token {other:?} is not none, access or refresh"),
            ));
        }
    };
    let trim = match map.get_scalar("trim") {
        None => false,
        Some(s) => s
            .as_bool()
            .ok_or_else(|| (scalar_line(s), format!("{label}: trim is true or false")))?,
    };
    let status = match map.get_node("status") {
        Some(node) => status_of(node, true).map_err(|(l, m)| (l, format!("{label}: {m}")))?,
        None => StatusCode::OK,
    };
    let params: Vec<&str> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Parameter(p) => Some(p.as_str()),
            Segment::Literal(_) => None,
        })
        .collect();
    let context = Context {
        label: &label,
        line: here,
        params: &params,
        token,
        body_allowed: !matches!(method, Method::GET | Method::DELETE),
    };
    let variables = read_variables(map, &operation, schema, &context)?;
    let answer_node = map
        .get_node("answer")
        .ok_or_else(|| (here, format!("{label}: `answer:` is missing")))?;
    let mut answer_types = HashMap::new();
    let answer = read_shape(
        answer_node,
        &operation,
        schema,
        &label,
        &mut answer_types,
        "",
    )?;
    let errors = match map.get_node("errors") {
        None => errors.clone(),
        Some(node) => {
            let mut statuses_ = errors.statuses.clone();
            statuses_.extend(statuses(node)?);
            Arc::new(ErrorRules {
                statuses: statuses_,
                body: errors.body.clone(),
            })
        }
    };
    Ok(Route {
        method,
        path,
        segments,
        label,
        summary: map.get_scalar("summary").map(|s| s.as_str().to_owned()),
        document: Document {
            manifest: manifest.to_owned(),
            id: id.clone(),
            name: name.clone(),
        },
        token,
        trim,
        variables,
        status,
        answer,
        answer_types,
        errors,
        line: here,
    })
}

pub(super) fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    if !path.starts_with('/') || path.len() > 512 || path.contains("//") {
        return Err(format!("path {path:?} is not like /api/orders/{{id}}"));
    }
    if RESERVED.contains(&path) {
        return Err(format!("{path} is the gateway's own"));
    }
    let mut seen = HashSet::new();
    path.trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(|part| {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("path parameter {{{name}}} is not a name"));
                }
                if !seen.insert(name.to_owned()) {
                    return Err(format!("path parameter {{{name}}} appears twice"));
                }
                Ok(Segment::Parameter(name.to_owned()))
            } else if part.is_empty()
                || part.chars().all(|c| c == '.')
                || !part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
            {
                Err(format!("path segment {part:?} is not plain text"))
            } else {
                Ok(Segment::Literal(part.to_owned()))
            }
        })
        .collect()
}

pub(super) struct Context<'a> {
    label: &'a str,
    /// The route's line.
    line: usize,
    params: &'a [&'a str],
    token: Token,
    body_allowed: bool,
}

pub(super) fn read_variables(
    map: &MarkedMappingNode,
    operation: &Operation,
    schema: &Schema<'_>,
    cx: &Context<'_>,
) -> Result<Vec<Variable>, Problem> {
    let declared = operation.variables();
    let mut out = Vec::new();
    if let Some(node) = map.get_node("variables") {
        let vars = node.as_mapping().ok_or_else(|| {
            (
                line(node),
                format!("{}: `variables:` is a mapping", cx.label),
            )
        })?;
        for (key, spec) in vars.iter() {
            let Some(def) = declared.iter().find(|d| d.name == key.as_str()) else {
                let names: Vec<String> = declared.iter().map(|d| format!("${}", d.name)).collect();
                return Err((
                    scalar_line(key),
                    format!(
                        "{}: the document declares no variable ${} (it declares {})",
                        cx.label,
                        key.as_str(),
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                ));
            };
            let mut ty = schema.input_ty(&def.var_type, 0);
            ty.nullable |= def.default_value.is_some();
            let input = read_input(spec, &ty, false, cx, &format!("${}", def.name))?;
            out.push(Variable {
                name: def.name.clone(),
                input,
                ty,
            });
        }
    }
    for def in declared {
        let required =
            matches!(def.var_type, q::Type::NonNullType(_)) && def.default_value.is_none();
        if required && !out.iter().any(|v| v.name == def.name) {
            return Err((
                map.iter()
                    .find(|(k, _)| k.as_str() == "variables")
                    .map_or(cx.line, |(k, _)| scalar_line(k)),
                format!(
                    "{}: the document needs ${}, and the route gives it no source",
                    cx.label, def.name
                ),
            ));
        }
    }
    Ok(out)
}

/// One input: a source, a list of sources (the first present), or a
/// mapping (`from`, `one_of`, `const`, `as`, `each`).
pub(super) fn read_input(
    node: &Node,
    ty: &Ty,
    in_each: bool,
    cx: &Context<'_>,
    what: &str,
) -> Result<Input, Problem> {
    let value = |sources, one_of, decimal| Input::Value {
        sources,
        one_of,
        decimal,
    };
    match node {
        Node::Scalar(s) => Ok(value(vec![source(s, in_each, cx)?], false, false)),
        Node::Sequence(items) => {
            let sources = items
                .iter()
                .map(|item| match item {
                    Node::Scalar(s) => source(s, in_each, cx),
                    other => Err((
                        line(other),
                        format!("{}: {what}: a source is text", cx.label),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if sources.is_empty() {
                return Err((line(node), format!("{}: {what}: no source", cx.label)));
            }
            Ok(value(sources, false, false))
        }
        Node::Mapping(map) => {
            known_keys(map, &["from", "one_of", "const", "as", "each"])
                .map_err(|(l, m)| (l, format!("{}: {what}: {m}", cx.label)))?;
            if let Some(each) = map.get_node("each") {
                let from = map.get_scalar("from").ok_or_else(|| {
                    (
                        line(node),
                        format!("{}: {what}: `each` needs `from`", cx.label),
                    )
                })?;
                let from = source(from, in_each, cx)?;
                let element = match &ty.kind {
                    Kind::List(element) => element,
                    _ => {
                        return Err((
                            line(node),
                            format!("{}: {what} is not a list; `each` needs one", cx.label),
                        ));
                    }
                };
                let Kind::Object(type_name, type_fields) = &element.kind else {
                    return Err((
                        line(node),
                        format!(
                            "{}: {what}'s elements are not input objects; `each` fills objects",
                            cx.label
                        ),
                    ));
                };
                let each_map = each.as_mapping().ok_or_else(|| {
                    (
                        line(each),
                        format!("{}: {what}: `each` is a mapping of fields", cx.label),
                    )
                })?;
                let mut fields = Vec::new();
                for (key, spec) in each_map.iter() {
                    let Some((_, field_ty)) = type_fields.iter().find(|(n, _)| n == key.as_str())
                    else {
                        let names: Vec<&str> =
                            type_fields.iter().map(|(n, _)| n.as_str()).collect();
                        return Err((
                            scalar_line(key),
                            format!(
                                "{}: {type_name} has no field {} (it has {})",
                                cx.label,
                                key.as_str(),
                                names.join(", ")
                            ),
                        ));
                    };
                    let input = read_input(
                        spec,
                        field_ty,
                        true,
                        cx,
                        &format!("{what}[].{}", key.as_str()),
                    )?;
                    fields.push((key.as_str().to_owned(), input, field_ty.clone()));
                }
                for (name, field_ty) in type_fields {
                    if !field_ty.nullable && !fields.iter().any(|(n, _, _)| n == name) {
                        return Err((
                            line(each),
                            format!(
                                "{}: {type_name}.{name} is required and `each` gives it no source",
                                cx.label
                            ),
                        ));
                    }
                }
                return Ok(Input::Each { from, fields });
            }
            let decimal = match map.get_scalar("as").map(|s| s.as_str()) {
                None => false,
                Some("decimal") => {
                    if !matches!(ty.kind, Kind::Scalar(_) | Kind::String | Kind::Float) {
                        return Err((
                            map.get_node("as").map_or(0, line),
                            format!(
                                "{}: {what} is not a scalar; `as: decimal` makes text of a number",
                                cx.label
                            ),
                        ));
                    }
                    true
                }
                Some(other) => {
                    return Err((
                        map.get_node("as").map_or(0, line),
                        format!(
                            "{}: {what}: `as: {other}` is not known (decimal is)",
                            cx.label
                        ),
                    ));
                }
            };
            if let Some(c) = map.get_node("const") {
                return Ok(value(vec![Source::Const(constant(c)?)], false, decimal));
            }
            let (sources_node, one_of) = match (map.get_node("from"), map.get_node("one_of")) {
                (Some(from), None) => (from, false),
                (None, Some(one_of)) => (one_of, true),
                _ => {
                    return Err((
                        line(node),
                        format!("{}: {what}: give `from`, `one_of` or `const`", cx.label),
                    ));
                }
            };
            let Input::Value { sources, .. } = read_input(sources_node, ty, in_each, cx, what)?
            else {
                unreachable!("a scalar or list of sources reads as a value")
            };
            if one_of && sources.len() < 2 {
                return Err((
                    line(sources_node),
                    format!("{}: {what}: `one_of` lists two sources or more", cx.label),
                ));
            }
            Ok(value(sources, one_of, decimal))
        }
    }
}

pub(super) fn source(
    node: &MarkedScalarNode,
    in_each: bool,
    cx: &Context<'_>,
) -> Result<Source, Problem> {
    let raw = node.as_str();
    let here = scalar_line(node);
    let bad = |m: String| (here, format!("{}: {m}", cx.label));
    let path = |rest: &str| -> Result<Vec<String>, Problem> {
        let parts: Vec<String> = rest.split('.').map(str::to_owned).collect();
        if parts.iter().any(|p| p.is_empty() || p.len() > 128) {
            return Err(bad(format!("{raw:?} is not a field path like body.items")));
        }
        Ok(parts)
    };
    if in_each {
        // Inside `each`, fields of the element.
        return Ok(Source::Body(path(raw)?));
    }
    if let Some(rest) = raw.strip_prefix("body.") {
        if !cx.body_allowed {
            return Err(bad(format!("{raw}: this method has no body")));
        }
        return Ok(Source::Body(path(rest)?));
    }
    if raw == "body" {
        return Err(bad("name a field of the body: body.<field>".into()));
    }
    if let Some(name) = raw.strip_prefix("path.") {
        if !cx.params.contains(&name) {
            return Err(bad(format!("the path has no parameter {{{name}}}")));
        }
        return Ok(Source::Path(name.to_owned()));
    }
    if let Some(name) = raw.strip_prefix("query.") {
        if name.is_empty() {
            return Err(bad("name a query parameter: query.<name>".into()));
        }
        return Ok(Source::Query(name.to_owned()));
    }
    if let Some(name) = raw.strip_prefix("header.") {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("{name:?} is not a header name")))?;
        if header == axum::http::header::AUTHORIZATION {
            return Err(bad(
                "read the token with `bearer`, not header.Authorization".into(),
            ));
        }
        return Ok(Source::Header(header));
    }
    if raw == "bearer" {
        if cx.token == Token::Access {
            return Err(bad(
                "`bearer` is the caller's access token here; a route that reads its bearer \
                 says `token: refresh` or `token: none`"
                    .into(),
            ));
        }
        return Ok(Source::Bearer);
    }
    Err(bad(format!(
        "{raw:?} is not a source: body.<field>, path.<name>, query.<name>, header.<Name> or bearer"
    )))
}
