//! Route files read and checked: every route's document exists in its
//! manifest, every variable it fills is one the document declares (and every
//! one the document needs is filled), every field its answer picks is one
//! the document selects, with the type the rule needs. A problem refuses the
//! whole directory, naming the file and line.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context as _, bail};
use axum::http::{HeaderName, Method, StatusCode};
use graphql_tools::parser::schema as s;
use serde_json::Value;

mod answer;
mod file;
mod graphql;

use self::{file::read_file, graphql::Schema};

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
