//! The `grocery` binary as people run it: committed SDL files, configuration
//! errors, and `grocery dev` booting, serving, stopping and restarting.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_grocery");

fn grocery() -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "DATABASE_URL",
        "USERS_DATABASE_URL",
        "JWT_PRIVATE_KEY",
        "JWT_PRIVATE_KEY_FILE",
        "PG_BINDIR",
        "GROCERY_HOME",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn committed_subgraph_sdl_is_current() {
    for (name, sdl) in [
        ("users", users::sdl()),
        ("catalog", catalog::sdl()),
        ("inventory", inventory::sdl()),
        ("orders", orders::sdl()),
        ("logistics", logistics::sdl()),
        ("gateway", gateway::pipeline::usage::admin::sdl()),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schema/{name}.graphql"));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == sdl,
            "{} is stale; regenerate it with `cargo run -- sdl {name} > schema/{name}.graphql`",
            path.display()
        );
    }
}

#[test]
fn committed_supergraph_is_the_composition_of_the_committed_subgraphs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let scratch = temp_home("compose");
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "graphql") {
            std::fs::copy(entry.path(), scratch.join(entry.file_name())).unwrap();
        }
    }
    let out = grocery()
        .args(["compose", "--dir"])
        .arg(&scratch)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let composed = std::fs::read_to_string(scratch.join("supergraph.graphql")).unwrap();
    let committed = std::fs::read_to_string(dir.join("supergraph.graphql")).unwrap_or_default();
    assert!(
        composed == committed,
        "schema/supergraph.graphql is stale; run `cargo run -- compose`"
    );
    let _ = std::fs::remove_dir_all(scratch);
}

#[test]
fn serve_inventory_names_its_service_token_and_keys() {
    let out = grocery()
        .args(["serve", "inventory"])
        .env("DATABASE_URL", "postgres://x@127.0.0.1/db")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in ["INTERNAL_RPC_TOKEN", "JWT_PUBLIC_KEYS_FILE"] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn serve_lists_every_missing_setting_at_once() {
    let out = grocery()
        .args(["serve", "users"])
        .env("PORT", "not-a-port")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "USERS_DATABASE_URL or DATABASE_URL",
        "JWT_PRIVATE_KEY",
        "PORT=\"not-a-port\"",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

/// The folder of the newest installed PostgreSQL server, as `dev` finds it.
fn real_postgres_bindir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("this test needs the PostgreSQL server binaries: run `bash .ci/run` once")
    })
}

/// A folder of stand-ins for `apt-get` (records its call in `calls`; on
/// `install`, links the real server binaries into `PG_BINDIR`) and, when
/// asked, `sudo` (records, then runs the rest of its command line).
fn package_manager_stand_ins(dir: &Path, with_sudo: bool) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("stand-ins");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("calls");
    let scripts = [
        (
            "apt-get",
            format!(
                "#!/bin/sh\necho \"apt-get $*\" >> {calls}\n\
                 if [ \"$1\" = install ]; then ln -s {real}/* \"$PG_BINDIR\"/; fi\n",
                calls = calls.display(),
                real = real_postgres_bindir().display()
            ),
        ),
        (
            "sudo",
            format!(
                "#!/bin/sh\necho \"sudo $*\" >> {}\nexec \"$@\"\n",
                calls.display()
            ),
        ),
    ];
    for (name, script) in scripts.iter().take(if with_sudo { 2 } else { 1 }) {
        let path = bin.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `grocery` as an unprivileged user: when the tests run as root, through
/// util-linux's `setpriv` as nobody (65534), otherwise as themselves.
fn grocery_unprivileged() -> Command {
    if !is_root() {
        return grocery();
    }
    // By its full path: a child's PATH, which finds its program, may hold only stand-ins.
    let setpriv = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join("setpriv"))
        .find(|p| p.exists())
        .expect("setpriv (util-linux) drops root for this test");
    let mut command = Command::new(setpriv);
    command.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
    for var in [
        "DATABASE_URL",
        "USERS_DATABASE_URL",
        "JWT_PRIVATE_KEY",
        "JWT_PRIVATE_KEY_FILE",
    ] {
        command.env_remove(var);
    }
    command
}

/// A folder the unprivileged user may write in, with an empty `PG_BINDIR`
/// and a `state` folder for `GROCERY_HOME`.
fn open_home(tag: &str) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let home = temp_home(tag);
    let bindir = home.join("pg-bin");
    std::fs::create_dir_all(&bindir).unwrap();
    let state = home.join("state");
    std::fs::create_dir_all(&state).unwrap();
    for dir in [&home, &bindir, &state] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    (home, bindir)
}

/// `dev` (started by `command`) finds no server binaries, runs the
/// package-manager stand-ins, announcing each command, and then serves.
fn installs_then_starts(command: Command, sudo: bool) {
    let (home, bindir) = open_home("pginstall");
    let stand_ins = package_manager_stand_ins(&home, true);
    let path = std::env::join_paths(
        std::iter::once(stand_ins).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let (port, gateway) = (free_port(), free_port());
    let (mut dev, lines, _rx) = start_dev_with(
        command,
        &home.join("state"),
        port,
        gateway,
        &[
            ("PATH", path.as_os_str()),
            ("PG_BINDIR", bindir.as_os_str()),
        ],
    );
    let calls = std::fs::read_to_string(home.join("calls")).unwrap_or_default();
    let sudo = if sudo { "sudo " } else { "" };
    for command in [
        format!("{sudo}apt-get update"),
        format!("{sudo}apt-get install -y postgresql"),
    ] {
        assert!(
            calls.lines().any(|l| l == command),
            "{command} was not run: {calls}"
        );
        // Said before it ran.
        assert!(
            lines.iter().any(|l| l.trim() == format!("$ {command}")),
            "{command} was not announced: {lines:#?}"
        );
    }
    assert!(bindir.join("initdb").exists());
    let session = post_graphql(
        port,
        r#"{"query":"mutation { login(deviceId: \"admin\", password: \"test-demo-pass\") { user { role } } }"}"#,
    );
    assert_eq!(
        session["data"]["login"]["user"]["role"], "ADMIN",
        "{session}"
    );
    dev.stop();
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn serve_names_every_bad_variable_of_a_component_in_one_error() {
    let out = grocery()
        .args(["serve", "orders"])
        .env("DATABASE_URL", "postgres://x@127.0.0.1/db")
        .env("INTERNAL_RPC_TOKEN", "t0ken")
        .env("JWT_PUBLIC_KEYS_FILE", "/nonexistent/public.pem")
        .env("TAX_RATE", "8%")
        .env("ORDERS_PORT", "4o04")
        .env("CATALOG_URL", "catalog:4002")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("invalid configuration").count(),
        1,
        "{stderr}"
    );
    for expected in [
        "TAX_RATE=\"8%\" is not valid",
        "ORDERS_PORT=\"4o04\" is not valid",
        "CATALOG_URL=\"catalog:4002\" is not an http URL",
        "JWT_PUBLIC_KEYS_FILE=/nonexistent/public.pem",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn serve_gateway_names_every_bad_variable_in_one_error() {
    let out = grocery()
        .args(["serve", "gateway"])
        .env("GATEWAY_THREADS", "0")
        .env("MAX_DEPTH", "deep")
        .env("PLAN_TIMEOUT", "2h")
        .env("METRICS_ADDR", "everywhere")
        // Keys make it verify tokens, and follow the revocations with the service token.
        .env("JWT_PUBLIC_KEYS_FILE", "/nonexistent/public.pem")
        .env_remove("INTERNAL_RPC_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("invalid configuration").count(),
        1,
        "{stderr}"
    );
    for expected in [
        "GATEWAY_THREADS must be at least 1",
        "MAX_DEPTH=\"deep\" is not valid",
        "PLAN_TIMEOUT: \"2h\" is not a timeout",
        "METRICS_ADDR=\"everywhere\"",
        "JWT_PUBLIC_KEYS_FILE=/nonexistent/public.pem",
        "INTERNAL_RPC_TOKEN is required",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn serve_gateway_needs_no_keys_and_then_no_service_token() {
    let out = grocery()
        .args(["serve", "gateway"])
        .env("GATEWAY_THREADS", "0")
        .env_remove("JWT_PUBLIC_KEYS_FILE")
        .env_remove("JWKS_URL")
        .env_remove("INTERNAL_RPC_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GATEWAY_THREADS must be at least 1"),
        "{stderr}"
    );
    for unasked in ["JWT_PUBLIC_KEYS_FILE", "JWKS_URL", "INTERNAL_RPC_TOKEN"] {
        assert!(!stderr.contains(unasked), "{unasked} in:\n{stderr}");
    }
}

#[test]
fn readmes_configuration_table_is_what_grocery_env_prints() {
    let out = grocery().arg("env").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("| variable | gateway file key | used by | default | meaning |")
        .expect("README has a configuration table");
    let end = readme[start..]
        .find("\n\n")
        .map_or(readme.len(), |e| start + e + 1);
    assert!(
        readme[start..end] == printed,
        "README's configuration table differs from `grocery env`; replace it with the output of \
         `cargo run -- env` (a variable's row lives beside the code that reads it)"
    );
    assert!(printed.lines().count() > 60, "{printed}");
}

#[test]
fn serve_help_points_at_grocery_env_instead_of_repeating_the_table() {
    let out = grocery().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("`grocery env` lists every variable"),
        "{help}"
    );
    for repeated in ["MAX_TOKENS", "SUBGRAPH_TIMEOUTS", "SMTP_URL"] {
        assert!(!help.contains(repeated), "{repeated} in:\n{help}");
    }
}

#[test]
fn dev_installs_missing_postgres_binaries_with_the_package_manager_then_starts() {
    // As root: apt-get itself (the stand-in links the real binaries into PG_BINDIR).
    installs_then_starts(grocery(), !is_root());
}

#[test]
fn dev_installs_missing_postgres_binaries_through_sudo_then_starts() {
    installs_then_starts(grocery_unprivileged(), true);
}

#[test]
fn dev_without_rights_to_install_postgres_prints_the_command_and_fails() {
    let (home, bindir) = open_home("pgnorights");
    // apt-get is there, sudo is not, and the user is not root.
    let stand_ins = package_manager_stand_ins(&home, false);
    let out = grocery_unprivileged()
        .arg("dev")
        .env("PATH", &stand_ins)
        .env("PG_BINDIR", &bindir)
        .env("GROCERY_HOME", home.join("state"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for said in [
        "installing needs root, and there is no sudo",
        "Install them:  sudo apt-get install postgresql\n",
    ] {
        assert!(stderr.contains(said), "{said:?} not in:\n{stderr}");
    }
    assert!(
        !home.join("calls").exists(),
        "the package manager ran without rights: {}",
        std::fs::read_to_string(home.join("calls")).unwrap_or_default()
    );
    let _ = std::fs::remove_dir_all(home);
}

fn temp_home(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("grocery-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn post_graphql(port: u16, body: &str) -> serde_json::Value {
    post_graphql_as(port, body, None)
}

fn post_graphql_as(port: u16, body: &str, token: Option<&str>) -> serde_json::Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").expect("http response");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn get_json(port: u16, path: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").expect("http response");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A running `grocery dev`; stopped with SIGTERM (so it stops its PostgreSQL)
/// when dropped, also when a test fails half-way. Its stderr goes to a file
/// that failures quote.
struct Dev(std::process::Child, PathBuf);

impl Dev {
    /// SIGTERM, then wait for a clean exit.
    fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                let stderr = std::fs::read_to_string(&self.1).unwrap_or_default();
                assert!(
                    status.success(),
                    "grocery dev exited with {status}:\n{stderr}"
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "grocery dev did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
}

/// Starts `grocery dev`, waits until it is ready, and returns it with its output so far.
fn start_dev(
    home: &Path,
    port: u16,
    gateway_port: u16,
) -> (Dev, Vec<String>, mpsc::Receiver<String>) {
    start_dev_with(grocery(), home, port, gateway_port, &[])
}

/// [`start_dev`] by `command` (`grocery`, perhaps as another user), `env` on top.
fn start_dev_with(
    mut command: Command,
    home: &Path,
    port: u16,
    gateway_port: u16,
    env: &[(&str, &std::ffi::OsStr)],
) -> (Dev, Vec<String>, mpsc::Receiver<String>) {
    let child = command
        .envs(env.iter().copied())
        .arg("dev")
        .env("GROCERY_HOME", home)
        .env("USERS_PORT", port.to_string())
        .env("GATEWAY_PORT", gateway_port.to_string())
        // Every other listener on a port the system picks, so tests never collide.
        .env("CATALOG_PORT", "0")
        .env("ORDERS_PORT", "0")
        .env("LOGISTICS_PORT", "0")
        .env("INVENTORY_PORT", "0")
        // The devices' 5050 is left to a developer's own `grocery dev`.
        .env("REST_PORT", "0")
        .env("INVENTORY_RPC_ADDR", "127.0.0.1:0")
        .env("GROCERY_DEMO_PASSWORD", "test-demo-pass")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(home.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let mut dev = Dev(child, home.join("stderr.log"));
    let (tx, rx) = mpsc::channel();
    let stdout = dev.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("grocery dev did not become ready:\n{}", lines.join("\n")));
        let ready = line.contains("grocery dev is ready");
        lines.push(line);
        if ready {
            return (dev, lines, rx);
        }
    }
}

#[test]
fn dev_boots_a_private_cluster_serves_the_demo_and_stops_it_cleanly() {
    let home = temp_home("dev");
    let port = free_port();
    let gateway = free_port();

    let (mut dev, lines, _rx) = start_dev(&home, port, gateway);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("creating a private PostgreSQL cluster")),
        "{lines:#?}"
    );
    assert!(home.join("keys/signing.pem").exists());
    let session = post_graphql(
        port,
        r#"{"query":"mutation { login(deviceId: \"admin\", password: \"test-demo-pass\") { user { role } } }"}"#,
    );
    assert_eq!(
        session["data"]["login"]["user"]["role"], "ADMIN",
        "{session}"
    );
    let registered = post_graphql(
        port,
        r#"{"query":"mutation { register(input: {deviceId: \"fridge-1\", password: \"cold-storage\"}) { deviceId } }"}"#,
    );
    assert_eq!(
        registered["data"]["register"]["deviceId"], "fridge-1",
        "{registered}"
    );
    // The gateway fronts it all: sessions, identity, and one product view
    // assembled from catalog and inventory.
    let session = post_graphql(
        gateway,
        r#"{"query":"mutation { login(deviceId: \"admin\", password: \"test-demo-pass\") { accessToken } }"}"#,
    );
    let token = session["data"]["login"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{session}"))
        .to_owned();
    let me = post_graphql_as(
        gateway,
        r#"{"query":"{ me { deviceId role } }"}"#,
        Some(&token),
    );
    assert_eq!(
        me["data"]["me"],
        serde_json::json!({ "deviceId": "admin", "role": "ADMIN" }),
        "{me}"
    );
    let products = post_graphql(
        gateway,
        r#"{"query":"{ products(first: 1, search: \"apple\") { edges { node { sku name stock { available } unitPrice } } } }"}"#,
    );
    let apple = &products["data"]["products"]["edges"][0]["node"];
    assert_eq!(apple["sku"], "APPLE", "{products}");
    assert_eq!(apple["stock"]["available"], 200, "{products}");
    assert_eq!(apple["unitPrice"], "0.38", "{products}");
    let forged = post_graphql_as(gateway, r#"{"query":"{ me { id } }"}"#, Some("not.a.token"));
    assert_eq!(
        forged["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{forged}"
    );
    let ready = get_json(gateway, "/ready");
    assert_eq!(ready["status"], "ready", "every subgraph answers: {ready}");
    let invalid = post_graphql(
        gateway,
        r#"{"query":"{ products { edges { node { colour } } } }"}"#,
    );
    assert_eq!(
        invalid["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{invalid}"
    );

    dev.stop();
    assert!(
        !home.join("pg/data/postmaster.pid").exists(),
        "PostgreSQL still running after stop"
    );

    // The second start reuses the cluster, its data and the keys.
    let (mut dev, lines, _rx) = start_dev(&home, port, gateway);
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("creating a private PostgreSQL cluster")),
        "{lines:#?}"
    );
    let login = post_graphql(
        port,
        r#"{"query":"mutation { login(deviceId: \"fridge-1\", password: \"cold-storage\") { user { deviceId } } }"}"#,
    );
    assert_eq!(
        login["data"]["login"]["user"]["deviceId"], "fridge-1",
        "{login}"
    );
    dev.stop();
    assert!(!home.join("pg/data/postmaster.pid").exists());
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn serve_gateway_checks_its_subgraph_urls() {
    let out = grocery()
        .args(["serve", "gateway"])
        .env("SUBGRAPH_URLS", "users")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SUBGRAPH_URLS: \"users\""), "{stderr}");
    // A well-formed override for a subgraph the supergraph does not have is refused too.
    let home = temp_home("gw");
    let keygen = grocery()
        .args(["keygen", "--dir"])
        .arg(home.join("keys"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&keygen.stdout);
    let public = &printed[printed.find("-----BEGIN").expect("public key printed")..];
    std::fs::write(home.join("public.pem"), public).unwrap();
    let out = grocery()
        .args(["serve", "gateway"])
        .env("JWT_PUBLIC_KEYS_FILE", home.join("public.pem"))
        .env(
            "SUPERGRAPH_PATH",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/supergraph.graphql"),
        )
        .env("SUBGRAPH_URLS", "ghost=http://127.0.0.1:1/graphql")
        .env("INTERNAL_RPC_TOKEN", "t0ken")
        .env("GATEWAY_PORT", free_port().to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"ghost\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --supergraph wins over SUPERGRAPH_PATH, and is the gateway's alone.
    let missing = home.join("nowhere.graphql");
    let out = grocery()
        .args(["serve", "gateway", "--supergraph"])
        .arg(&missing)
        .env("JWT_PUBLIC_KEYS_FILE", home.join("public.pem"))
        .env("INTERNAL_RPC_TOKEN", "t0ken")
        .env(
            "SUPERGRAPH_PATH",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/supergraph.graphql"),
        )
        .env("GATEWAY_PORT", free_port().to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&*missing.display().to_string()), "{stderr}");
    let out = grocery()
        .args(["serve", "users", "--supergraph", "x.graphql"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--supergraph is the gateway's"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(home);
}
