//! What the checks of the deployment files (`deploy/k8s/`, `docker-compose.yml`)
//! share: the tools they run, YAML read through them, and the configuration
//! table each container's environment is held to.
//!
//! The tools are never optional: a missing one fails the test with the
//! command that installs it (`bash .ci/run` installs all of them).

#![allow(dead_code)]

use std::{
    collections::BTreeSet,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Kubernetes release whose schemas the manifests are validated against.
pub const KUBERNETES_VERSION: &str = "1.37.0";
/// The `kubernetes-validate` release that ships them (`.ci/run` installs it).
pub const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";

/// Where `.ci/run` puts Python tools: `<target>/tools/k8s-venv`, beside the
/// binaries under test, whatever `CARGO_TARGET_DIR` says.
pub fn venv() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_grocery"));
    let target = bin
        .parent()
        .and_then(Path::parent)
        .expect("the binary sits in <target>/<profile>/");
    target.join("tools/k8s-venv")
}

fn install_hint() -> String {
    format!(
        "run `bash .ci/run` once, or install by hand:\n  \
         sudo apt-get install kubernetes-client docker-compose python3-venv   # kubectl\n  \
         python3 -m venv {venv} && {venv}/bin/pip install {KUBERNETES_VALIDATE}",
        venv = venv().display()
    )
}

/// A tool on `PATH`, or a failure that says how to install it.
pub fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| panic!("`{name}` is not installed: {}", install_hint()))
}

/// A program of the tools' virtual environment, or a failure that says how to install it.
pub fn venv_tool(name: &str) -> PathBuf {
    let path = venv().join("bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: {}",
        path.display(),
        install_hint()
    );
    path
}

/// Runs `program` with `args` (and `stdin`), and returns its output; fails
/// the test with what it said when it fails.
pub fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} cannot run: {e}", program.display()));
    let mut input = child.stdin.take().expect("piped");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("writing stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("waiting for the tool");
    assert!(
        out.status.success(),
        "`{} {}` failed ({}):\n{}\n{}",
        program.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Every document of a YAML stream, as JSON (read by PyYAML, which
/// `kubernetes-validate` brings along).
pub fn yaml_documents(yaml: &str) -> Vec<Value> {
    let python = venv_tool("python3");
    let script = "import json, sys, yaml\n\
                  json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)";
    let json = run(&python, &["-c", script], Some(yaml));
    serde_json::from_str(&json).expect("JSON from PyYAML")
}

/// The subgraphs, by the names the commands and the table use.
pub const SUBGRAPHS: [&str; 5] = ["users", "catalog", "inventory", "orders", "logistics"];
/// What `grocery serve` runs.
pub const COMPONENTS: [&str; 6] = [
    "gateway",
    "users",
    "catalog",
    "inventory",
    "orders",
    "logistics",
];
/// The subgraphs `grocery seed` seeds (src/seed.rs).
pub const SEEDED: [&str; 3] = ["users", "inventory", "catalog"];

/// One row of the configuration table.
#[derive(Debug)]
pub struct Setting {
    /// Its variables, any one of which sets it; `<NAME>` stands for a
    /// subgraph's name in upper case (`USERS_DATABASE_URL`).
    pub names: Vec<String>,
    /// The roles that read it: the components, `migrate` and `seed`.
    pub used_by: BTreeSet<&'static str>,
    /// When required: the variables that may stand in for it (often none).
    pub required: Option<Vec<String>>,
}

/// The settings every role reads, from README's configuration table.
///
/// The one place that knows where the table comes from: when `grocery env`
/// prints it, read that instead.
pub fn settings() -> Vec<Setting> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let table = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("README has a ## Configuration section");
    let mut settings = Vec::new();
    for line in table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
    {
        let cells = table_cells(line);
        let [names, _file_key, used_by, default, _meaning] = cells.as_slice() else {
            panic!("README's configuration table: a row of 5 cells expected: {line}");
        };
        let used_by = roles(used_by, line);
        let required = default.trim().strip_prefix("required").map(|rest| {
            let unless = rest.trim_start().strip_prefix("unless").unwrap_or("");
            backticked(unless.split('(').next().unwrap_or(""))
        });
        // `A`, `B`: two settings; `A` / `B`: one setting, either name.
        for group in names.split(',') {
            let names = backticked(group);
            assert!(!names.is_empty(), "README's table: no `NAME` in {line}");
            settings.push(Setting {
                used_by: narrowed(&names, &used_by),
                names,
                required: required.clone(),
            });
        }
    }
    assert!(
        settings.len() > 40,
        "README's table has {} rows",
        settings.len()
    );
    settings
}

/// A row's cells, unescaping `\|`.
fn table_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut chars = line.trim().trim_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cells.last_mut().unwrap().push('|');
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// The `names` in backticks in `text` that look like variables.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "_<>".contains(c))
        })
        .map(str::to_owned)
        .collect()
}

/// The roles a "used by" cell names.
fn roles(cell: &str, line: &str) -> BTreeSet<&'static str> {
    let mut roles = BTreeSet::new();
    let cell = cell.replace('`', "");
    for phrase in cell
        .split(',')
        .map(|p| p.split('(').next().unwrap_or("").trim())
    {
        let named: &[&'static str] = match phrase {
            "all" => &[
                "gateway",
                "users",
                "catalog",
                "inventory",
                "orders",
                "logistics",
                "migrate",
                "seed",
            ],
            "every component" | "each component" | "serve" => &COMPONENTS,
            "all subgraphs" | "every subgraph" | "each subgraph" | "one subgraph" => &SUBGRAPHS,
            "every subgraph but users" => &["catalog", "inventory", "orders", "logistics"],
            "every verifier" => &["gateway", "catalog", "inventory", "orders", "logistics"],
            "gateway" | "serve gateway" => &["gateway"],
            "users" => &["users"],
            "catalog" => &["catalog"],
            "inventory" => &["inventory"],
            "orders" => &["orders"],
            "logistics" => &["logistics"],
            "migrate" => &["migrate"],
            "seed" => &["seed"],
            // Never deployed: the laptop command and the test suite.
            "dev" | "tests" => &[],
            other => panic!(
                "README's configuration table: \"used by\" {other:?} is not a role this check knows \
                 (tests/deployment/mod.rs, fn roles): {line}"
            ),
        };
        roles.extend(named);
    }
    roles
}

/// `USERS_PORT` in a row of every subgraph is still only the users subgraph's.
fn narrowed(names: &[String], used_by: &BTreeSet<&'static str>) -> BTreeSet<&'static str> {
    let own = SUBGRAPHS.iter().find(|s| {
        used_by.len() > 1
            && used_by.contains(*s)
            && names
                .iter()
                .all(|n| n.starts_with(&format!("{}_", s.to_uppercase())))
    });
    match own {
        Some(subgraph) => BTreeSet::from([*subgraph]),
        None => used_by.clone(),
    }
}

/// `name` with `<NAME>` spelled for each of `subgraphs`.
fn spelled(name: &str, subgraphs: &[&str]) -> Vec<String> {
    if name.contains("<NAME>") {
        subgraphs
            .iter()
            .map(|s| name.replace("<NAME>", &s.to_uppercase()))
            .collect()
    } else {
        vec![name.to_owned()]
    }
}

/// A container of ours: the role its command runs, the subgraphs whose
/// databases it uses, and the variables it is given.
#[derive(Debug)]
pub struct Container {
    /// Where it is, for messages: `Deployment/orders`, `orders (compose)`.
    pub place: String,
    pub role: &'static str,
    pub subgraphs: Vec<&'static str>,
    pub env: BTreeSet<String>,
}

impl Container {
    /// Reads a grocery command (`grocery serve orders`, `grocery migrate
    /// --wait users`, `grocery seed`: what follows the program name).
    pub fn new(place: String, args: &[&str], env: BTreeSet<String>) -> Self {
        let one = |name: &str| -> &'static str {
            COMPONENTS
                .iter()
                .copied()
                .find(|c| *c == name)
                .unwrap_or_else(|| panic!("{place}: `{name}` is not a component"))
        };
        let (role, subgraphs): (&'static str, Vec<&'static str>) = match args {
            ["serve", "gateway"] => ("gateway", vec![]),
            ["serve", name] => (one(name), vec![one(name)]),
            ["migrate", rest @ ..] => {
                let named: Vec<_> = rest
                    .iter()
                    .filter(|a| !a.starts_with("--"))
                    .map(|a| one(a))
                    .collect();
                match named.as_slice() {
                    [] => ("migrate", SUBGRAPHS.to_vec()),
                    _ => ("migrate", named),
                }
            }
            ["seed"] => ("seed", SEEDED.to_vec()),
            other => panic!(
                "{place}: `grocery {}` is not a command this check knows",
                other.join(" ")
            ),
        };
        Self {
            place,
            role,
            subgraphs,
            env,
        }
    }

    /// What is wrong with its environment against `settings`: variables it
    /// does not read, required ones it lacks.
    pub fn drift(&self, settings: &[Setting]) -> Vec<String> {
        let mut problems = Vec::new();
        let mine: Vec<&Setting> = settings
            .iter()
            .filter(|s| s.used_by.contains(self.role))
            .collect();
        // Any subgraph's `<NAME>_…` may be read by a role that reads them all.
        let spell_for: &[&str] = match self.role {
            "migrate" | "seed" => &SUBGRAPHS,
            _ => &self.subgraphs,
        };
        let readable: BTreeSet<String> = mine
            .iter()
            .flat_map(|s| s.names.iter().flat_map(|n| spelled(n, spell_for)))
            .collect();
        for name in self.env.difference(&readable) {
            problems.push(format!(
                "{}: sets {name}, which `{}` does not read (README's configuration table)",
                self.place, self.role
            ));
        }
        let set = |name: &str| {
            let spelled = spelled(name, &self.subgraphs);
            !spelled.is_empty() && spelled.iter().all(|n| self.env.contains(n))
        };
        for setting in mine {
            let Some(stand_ins) = &setting.required else {
                continue;
            };
            if !setting.names.iter().chain(stand_ins).any(|n| set(n)) {
                problems.push(format!(
                    "{}: `{}` needs {}{}, and it is not set",
                    self.place,
                    self.role,
                    setting.names.join(" or "),
                    stand_ins
                        .iter()
                        .map(|s| format!(" (or {s})"))
                        .collect::<String>()
                ));
            }
        }
        problems
    }
}
