use kit::{
    auth::Role,
    testing::{TestClient, access_token, assert_no_errors, code},
};
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

fn client(room: &Stockroom) -> TestClient {
    TestClient::new(
        inventory::build(&room.config, room.pool.clone())
            .expect("build")
            .router,
    )
}

fn admin() -> String {
    access_token(&KEYS, Uuid::new_v4(), Role::Admin)
}

const ENTITIES: &str = "query($r: [_Any!]!) { _entities(representations: $r) {
    ... on Product { sku stock { onHand reserved available } unitPrice } } }";

#[tokio::test]
async fn an_entity_batch_of_many_products_is_one_sql_query() {
    let room = Stockroom::new().await;
    let mut reps = Vec::new();
    for i in 0..20 {
        let sku = format!("SKU-{i}");
        room.stock(&sku, 10 + i, "1.00", Some(10)).await;
        reps.push(json!({ "__typename": "Product", "sku": sku }));
    }
    reps.push(json!({ "__typename": "Product", "sku": "NEVER-STOCKED" }));
    let client = client(&room);
    room.log.clear();
    let resp = client.gql(None, ENTITIES, json!({ "r": reps })).await;
    assert_no_errors(&resp);
    let products = resp["data"]["_entities"].as_array().unwrap();
    assert_eq!(products.len(), 21);
    assert_eq!(
        products[3]["stock"],
        json!({ "onHand": 13, "reserved": 0, "available": 13 })
    );
    assert_eq!(products[3]["unitPrice"], "1.25");
    assert_eq!(
        products[20]["stock"],
        json!({ "onHand": 0, "reserved": 0, "available": 0 })
    );
    assert_eq!(products[20]["unitPrice"], serde_json::Value::Null);
    assert_eq!(
        room.log.statements().len(),
        1,
        "{:#?}",
        room.log.statements()
    );
}

#[tokio::test]
async fn unit_price_is_the_next_units_price_after_what_is_reserved() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 2, "1.00", Some(3)).await;
    room.stock("APPLE", 5, "2.00", Some(9)).await;
    let client = client(&room);
    let price = || async {
        let resp = client
            .gql(
                None,
                ENTITIES,
                json!({ "r": [{ "__typename": "Product", "sku": "APPLE" }] }),
            )
            .await;
        resp["data"]["_entities"][0]["unitPrice"].clone()
    };
    assert_eq!(price().await, "1.25");
    let conn = room.conn().await;
    inventory::reservations::reserve(&conn, Uuid::new_v4(), &[line("APPLE", 2)], TTL)
        .await
        .unwrap();
    assert_eq!(price().await, "2.50", "the cheap units are held");
    inventory::reservations::reserve(&conn, Uuid::new_v4(), &[line("APPLE", 5)], TTL)
        .await
        .unwrap();
    assert_eq!(
        price().await,
        serde_json::Value::Null,
        "nothing left to sell"
    );
}

#[tokio::test]
async fn admin_fields_and_mutations_are_guarded() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 5, "1.00", Some(3)).await;
    let client = client(&room);
    let customer = access_token(&KEYS, Uuid::new_v4(), Role::Customer);
    let batches = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { batches { remaining unitCost expiryDate } margin } } }";
    let reps = json!({ "r": [{ "__typename": "Product", "sku": "APPLE" }] });
    assert_eq!(
        code(&client.gql(None, batches, reps.clone()).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(&client.gql(Some(&customer), batches, reps.clone()).await),
        "FORBIDDEN"
    );
    let resp = client.gql(Some(&admin()), batches, reps).await;
    assert_no_errors(&resp);
    let product = &resp["data"]["_entities"][0];
    assert_eq!(product["batches"][0]["remaining"], 5);
    assert_eq!(product["batches"][0]["unitCost"], "1.0000");
    assert_eq!(product["batches"][0]["expiryDate"], days(3).to_string());
    assert_eq!(product["margin"], "0.25");

    let adjust = "mutation($d: Int!) { adjustStock(sku: \"apple\", delta: $d, reason: \"count\") { stock { onHand } } }";
    assert_eq!(
        code(&client.gql(Some(&customer), adjust, json!({ "d": 1 })).await),
        "FORBIDDEN"
    );
    let resp = client.gql(Some(&admin()), adjust, json!({ "d": -2 })).await;
    assert_eq!(resp["data"]["adjustStock"]["stock"]["onHand"], 3);
    let resp = client
        .gql(Some(&admin()), adjust, json!({ "d": -10 }))
        .await;
    assert_eq!(code(&resp), "INSUFFICIENT_STOCK");
    assert_eq!(
        resp["errors"][0]["extensions"]["shortfall"][0],
        json!({ "sku": "APPLE", "requested": 10, "available": 3 })
    );
    assert_eq!(
        code(&client.gql(Some(&admin()), adjust, json!({ "d": 0 })).await),
        "BAD_USER_INPUT"
    );

    let margin = "mutation($m: Decimal) { setMargin(sku: \"APPLE\", margin: $m) { unitPrice } }";
    let resp = client
        .gql(Some(&admin()), margin, json!({ "m": "0.5" }))
        .await;
    assert_eq!(resp["data"]["setMargin"]["unitPrice"], "1.50");
    assert_eq!(
        code(
            &client
                .gql(Some(&admin()), margin, json!({ "m": "11" }))
                .await
        ),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(
            &client
                .gql(Some(&admin()), margin, json!({ "m": "abc" }))
                .await
        ),
        "BAD_USER_INPUT"
    );

    let ledger = "{ stockMovements(sku: \"apple\") { kind onHandDelta reference } }";
    assert_eq!(
        code(&client.gql(Some(&customer), ledger, json!({})).await),
        "FORBIDDEN"
    );
    let resp = client.gql(Some(&admin()), ledger, json!({})).await;
    let kinds: Vec<_> = resp["data"]["stockMovements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ADJUSTMENT", "RESTOCK"]);
}

#[tokio::test]
async fn nul_bytes_in_adjustments_and_entity_keys_are_bad_user_input() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 5, "1.00", Some(10)).await;
    let client = client(&room);
    let adjust =
        "mutation($r: String!) { adjustStock(sku: \"APPLE\", delta: 1, reason: $r) { sku } }";
    let resp = client
        .gql(Some(&admin()), adjust, json!({ "r": "recount\u{0}" }))
        .await;
    assert_eq!(code(&resp), "BAD_USER_INPUT", "{resp:#}");
    assert_eq!(resp["errors"][0]["extensions"]["field"], "reason");
    // What the gateway sends: entity keys as variables.
    let reps = json!([{ "__typename": "Product", "sku": "APP\u{0}LE" }]);
    let resp = client.gql(None, ENTITIES, json!({ "r": reps })).await;
    assert_eq!(code(&resp), "BAD_USER_INPUT", "{resp:#}");
    assert_eq!(
        resp["errors"][0]["extensions"]["field"],
        "representations.0.sku"
    );
    assert_eq!(room.levels("APPLE").await, (5, 0, 5));
    assert_eq!(
        room.scalar("SELECT count(*) FROM stock_movements WHERE kind = 'ADJUSTMENT'")
            .await,
        0
    );
}
