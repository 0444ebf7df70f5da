//! What the end-to-end tests share: the `grocery` binary started as `dev` or
//! as single components, GraphQL over HTTP to a gateway, and
//! `graphql-transport-ws` subscribers, and JavaScript clients ([`node`]).

#![allow(dead_code)]

pub mod node;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

pub const BIN: &str = env!("CARGO_BIN_EXE_grocery");
pub const PASSWORD: &str = "e2e-demo-pass";
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `grocery` process, stopped with SIGTERM when dropped; its stderr is kept
/// in a file for failure messages.
pub struct Process {
    child: std::process::Child,
    pub stderr: PathBuf,
}

impl Process {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory now, in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// What the process wrote so far: its log lines and stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// `grocery dev`: every subgraph and the gateway in one process.
pub struct Dev {
    pub process: Process,
    /// Its folder (keys, logs); removed when dropped.
    pub home: PathBuf,
    /// The gateway's port.
    pub gateway: u16,
    /// Each subgraph's GraphQL URL by name, and `stock-api` (host:port).
    pub urls: HashMap<String, String>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Starts `grocery dev` on `database_url` and `redis_url`, events on
/// `stream`, with `env` on top; returns once it is ready.
pub fn start_dev(database_url: &str, redis_url: &str, stream: &str, env: &[(&str, &str)]) -> Dev {
    let home = std::env::temp_dir().join(format!("grocery-e2e-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    let gateway = free_port();
    let stderr = home.join("stderr.log");
    let mut command = Command::new(BIN);
    command
        .arg("dev")
        .env("GROCERY_HOME", &home)
        .env("DATABASE_URL", database_url)
        .env("REDIS_URL", redis_url)
        .env("EVENT_STREAM", stream)
        .env("GROCERY_DEMO_PASSWORD", PASSWORD)
        .env("GATEWAY_PORT", gateway.to_string())
        .env("USERS_PORT", "0")
        .env("CATALOG_PORT", "0")
        .env("INVENTORY_PORT", "0")
        .env("ORDERS_PORT", "0")
        .env("LOGISTICS_PORT", "0")
        .env("INVENTORY_RPC_ADDR", "127.0.0.1:0")
        // Not the devices' 5050: tests run side by side (a test that wants
        // the REST port of its own names one).
        .env("REST_PORT", "0")
        .env("LOG_FORMAT", "json")
        .env_remove("SMTP_URL")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let process = Process { child, stderr };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = Vec::<String>::new();
    let mut ready = false;
    let mut urls = HashMap::new();
    loop {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            panic!(
                "grocery dev did not become ready:\n{}\n{}",
                lines.join("\n"),
                process.stderr()
            );
        };
        ready |= line.contains("grocery dev is ready");
        if ready {
            let mut words = line.split_whitespace();
            if let (Some(name), Some(url)) = (words.next(), words.next()) {
                urls.insert(name.to_owned(), url.to_owned());
            }
        }
        let orders = line.trim_start().starts_with("orders ");
        lines.push(line);
        if ready && orders {
            break;
        }
    }
    // Lines after the orders one (stock-api) come at once.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        let mut words = line.split_whitespace();
        if let (Some(name), Some(url)) = (words.next(), words.next()) {
            urls.insert(name.to_owned(), url.to_owned());
        }
    }
    Dev {
        process,
        home,
        gateway,
        urls,
    }
}

/// Starts `grocery <args>` with `env`, logging to a file in `dir`.
pub fn start(args: &[&str], env: &[(&str, String)], dir: &Path) -> Process {
    let stderr = dir.join(format!("{}-{}.log", args.join("-"), free_port()));
    let mut command = Command::new(BIN);
    // Its log lines (stdout) and anything else it says, in one file.
    let log = std::fs::File::create(&stderr).unwrap();
    command
        .args(args)
        .env("LOG_FORMAT", "json")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (name, value) in env {
        command.env(name, value);
    }
    Process {
        child: command.spawn().unwrap(),
        stderr,
    }
}

/// GET `url` (`http://host:port/path`): the whole response, or why there is none.
async fn get(url: &str) -> Result<String, String> {
    let (host, path) = url
        .trim_start_matches("http://")
        .split_once('/')
        .ok_or_else(|| format!("not an http:// URL with a path: {url}"))?;
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| format!("connecting to {host}: {e}"))?;
    let request = format!("GET /{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response)
}

/// What a process wrote to stderr, shown as it is in a failure message.
struct Log(String);

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `grocery serve gateway` of its own over `dev`'s five subgraphs: the
/// committed supergraph, users' JWKS, and `rpc_token` (the one `dev` was
/// started with) to load the access changes it then follows on `stream` in
/// `redis`; `env` adds to or overrides that. Returns once it is ready.
pub async fn gateway_over(
    dev: &Dev,
    redis: &str,
    stream: &str,
    rpc_token: &str,
    env: &[(&str, String)],
) -> (Process, u16) {
    let port = free_port();
    let url = |name: &str| dev.urls[name].clone();
    let subgraph_urls = ["users", "catalog", "inventory", "orders", "logistics"]
        .iter()
        .map(|name| format!("{name}={}", url(name)))
        .collect::<Vec<_>>()
        .join(",");
    let mut vars = vec![
        ("GATEWAY_PORT", port.to_string()),
        (
            "SUPERGRAPH_PATH",
            concat!(env!("CARGO_MANIFEST_DIR"), "/schema/supergraph.graphql").into(),
        ),
        ("SUBGRAPH_URLS", subgraph_urls),
        (
            "JWKS_URL",
            url("users").replace("/graphql", "/.well-known/jwks.json"),
        ),
        ("INTERNAL_RPC_TOKEN", rpc_token.into()),
        ("REDIS_URL", redis.into()),
        ("EVENT_STREAM", stream.into()),
    ];
    vars.extend(env.iter().cloned());
    let process = start(&["serve", "gateway"], &vars, &dev.home);
    until_ok(&format!("http://127.0.0.1:{port}/ready"), &process).await;
    (process, port)
}

/// Waits until GET `url` answers 200.
pub async fn until_ok(url: &str, process: &Process) {
    let what = format!("{url} to answer 200");
    kit::testing::eventually_within(Duration::from_secs(60), &what, async || {
        match get(url).await {
            Ok(response) if response.starts_with("HTTP/1.1 200") => Ok(()),
            Ok(response) => Err(Log(format!("{response}\n{}", process.stderr()))),
            Err(why) => Err(Log(format!("{why}\n{}", process.stderr()))),
        }
    })
    .await
}

/// The `/metrics` answer (head and body) of the subgraph at `url` (its `/graphql`).
pub async fn metrics(url: &str) -> String {
    let metrics = url.replace("/graphql", "/metrics");
    get(&metrics)
        .await
        .unwrap_or_else(|why| panic!("GET {metrics}: {why}"))
}

/// How many receivers follow the event bus in the process serving the
/// subgraph at `url` (its `/graphql`): one more for each subscription it
/// serves, once that follows the events.
pub async fn bus_followers(url: &str) -> usize {
    let response = metrics(url).await;
    response
        .lines()
        .find_map(|line| line.strip_prefix("grocery_events_followers "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no grocery_events_followers at {url}:\n{response}"))
}

/// POSTs a GraphQL request to the gateway on `port`.
pub async fn gql(port: u16, token: Option<&str>, query: &str, variables: Value) -> Value {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// POSTs a whole GraphQL request `body` to the gateway on `port` with extra
/// `headers`; the HTTP status and the JSON answer.
pub async fn post(port: u16, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/graphql-response+json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

/// The data of a response that has no errors.
pub fn ok(resp: Value) -> Value {
    assert!(resp.get("errors").is_none(), "{resp}");
    resp["data"].clone()
}

pub async fn login(port: u16, device: &str, password: &str) -> String {
    let data = ok(gql(
        port,
        None,
        "mutation($d: String!, $p: String!) { login(deviceId: $d, password: $p) { accessToken } }",
        json!({ "d": device, "p": password }),
    )
    .await);
    data["login"]["accessToken"].as_str().unwrap().to_owned()
}

/// Registers `device` and signs it in; its access token.
pub async fn customer(port: u16, device: &str) -> String {
    ok(gql(
        port,
        None,
        "mutation($d: String!) { register(input: { deviceId: $d, password: \"cold-storage-1\" }) { id } }",
        json!({ "d": device }),
    )
    .await);
    login(port, device, "cold-storage-1").await
}

/// Polls `check` until it returns something, for at most [`PATIENCE`].
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    kit::testing::eventually_within(PATIENCE, what, async || check().await.ok_or("nothing yet"))
        .await
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a `graphql-transport-ws` connection to the gateway on `port` as
/// `token` and starts `query` as operation "1".
pub async fn subscribe(port: u16, token: &str, query: &str, variables: Value) -> Socket {
    subscribe_with(
        port,
        token,
        json!({ "query": query, "variables": variables }),
    )
    .await
}

/// [`subscribe`] with a whole subscribe `payload` (a persisted document's id, say).
pub async fn subscribe_with(port: u16, token: &str, payload: Value) -> Socket {
    let mut request = format!("ws://127.0.0.1:{port}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_message(&mut ws).await["type"], "connection_ack");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": payload });
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    ws
}

/// The next protocol message (pings answered and skipped).
pub async fn next_message(ws: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a message in time")
            .expect("the socket stays open")
            .unwrap();
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" {
                    let pong = json!({ "type": "pong" }).to_string();
                    ws.send(Message::Text(pong.into())).await.unwrap();
                    continue;
                }
                return value;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Whether anything but keep-alive arrives within `wait`.
pub async fn quiet_for(ws: &mut Socket, wait: Duration) -> Result<(), Value> {
    match tokio::time::timeout(wait, next_message(ws)).await {
        Err(_) => Ok(()),
        Ok(message) => Err(message),
    }
}

/// An HTTP answer as a test reads it.
pub struct Reply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {} {}", self.status, self.body))
    }
}

/// Sends one HTTP/1.1 request to 127.0.0.1:`port` exactly as given (each
/// header as written, the body as bytes) and reads the whole answer.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    // The server may close while the body is still being sent (413): what
    // it answered is read all the same.
    let _ = stream.read_to_end(&mut raw).await;
    let response = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 || after.len() < size {
                break;
            }
            out.push_str(&after[..size]);
            rest = after[size..].trim_start_matches("\r\n");
        }
        out
    } else {
        rest.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// The document ids of the shipped manifest `schema/persisted/<client>.json`,
/// by operation name.
pub fn manifest_ids(client: &str) -> HashMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema/persisted")
        .join(format!("{client}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let manifest: Value = serde_json::from_str(&text).unwrap();
    manifest["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| {
            (
                op["name"].as_str().unwrap().to_owned(),
                op["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
