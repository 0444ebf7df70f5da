//! Route files read and checked: every route's document exists in its
//! manifest, every variable it fills is one the document declares (and every
//! one the document needs is filled), every field its answer picks is one
//! the document selects, with the type the rule needs. A problem refuses the
//! whole directory, naming the file and line.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context as _, anyhow, bail};
use axum::http::{HeaderName, Method, StatusCode};
use graphql_tools::parser::{query as q, schema as s};
use marked_yaml::{
    Node,
    types::{MarkedMappingNode, MarkedScalarNode},
};
use serde_json::Value;

/// Paths the gateway serves itself; no route may take them.
pub const RESERVED: [&str; 6] = [
    "/graphql",
    "/health",
    "/ready",
    "/metrics",
    crate::rest::openapi::OPENAPI_PATH,
    crate::rest::openapi::DOCS_PATH,
];

/// Most routes one directory declares.
const MAX_ROUTES: usize = 1000;
/// Largest route file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Every route file of a directory.
#[derive(Default)]
pub struct Table {
    pub apis: Vec<Arc<Api>>,
}

/// One route file: an API of routes.
pub struct Api {
    /// The file's stem.
    pub name: String,
    pub title: String,
    pub version: String,
    pub description: Option<String>,
    pub routes: Vec<Arc<Route>>,
}

/// One endpoint.
pub struct Route {
    pub method: Method,
    /// As declared, with `{parameters}`.
    pub path: String,
    segments: Vec<Segment>,
    /// `POST /api/client/login`: its name in logs and metrics.
    pub label: String,
    pub summary: Option<String>,
    pub document: Document,
    pub token: Token,
    /// Whether string inputs are trimmed.
    pub trim: bool,
    pub variables: Vec<Variable>,
    /// The status of a successful answer.
    pub status: StatusCode,
    pub answer: Shape,
    /// What the answer's fields are, for OpenAPI.
    pub answer_types: HashMap<String, s::Type<'static, String>>,
    pub errors: Arc<ErrorRules>,
    /// Where it is declared.
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Segment {
    Literal(String),
    Parameter(String),
}

/// The document a route runs.
pub struct Document {
    /// The manifest (client) it is in.
    pub manifest: String,
    pub id: String,
    pub name: String,
}

/// Which bearer token a route takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// None: the route is public and an `Authorization` header is not sent on.
    None,
    /// An access token, verified at the edge as for any GraphQL request.
    Access,
    /// A refresh token: not verified at the edge; a variable may take it
    /// (`bearer`), and it is not sent on as a bearer.
    Refresh,
}

/// How error answers are written.
pub struct ErrorRules {
    /// `extensions.code` → HTTP status; others are 500.
    pub statuses: HashMap<String, StatusCode>,
    /// Constant fields of every error body, before `code` and `message`.
    pub body: Vec<(String, Value)>,
}

/// One variable a route fills.
pub struct Variable {
    pub name: String,
    pub input: Input,
    pub ty: Ty,
}

/// Where a value comes from.
pub enum Input {
    /// The first of `sources` that is present (`one_of`: exactly one of
    /// them must be), converted as `decimal` says.
    Value {
        sources: Vec<Source>,
        one_of: bool,
        /// A JSON number (or a numeric string) sent as its decimal text.
        decimal: bool,
    },
    /// A list read from `from`, each element an input object whose fields
    /// come from the element.
    Each {
        from: Source,
        fields: Vec<(String, Input, Ty)>,
    },
}

/// A place in the request.
#[derive(Clone, Debug)]
pub enum Source {
    /// A field of the JSON body (or of the list element, inside `each`).
    Body(Vec<String>),
    Path(String),
    Query(String),
    Header(HeaderName),
    /// The bearer token of `Authorization`.
    Bearer,
    Const(Value),
}

impl Source {
    /// How a client sees it: `items[].qty`, `header Idempotency-Key`.
    pub fn describe(&self) -> String {
        match self {
            Self::Body(path) => path.join("."),
            Self::Path(name) => format!("path parameter {name}"),
            Self::Query(name) => format!("query parameter {name}"),
            Self::Header(name) => format!("header {name}"),
            Self::Bearer => "the bearer token".into(),
            Self::Const(v) => format!("constant {v}"),
        }
    }
}

/// A GraphQL input type, as a REST input is checked against it.
#[derive(Clone, Debug)]
pub struct Ty {
    pub kind: Kind,
    pub nullable: bool,
}

#[derive(Clone, Debug)]
pub enum Kind {
    Int,
    Float,
    String,
    Boolean,
    Id,
    /// A custom scalar: any JSON value is sent on.
    Scalar(String),
    Enum(String, Vec<String>),
    Object(String, Vec<(String, Ty)>),
    List(Box<Ty>),
    /// Deeper than checked (recursive input types): sent on as it is.
    Any,
}

/// How the REST answer is made of the GraphQL `data`.
#[derive(Clone, Debug)]
pub enum Shape {
    Const(Value),
    /// A value at a path of `data` (response keys).
    Pick(Vec<String>),
    /// An enum value renamed (others as they are).
    Enum(Vec<String>, HashMap<String, String>),
    /// A list of objects turned into an object: `key` → `value` of each
    /// element (numbers of a repeated key summed; else the last wins).
    Map {
        list: Vec<String>,
        key: Vec<String>,
        value: Vec<String>,
    },
    /// A decimal (string or number) written as a JSON number with this many decimals.
    Decimals(Vec<String>, u32),
    /// An RFC 3339 timestamp written in UTC, to the second.
    Timestamp(Vec<String>),
    Object(Vec<(String, Shape)>),
}

/// A route a request matched, with its path parameters.
pub enum Found {
    Route(Arc<Route>, HashMap<String, String>),
    /// The path is a route's, not for this method: the methods it takes.
    OtherMethods(Vec<Method>),
    None,
}

impl Table {
    /// Every `*.yaml`/`*.yml` of `dir`, checked against the manifests of
    /// `manifests` and `schema`. A missing directory is no routes.
    pub fn load(
        dir: &Path,
        manifests: &Path,
        schema: &s::Document<'static, String>,
    ) -> anyhow::Result<Self> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
        };
        files.sort();
        let schema = Schema::new(schema);
        let mut table = Table::default();
        let mut taken: HashMap<(Method, Vec<Segment>), String> = HashMap::new();
        let mut count = 0;
        for file in files {
            let api = read_file(&file, manifests, &schema)?;
            for route in &api.routes {
                let shape: Vec<Segment> = route
                    .segments
                    .iter()
                    .map(|s| match s {
                        Segment::Parameter(_) => Segment::Parameter(String::new()),
                        other => other.clone(),
                    })
                    .collect();
                let here = format!("{}:{}", file.display(), route.line);
                if let Some(other) = taken.insert((route.method.clone(), shape), here.clone()) {
                    bail!(
                        "{here}: {} is declared twice (also at {other})",
                        route.label
                    );
                }
                count += 1;
            }
            if count > MAX_ROUTES {
                bail!("{}: more than {MAX_ROUTES} routes", dir.display());
            }
            table.apis.push(Arc::new(api));
        }
        Ok(table)
    }

    /// Every route, file by file.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.apis.iter().flat_map(|a| a.routes.iter())
    }

    pub fn is_empty(&self) -> bool {
        self.routes().next().is_none()
    }

    /// The route for `method` and `path`, with its parameters.
    pub fn find(&self, method: &Method, path: &str) -> Found {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let mut others = Vec::new();
        for route in self.routes() {
            let Some(params) = route.matches(&parts) else {
                continue;
            };
            if route.method == *method {
                return Found::Route(route.clone(), params);
            }
            if !others.contains(&route.method) {
                others.push(route.method.clone());
            }
        }
        if others.is_empty() {
            Found::None
        } else {
            Found::OtherMethods(others)
        }
    }
}

impl Route {
    fn matches(&self, parts: &[&str]) -> Option<HashMap<String, String>> {
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = HashMap::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Parameter(name) if !part.is_empty() => {
                    let decoded = percent_decode(part)?;
                    params.insert(name.clone(), decoded);
                }
                _ => return None,
            }
        }
        Some(params)
    }

    /// Whether any variable reads the JSON body.
    pub fn reads_body(&self) -> bool {
        fn reads(input: &Input) -> bool {
            match input {
                Input::Value { sources, .. } => {
                    sources.iter().any(|s| matches!(s, Source::Body(_)))
                }
                Input::Each { from, .. } => matches!(from, Source::Body(_)),
            }
        }
        self.variables.iter().any(|v| reads(&v.input))
    }
}

/// `%XX`-decoded `part` (UTF-8), or `None` when it does not decode.
fn percent_decode(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.contains('\0')).then_some(text)
}

/// The API schema's types by name, and its root types.
struct Schema<'a> {
    types: HashMap<&'a str, &'a s::TypeDefinition<'static, String>>,
    query: String,
    mutation: String,
}

impl<'a> Schema<'a> {
    fn new(doc: &'a s::Document<'static, String>) -> Self {
        let mut schema = Self {
            types: HashMap::new(),
            query: "Query".into(),
            mutation: "Mutation".into(),
        };
        for def in &doc.definitions {
            match def {
                s::Definition::TypeDefinition(t) => {
                    schema.types.insert(type_name(t), t);
                }
                s::Definition::SchemaDefinition(d) => {
                    if let Some(q) = &d.query {
                        schema.query = q.clone();
                    }
                    if let Some(m) = &d.mutation {
                        schema.mutation = m.clone();
                    }
                }
                _ => {}
            }
        }
        schema
    }

    /// The output field `name` of type `on`.
    fn field(&self, on: &str, name: &str) -> Option<&'a s::Field<'static, String>> {
        match self.types.get(on)? {
            s::TypeDefinition::Object(o) => o.fields.iter().find(|f| f.name == name),
            s::TypeDefinition::Interface(i) => i.fields.iter().find(|f| f.name == name),
            _ => None,
        }
    }

    /// An input type as REST inputs are checked against it.
    fn input_ty(&self, ty: &q::Type<'static, String>, depth: usize) -> Ty {
        match ty {
            q::Type::NonNullType(inner) => Ty {
                nullable: false,
                ..self.input_ty(inner, depth)
            },
            q::Type::ListType(inner) => Ty {
                kind: Kind::List(Box::new(self.input_ty(inner, depth + 1))),
                nullable: true,
            },
            q::Type::NamedType(name) => Ty {
                kind: self.named_kind(name, depth),
                nullable: true,
            },
        }
    }

    fn named_kind(&self, name: &str, depth: usize) -> Kind {
        if depth > 8 {
            return Kind::Any;
        }
        match name {
            "Int" => return Kind::Int,
            "Float" => return Kind::Float,
            "String" => return Kind::String,
            "Boolean" => return Kind::Boolean,
            "ID" => return Kind::Id,
            _ => {}
        }
        match self.types.get(name) {
            Some(s::TypeDefinition::Enum(e)) => Kind::Enum(
                name.to_owned(),
                e.values.iter().map(|v| v.name.clone()).collect(),
            ),
            Some(s::TypeDefinition::InputObject(o)) => Kind::Object(
                name.to_owned(),
                o.fields
                    .iter()
                    .map(|f| {
                        let mut ty = self.input_ty(&f.value_type, depth + 1);
                        // A field with a default may be left out.
                        ty.nullable |= f.default_value.is_some();
                        (f.name.clone(), ty)
                    })
                    .collect(),
            ),
            _ => Kind::Scalar(name.to_owned()),
        }
    }
}

fn type_name<'a>(t: &'a s::TypeDefinition<'static, String>) -> &'a str {
    match t {
        s::TypeDefinition::Scalar(t) => &t.name,
        s::TypeDefinition::Object(t) => &t.name,
        s::TypeDefinition::Interface(t) => &t.name,
        s::TypeDefinition::Union(t) => &t.name,
        s::TypeDefinition::Enum(t) => &t.name,
        s::TypeDefinition::InputObject(t) => &t.name,
    }
}

/// A manifest's documents by name and by id: (id, body).
fn manifest_documents(path: &Path) -> anyhow::Result<Vec<(String, String, String)>> {
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
fn line(node: &Node) -> usize {
    node.span().start().map_or(0, |m| m.line())
}

fn scalar_line(node: &MarkedScalarNode) -> usize {
    node.span().start().map_or(0, |m| m.line())
}

/// Reads and checks one route file.
fn read_file(file: &Path, manifests: &Path, schema: &Schema<'_>) -> anyhow::Result<Api> {
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

type Problem = (usize, String);

/// Refuses keys of `map` not in `known`.
fn known_keys(map: &MarkedMappingNode, known: &[&str]) -> Result<(), Problem> {
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

fn status_of(node: &Node, successful: bool) -> Result<StatusCode, Problem> {
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

fn error_rules(node: &Node) -> Result<ErrorRules, Problem> {
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

fn statuses(node: &Node) -> Result<HashMap<String, StatusCode>, Problem> {
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
fn constant(node: &Node) -> Result<Value, Problem> {
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

fn scalar_value(s: &MarkedScalarNode) -> Value {
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

/// The operation of a manifest document, and its definitions (fragments).
struct Operation {
    doc: q::Document<'static, String>,
    index: usize,
}

impl Operation {
    fn parse(body: &str) -> Result<Self, String> {
        let doc = q::parse_query::<String>(body)
            .map_err(|e| format!("the document does not parse: {e}"))?
            .into_static();
        let ops: Vec<usize> = doc
            .definitions
            .iter()
            .enumerate()
            .filter(|(_, d)| matches!(d, q::Definition::Operation(_)))
            .map(|(i, _)| i)
            .collect();
        match ops.as_slice() {
            [index] => Ok(Self { index: *index, doc }),
            _ => Err("a route's document holds exactly one operation".into()),
        }
    }

    fn op(&self) -> &q::OperationDefinition<'static, String> {
        match &self.doc.definitions[self.index] {
            q::Definition::Operation(op) => op,
            _ => unreachable!("index of an operation"),
        }
    }

    fn variables(&self) -> &[q::VariableDefinition<'static, String>] {
        match self.op() {
            q::OperationDefinition::Query(o) => &o.variable_definitions,
            q::OperationDefinition::Mutation(o) => &o.variable_definitions,
            q::OperationDefinition::Subscription(o) => &o.variable_definitions,
            q::OperationDefinition::SelectionSet(_) => &[],
        }
    }

    /// (root type, selection set), or why a route cannot run it.
    fn root(
        &self,
        schema: &Schema<'_>,
    ) -> Result<(String, &q::SelectionSet<'static, String>), String> {
        match self.op() {
            q::OperationDefinition::Query(o) => Ok((schema.query.clone(), &o.selection_set)),
            q::OperationDefinition::SelectionSet(set) => Ok((schema.query.clone(), set)),
            q::OperationDefinition::Mutation(o) => Ok((schema.mutation.clone(), &o.selection_set)),
            q::OperationDefinition::Subscription(_) => {
                Err("a subscription cannot be a REST route's document".into())
            }
        }
    }

    /// The fields `set` selects on type `on`, by response key, fragments
    /// included: (field name, selection sets).
    fn fields<'s>(
        &'s self,
        set: &'s q::SelectionSet<'static, String>,
        out: &mut Vec<(String, String, &'s q::SelectionSet<'static, String>)>,
        depth: usize,
    ) {
        if depth > 32 {
            return;
        }
        for selection in &set.items {
            match selection {
                q::Selection::Field(f) => out.push((
                    f.alias.clone().unwrap_or_else(|| f.name.clone()),
                    f.name.clone(),
                    &f.selection_set,
                )),
                q::Selection::InlineFragment(i) => self.fields(&i.selection_set, out, depth + 1),
                q::Selection::FragmentSpread(spread) => {
                    for def in &self.doc.definitions {
                        if let q::Definition::Fragment(frag) = def
                            && frag.name == spread.fragment_name
                        {
                            self.fields(&frag.selection_set, out, depth + 1);
                        }
                    }
                }
            }
        }
    }

    /// The type of the field at `path` (response keys) of the answer.
    fn type_at(
        &self,
        schema: &Schema<'_>,
        path: &[String],
    ) -> Result<s::Type<'static, String>, String> {
        let (root, set) = self.root(schema)?;
        self.type_in(schema, &root, set, path)
    }

    fn type_in(
        &self,
        schema: &Schema<'_>,
        on: &str,
        set: &q::SelectionSet<'static, String>,
        path: &[String],
    ) -> Result<s::Type<'static, String>, String> {
        let (first, rest) = path.split_first().ok_or("an empty path")?;
        let mut fields = Vec::new();
        self.fields(set, &mut fields, 0);
        let Some((_, name, sub)) = fields.iter().find(|(key, _, _)| key == first) else {
            let keys: Vec<&str> = fields.iter().map(|(k, _, _)| k.as_str()).collect();
            return Err(format!(
                "the document selects no `{first}` on {on} (it selects {})",
                keys.join(", ")
            ));
        };
        let field = schema
            .field(on, name)
            .ok_or_else(|| format!("{on} has no field {name}"))?;
        if rest.is_empty() {
            return Ok(field.field_type.clone());
        }
        if is_list(&field.field_type) {
            return Err(format!(
                "`{first}` is a list: pick it whole, or turn it into a map"
            ));
        }
        self.type_in(schema, named(&field.field_type), sub, rest)
    }
}

fn named<'t>(ty: &'t s::Type<'static, String>) -> &'t str {
    match ty {
        s::Type::NamedType(n) => n,
        s::Type::ListType(inner) | s::Type::NonNullType(inner) => named(inner),
    }
}

fn is_list(ty: &s::Type<'static, String>) -> bool {
    match ty {
        s::Type::NonNullType(inner) => is_list(inner),
        s::Type::ListType(_) => true,
        s::Type::NamedType(_) => false,
    }
}

fn read_route(
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

fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
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

struct Context<'a> {
    label: &'a str,
    /// The route's line.
    line: usize,
    params: &'a [&'a str],
    token: Token,
    body_allowed: bool,
}

fn read_variables(
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
fn read_input(
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

fn source(node: &MarkedScalarNode, in_each: bool, cx: &Context<'_>) -> Result<Source, Problem> {
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

/// One answer rule (see [`Shape`]); `types` learns each answer field's type.
fn read_shape(
    node: &Node,
    operation: &Operation,
    schema: &Schema<'_>,
    label: &str,
    types: &mut HashMap<String, s::Type<'static, String>>,
    at: &str,
) -> Result<Shape, Problem> {
    let here = line(node);
    let pick = |raw: &str| -> Result<(Vec<String>, s::Type<'static, String>), Problem> {
        let rest = raw.strip_prefix('$').unwrap_or(raw);
        let path: Vec<String> = rest.split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return Err((
                here,
                format!("{label}: {raw:?} is not a pick like $login.accessToken"),
            ));
        }
        let ty = operation
            .type_at(schema, &path)
            .map_err(|m| (here, format!("{label}: {raw}: {m}")))?;
        Ok((path, ty))
    };
    match node {
        Node::Scalar(s) if s.as_str().starts_with('$') && s.may_coerce() => {
            let (path, ty) = pick(s.as_str())?;
            types.insert(at.to_owned(), ty);
            Ok(Shape::Pick(path))
        }
        Node::Scalar(s) => Ok(Shape::Const(scalar_value(s))),
        Node::Sequence(_) => Ok(Shape::Const(constant(node)?)),
        Node::Mapping(map) if map.get_node("const").is_some() => {
            known_keys(map, &["const"]).map_err(|(l, m)| (l, format!("{label}: {m}")))?;
            Ok(Shape::Const(constant(
                map.get_node("const").expect("checked"),
            )?))
        }
        Node::Mapping(map) if map.get_node("pick").is_some() => {
            known_keys(map, &["pick", "enum", "map", "decimals", "timestamp"])
                .map_err(|(l, m)| (l, format!("{label}: {m}")))?;
            let raw = map.get_scalar("pick").ok_or_else(|| {
                (
                    here,
                    format!("{label}: `pick:` is a path like $order.status"),
                )
            })?;
            let (path, ty) = pick(raw.as_str())?;
            let rules = ["enum", "map", "decimals", "timestamp"]
                .iter()
                .filter(|k| map.get_node(k).is_some())
                .count();
            if rules > 1 {
                return Err((
                    here,
                    format!("{label}: one of enum, map, decimals or timestamp per pick"),
                ));
            }
            let type_name = named(&ty).to_owned();
            if let Some(renames) = map.get_node("enum") {
                let Some(s::TypeDefinition::Enum(e)) = schema.types.get(type_name.as_str()) else {
                    return Err((
                        line(renames),
                        format!("{label}: {} is {type_name}, not an enum", raw.as_str()),
                    ));
                };
                let renames = renames.as_mapping().ok_or_else(|| {
                    (
                        line(renames),
                        format!("{label}: `enum:` maps values to names"),
                    )
                })?;
                let mut out = HashMap::new();
                for (value, name) in renames.iter() {
                    if !e.values.iter().any(|v| v.name == value.as_str()) {
                        return Err((
                            scalar_line(value),
                            format!("{label}: {type_name} has no value {}", value.as_str()),
                        ));
                    }
                    let name = name.as_scalar().ok_or_else(|| {
                        (line(name), format!("{label}: an enum value's name is text"))
                    })?;
                    out.insert(value.as_str().to_owned(), name.as_str().to_owned());
                }
                types.insert(at.to_owned(), ty);
                return Ok(Shape::Enum(path, out));
            }
            if let Some(rule) = map.get_node("map") {
                if !is_list(&ty) {
                    return Err((
                        line(rule),
                        format!("{label}: {} is not a list; `map` needs one", raw.as_str()),
                    ));
                }
                let rule_map = rule.as_mapping().ok_or_else(|| {
                    (line(rule), format!("{label}: `map:` has `key` and `value`"))
                })?;
                known_keys(rule_map, &["key", "value"])
                    .map_err(|(l, m)| (l, format!("{label}: {m}")))?;
                let mut part = |name: &str| -> Result<Vec<String>, Problem> {
                    let p = rule_map
                        .get_scalar(name)
                        .ok_or_else(|| (line(rule), format!("{label}: `map:` needs `{name}`")))?;
                    let parts: Vec<String> = p.as_str().split('.').map(str::to_owned).collect();
                    // Checked as a pick inside one element of the list.
                    let elem_ty = element_type(operation, schema, &path, &parts).map_err(|m| {
                        (
                            scalar_line(p),
                            format!("{label}: map {name} {}: {m}", p.as_str()),
                        )
                    })?;
                    types.insert(format!("{at}.{name}"), elem_ty);
                    Ok(parts)
                };
                let key = part("key")?;
                let value = part("value")?;
                return Ok(Shape::Map {
                    list: path,
                    key,
                    value,
                });
            }
            if let Some(decimals) = map.get_node("decimals") {
                let n = decimals
                    .as_scalar()
                    .and_then(|s| s.as_str().parse::<u32>().ok())
                    .filter(|n| *n <= 12)
                    .ok_or_else(|| (line(decimals), format!("{label}: decimals is 0 to 12")))?;
                if is_list(&ty)
                    || matches!(type_name.as_str(), "Boolean" | "ID")
                    || matches!(schema.types.get(type_name.as_str()), Some(t) if !matches!(t, s::TypeDefinition::Scalar(_)))
                {
                    return Err((
                        line(decimals),
                        format!("{label}: {} is {type_name}, not a number", raw.as_str()),
                    ));
                }
                types.insert(at.to_owned(), ty);
                return Ok(Shape::Decimals(path, n));
            }
            if let Some(unit) = map.get_node("timestamp") {
                if unit.as_scalar().map(|s| s.as_str()) != Some("seconds") {
                    return Err((
                        line(unit),
                        format!("{label}: timestamp: seconds is the one precision"),
                    ));
                }
                if is_list(&ty)
                    || matches!(schema.types.get(type_name.as_str()), Some(t) if !matches!(t, s::TypeDefinition::Scalar(_)))
                {
                    return Err((
                        line(unit),
                        format!("{label}: {} is {type_name}, not a timestamp", raw.as_str()),
                    ));
                }
                types.insert(at.to_owned(), ty);
                return Ok(Shape::Timestamp(path));
            }
            types.insert(at.to_owned(), ty);
            Ok(Shape::Pick(path))
        }
        Node::Mapping(map) => {
            let mut fields = Vec::new();
            for (key, value) in map.iter() {
                let at = format!("{at}/{}", key.as_str());
                fields.push((
                    key.as_str().to_owned(),
                    read_shape(value, operation, schema, label, types, &at)?,
                ));
            }
            Ok(Shape::Object(fields))
        }
    }
}

/// The type of `inner` (a path) inside one element of the list at `list`.
fn element_type(
    operation: &Operation,
    schema: &Schema<'_>,
    list: &[String],
    inner: &[String],
) -> Result<s::Type<'static, String>, String> {
    if inner.iter().any(String::is_empty) {
        return Err("is not a field path".into());
    }
    // The list's selection set, found as a pick would, then the inner path in it.
    let (root, set) = operation.root(schema)?;
    let mut on = root;
    let mut set = set;
    for (i, key) in list.iter().enumerate() {
        let mut fields = Vec::new();
        operation.fields(set, &mut fields, 0);
        let (_, name, sub) = fields
            .into_iter()
            .find(|(k, _, _)| k == key)
            .ok_or_else(|| format!("no `{key}`"))?;
        let field = schema
            .field(&on, &name)
            .ok_or_else(|| format!("no field {name}"))?;
        on = named(&field.field_type).to_owned();
        set = sub;
        if i + 1 == list.len() {
            break;
        }
    }
    let ty = operation.type_in(schema, &on, set, inner)?;
    if is_list(&ty) {
        return Err("is a list".into());
    }
    Ok(ty)
}
