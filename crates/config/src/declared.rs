//! Declared variables: one [`Var`] row per setting, kept beside the code
//! that reads it, from which README's configuration table is printed.

/// One row of the environment table: variables read together, who reads
/// them, their default and what they do.
#[derive(Clone, Copy, Debug)]
pub struct Var {
    /// The variables of this row; `<NAME>` stands for a component's
    /// upper-case name (`<NAME>_PORT` declares `USERS_PORT`, `GATEWAY_PORT`, …).
    pub names: &'static [&'static str],
    /// Which components (or commands) read them.
    pub used_by: &'static str,
    /// What holds when they are unset.
    pub default: &'static str,
    /// What they do, in one line (Markdown).
    pub meaning: &'static str,
    /// Their keys in the gateway's configuration file, one per name in
    /// [`Self::names`]' order; empty when the file has none of them.
    pub file: &'static [Key],
}

/// Where a variable sits in the gateway's configuration file
/// (`grocery serve gateway --config`) and what value it takes there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// Dotted path from the file's root: `limits.max_depth`; a `*` segment
    /// stands for a subgraph's name (`subgraphs.*.timeout`), and the
    /// variable then holds every subgraph's entry (`name=value,…`, or the
    /// names set to `true` for a [`Kind::Bool`]).
    pub path: &'static str,
    /// What the file holds there.
    pub kind: Kind,
}

/// The kinds of value a configuration file holds, each written to its
/// variable as that variable's readers expect it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `true` or `false`.
    Bool,
    /// A whole number, at least 0.
    Integer,
    /// A number (`0.25`).
    Number,
    /// `2s`, `500ms`.
    Duration,
    /// Any text: a path, URL, address, name.
    Text,
    /// A list of texts (written comma-separated), or one text as the variable takes it.
    List,
    /// `Header-Name: value` pairs (the variable holds them as JSON).
    Headers,
}

/// A file key of `kind` at `path` (for [`Var::file`]).
pub const fn key(path: &'static str, kind: Kind) -> Key {
    Key { path, kind }
}

/// Stands for a component's upper-case name in a declared name.
const PLACEHOLDER: &str = "<NAME>";

impl Var {
    /// Whether `name` is one of this row's variables.
    pub fn declares(&self, name: &str) -> bool {
        self.names.iter().any(|declared| matches(declared, name))
    }

    /// The row as README's table shows it.
    pub fn row(&self) -> String {
        let names = self
            .names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let keys = self
            .file
            .iter()
            .map(|key| format!("`{}`", key.path))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "| {names} | {keys} | {} | {} | {} |",
            self.used_by, self.default, self.meaning
        )
    }
}

fn matches(declared: &str, name: &str) -> bool {
    match declared.strip_prefix(PLACEHOLDER) {
        None => declared == name,
        Some(suffix) => name.strip_suffix(suffix).is_some_and(|component| {
            !component.is_empty() && component.bytes().all(|b| b.is_ascii_uppercase())
        }),
    }
}

/// The Markdown table of `rows`, header included, one line each.
pub fn markdown<'a>(rows: impl IntoIterator<Item = &'a Var>) -> String {
    let mut table = String::from(
        "| variable | gateway file key | used by | default | meaning |\n|---|---|---|---|---|\n",
    );
    for var in rows {
        table.push_str(&var.row());
        table.push('\n');
    }
    table
}

/// The names in `asked` that no row of `tables` declares.
pub fn undeclared(asked: &[String], tables: &[&[Var]]) -> Vec<String> {
    asked
        .iter()
        .filter(|name| {
            !tables
                .iter()
                .flat_map(|t| t.iter())
                .any(|v| v.declares(name))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROWS: &[Var] = &[
        Var {
            file: &[
                key("listen.host", Kind::Text),
                key("listen.port", Kind::Integer),
            ],
            names: &["HOST", "PORT"],
            used_by: "`serve`",
            default: "`127.0.0.1`",
            meaning: "listen address",
        },
        Var {
            file: &[],
            names: &["<NAME>_PORT"],
            used_by: "each component",
            default: "`PORT`",
            meaning: "`a\\|b`",
        },
    ];

    #[test]
    fn a_placeholder_stands_for_any_upper_case_name() {
        assert!(ROWS[1].declares("USERS_PORT"));
        assert!(ROWS[1].declares("GATEWAY_PORT"));
        for other in ["_PORT", "PORT", "users_PORT", "USERS_PORTS"] {
            assert!(!ROWS[1].declares(other), "{other}");
        }
        let asked = ["HOST", "USERS_PORT", "USERS_HOST"].map(String::from);
        assert_eq!(undeclared(&asked, &[ROWS]), ["USERS_HOST"]);
    }

    #[test]
    fn rows_print_as_a_markdown_table() {
        assert_eq!(
            markdown(ROWS),
            "| variable | gateway file key | used by | default | meaning |\n|---|---|---|---|---|\n\
             | `HOST`, `PORT` | `listen.host`, `listen.port` | `serve` | `127.0.0.1` | listen address |\n\
             | `<NAME>_PORT` |  | each component | `PORT` | `a\\|b` |\n"
        );
    }
}
