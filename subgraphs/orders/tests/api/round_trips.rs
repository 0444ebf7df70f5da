//! What a checkout costs in statements: preview and confirm of a two-line
//! order, counted in every pool they touch (orders, inventory, catalog).
//!
//! The bounds are today's counts: a change that adds round trips to the
//! checkout path has to raise them on purpose. No relay runs, so every
//! statement counted is the request's own.

use serde_json::json;

use crate::support::*;

/// Runs `step` and answers the statements each pool ran meanwhile.
async fn counted<F: std::future::Future<Output = serde_json::Value>>(
    shop: &Shop,
    step: F,
) -> (serde_json::Value, [Vec<String>; 3]) {
    shop.statements.clear();
    let answer = step.await;
    let s = &shop.statements;
    (
        answer,
        [
            s.orders.statements(),
            s.inventory.statements(),
            s.catalog.statements(),
        ],
    )
}

fn report(step: &str, [orders, inventory, catalog]: &[Vec<String>; 3]) -> usize {
    println!(
        "{step}: {} statements (orders {}, inventory {}, catalog {})",
        orders.len() + inventory.len() + catalog.len(),
        orders.len(),
        inventory.len(),
        catalog.len()
    );
    for (pool, list) in [
        ("orders", orders),
        ("inventory", inventory),
        ("catalog", catalog),
    ] {
        for sql in list {
            // Raw statements span lines: one line each here.
            let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            println!("  {pool:9} {}", sql.chars().take(140).collect::<String>());
        }
    }
    orders.len() + inventory.len() + catalog.len()
}

/// A shop whose pools log their statements, with no relay running.
async fn counting_shop() -> Shop {
    Shop::with(Options {
        log_statements: true,
        without_relay: true,
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_checkout_costs_few_round_trips() {
    let shop = counting_shop().await;
    let (_, token) = shop.customer();
    let lines = json!([{ "sku": "APPLE", "quantity": 2 }, { "sku": "MILK", "quantity": 1 }]);
    let (preview, preview_sql) = counted(
        &shop,
        shop.gql(&token, PREVIEW_LEAN, json!({ "items": lines })),
    )
    .await;
    assert_no_errors(&preview);
    let id = preview["data"]["previewOrder"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (confirm, confirm_sql) = counted(
        &shop,
        shop.gql(
            &token,
            CONFIRM_LEAN,
            json!({ "id": id, "key": "k-1", "payment": "tok_visa" }),
        ),
    )
    .await;
    assert_no_errors(&confirm);
    assert_eq!(confirm["data"]["confirmOrder"]["status"], "CONFIRMED");
    let previewed = report("previewOrder", &preview_sql);
    let confirmed = report("confirmOrder", &confirm_sql);
    assert!(
        previewed <= PREVIEW_BOUND,
        "previewOrder ran {previewed} statements"
    );
    assert!(
        confirmed <= CONFIRM_BOUND,
        "confirmOrder ran {confirmed} statements"
    );
}

/// Orders 1 (one statement: the order, its lines, history row and event),
/// inventory 2 (ReserveStock's one statement, its quote's one read).
const PREVIEW_BOUND: usize = 3;
/// Orders 4 (one transaction: the order locked and read with its key's order,
/// its SKUs and its history, then after the charge one statement writes prices, payment,
/// key, status, history row and events), inventory 2 (CommitStock: 1 read, 1
/// statement), catalog 1 (names).
const CONFIRM_BOUND: usize = 7;

/// What a checkout client asks for: the id, status and money.
const PREVIEW_LEAN: &str = "mutation($items: [OrderLineInput!]) { previewOrder(items: $items) { id status total reservedUntil } }";
const CONFIRM_LEAN: &str = "mutation($id: ID!, $key: String, $payment: String) { \
    confirmOrder(orderId: $id, idempotencyKey: $key, paymentToken: $payment) { id status total } }";

/// Every field a client can ask of an order, times included.
static FULL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let full = ORDER_FIELDS
        .replace("payment { status", "payment { createdAt status")
        .replace(
            "statusHistory { previousStatus status reason",
            "statusHistory { at previousStatus status reason",
        );
    assert_ne!(
        full, ORDER_FIELDS,
        "ORDER_FIELDS no longer reads as expected"
    );
    format!("{full} createdAt updatedAt")
});

/// A checkout answers the whole order from what it wrote and what it read
/// under the lock: each answer is what a fresh read of the order says, and
/// costs no statement more than the lean answer.
#[tokio::test]
async fn a_checkouts_full_answer_is_what_it_wrote() {
    let shop = counting_shop().await;
    let (_, token) = shop.customer();
    let fresh = async |id: &str| {
        let read = shop
            .gql(
                &token,
                &format!("query($id: ID!) {{ order(id: $id) {{ {} }} }}", *FULL),
                json!({ "id": id }),
            )
            .await;
        assert_no_errors(&read);
        read["data"]["order"].clone()
    };
    let lines = json!([{ "sku": "MILK", "quantity": 1 }, { "sku": "APPLE", "quantity": 2 }]);
    let preview_query = format!(
        "mutation($items: [OrderLineInput!]) {{ previewOrder(items: $items) {{ {} }} }}",
        *FULL
    );
    let (preview, preview_sql) = counted(
        &shop,
        shop.gql(&token, &preview_query, json!({ "items": lines })),
    )
    .await;
    assert_no_errors(&preview);
    let preview = &preview["data"]["previewOrder"];
    let id = preview["id"].as_str().unwrap().to_owned();
    assert_eq!(preview["items"][0]["sku"], "APPLE", "lines in SKU order");
    assert_eq!(*preview, fresh(&id).await);
    assert!(report("previewOrder", &preview_sql) <= PREVIEW_BOUND);

    let confirm_query = format!(
        "mutation($id: ID!, $key: String, $payment: String) {{
            confirmOrder(orderId: $id, idempotencyKey: $key, paymentToken: $payment) {{ {} }} }}",
        *FULL
    );
    let (confirm, confirm_sql) = counted(
        &shop,
        shop.gql(
            &token,
            &confirm_query,
            json!({ "id": id, "key": "k-full", "payment": "tok_visa" }),
        ),
    )
    .await;
    assert_no_errors(&confirm);
    let confirm = &confirm["data"]["confirmOrder"];
    assert_eq!(confirm["status"], "CONFIRMED");
    assert_eq!(confirm["payment"]["refunds"], json!([]));
    assert_eq!(*confirm, fresh(&id).await);
    assert!(report("confirmOrder", &confirm_sql) <= CONFIRM_BOUND);

    // A declined payment is answered from what was written, too.
    let again = shop.preview(&token, &[("APPLE", 1)]).await;
    let again_id = again["id"].as_str().unwrap().to_owned();
    let declined = shop
        .gql(
            &token,
            &confirm_query,
            json!({ "id": again_id, "key": "k-declined", "payment": "tok_decline" }),
        )
        .await;
    assert_no_errors(&declined);
    let declined = &declined["data"]["confirmOrder"];
    assert_eq!(declined["status"], "PAYMENT_FAILED");
    assert_eq!(*declined, fresh(&again_id).await);
}
