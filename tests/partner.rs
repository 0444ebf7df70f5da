//! A partner integration end to end through `grocery dev`'s gateway: the
//! seeded `partner-1` account (role PARTNER) signs in, browses the catalog
//! with stock, places and confirms an order and watches its status — every
//! step by the id of a document in the shipped `schema/persisted/partner.json`.
//! Anything else its token sends is refused.

mod support;

use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use support::{PASSWORD, next_message, post};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_shops_and_watches_an_order_with_persisted_documents_only() {
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:partner:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(&db.config.url, &redis.url(), &stream, &[]);
    let port = dev.gateway;
    let docs = support::manifest_ids("partner");
    let run = async |name: &str, token: Option<&str>, variables: Value| -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("graphql-client-name", "partner")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        let body = json!({ "documentId": docs[name], "variables": variables });
        post(port, &body, &headers).await
    };

    let (status, session) = run(
        "PartnerLogin",
        None,
        json!({ "deviceId": "partner-1", "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 200, "{session}");
    let login = &session["data"]["login"];
    assert_eq!(login["user"]["role"], "PARTNER", "{session}");
    let token = login["accessToken"].as_str().unwrap().to_owned();

    // A document of its own is refused before any subgraph sees it.
    let (status, free) = post(
        port,
        &json!({ "query": "{ products { nodes { sku } } }" }),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(status, 403, "{free}");
    assert_eq!(
        free["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_REQUIRED"
    );

    let (_, catalog) = run("BrowseCatalog", Some(&token), json!({ "first": 50 })).await;
    assert!(catalog.get("errors").is_none(), "{catalog}");
    let apple = catalog["data"]["products"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sku"] == "APPLE")
        .cloned()
        .expect("the demo catalog has APPLE");
    let available = apple["stock"]["available"].as_i64().unwrap();
    assert!(available >= 2, "{apple}");

    let (_, placed) = run(
        "PlaceOrder",
        Some(&token),
        json!({ "items": [{ "sku": "APPLE", "quantity": 2 }] }),
    )
    .await;
    assert!(placed.get("errors").is_none(), "{placed}");
    let order = &placed["data"]["previewOrder"];
    assert_eq!(order["status"], "RESERVED");
    let order_id = order["id"].as_str().unwrap().to_owned();

    // Watching is a persisted document too, over the gateway's WebSocket.
    let mut watch = support::subscribe_with(
        port,
        &token,
        json!({ "documentId": docs["WatchOrder"], "variables": { "orderId": order_id } }),
    )
    .await;
    let (_, stock) = run("ProductStock", Some(&token), json!({ "sku": "APPLE" })).await;
    assert_eq!(
        stock["data"]["product"]["stock"]["available"].as_i64(),
        Some(available - 2),
        "{stock}"
    );

    let (_, confirmed) = run(
        "ConfirmOrder",
        Some(&token),
        json!({ "orderId": order_id, "idempotencyKey": format!("partner-{order_id}") }),
    )
    .await;
    assert!(confirmed.get("errors").is_none(), "{confirmed}");
    assert_eq!(confirmed["data"]["confirmOrder"]["status"], "CONFIRMED");
    assert_eq!(
        confirmed["data"]["confirmOrder"]["payment"]["status"], "SUCCEEDED",
        "{confirmed}"
    );

    let event = next_message(&mut watch).await;
    assert_eq!(event["type"], "next", "{event}");
    let change = &event["payload"]["data"]["orderStatusChanged"];
    assert_eq!(change["status"], "CONFIRMED", "{event}");
    assert_eq!(change["previousStatus"], "RESERVED", "{event}");
    assert_eq!(change["order"]["id"], order_id.as_str());

    let (_, status) = run("OrderStatus", Some(&token), json!({ "id": order_id })).await;
    let seen = &status["data"]["order"];
    assert!(status.get("errors").is_none(), "{status}");
    let history: Vec<&str> = seen["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert!(
        history.starts_with(&["RESERVED", "CONFIRMED"]),
        "{history:?}"
    );

    // ADMIN sees the partner's usage per document and hour through the
    // supergraph (the gateway's own subgraph); the partner itself may not ask.
    let usage = "query($client: String!, $from: DateTime!, $to: DateTime!) {
      partnerUsage(client: $client, from: $from, to: $to) { document hour requests errors }
    }";
    let now = chrono::Utc::now();
    let window = json!({
        "client": "partner",
        "from": (now - chrono::Duration::hours(1)).to_rfc3339(),
        "to": now.to_rfc3339(),
    });
    let admin = support::login(port, "admin", PASSWORD).await;
    let seen = support::gql(port, Some(&admin), usage, window.clone()).await;
    let rows = seen["data"]["partnerUsage"]
        .as_array()
        .unwrap_or_else(|| panic!("{seen}"));
    let count = |document: &str| -> (i64, i64) {
        rows.iter()
            .filter(|r| r["document"] == document)
            .fold((0, 0), |(r, e), row| {
                (
                    r + row["requests"].as_i64().unwrap(),
                    e + row["errors"].as_i64().unwrap(),
                )
            })
    };
    assert_eq!(count("BrowseCatalog"), (1, 0), "{seen}");
    assert_eq!(count("PartnerLogin"), (1, 0), "{seen}");
    assert_eq!(count("ConfirmOrder"), (1, 0), "{seen}");
    let denied = support::gql(port, Some(&token), usage, window).await;
    assert_eq!(
        denied["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_REQUIRED",
        "{denied}"
    );
}
