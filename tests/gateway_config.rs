//! The gateway's configuration file (`grocery serve gateway --config`) as
//! people use it: its JSON Schema committed as `grocery config-schema`
//! prints it, the example file valid against that schema and the gateway's
//! own reader with every key set, a gateway served from a file alone, the
//! environment winning over the file, and unknown keys and bad values
//! refused at start with file, line and key path.

#[path = "deployment/mod.rs"]
mod deployment;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_grocery");

/// `grocery` with none of the variables the files here set.
fn grocery() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(deployment::root());
    for var in [
        "HOST",
        "PORT",
        "GATEWAY_HOST",
        "GATEWAY_PORT",
        "MAX_ERRORS",
        "MAX_DEPTH",
        "SUPERGRAPH_PATH",
        "SUBGRAPH_TIMEOUTS",
        "JWKS_URL",
        "JWT_PUBLIC_KEYS_FILE",
        "REST_PORT",
        "METRICS_ADDR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A file under the temporary folder, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("config-{tag}-{}.yaml", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A served gateway, stopped when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits until `port` answers `/health` with 200; fails
/// with what the process said if it ends first.
fn serve(mut cmd: Command, port: u16) -> Served {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut served = Served(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = served.0.try_wait().unwrap() {
            let mut stderr = String::new();
            served
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("the gateway ended ({status}):\n{stderr}");
        }
        if health(port) == Some(200) {
            return served;
        }
        assert!(Instant::now() < deadline, "nothing answered on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The status of `GET /health` on 127.0.0.1:`port`, if anything answers.
fn health(port: u16) -> Option<u16> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    tcp.write_all(b"GET /health HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).ok()?;
    answer.split(' ').nth(1)?.parse().ok()
}

/// A file serving the project's supergraph on `port`, its subgraphs where no one listens.
fn file_on(port: u16, extra: &str) -> String {
    format!(
        "listen:\n  host: 127.0.0.1\n  port: {port}\nsupergraph:\n  path: schema/supergraph.graphql\n\
         limits:\n  max_depth: 12\n  plan_timeout: 1500ms\ncors:\n  origins: [https://shop.example]\n\
         all_subgraphs:\n  timeout: 3s\nsubgraphs:\n  orders:\n    url: http://127.0.0.1:9/graphql\n    \
         timeout: 2s\n    headers:\n      x-tenant: acme\n{extra}"
    )
}

#[test]
fn the_committed_json_schema_is_what_config_schema_prints() {
    let out = grocery().arg("config-schema").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let committed =
        std::fs::read_to_string(deployment::root().join("schema/gateway.config.schema.json"))
            .unwrap_or_default();
    assert!(
        committed == printed,
        "schema/gateway.config.schema.json is stale: `cargo run -- config-schema > \
         schema/gateway.config.schema.json`"
    );
}

/// The example is valid against the committed schema (python's
/// `jsonschema`, draft 2020-12), sets every key the schema has, and the
/// gateway's own reader finds nothing wrong in it.
#[test]
fn the_example_file_sets_every_key_and_is_valid() {
    let python = deployment::venv_tool("python");
    let script = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
example = yaml.safe_load(open(sys.argv[2]))
jsonschema.Draft202012Validator.check_schema(schema)
errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(example)]
missing = []
def walk(schema, value, path):
    if schema.get("type") == "object" and "properties" in schema:
        for key, inner in schema["properties"].items():
            if not isinstance(value, dict) or key not in value:
                missing.append(path + key)
            else:
                walk(inner, value[key], path + key + ".")
    elif isinstance(schema.get("additionalProperties"), dict) and "properties" in schema["additionalProperties"]:
        inner = schema["additionalProperties"]
        for key in inner["properties"]:
            if not any(key in each for each in value.values()):
                missing.append(path + "*." + key)
        for name, each in value.items():
            walk(dict(inner, properties={k: v for k, v in inner["properties"].items() if k in each}), each, path + name + ".")
walk(schema, example, "")
print(json.dumps({"errors": errors, "missing": missing}))
"#;
    let root = deployment::root();
    let out = Command::new(python)
        .args([
            "-c",
            script,
            root.join("schema/gateway.config.schema.json")
                .to_str()
                .unwrap(),
            root.join("deploy/gateway.example.yaml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        verdict,
        serde_json::json!({"errors": [], "missing": []}),
        "deploy/gateway.example.yaml against the schema"
    );

    let out = grocery()
        .args(["config-check", "deploy/gateway.example.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_gateway_serves_from_a_configuration_file_alone() {
    let port = free_port();
    let file = TempFile::new("alone", &file_on(port, ""));
    let mut cmd = grocery();
    cmd.args(["serve", "gateway", "--config", file.path()]);
    let _served = serve(cmd, port);
}

#[test]
fn the_environment_wins_over_the_file() {
    let (file_port, env_port) = (free_port(), free_port());
    // Both values the file gives would stop it; the environment's are good.
    let file = TempFile::new(
        "env-wins",
        &file_on(file_port, "").replace("max_depth: 12", "max_depth: 12\n  max_errors: 0"),
    );
    let mut cmd = grocery();
    cmd.args(["serve", "gateway", "--config", file.path()])
        .env("PORT", env_port.to_string())
        .env("MAX_ERRORS", "5");
    let _served = serve(cmd, env_port);
    assert_eq!(
        health(file_port),
        None,
        "nothing listens where the file said"
    );
}

#[test]
fn unknown_keys_and_bad_values_are_refused_with_file_line_and_key() {
    let port = free_port();
    let file = TempFile::new(
        "refused",
        &file_on(
            port,
            "  users:\n    timeout: abc\n    tls:\n      ca_fle: ca.pem\nlimit:\n  max_depth: 3\n\
             serving:\n  threads: 0\n",
        ),
    );
    let out = grocery()
        .args(["serve", "gateway", "--config", file.path()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = file.path();
    assert_eq!(
        stderr.matches("invalid configuration").count(),
        1,
        "{stderr}"
    );
    for expected in [
        format!(
            "{name}:20: subgraphs.users.timeout: expected a duration such as \"5s\", got \"abc\""
        ),
        format!("{name}:22: subgraphs.users.tls.ca_fle: unknown key"),
        format!("{name}:23: limit: unknown key"),
        format!("{name}:26: serving.threads: GATEWAY_THREADS must be at least 1"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert_eq!(health(port), None, "nothing half-started");

    // The same file, checked without starting anything.
    let out = grocery().args(["config-check", name]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("subgraphs.users.tls.ca_fle: unknown key"),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let out = grocery()
        .args(["serve", "gateway", "--config", "/nonexistent/gateway.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/gateway.yaml: cannot be read"),
        "{stderr}"
    );
}

/// Nothing the gateway reads is left out of the file: each variable `serve
/// gateway` asks for is declared with a file key, but a component's own
/// `<NAME>_HOST`/`<NAME>_PORT` (the file's `listen` is `HOST`/`PORT`).
#[test]
fn every_variable_serve_gateway_reads_has_a_file_key() {
    let mut env = kit::config::Env::from_fn(|_| None);
    let _ = gateway::Config::read(&mut env);
    let _ = kit::auth::revocation_feed::FeedConfig::from_env(&mut env);
    let tables: &[&[kit::config::Var]] = &[
        kit::config::listen::ENV,
        kit::auth::ENV,
        kit::events::ENV,
        gateway::config::ENV,
        kit::telemetry::otel::ENV,
    ];
    let mut without = Vec::new();
    for name in env.asked() {
        let row = tables
            .iter()
            .flat_map(|t| t.iter())
            .find(|row| row.declares(&name));
        match row {
            // The token lifetimes are read with the issuer and audience but
            // used by the signer (users) only: nothing for a gateway to set.
            Some(_) if name == "ACCESS_TOKEN_TTL_SECS" || name == "REFRESH_TOKEN_TTL_SECS" => {}
            Some(row) if row.file.is_empty() && !row.names[0].starts_with("<NAME>") => {
                without.push(name)
            }
            Some(_) => {}
            // Read, but declared elsewhere (a subgraph's address the feed
            // falls back on): not a gateway setting.
            None => assert_eq!(name, "USERS_URL", "undeclared"),
        }
    }
    assert!(without.is_empty(), "no file key: {without:?}");
}
