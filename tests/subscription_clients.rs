//! Third-party subscription clients through `grocery dev`'s gateway, as
//! published on npm: graphql-sse in both of its modes (distinct
//! connections, and a single connection with reservations;
//! `tests/graphql-sse`) and Apollo's archived subscriptions-transport-ws
//! (WebSocket subprotocol `graphql-ws`; `tests/subscriptions-transport-ws`).
//! Each runs a query, a refused operation and a subscription to an order
//! that is then cancelled, and reports what it got.

mod support;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
};

use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use support::{PATIENCE, gql, ok};

/// A node client: its process and its stdout lines (one JSON value each).
struct Node {
    name: &'static str,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Node {
    fn start(package: &str, name: &'static str, args: &[String]) -> Self {
        let dir = support::node::package(package);
        let mut child = Command::new("node")
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { name, child, lines }
    }

    /// Its next line, which must be `{ key: … }`: the value.
    fn next(&mut self, key: &str) -> Value {
        let name = self.name;
        let line = self
            .lines
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("{name}: no {key:?} line; {}", self.end()));
        let value: Value = serde_json::from_str(&line).unwrap();
        value
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("{}: expected {key:?}, got {line}", self.name))
    }

    /// How it ended, with what it said on stderr.
    fn end(&mut self) -> String {
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        format!("{status}: {stderr}")
    }
}

impl Drop for Node {
    /// A client left waiting (a failed test) does not outlive it, nor keep
    /// the gateway's streams open.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The error code of a result.
fn code(result: &Value) -> &str {
    result["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {result}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_sse_in_both_modes_and_subscriptions_transport_ws_query_subscribe_and_see_errors() {
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:clients:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(&db.config.url, &redis.url(), &stream, &[]);
    let gw = dev.gateway;
    let token = support::customer(gw, "fridge-clients").await;
    let preview = ok(gql(
        gw,
        Some(&token),
        "mutation { previewOrder(items: [{ sku: \"APPLE\", quantity: 1 }]) { id number } }",
        json!({}),
    )
    .await);
    let order = preview["previewOrder"]["id"].as_str().unwrap().to_owned();
    let number = preview["previewOrder"]["number"].clone();
    let orders = dev.urls["orders"].clone();
    let followers = support::bus_followers(&orders).await;

    let http = format!("http://127.0.0.1:{gw}/graphql");
    let sse = |mode: &str| {
        vec![
            "sse.mjs".to_owned(),
            http.clone(),
            token.clone(),
            order.clone(),
            mode.to_owned(),
        ]
    };
    let mut clients = [
        Node::start("graphql-sse", "graphql-sse distinct", &sse("distinct")),
        Node::start("graphql-sse", "graphql-sse single", &sse("single")),
        Node::start(
            "subscriptions-transport-ws",
            "subscriptions-transport-ws",
            &[
                "legacy.mjs".to_owned(),
                format!("ws://127.0.0.1:{gw}/graphql"),
                token.clone(),
                order.clone(),
            ],
        ),
    ];
    for client in &mut clients {
        let name = client.name;
        let query = client.next("query");
        assert_eq!(
            query,
            json!([{ "data": { "me": { "deviceId": "fridge-clients" } } }]),
            "{name}"
        );
        if name == "subscriptions-transport-ws" {
            let invalid = client.next("invalid");
            assert_eq!(
                invalid.as_array().map(Vec::len),
                Some(1),
                "{name}: {invalid}"
            );
            assert_eq!(code(&invalid[0]), "GRAPHQL_VALIDATION_FAILED", "{name}");
            let refused = client.next("refused");
            assert_eq!(
                refused["extensions"]["code"], "UNAUTHENTICATED",
                "{name}: {refused}"
            );
        } else {
            // The refusal is the operation's GraphQL error, not a broken stream.
            let refused = client.next("refused");
            assert_eq!(
                refused.as_array().map(Vec::len),
                Some(1),
                "{name}: {refused}"
            );
            assert_eq!(code(&refused[0]), "UNAUTHENTICATED", "{name}");
        }
    }
    // Each subscription (one alias apart) is live once orders follows the bus for it.
    support::eventually(
        "the three subscriptions to follow orders' events",
        async || (support::bus_followers(&orders).await >= followers + 3).then_some(()),
    )
    .await;
    ok(gql(
        gw,
        Some(&token),
        "mutation($id: ID!) { cancelOrder(orderId: $id, reason: \"changed my mind\") { status } }",
        json!({ "id": order }),
    )
    .await);
    for (client, alias) in clients.iter_mut().zip(["distinct", "single", "legacy"]) {
        let event = client.next("event");
        let changed = &event["data"]["orderStatusChanged"];
        assert_eq!(changed["status"], "CANCELLED", "{}: {event}", client.name);
        assert_eq!(changed[alias], "RESERVED", "{}: {event}", client.name);
        assert_eq!(
            changed["order"]["number"], number,
            "{}: {event}",
            client.name
        );
        let (name, status) = (client.name, client.child.wait().unwrap());
        assert!(status.success(), "{name}: {}", client.end());
    }
}
