//! Restocks: trucks deliver through inventory's real stock API, bad input is
//! refused before anything is written, a retry never stocks twice, and a
//! delivery inventory cannot take yet waits for the reconciler, never lost.

use std::time::Duration;

use kit::testing::eventually_within;
use logistics::reconciler::{self, Reconciled};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::*;

const RESTOCK: &str = "mutation($input: RestockInput!) {
    restock(input: $input) { transactionId status message } }";
const RESTOCKS: &str =
    "query($first: Int, $after: String, $truck: String, $status: RestockStatus) {
    restocks(first: $first, after: $after, truckId: $truck, status: $status) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { cursor node { transactionId truckId supplierId status attempts lastError units
            requestedBy items { sku quantity unitCost mfdDate expiryDate } } } } }";

/// Today plus `n` days, as GraphQL's `Date`.
fn day(n: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(n)).to_string()
}

fn item(sku: &str, quantity: i32) -> Value {
    json!({ "sku": sku, "quantity": quantity, "unitCost": "0.40",
            "mfdDate": day(-1), "expiryDate": day(10) })
}

fn input(truck: &str, items: Vec<Value>, key: Option<&str>) -> Value {
    json!({ "truckId": truck, "supplierId": "farm-1", "items": items, "idempotencyKey": key })
}

impl Depot {
    async fn restock(&self, token: &str, input: Value) -> Value {
        self.gql(Some(token), RESTOCK, json!({ "input": input }))
            .await
    }

    /// A restock that must be answered without errors: its receipt.
    async fn receipt(&self, token: &str, input: Value) -> Value {
        let resp = self.restock(token, input).await;
        assert_no_errors(&resp);
        resp["data"]["restock"].clone()
    }

    async fn restock_status(&self, transaction_id: &Value) -> String {
        self.text(&format!(
            "SELECT status AS v FROM restock_orders WHERE id = '{}'",
            transaction_id.as_str().unwrap()
        ))
        .await
    }

    async fn restocks(&self, token: &str, variables: Value) -> Value {
        let resp = self.gql(Some(token), RESTOCKS, variables).await;
        assert_no_errors(&resp);
        resp["data"]["restocks"].clone()
    }
}

#[tokio::test]
async fn a_truck_restocks_and_inventory_receives_the_goods() {
    let depot = Depot::new().await;
    let receipt = depot
        .receipt(
            &depot.truck,
            input("truck-1", vec![item("apple", 10), item("PEAR", 5)], None),
        )
        .await;
    assert_eq!(receipt["status"], "COMPLETED");
    assert_eq!(receipt["message"], "inventory received 15 units");
    let id = Uuid::parse_str(receipt["transactionId"].as_str().unwrap()).unwrap();
    assert_eq!(
        (depot.on_hand("APPLE").await, depot.on_hand("PEAR").await),
        (10, 5)
    );
    // Inventory's batches carry the restock's transaction id.
    assert_eq!(
        depot
            .inventory_scalar(&format!(
                "SELECT count(*) FROM batches WHERE transaction_id = '{id}' AND truck_id = 'truck-1'"
            ))
            .await,
        2
    );
    assert_eq!(
        depot
            .scalar(&format!(
                "SELECT count(*) FROM restock_orders WHERE id = '{id}' AND status = 'COMPLETED'
                 AND attempts = 1 AND units = 15 AND last_error IS NULL
                 AND requested_by = '{}' AND completed_at IS NOT NULL",
                depot.truck_id
            ))
            .await,
        1
    );
    // The delivery is an event, written with the COMPLETED row.
    assert_eq!(
        depot
            .scalar(&format!(
                "SELECT count(*) FROM outbox WHERE topic = 'stock.restocked' AND key = '{id}'
                 AND (payload->>'units')::int = 15 AND payload->>'truckId' = 'truck-1'
                 AND jsonb_array_length(payload->'items') = 2"
            ))
            .await,
        1
    );
    // Admins restock too.
    let receipt = depot
        .receipt(&depot.admin, input("truck-2", vec![item("MILK", 3)], None))
        .await;
    assert_eq!(receipt["status"], "COMPLETED");
    assert_eq!(depot.on_hand("MILK").await, 3);
}

#[tokio::test]
async fn customers_may_not_restock_or_list_restocks_and_strangers_must_sign_in() {
    let depot = Depot::new().await;
    let (_, customer) = depot.customer();
    let resp = depot
        .restock(&customer, input("truck-1", vec![item("APPLE", 1)], None))
        .await;
    assert_eq!(code(&resp), "FORBIDDEN");
    let resp = depot
        .gql(
            None,
            RESTOCK,
            json!({ "input": input("truck-1", vec![item("APPLE", 1)], None) }),
        )
        .await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");
    let resp = depot.gql(Some(&customer), RESTOCKS, json!({})).await;
    assert_eq!(code(&resp), "FORBIDDEN");
    assert_eq!(depot.scalar("SELECT count(*) FROM restock_orders").await, 0);
    assert_eq!(depot.on_hand("APPLE").await, 0);
}

#[tokio::test]
async fn bad_input_is_refused_with_its_field_before_anything_is_written() {
    let depot = Depot::new().await;
    let with = |patch: Value| {
        let mut line = item("APPLE", 1);
        for (k, v) in patch.as_object().unwrap() {
            line[k] = v.clone();
        }
        input("truck-1", vec![item("PEAR", 1), line], None)
    };
    let cases = [
        (
            with(json!({ "quantity": 0 })),
            "items[1].quantity",
            "APPLE: quantity must be between 1 and 1000000",
        ),
        (
            with(json!({ "unitCost": "-0.01" })),
            "items[1].unitCost",
            "APPLE: unit cost must be between 0 and 1000000 with at most 4 decimals",
        ),
        (
            with(json!({ "unitCost": "0.12345" })),
            "items[1].unitCost",
            "APPLE: unit cost must be between 0 and 1000000 with at most 4 decimals",
        ),
        (
            with(json!({ "mfdDate": day(-1), "expiryDate": day(-1) })),
            "items[1].expiryDate",
            "APPLE: expiry must be after manufacture",
        ),
        (
            with(json!({ "mfdDate": null, "expiryDate": day(-1) })),
            "items[1].expiryDate",
            "APPLE: these goods have already expired",
        ),
        (
            with(json!({ "sku": "bad sku" })),
            "items[1].sku",
            "\"bad sku\" is not a valid SKU",
        ),
        (
            input("truck-1", vec![], None),
            "items",
            "a restock has 1 to 500 items",
        ),
        (
            input("truck-1", vec![item("APPLE", 1); 501], None),
            "items",
            "a restock has 1 to 500 items",
        ),
        (
            input(" ", vec![item("APPLE", 1)], None),
            "truckId",
            "truckId must be 1 to 100 printable characters",
        ),
    ];
    for (bad, field, message) in cases {
        let resp = depot.restock(&depot.truck, bad).await;
        assert_eq!(code(&resp), "BAD_USER_INPUT", "{resp}");
        assert_eq!(resp["errors"][0]["extensions"]["field"], field, "{resp}");
        assert_eq!(crate::support::message(&resp), message);
    }
    // Whether a SKU exists only inventory knows: it refuses the whole
    // delivery, and the request leaves no record behind.
    let resp = depot
        .restock(
            &depot.truck,
            input(
                "truck-1",
                vec![item("APPLE", 4), item("GHOST", 1)],
                Some("k-1"),
            ),
        )
        .await;
    assert_eq!(code(&resp), "BAD_USER_INPUT");
    assert_eq!(
        crate::support::message(&resp),
        "inventory refused the restock: unknown SKU: GHOST"
    );
    assert_eq!(depot.scalar("SELECT count(*) FROM restock_orders").await, 0);
    assert_eq!(
        depot.inventory_scalar("SELECT count(*) FROM batches").await,
        0
    );
    assert_eq!(depot.on_hand("APPLE").await, 0);
    // The key was not used up by the refused request.
    let receipt = depot
        .receipt(
            &depot.truck,
            input("truck-1", vec![item("APPLE", 4)], Some("k-1")),
        )
        .await;
    assert_eq!(receipt["status"], "COMPLETED");
}

#[tokio::test]
async fn a_retry_with_the_same_key_answers_the_first_receipt_and_stocks_once() {
    let depot = Depot::new().await;
    let delivery = input("truck-1", vec![item("APPLE", 10)], Some("delivery-7"));
    let first = depot.receipt(&depot.truck, delivery.clone()).await;
    let again = depot.receipt(&depot.truck, delivery.clone()).await;
    assert_eq!(again, first);
    // Retries racing each other still make one restock.
    let racing = (0..6).map(|_| {
        depot.receipt(
            &depot.truck,
            input("truck-1", vec![item("APPLE", 5)], Some("delivery-8")),
        )
    });
    let receipts = futures::future::join_all(racing).await;
    assert!(receipts.windows(2).all(|w| w[0] == w[1]), "{receipts:?}");
    assert_eq!(receipts[0]["status"], "COMPLETED");
    assert_eq!(depot.on_hand("APPLE").await, 15);
    assert_eq!(depot.scalar("SELECT count(*) FROM restock_orders").await, 2);
    assert_eq!(
        depot.inventory_scalar("SELECT count(*) FROM batches").await,
        2
    );

    // The key is the requester's: another truck's same key is its own restock.
    let other = another_truck();
    let theirs = depot.receipt(&other, delivery.clone()).await;
    assert_ne!(theirs["transactionId"], first["transactionId"]);
    assert_eq!(depot.on_hand("APPLE").await, 25);
    // One key, another delivery: refused rather than guessed at.
    let resp = depot
        .restock(
            &depot.truck,
            input("truck-1", vec![item("APPLE", 11)], Some("delivery-7")),
        )
        .await;
    assert_eq!(code(&resp), "CONFLICT");
    assert_eq!(depot.on_hand("APPLE").await, 25);
}

fn another_truck() -> String {
    kit::testing::access_token(&KEYS, Uuid::new_v4(), kit::auth::Role::Truck)
}

#[tokio::test]
async fn an_unreachable_inventory_leaves_the_restock_pending_until_the_reconciler_delivers_it() {
    let depot = Depot::with(Options {
        inventory_up: false,
        ..Default::default()
    })
    .await;
    let delivery = input("truck-1", vec![item("APPLE", 10)], Some("k-1"));
    let receipt = depot.receipt(&depot.truck, delivery.clone()).await;
    assert_eq!(receipt["status"], "PENDING");
    assert_eq!(
        receipt["message"],
        "inventory is unavailable; the restock is recorded and will be retried automatically"
    );
    let id = &receipt["transactionId"];
    assert_eq!(depot.restock_status(id).await, "PENDING");
    assert_eq!(
        depot
            .scalar("SELECT count(*) FROM restock_orders WHERE attempts = 1 AND last_error LIKE 'inventory did not answer%' AND next_attempt_at > now()")
            .await,
        1
    );
    // Not due yet: the reconciler leaves it alone.
    assert_eq!(
        reconciler::reconcile(&depot.state).await.unwrap(),
        Reconciled::default()
    );
    // Due, and inventory still down: one more attempt, still pending.
    depot.make_restocks_due().await;
    assert_eq!(
        reconciler::reconcile(&depot.state).await.unwrap(),
        Reconciled {
            pending: 1,
            ..Default::default()
        }
    );
    assert_eq!(depot.scalar("SELECT attempts FROM restock_orders").await, 2);

    depot.start_inventory().await;
    let task = tokio::spawn(logistics::Logistics::run_reconciler(
        depot.state.clone(),
        Duration::from_millis(100),
    ));
    eventually_within(
        Duration::from_secs(15),
        "the reconciler to complete the restock",
        async || {
            let status = depot.restock_status(id).await;
            if status == "COMPLETED" {
                Ok(())
            } else {
                Err(status)
            }
        },
    )
    .await;
    task.abort();
    assert_eq!(depot.on_hand("APPLE").await, 10);
    assert_eq!(
        depot
            .scalar("SELECT count(*) FROM restock_orders WHERE attempts >= 3 AND units = 10 AND last_error IS NULL")
            .await,
        1
    );
    // The truck's retry now hears that it is done, and nothing is added.
    let retry = depot.receipt(&depot.truck, delivery).await;
    assert_eq!(retry["transactionId"], *id);
    assert_eq!(retry["status"], "COMPLETED");
    assert_eq!(depot.on_hand("APPLE").await, 10);
    assert_eq!(
        depot
            .scalar("SELECT count(*) FROM outbox WHERE topic = 'stock.restocked'")
            .await,
        1,
        "one event for one delivery, however many attempts"
    );
}

#[tokio::test]
async fn a_retry_of_a_pending_restock_tries_inventory_again() {
    let depot = Depot::with(Options {
        inventory_up: false,
        ..Default::default()
    })
    .await;
    let delivery = input("truck-1", vec![item("PEAR", 3)], Some("k-1"));
    let first = depot.receipt(&depot.truck, delivery.clone()).await;
    assert_eq!(first["status"], "PENDING");
    depot.start_inventory().await;
    let retry = depot.receipt(&depot.truck, delivery).await;
    assert_eq!(retry["transactionId"], first["transactionId"]);
    assert_eq!(retry["status"], "COMPLETED");
    assert_eq!(depot.on_hand("PEAR").await, 3);
}

#[tokio::test]
async fn a_restock_inventory_never_takes_fails_after_its_attempts_and_says_why() {
    let depot = Depot::with(Options {
        inventory_up: false,
        max_attempts: 2,
    })
    .await;
    let delivery = input("truck-1", vec![item("APPLE", 10)], Some("k-1"));
    let receipt = depot.receipt(&depot.truck, delivery.clone()).await;
    assert_eq!(receipt["status"], "PENDING");
    depot.make_restocks_due().await;
    assert_eq!(
        reconciler::reconcile(&depot.state).await.unwrap(),
        Reconciled {
            failed: 1,
            ..Default::default()
        }
    );
    // Failed for good: neither the reconciler nor a retry asks again.
    depot.start_inventory().await;
    depot.make_restocks_due().await;
    assert_eq!(
        reconciler::reconcile(&depot.state).await.unwrap(),
        Reconciled::default()
    );
    let retry = depot.receipt(&depot.truck, delivery).await;
    assert_eq!(retry["status"], "FAILED");
    assert!(
        retry["message"]
            .as_str()
            .unwrap()
            .starts_with("the restock failed: gave up after 2 attempts: inventory did not answer"),
        "{retry}"
    );
    assert_eq!(depot.on_hand("APPLE").await, 0);
    // Admins find it.
    let failed = depot
        .restocks(&depot.admin, json!({ "status": "FAILED" }))
        .await;
    assert_eq!(failed["totalCount"], 1);
    let node = &failed["edges"][0]["node"];
    assert_eq!(node["transactionId"], receipt["transactionId"]);
    assert_eq!(node["attempts"], 2);
    assert!(node["lastError"].as_str().unwrap().contains("gave up"));
}

#[tokio::test]
async fn a_pending_restock_inventory_then_refuses_becomes_failed() {
    let depot = Depot::with(Options {
        inventory_up: false,
        ..Default::default()
    })
    .await;
    let receipt = depot
        .receipt(&depot.truck, input("truck-1", vec![item("GHOST", 1)], None))
        .await;
    assert_eq!(receipt["status"], "PENDING");
    depot.start_inventory().await;
    depot.make_restocks_due().await;
    assert_eq!(
        reconciler::reconcile(&depot.state).await.unwrap(),
        Reconciled {
            failed: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        depot.restock_status(&receipt["transactionId"]).await,
        "FAILED"
    );
    assert_eq!(
        depot
            .text("SELECT last_error AS v FROM restock_orders")
            .await,
        "inventory refused it: unknown SKU: GHOST"
    );
}

#[tokio::test]
async fn admins_list_every_restock_and_trucks_their_own() {
    let depot = Depot::new().await;
    let other = another_truck();
    let mine_1 = depot
        .receipt(&depot.truck, input("truck-A", vec![item("APPLE", 1)], None))
        .await;
    let mine_2 = depot
        .receipt(
            &depot.truck,
            json!({ "truckId": "truck-A", "supplierId": "dairy", "items": [
                { "sku": "milk", "quantity": 2, "unitCost": "0.8000", "expiryDate": day(5) }
            ] }),
        )
        .await;
    let theirs = depot
        .receipt(&other, input("truck-B", vec![item("PEAR", 3)], None))
        .await;

    let all = depot.restocks(&depot.admin, json!({})).await;
    assert_eq!(all["totalCount"], 3);
    let ids: Vec<&Value> = all["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"]["transactionId"])
        .collect();
    assert_eq!(
        ids,
        [
            &theirs["transactionId"],
            &mine_2["transactionId"],
            &mine_1["transactionId"]
        ],
        "newest first"
    );
    assert_eq!(
        all["edges"][1]["node"],
        json!({
            "transactionId": mine_2["transactionId"], "truckId": "truck-A", "supplierId": "dairy",
            "status": "COMPLETED", "attempts": 1, "lastError": null, "units": 2,
            "requestedBy": depot.truck_id.to_string(),
            "items": [{ "sku": "MILK", "quantity": 2, "unitCost": "0.8000",
                        "mfdDate": null, "expiryDate": day(5) }],
        })
    );
    let b = depot
        .restocks(&depot.admin, json!({ "truck": "truck-B" }))
        .await;
    assert_eq!(b["totalCount"], 1);
    assert_eq!(
        b["edges"][0]["node"]["transactionId"],
        theirs["transactionId"]
    );

    // A truck sees only what it asked for, page by page.
    let page = depot.restocks(&depot.truck, json!({ "first": 1 })).await;
    assert_eq!(page["totalCount"], 2);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(
        page["edges"][0]["node"]["transactionId"],
        mine_2["transactionId"]
    );
    let next = depot
        .restocks(
            &depot.truck,
            json!({ "first": 1, "after": page["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
    assert_eq!(
        next["edges"][0]["node"]["transactionId"],
        mine_1["transactionId"]
    );
    let none = depot
        .restocks(&depot.truck, json!({ "truck": "truck-B" }))
        .await;
    assert_eq!(none["totalCount"], 0);
    let resp = depot
        .gql(Some(&depot.admin), RESTOCKS, json!({ "after": "garbage" }))
        .await;
    assert_eq!(code(&resp), "BAD_USER_INPUT");
}
