//! Many replicas: two gateways and two orders processes against one
//! PostgreSQL and one Redis. `grocery dev` is replica A (every subgraph and a
//! gateway); a second `grocery serve orders` and a second
//! `grocery serve gateway` (routing orders to the second process) are
//! replica B. A subscriber on either gateway sees a change made through the
//! other, exactly once: subscriptions fan out through Redis, not through the
//! process that made the change.

mod support;

use std::time::{Duration, Instant};

use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use support::{Socket, gql, next_message, ok, quiet_for};

const WATCH: &str = "subscription($id: ID!) { orderStatusChanged(orderId: $id) { \
    previousStatus status order { number customer { deviceId } } } }";

/// The (previous, new) status of the next event on `ws`, checking the
/// customer the users subgraph resolved for it.
async fn next_change(ws: &mut Socket, device: &str) -> (String, String) {
    let message = next_message(ws).await;
    assert_eq!(message["type"], "next", "{message}");
    let event = &message["payload"]["data"]["orderStatusChanged"];
    assert!(message["payload"].get("errors").is_none(), "{message}");
    assert_eq!(event["order"]["customer"]["deviceId"], device, "{message}");
    (
        event["previousStatus"].as_str().unwrap_or("").to_owned(),
        event["status"].as_str().unwrap().to_owned(),
    )
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_gateway_sees_changes_made_through_another_exactly_once() {
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:replicas:{}", uuid::Uuid::new_v4().simple());
    let rpc_token = uuid::Uuid::new_v4().simple().to_string();
    let dev = support::start_dev(
        &db.config.url,
        &redis.url(),
        &stream,
        &[("INTERNAL_RPC_TOKEN", &rpc_token)],
    );
    let url = |name: &str| {
        dev.urls
            .get(name)
            .unwrap_or_else(|| panic!("grocery dev printed no {name} URL: {:?}", dev.urls))
            .clone()
    };

    // Replica B's orders: same database, same Redis stream, its own consumer name.
    let signing = std::fs::read_to_string(dev.home.join("keys/signing.pem")).unwrap();
    let public = kit::auth::SigningKey::from_pem(&signing)
        .unwrap()
        .public_pem()
        .unwrap();
    let public_file = dev.home.join("public.pem");
    std::fs::write(&public_file, public).unwrap();
    let orders_port = support::free_port();
    let orders_b = support::start(
        &["serve", "orders"],
        &[
            ("DATABASE_URL", db.config.url.clone()),
            ("REDIS_URL", redis.url()),
            ("EVENT_STREAM", stream.clone()),
            ("ORDERS_PORT", orders_port.to_string()),
            ("INVENTORY_RPC_URL", format!("http://{}", url("stock-api"))),
            ("CATALOG_URL", url("catalog")),
            ("USERS_URL", url("users")),
            ("INTERNAL_RPC_TOKEN", rpc_token.clone()),
            ("JWT_PUBLIC_KEYS_FILE", public_file.display().to_string()),
            ("CONSUMER_NAME", "orders-b".into()),
        ],
        &dev.home,
    );
    let orders_b_url = format!("http://127.0.0.1:{orders_port}/graphql");
    support::until_ok(&format!("http://127.0.0.1:{orders_port}/ready"), &orders_b).await;

    // Replica B's gateway: the committed supergraph, every subgraph of dev
    // but orders, which is replica B's.
    let gateway_b = support::free_port();
    let users = url("users");
    let subgraph_urls = format!(
        "users={users},catalog={},inventory={},orders={orders_b_url},logistics={}",
        url("catalog"),
        url("inventory"),
        url("logistics"),
    );
    let jwks = users.replace("/graphql", "/.well-known/jwks.json");
    let gw_b_process = support::start(
        &["serve", "gateway"],
        &[
            ("GATEWAY_PORT", gateway_b.to_string()),
            (
                "SUPERGRAPH_PATH",
                concat!(env!("CARGO_MANIFEST_DIR"), "/schema/supergraph.graphql").into(),
            ),
            ("SUBGRAPH_URLS", subgraph_urls),
            ("JWKS_URL", jwks),
            ("INTERNAL_RPC_TOKEN", rpc_token.clone()),
        ],
        &dev.home,
    );
    support::until_ok(
        &format!("http://127.0.0.1:{gateway_b}/ready"),
        &gw_b_process,
    )
    .await;
    let gateway_a = dev.gateway;

    let token = support::customer(gateway_a, "fridge-replicas").await;
    // The order is written by replica B's orders process.
    let preview = ok(gql(
        gateway_b,
        Some(&token),
        "mutation { previewOrder(items: [{ sku: \"MILK\", quantity: 1 }]) { id } }",
        json!({}),
    )
    .await);
    let order_id = preview["previewOrder"]["id"].as_str().unwrap().to_owned();
    let variables = json!({ "id": order_id });
    let orders_a = url("orders");
    let followers = (
        support::bus_followers(&orders_a).await,
        support::bus_followers(&orders_b_url).await,
    );
    let mut on_a = support::subscribe(gateway_a, &token, WATCH, variables.clone()).await;
    let mut on_b = support::subscribe(gateway_b, &token, WATCH, variables).await;
    // Each subscription is live once its orders process follows the bus.
    support::eventually(
        "each replica's subscription to follow the events",
        async || {
            let now = (
                support::bus_followers(&orders_a).await,
                support::bus_followers(&orders_b_url).await,
            );
            (now.0 > followers.0 && now.1 > followers.1).then_some(())
        },
    )
    .await;

    // Confirmed through gateway B (orders B writes it).
    let started = Instant::now();
    let confirmed = ok(gql(
        gateway_b,
        Some(&token),
        "mutation($id: ID!) { confirmOrder(orderId: $id, idempotencyKey: \"replicas-1\") { status } }",
        json!({ "id": order_id }),
    )
    .await);
    assert_eq!(confirmed["confirmOrder"]["status"], "CONFIRMED");
    assert_eq!(
        next_change(&mut on_a, "fridge-replicas").await,
        pair("RESERVED", "CONFIRMED")
    );
    let confirm_to_a = started.elapsed();
    assert_eq!(
        next_change(&mut on_b, "fridge-replicas").await,
        pair("RESERVED", "CONFIRMED")
    );

    // Cancelled through gateway A (orders A writes it).
    let started = Instant::now();
    let cancelled = ok(gql(
        gateway_a,
        Some(&token),
        "mutation($id: ID!) { cancelOrder(orderId: $id, reason: \"changed my mind\") { status } }",
        json!({ "id": order_id }),
    )
    .await);
    assert_eq!(cancelled["cancelOrder"]["status"], "CANCELLED");
    assert_eq!(
        next_change(&mut on_b, "fridge-replicas").await,
        pair("CONFIRMED", "CANCELLED")
    );
    let cancel_to_b = started.elapsed();
    assert_eq!(
        next_change(&mut on_a, "fridge-replicas").await,
        pair("CONFIRMED", "CANCELLED")
    );

    // Exactly once: nothing else arrives on either gateway.
    let wait = Duration::from_millis(1500);
    let (a, b) = tokio::join!(quiet_for(&mut on_a, wait), quiet_for(&mut on_b, wait));
    assert_eq!(a, Ok(()), "gateway A delivered more");
    assert_eq!(b, Ok(()), "gateway B delivered more");
    let data: Value = ok(gql(
        gateway_a,
        Some(&token),
        "query($id: ID!) { order(id: $id) { status statusHistory { status } } }",
        json!({ "id": order_id }),
    )
    .await);
    assert_eq!(data["order"]["status"], "CANCELLED");
    let history: Vec<&str> = data["order"]["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    for status in ["CONFIRMED", "CANCELLED"] {
        assert_eq!(
            history.iter().filter(|s| **s == status).count(),
            1,
            "{history:?}"
        );
    }
    eprintln!(
        "replicas: confirm through gateway B → subscriber on gateway A {confirm_to_a:?}; \
         cancel through gateway A → subscriber on gateway B {cancel_to_b:?}"
    );
    drop(gw_b_process);
    drop(orders_b);
}
