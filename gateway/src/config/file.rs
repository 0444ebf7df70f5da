//! The gateway's configuration file (`grocery serve gateway --config
//! gateway.yaml`): a YAML tree whose keys are the ones the declared
//! variables name ([`settings::Var::file`]), read into the values of those
//! variables, so the one reader of each setting ([`super::Config::read`])
//! reads the file too and the environment wins over it.
//!
//! Every key is checked against the declarations (unknown keys, wrong
//! types, bad values) and every problem is listed with the file, line and
//! key path; a problem the settings' readers find later in a value the file
//! gave is located the same way ([`ConfigFile::locate`]). Anchors and
//! aliases are refused by the YAML loader (no bombs), duplicate keys too;
//! size and nesting are bounded before the YAML is parsed.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use marked_yaml::{Node, types::MarkedScalarNode};
use settings::{ConfigError, Env, Kind, Var};

use super::shape::{Leaf, Shape};

/// The largest configuration file read.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// The deepest nesting a file may show before it is parsed (the deepest key is 4 levels down).
const MAX_NESTING: usize = 32;

/// One variable's value as the file gives it.
#[derive(Clone, Debug)]
struct Setting {
    value: String,
    line: usize,
    key: String,
    /// Of a per-subgraph setting: each subgraph's entry (name, line, key).
    places: Vec<(String, usize, String)>,
}

/// A configuration file, read: the value of each variable it sets, and
/// every problem it has.
#[derive(Debug)]
pub struct ConfigFile {
    name: String,
    values: BTreeMap<&'static str, Setting>,
    problems: Vec<String>,
}

impl ConfigFile {
    /// Reads the file at `path` against the declarations in `tables`.
    pub fn read(path: &Path, tables: &[&'static [Var]]) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let fail = |why: String| ConfigError(vec![format!("{name}: {why}")]);
        let size = std::fs::metadata(path)
            .map_err(|e| fail(format!("cannot be read: {e}")))?
            .len();
        if size > MAX_FILE_BYTES as u64 {
            return Err(fail(format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| fail("is not UTF-8".into()))?;
        Ok(Self::parse(&name, &text, tables))
    }

    /// Reads `text`, the file called `name`, against the declarations in `tables`.
    pub fn parse(name: &str, text: &str, tables: &[&'static [Var]]) -> Self {
        let mut file = Self {
            name: name.to_owned(),
            values: BTreeMap::new(),
            problems: Vec::new(),
        };
        if let Err(why) = precheck(text) {
            file.problems.push(format!("{name}: {why}"));
            return file;
        }
        // Coercion only of plain scalars: a quoted "15" is a text, as in JSON Schema.
        let options = marked_yaml::LoaderOptions::default()
            .error_on_duplicate_keys(true)
            .prevent_coercion(true);
        let root = match marked_yaml::parse_yaml_with_options(0, text, options) {
            Ok(root) => root,
            Err(err) => {
                // The loader's messages start with `line:column` when they have one.
                let err = err.to_string();
                let sep = if err.starts_with(|c: char| c.is_ascii_digit()) {
                    ":"
                } else {
                    ": "
                };
                file.problems.push(format!("{name}{sep}{err}"));
                return file;
            }
        };
        let shape = Shape::of(tables);
        let mut each = Each::default();
        file.walk(&root, &shape, "", None, &mut each);
        for (var, entries) in each.0 {
            let (kind, line) = (entries.kind, entries.line);
            let value = match kind {
                Kind::Headers => serde_json::to_string(&entries.headers).unwrap_or_default(),
                Kind::Bool => entries
                    .pairs
                    .iter()
                    .filter(|(_, v)| v == "true")
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                _ => entries
                    .pairs
                    .iter()
                    .map(|(name, v)| format!("{name}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            };
            file.values.insert(
                var,
                Setting {
                    value,
                    line,
                    key: entries.key,
                    places: entries.places,
                },
            );
        }
        file
    }

    /// The value the file gives the variable `var`.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.values.get(var).map(|s| s.value.as_str())
    }

    /// The file's own problems (unknown keys, wrong types, bad values).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// An [`Env`] that reads `lookup` (the process environment in
    /// [`Self::process_env`]) and, where it has nothing, this file; it
    /// starts with the file's own problems.
    pub fn env_over(
        self: &Arc<Self>,
        lookup: impl Fn(&str) -> Option<String> + Send + 'static,
    ) -> Env {
        let file = self.clone();
        let mut env = Env::from_fn(move |name| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| file.get(name).map(str::to_owned))
        });
        for problem in &self.problems {
            env.problem(problem.clone());
        }
        env
    }

    /// [`Self::env_over`] the process environment.
    pub fn process_env(self: &Arc<Self>) -> Env {
        self.env_over(|name| std::env::var(name).ok())
    }

    /// `err` with each problem about a variable whose value came from this
    /// file (the environment not setting it) prefixed by the file, line and
    /// key: `gateway.yaml:7: limits.max_errors: MAX_ERRORS must be at least 1`.
    pub fn locate(&self, err: ConfigError, in_env: impl Fn(&str) -> bool) -> ConfigError {
        let located = err
            .0
            .into_iter()
            .map(|problem| {
                let from_file = self
                    .values
                    .iter()
                    .filter(|(var, _)| {
                        problem
                            .strip_prefix(*var)
                            .is_some_and(|rest| rest.starts_with(['=', ':', ' ']) && !in_env(var))
                    })
                    .max_by_key(|(var, _)| var.len());
                let Some((_, setting)) = from_file else {
                    return problem;
                };
                // A per-subgraph setting's problem names the subgraph.
                let (line, key) = setting
                    .places
                    .iter()
                    .find(|(name, ..)| {
                        problem.contains(&format!("\"{name}="))
                            || problem.contains(&format!("subgraph {name}:"))
                            || problem.contains(&format!("{name:?}"))
                    })
                    .map_or((setting.line, setting.key.as_str()), |(_, line, key)| {
                        (*line, key.as_str())
                    });
                format!("{}:{line}: {key}: {problem}", self.name)
            })
            .collect();
        ConfigError(located)
    }

    fn problem(&mut self, line: usize, key: &str, why: impl std::fmt::Display) {
        let key = if key.is_empty() { "(root)" } else { key };
        self.problems
            .push(format!("{}:{line}: {key}: {why}", self.name));
    }

    /// Reads `node` at `path` as `shape` says; `subgraph` is the name a `*` matched.
    fn walk(
        &mut self,
        node: &Node,
        shape: &Shape,
        path: &str,
        subgraph: Option<&str>,
        each: &mut Each,
    ) {
        let line = line_of(node);
        match shape {
            Shape::Group(keys) | Shape::Each(keys) => {
                let Some(map) = node.as_mapping() else {
                    self.problem(
                        line,
                        path,
                        format!("expected a mapping, got {}", what(node)),
                    );
                    return;
                };
                for (key, value) in map.iter() {
                    let name = key.as_str();
                    let at = join(path, name);
                    let key_line = scalar_line(key);
                    match shape {
                        Shape::Each(inner) => {
                            if !is_subgraph_name(name) {
                                self.problem(
                                    key_line,
                                    &at,
                                    "a subgraph name is letters, digits, `_` and `-`",
                                );
                                continue;
                            }
                            let inner = Shape::Group(inner.clone());
                            self.walk(value, &inner, &at, Some(name), each);
                        }
                        _ => match keys.get(name) {
                            Some(inner) => self.walk(value, inner, &at, subgraph, each),
                            None => self.problem(key_line, &at, unknown(keys)),
                        },
                    }
                }
            }
            Shape::Leaf(Leaf {
                name: var, kind, ..
            }) if *kind == Kind::Headers => {
                if let Some(headers) = self.headers(node, path) {
                    let name = subgraph.unwrap_or_default();
                    each.entry(var, *kind, name, line, path)
                        .headers
                        .insert(name.to_owned(), headers);
                }
            }
            Shape::Leaf(Leaf {
                name: var, kind, ..
            }) => match Self::value(node, *kind, subgraph.is_some()) {
                Err(why) => self.problem(line, path, why),
                Ok(value) => match subgraph {
                    None => {
                        self.values.insert(
                            var,
                            Setting {
                                value,
                                line,
                                key: path.to_owned(),
                                places: Vec::new(),
                            },
                        );
                    }
                    Some(name) => each
                        .entry(var, *kind, name, line, path)
                        .pairs
                        .push((name.to_owned(), value)),
                },
            },
        }
    }

    /// A subgraph's `headers:`, each checked as the environment's are;
    /// `None` when any is refused (each refusal listed).
    fn headers(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let max = crate::subgraph::options::MAX_STATIC_HEADERS;
        let Some(map) = node.as_mapping() else {
            let why = format!(
                "expected a mapping of header names to values, got {}",
                what(node)
            );
            self.problem(line_of(node), path, why);
            return None;
        };
        if map.len() > max {
            self.problem(line_of(node), path, format!("more than {max} headers"));
            return None;
        }
        let mut headers = BTreeMap::new();
        let mut refused = false;
        for (name, value) in map.iter() {
            let at = join(path, name.as_str());
            let Some(text) = value.as_scalar() else {
                self.problem(
                    line_of(value),
                    &at,
                    format!("expected a text, got {}", what(value)),
                );
                refused = true;
                continue;
            };
            match crate::subgraph::options::static_header(name.as_str(), text.as_str()) {
                Ok(_) => {
                    headers.insert(name.as_str().to_owned(), text.as_str().to_owned());
                }
                Err(why) => {
                    self.problem(scalar_line(name), &at, why);
                    refused = true;
                }
            }
        }
        (!refused).then_some(headers)
    }

    /// The value of a leaf of `kind`, as its variable takes it.
    fn value(node: &Node, kind: Kind, per_subgraph: bool) -> Result<String, String> {
        if kind == Kind::List
            && let Some(list) = node.as_sequence()
        {
            let mut items = Vec::new();
            for item in list.iter() {
                let Some(text) = item.as_scalar() else {
                    return Err(format!(
                        "expected a list of texts, got {} in it",
                        what(item)
                    ));
                };
                let text = text.as_str().trim();
                if text.is_empty() || text.contains(',') {
                    return Err(format!(
                        "a list item is a non-empty text without commas, got {text:?}"
                    ));
                }
                items.push(text.to_owned());
            }
            return Ok(items.join(","));
        }
        let Some(scalar) = node.as_scalar() else {
            return Err(format!("expected {}, got {}", expected(kind), what(node)));
        };
        let raw = scalar.as_str();
        let plain = scalar.may_coerce();
        let got = || format!("expected {}, got {raw:?}", expected(kind));
        let value = match kind {
            Kind::Bool => match scalar.as_bool().filter(|_| plain) {
                Some(b) => b.to_string(),
                None => return Err(got()),
            },
            Kind::Integer => match raw.parse::<u64>() {
                Ok(n) if plain => n.to_string(),
                _ => return Err(got()),
            },
            Kind::Number => match raw.parse::<f64>() {
                Ok(n) if plain && n.is_finite() => raw.to_owned(),
                _ => return Err(got()),
            },
            Kind::Duration => match super::parsing::parse_timeout(raw) {
                Some(_) => raw.trim().to_owned(),
                None => return Err(got()),
            },
            Kind::Text | Kind::List | Kind::Headers => {
                if raw.contains('\0') {
                    return Err("the text holds a NUL character".into());
                }
                raw.to_owned()
            }
        };
        // A subgraph's entry goes into a `name=value,…` list.
        if per_subgraph && value.contains(',') {
            return Err(format!(
                "a subgraph's value cannot hold a comma, got {raw:?}"
            ));
        }
        Ok(value)
    }
}

/// The per-subgraph entries of each variable, gathered from every `subgraphs.<name>`.
#[derive(Default)]
struct Each(BTreeMap<&'static str, Entries>);

struct Entries {
    kind: Kind,
    /// The first entry's line and key, where a later problem is pointed at.
    line: usize,
    key: String,
    places: Vec<(String, usize, String)>,
    pairs: Vec<(String, String)>,
    headers: BTreeMap<String, BTreeMap<String, String>>,
}

impl Each {
    /// `var`'s entries, the one of `subgraph` at `line` and `key` among them.
    fn entry(
        &mut self,
        var: &'static str,
        kind: Kind,
        subgraph: &str,
        line: usize,
        key: &str,
    ) -> &mut Entries {
        let entries = self.0.entry(var).or_insert_with(|| Entries {
            kind,
            line,
            key: key.to_owned(),
            places: Vec::new(),
            pairs: Vec::new(),
            headers: BTreeMap::new(),
        });
        entries
            .places
            .push((subgraph.to_owned(), line, key.to_owned()));
        entries
    }
}

/// What a value of `kind` looks like, for a message.
fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "true or false",
        Kind::Integer => "a whole number",
        Kind::Number => "a number",
        Kind::Duration => "a duration such as \"5s\"",
        Kind::Text => "a text",
        Kind::List => "a text or a list of texts",
        Kind::Headers => "a mapping of header names to values",
    }
}

/// What `node` is, for a message.
fn what(node: &Node) -> String {
    match node {
        Node::Scalar(s) => format!("{:?}", s.as_str()),
        Node::Mapping(_) => "a mapping".into(),
        Node::Sequence(_) => "a list".into(),
    }
}

fn unknown(keys: &BTreeMap<&'static str, Shape>) -> String {
    let known = keys.keys().copied().collect::<Vec<_>>().join(", ");
    format!("unknown key (known here: {known})")
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn is_subgraph_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn line_of(node: &Node) -> usize {
    node.span().start().map_or(0, |m| m.line())
}

fn scalar_line(node: &MarkedScalarNode) -> usize {
    node.span().start().map_or(0, |m| m.line())
}

/// Refuses, before the YAML parser sees it, a text with NUL bytes or nested
/// deeper than any configuration is: a tree thousands deep costs a parser's
/// and a destructor's stack, and no key of the file is more than 4 down.
fn precheck(text: &str) -> Result<(), String> {
    if text.contains('\0') {
        return Err("holds a NUL byte".into());
    }
    let (mut flow, mut quote) = (0usize, None::<char>);
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        // `- - - x` and `? ? x` nest on one line.
        let mut compact = 0;
        let mut rest = line.trim_start();
        while let Some(next) = ["- ", "? ", ": "].iter().find_map(|p| rest.strip_prefix(p)) {
            compact += 1;
            rest = next.trim_start();
        }
        if indent / 2 + compact > MAX_NESTING * 2 {
            return Err(format!("nested deeper than {MAX_NESTING} levels"));
        }
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    flow += 1;
                    if flow > MAX_NESTING {
                        return Err(format!("nested deeper than {MAX_NESTING} levels"));
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        // A quoted text may span lines in flow; a plain one never holds a quote that ends it.
        if flow == 0 {
            quote = None;
        }
    }
    Ok(())
}
