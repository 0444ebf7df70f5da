//! Revoked powers are gone everywhere within a second (issue 23, point 5).
//!
//! `grocery dev` (every subgraph and gateway A) and a second
//! `grocery serve gateway` (B) share one PostgreSQL and one Redis stream. An
//! admin is demoted, then deactivated, by another admin; its token must be
//! refused for every admin operation on both gateways and by every subgraph
//! within 1 s of the users mutation returning, while a fresh login gets what
//! the new role allows. Processes started after the change (a gateway and a
//! catalog) refuse the old token from their first request. Logging out
//! everywhere and changing the password reach both gateways the same way.

mod support;

use std::time::{Duration, Instant};

use kit::testing::{RedisServer, TestDatabase, eventually_within};
use serde_json::{Value, json};
use support::{Process, gql, ok};

/// Every operation an admin token could still run before revocation reached
/// every process, with what it needs. `$o` is a customer's order, `$c` that
/// customer, `$k` a fresh key.
const ADMIN_OPERATIONS: [(&str, &str); 10] = [
    (
        "adjustStock",
        "mutation { adjustStock(sku: \"MILK\", delta: 1, reason: \"count\") { sku } }",
    ),
    (
        "setMargin",
        "mutation { setMargin(sku: \"MILK\", margin: \"0.30\") { sku } }",
    ),
    (
        "createProduct",
        "mutation($k: String!) { createProduct(input: { sku: $k, name: $k }) { sku } }",
    ),
    (
        "restock",
        "mutation($k: String!) { restock(input: { truckId: \"truck-1\", supplierId: \"acme\", \
         idempotencyKey: $k, items: [{ sku: \"MILK\", quantity: 1, unitCost: \"1.00\" }] }) { status } }",
    ),
    ("restocks", "{ restocks(first: 1) { totalCount } }"),
    ("orders", "{ orders(first: 1) { totalCount } }"),
    ("order", "query($o: ID!) { order(id: $o) { id status } }"),
    (
        "cancelOrder",
        "mutation($o: ID!) { cancelOrder(orderId: $o, reason: \"revoked?\") { status } }",
    ),
    ("user", "query($c: ID!) { user(id: $c) { email } }"),
    ("users", "{ users(first: 1) { totalCount } }"),
];

/// Variables for an operation: the order, the customer and a fresh key.
fn variables(query: &str, order: &str, customer: &str) -> Value {
    let key = format!("RV{}", &uuid::Uuid::new_v4().simple().to_string()[..12]).to_uppercase();
    let mut vars = serde_json::Map::new();
    for (name, value) in [("$o", order), ("$c", customer), ("$k", key.as_str())] {
        if query.contains(name) {
            vars.insert(name[1..].to_owned(), json!(value));
        }
    }
    Value::Object(vars)
}

fn code(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

/// True when `resp` is the refusal of a revoked token.
fn revoked(resp: &Value) -> bool {
    code(resp) == "UNAUTHENTICATED"
        && resp["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sign in again"))
}

/// The port of `http://127.0.0.1:PORT/graphql`.
fn port_of(url: &str) -> u16 {
    url.trim_start_matches("http://")
        .split(['/', ':'])
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// One place to send a probe: a gateway or a subgraph, by port.
#[derive(Clone)]
struct Target {
    name: String,
    port: u16,
}

/// Polls every (target, operation) until each is refused as revoked; the
/// time after `since` at which each target refused its last one. Panics
/// when something still works after `limit`.
async fn until_refused_everywhere(
    probes: &[(Target, &str, &str)],
    token: &str,
    order: &str,
    customer: &str,
    since: Instant,
    limit: Duration,
) -> Vec<(String, Duration)> {
    let mut pending: Vec<usize> = (0..probes.len()).collect();
    let mut done: Vec<(String, Duration)> = Vec::new();
    let left = limit.saturating_sub(since.elapsed());
    eventually_within(left, "every target to refuse the token", async || {
        let answers = futures::future::join_all(pending.iter().map(|&i| {
            let (target, _, query) = &probes[i];
            gql(
                target.port,
                Some(token),
                query,
                variables(query, order, customer),
            )
        }))
        .await;
        let mut still = Vec::new();
        for (&i, answer) in pending.iter().zip(&answers) {
            if !revoked(answer) {
                still.push((i, answer.clone()));
            }
        }
        let now = since.elapsed();
        for (target, _, _) in probes {
            let left = still.iter().any(|(i, _)| probes[*i].0.name == target.name);
            if !left && !done.iter().any(|(name, _)| *name == target.name) {
                done.push((target.name.clone(), now));
            }
        }
        if still.is_empty() {
            return Ok(done.clone());
        }
        let allowed: Vec<String> = still
            .iter()
            .map(|(i, a)| format!("{} {}: {a}", probes[*i].0.name, probes[*i].1))
            .collect();
        pending = still.into_iter().map(|(i, _)| i).collect();
        Err(allowed)
    })
    .await
}

/// A `grocery serve gateway` over dev's subgraphs, following the same stream.
async fn gateway(dev: &support::Dev, redis: &str, stream: &str, rpc_token: &str) -> (Process, u16) {
    let off = [("RATE_LIMITS", "off".to_owned())];
    support::gateway_over(dev, redis, stream, rpc_token, &off).await
}

/// Signs `device` in; its access and refresh tokens.
async fn session(port: u16, device: &str, password: &str) -> (String, String) {
    let data = ok(gql(
        port,
        None,
        "mutation($d: String!, $p: String!) { login(deviceId: $d, password: $p) { accessToken refreshToken } }",
        json!({ "d": device, "p": password }),
    )
    .await);
    (
        data["login"]["accessToken"].as_str().unwrap().to_owned(),
        data["login"]["refreshToken"].as_str().unwrap().to_owned(),
    )
}

/// One whole stack at a time: the machine running the tests may have two
/// cores, and the latencies measured here should be the stack's, not the
/// other test's.
static ONE_STACK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Each subgraph probed directly, with an operation it owns.
fn subgraph_probes(dev: &support::Dev) -> Vec<(Target, &'static str, &'static str)> {
    [
        ("users", "users"),
        ("catalog", "createProduct"),
        ("inventory", "adjustStock"),
        ("orders", "orders"),
        ("logistics", "restocks"),
    ]
    .into_iter()
    .map(|(subgraph, op)| {
        let query = ADMIN_OPERATIONS.iter().find(|(n, _)| *n == op).unwrap().1;
        let target = Target {
            name: format!("{subgraph} subgraph"),
            port: port_of(&dev.urls[subgraph]),
        };
        (target, op, query)
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_in_process_bus_carries_revocation_to_every_component_of_dev() {
    let _one = ONE_STACK.lock().await;
    let db = TestDatabase::empty("public").await;
    // An empty REDIS_URL is no Redis: `dev` uses its in-process bus.
    let dev = support::start_dev(&db.config.url, "", "unused", &[("RATE_LIMITS", "off")]);
    let a = dev.gateway;
    let boss = support::login(a, "admin", support::PASSWORD).await;
    let ops = support::customer(a, "ops-local").await;
    let ops_id = ok(gql(a, Some(&ops), "{ me { id } }", json!({})).await)["me"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let set_role = "mutation($id: ID!, $r: Role!) { setRole(userId: $id, role: $r) { role } }";
    ok(gql(
        a,
        Some(&boss),
        set_role,
        json!({ "id": ops_id, "r": "ADMIN" }),
    )
    .await);
    let (admin, _) = session(a, "ops-local", "cold-storage-1").await;
    ok(gql(
        a,
        Some(&admin),
        "{ users(first: 1) { totalCount } }",
        json!({}),
    )
    .await);

    let mut probes = subgraph_probes(&dev);
    for (op, query) in ADMIN_OPERATIONS {
        probes.push((
            Target {
                name: "gateway".into(),
                port: a,
            },
            op,
            query,
        ));
    }
    ok(gql(
        a,
        Some(&boss),
        set_role,
        json!({ "id": ops_id, "r": "TRUCK" }),
    )
    .await);
    let returned = Instant::now();
    let ((fresh, _), latencies) = tokio::join!(
        session(a, "ops-local", "cold-storage-1"),
        until_refused_everywhere(
            &probes,
            &admin,
            &ops_id,
            &ops_id,
            returned,
            Duration::from_secs(1)
        )
    );
    eprintln!("in-process bus: demotion → refused everywhere: {latencies:?}");
    assert_eq!(latencies.len(), 6, "{latencies:?}");
    let me = ok(gql(a, Some(&fresh), "{ me { role } }", json!({})).await);
    assert_eq!(me["me"]["role"], "TRUCK");
    let resp = gql(
        a,
        Some(&fresh),
        "{ restocks(first: 1) { totalCount } }",
        json!({}),
    )
    .await;
    assert!(
        resp.get("errors").is_none(),
        "a truck lists restocks: {resp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_powers_are_refused_by_every_gateway_and_subgraph_within_a_second() {
    let _one = ONE_STACK.lock().await;
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:revocation:{}", uuid::Uuid::new_v4().simple());
    let rpc_token = uuid::Uuid::new_v4().simple().to_string();
    let dev = support::start_dev(
        &db.config.url,
        &redis.url(),
        &stream,
        &[("INTERNAL_RPC_TOKEN", &rpc_token), ("RATE_LIMITS", "off")],
    );
    let (_gateway_b, b) = gateway(&dev, &redis.url(), &stream, &rpc_token).await;
    let a = dev.gateway;

    // Another admin, made one by the demo admin, and a customer with an order.
    let boss = support::login(a, "admin", support::PASSWORD).await;
    let customer_token = support::customer(a, "fridge-revoked").await;
    let me = ok(gql(a, Some(&customer_token), "{ me { id } }", json!({})).await);
    let customer = me["me"]["id"].as_str().unwrap().to_owned();
    ok(gql(
        a,
        Some(&customer_token),
        "mutation { updateProfile(input: { email: \"fridge@example.com\" }) { id } }",
        json!({}),
    )
    .await);
    let preview = "mutation { previewOrder(items: [{ sku: \"MILK\", quantity: 1 }]) { id } }";
    let mut orders = Vec::new();
    for _ in 0..2 {
        let data = ok(gql(a, Some(&customer_token), preview, json!({})).await);
        orders.push(data["previewOrder"]["id"].as_str().unwrap().to_owned());
    }
    let ops = support::customer(a, "ops-admin").await;
    let ops_id = ok(gql(a, Some(&ops), "{ me { id } }", json!({})).await)["me"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let set_role = "mutation($id: ID!, $r: Role!) { setRole(userId: $id, role: $r) { role } }";
    ok(gql(
        a,
        Some(&boss),
        set_role,
        json!({ "id": ops_id, "r": "ADMIN" }),
    )
    .await);
    let (admin, _) = session(a, "ops-admin", "cold-storage-1").await;

    // Before: the admin token runs every operation on both gateways.
    for port in [a, b] {
        for (name, query) in ADMIN_OPERATIONS {
            let order = if name == "cancelOrder" && port == b {
                &orders[1] // the first one is cancelled through A
            } else {
                &orders[0]
            };
            let resp = gql(
                port,
                Some(&admin),
                query,
                variables(query, order, &customer),
            )
            .await;
            assert!(resp.get("errors").is_none(), "{name} on {port}: {resp}");
        }
    }
    let customer_order =
        ok(gql(a, Some(&customer_token), preview, json!({})).await)["previewOrder"]["id"]
            .as_str()
            .unwrap()
            .to_owned();

    // Every gateway refuses every operation; every subgraph refuses the token itself.
    let mut probes: Vec<(Target, &str, &str)> = Vec::new();
    for (name, port) in [("gateway A", a), ("gateway B", b)] {
        for (op, query) in ADMIN_OPERATIONS {
            probes.push((
                Target {
                    name: name.into(),
                    port,
                },
                op,
                query,
            ));
        }
    }
    probes.extend(subgraph_probes(&dev));

    let demoted = ok(gql(
        a,
        Some(&boss),
        set_role,
        json!({ "id": ops_id, "r": "CUSTOMER" }),
    )
    .await);
    let returned = Instant::now();
    assert_eq!(demoted["setRole"]["role"], "CUSTOMER");
    // Signed in again at once, while the old token is probed: most often
    // within the very second of the change.
    let ((fresh, _), latencies) = tokio::join!(
        session(b, "ops-admin", "cold-storage-1"),
        until_refused_everywhere(
            &probes,
            &admin,
            &customer_order,
            &customer,
            returned,
            Duration::from_secs(1),
        )
    );
    eprintln!("revocation (demotion) → refused everywhere: {latencies:?}");
    assert_eq!(latencies.len(), 7, "{latencies:?}");

    // The fresh login has what a customer has, on both gateways.
    for port in [a, b] {
        let me = ok(gql(port, Some(&fresh), "{ me { role } }", json!({})).await);
        assert_eq!(me["me"]["role"], "CUSTOMER");
        for (name, query) in ADMIN_OPERATIONS {
            if name == "cancelOrder" {
                continue; // another customer's order: NOT_FOUND, not FORBIDDEN
            }
            let resp = gql(
                port,
                Some(&fresh),
                query,
                variables(query, &customer_order, &customer),
            )
            .await;
            // Another customer's order is hidden, not forbidden.
            let expected = if name == "order" {
                "NOT_FOUND"
            } else {
                "FORBIDDEN"
            };
            assert_eq!(
                code(&resp),
                expected,
                "{name} with the new role on {port}: {resp}"
            );
        }
    }
    let cancel = ADMIN_OPERATIONS[7].1;
    let resp = gql(b, Some(&fresh), cancel, json!({ "o": customer_order })).await;
    assert_ne!(resp["data"]["cancelOrder"]["status"], "CANCELLED", "{resp}");

    // Deactivated: the fresh token goes the same way, and no login works.
    let deactivate = "mutation($id: ID!) { deactivateUser(userId: $id) { active } }";
    ok(gql(b, Some(&boss), deactivate, json!({ "id": ops_id })).await);
    let returned = Instant::now();
    let me_probes: Vec<(Target, &str, &str)> = [("gateway A", a), ("gateway B", b)]
        .into_iter()
        .map(|(name, port)| {
            (
                Target {
                    name: name.into(),
                    port,
                },
                "me",
                "{ me { role } }",
            )
        })
        .collect();
    let latencies = until_refused_everywhere(
        &me_probes,
        &fresh,
        &customer_order,
        &customer,
        returned,
        Duration::from_secs(1),
    )
    .await;
    eprintln!("revocation (deactivation) → refused on both gateways: {latencies:?}");
    let login = gql(
        a,
        None,
        "mutation { login(deviceId: \"ops-admin\", password: \"cold-storage-1\") { accessToken } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&login), "UNAUTHENTICATED", "{login}");

    // Processes started after the change refuse the old token from the first request.
    let (_gateway_c, c) = gateway(&dev, &redis.url(), &stream, &rpc_token).await;
    let resp = gql(
        c,
        Some(&admin),
        "{ orders(first: 1) { totalCount } }",
        json!({}),
    )
    .await;
    assert!(
        revoked(&resp),
        "a new gateway let the old token through: {resp}"
    );
    let catalog = restarted_catalog(&dev, &db.config.url, &redis.url(), &stream, &rpc_token).await;
    let create = ADMIN_OPERATIONS[2].1;
    let resp = gql(catalog.1, Some(&admin), create, variables(create, "", "")).await;
    assert!(
        revoked(&resp),
        "a new catalog let the old token through: {resp}"
    );
    let resp = gql(catalog.1, Some(&boss), create, variables(create, "", "")).await;
    assert!(resp.get("errors").is_none(), "{resp}");
    assert!(
        ok(gql(
            c,
            Some(&boss),
            "{ orders(first: 1) { totalCount } }",
            json!({})
        )
        .await)["orders"]["totalCount"]
            .is_number()
    );

    logout_all_and_new_passwords_reach_both_gateways(a, b).await;
}

/// A second catalog process, started now.
async fn restarted_catalog(
    dev: &support::Dev,
    database: &str,
    redis: &str,
    stream: &str,
    rpc_token: &str,
) -> (Process, u16) {
    let signing = std::fs::read_to_string(dev.home.join("keys/signing.pem")).unwrap();
    let public = kit::auth::SigningKey::from_pem(&signing)
        .unwrap()
        .public_pem()
        .unwrap();
    let public_file = dev.home.join("public.pem");
    std::fs::write(&public_file, public).unwrap();
    let port = support::free_port();
    let process = support::start(
        &["serve", "catalog"],
        &[
            ("DATABASE_URL", database.into()),
            ("CATALOG_PORT", port.to_string()),
            (
                "INVENTORY_RPC_URL",
                format!("http://{}", dev.urls["stock-api"]),
            ),
            ("INTERNAL_RPC_TOKEN", rpc_token.into()),
            ("JWT_PUBLIC_KEYS_FILE", public_file.display().to_string()),
            ("USERS_URL", dev.urls["users"].clone()),
            ("REDIS_URL", redis.into()),
            ("EVENT_STREAM", stream.into()),
        ],
        &dev.home,
    );
    support::until_ok(&format!("http://127.0.0.1:{port}/ready"), &process).await;
    (process, port)
}

/// Logging out everywhere through one gateway, and a new password through
/// the other, refuse the tokens of before on both within a second.
async fn logout_all_and_new_passwords_reach_both_gateways(a: u16, b: u16) {
    let first = support::customer(a, "fridge-sessions").await;
    let (second, _) = session(b, "fridge-sessions", "cold-storage-1").await;
    let probes: Vec<(Target, &str, &str)> = [("gateway A", a), ("gateway B", b)]
        .into_iter()
        .map(|(name, port)| {
            (
                Target {
                    name: name.into(),
                    port,
                },
                "me",
                "{ me { id } }",
            )
        })
        .collect();

    ok(gql(a, Some(&first), "mutation { logoutAll }", json!({})).await);
    let returned = Instant::now();
    for token in [&first, &second] {
        let latencies =
            until_refused_everywhere(&probes, token, "", "", returned, Duration::from_secs(1))
                .await;
        eprintln!("revocation (logoutAll) → refused on both gateways: {latencies:?}");
    }

    let (token, _) = session(a, "fridge-sessions", "cold-storage-1").await;
    let changed = ok(gql(
        b,
        Some(&token),
        "mutation { changePassword(currentPassword: \"cold-storage-1\", newPassword: \"warmer-storage-2\") { accessToken } }",
        json!({}),
    )
    .await);
    let returned = Instant::now();
    let latencies =
        until_refused_everywhere(&probes, &token, "", "", returned, Duration::from_secs(1)).await;
    eprintln!("revocation (changePassword) → refused on both gateways: {latencies:?}");
    let new_token = changed["changePassword"]["accessToken"].as_str().unwrap();
    for port in [a, b] {
        ok(gql(port, Some(new_token), "{ me { id } }", json!({})).await);
    }
    session(b, "fridge-sessions", "warmer-storage-2").await;
}
