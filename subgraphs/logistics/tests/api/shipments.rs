//! Shipments: made once per paid order from its event, moved by trucks along
//! the lifecycle, cancelled with their order, seen only by those who may.

use kit::events::Applied;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::*;

const UPDATE: &str = "mutation($t: String!, $s: ShipmentStatus!) {
    updateShipmentStatus(trackingId: $t, status: $s) { status trackingId order { id } } }";
const BY_TRACKING: &str = "query($t: String!) { shipment(trackingId: $t) {
    id trackingId carrier status statusHistory { previousStatus status } } }";

#[tokio::test]
async fn a_paid_order_gets_one_shipment_however_often_the_event_arrives() {
    let depot = Depot::new().await;
    let (customer, token) = depot.customer();
    let order = Uuid::new_v4();
    let confirmed = depot.order_event(order, customer, "CONFIRMED");
    assert_eq!(depot.apply(&confirmed).await, Applied::Processed);
    // Redelivered, and the same change published twice under two ids.
    assert_eq!(depot.apply(&confirmed).await, Applied::Duplicate);
    let again = depot.order_event(order, customer, "CONFIRMED");
    assert_eq!(depot.apply(&again).await, Applied::Processed);
    assert_eq!(depot.scalar("SELECT count(*) FROM shipments").await, 1);
    // Statuses that do not concern logistics are not even recorded.
    let reserved = depot.order_event(order, customer, "RESERVED");
    assert_eq!(depot.apply(&reserved).await, Applied::Ignored);

    let tracking = depot
        .text(&format!(
            "SELECT tracking_id AS v FROM shipments WHERE order_id = '{order}'"
        ))
        .await;
    assert!(tracking.starts_with("GRT-"), "{tracking}");
    let resp = depot
        .gql(Some(&token), BY_TRACKING, json!({ "t": tracking }))
        .await;
    assert_no_errors(&resp);
    let shipment = &resp["data"]["shipment"];
    assert_eq!(shipment["carrier"], "test-carrier");
    assert_eq!(shipment["status"], "CREATED");
    assert_eq!(
        shipment["statusHistory"],
        json!([{ "previousStatus": null, "status": "CREATED" }])
    );
    assert_eq!(
        depot
            .scalar("SELECT count(*) FROM outbox WHERE topic = 'shipment.status_changed'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_reshipped_order_gets_exactly_one_new_shipment_and_keeps_the_failed_one() {
    let depot = Depot::new().await;
    let (order, token, first) = depot.shipped_order().await;
    for status in ["PICKED", "IN_TRANSIT", "FAILED"] {
        let resp = depot
            .gql(
                Some(&depot.admin),
                UPDATE,
                json!({ "t": first, "s": status }),
            )
            .await;
        assert_no_errors(&resp);
    }
    let customer: Uuid = depot
        .text(&format!(
            "SELECT customer_id::text AS v FROM shipments WHERE order_id = '{order}'"
        ))
        .await
        .parse()
        .unwrap();
    // Orders reships: CONFIRMED again, with the next delivery attempt.
    let mut reshipped = depot.order_event(order, customer, "CONFIRMED");
    reshipped.payload["previousStatus"] = json!("DELIVERY_FAILED");
    reshipped.payload["deliveryAttempt"] = json!(2);
    assert_eq!(depot.apply(&reshipped).await, Applied::Processed);
    // The same reship published twice under two ids still makes one shipment,
    assert_eq!(depot.apply(&reshipped).await, Applied::Duplicate);
    let mut again = reshipped.clone();
    again.id += 1000;
    assert_eq!(depot.apply(&again).await, Applied::Processed);
    // and a late copy of the first confirmation makes none.
    let late_first = depot.order_event(order, customer, "CONFIRMED");
    assert_eq!(depot.apply(&late_first).await, Applied::Processed);
    assert_eq!(
        depot
            .scalar(&format!(
                "SELECT count(*) FROM shipments WHERE order_id = '{order}'"
            ))
            .await,
        2
    );

    let resp = depot
        .gql(
            Some(&token),
            "query($id: ID!) { _entities(representations: [{ __typename: \"Order\", id: $id }]) {
                ... on Order { shipment { trackingId status attempt }
                               shipments { trackingId status attempt statusHistory { status } } } } }",
            json!({ "id": order }),
        )
        .await;
    assert_no_errors(&resp);
    let entity = &resp["data"]["_entities"][0];
    let current = &entity["shipment"];
    assert_eq!(current["status"], "CREATED");
    assert_eq!(current["attempt"], 2);
    assert_ne!(current["trackingId"], first.as_str());
    let all = entity["shipments"].as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["trackingId"], first.as_str());
    assert_eq!(
        (&all[0]["status"], &all[0]["attempt"]),
        (&json!("FAILED"), &json!(1))
    );
    assert_eq!(
        all[0]["statusHistory"],
        json!([{ "status": "CREATED" }, { "status": "PICKED" }, { "status": "IN_TRANSIT" }, { "status": "FAILED" }])
    );
    assert_eq!(all[1]["trackingId"], current["trackingId"]);
    // The new shipment's events name its attempt, so orders can tell it from the failed one.
    let attempts = depot
        .text(&format!(
            "SELECT string_agg(payload->>'status' || ':' || (payload->>'deliveryAttempt'), ',' ORDER BY id) AS v \
             FROM outbox WHERE key = '{order}'"
        ))
        .await;
    assert_eq!(
        attempts,
        "CREATED:1,PICKED:1,IN_TRANSIT:1,FAILED:1,CREATED:2"
    );
}

#[tokio::test]
async fn trucks_move_shipments_along_the_lifecycle_and_each_move_is_an_event() {
    let depot = Depot::new().await;
    let (order, _, tracking) = depot.shipped_order().await;
    for status in ["PICKED", "IN_TRANSIT", "DELIVERED"] {
        let resp = depot
            .gql(
                Some(&depot.truck),
                UPDATE,
                json!({ "t": tracking, "s": status }),
            )
            .await;
        assert_no_errors(&resp);
        assert_eq!(resp["data"]["updateShipmentStatus"]["status"], status);
        assert_eq!(
            resp["data"]["updateShipmentStatus"]["order"]["id"],
            order.to_string()
        );
    }
    // Setting the status it has changes nothing; going back is refused.
    let same = depot
        .gql(
            Some(&depot.admin),
            UPDATE,
            json!({ "t": tracking, "s": "DELIVERED" }),
        )
        .await;
    assert_no_errors(&same);
    let back = depot
        .gql(
            Some(&depot.truck),
            UPDATE,
            json!({ "t": tracking, "s": "PICKED" }),
        )
        .await;
    assert_eq!(code(&back), "INVALID_STATE");
    assert!(
        message(&back).contains("is DELIVERED; it cannot become PICKED"),
        "{back}"
    );
    let failed = depot
        .gql(
            Some(&depot.truck),
            UPDATE,
            json!({ "t": tracking, "s": "FAILED" }),
        )
        .await;
    assert_eq!(code(&failed), "INVALID_STATE", "delivered is final");

    #[derive(diesel::QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        payload: Value,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = depot.pool.get().await.unwrap();
    let events: Vec<Row> = diesel::sql_query(
        "SELECT payload FROM outbox WHERE topic = 'shipment.status_changed' ORDER BY id",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let moves: Vec<(Value, Value)> = events
        .iter()
        .map(|e| {
            (
                e.payload["previousStatus"].clone(),
                e.payload["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            (Value::Null, json!("CREATED")),
            (json!("CREATED"), json!("PICKED")),
            (json!("PICKED"), json!("IN_TRANSIT")),
            (json!("IN_TRANSIT"), json!("DELIVERED")),
        ]
    );
    let last = &events[3].payload;
    assert_eq!(last["orderId"], order.to_string());
    assert_eq!(last["trackingId"], tracking.as_str());
    assert!(last["customerId"].is_string() && last["at"].is_string());
}

#[tokio::test]
async fn only_trucks_and_admins_move_shipments_and_skipping_steps_is_refused() {
    let depot = Depot::new().await;
    let (_, customer, tracking) = depot.shipped_order().await;
    let resp = depot
        .gql(
            Some(&customer),
            UPDATE,
            json!({ "t": tracking, "s": "PICKED" }),
        )
        .await;
    assert_eq!(code(&resp), "FORBIDDEN");
    let resp = depot
        .gql(None, UPDATE, json!({ "t": tracking, "s": "PICKED" }))
        .await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");
    let resp = depot
        .gql(
            Some(&depot.truck),
            UPDATE,
            json!({ "t": tracking, "s": "DELIVERED" }),
        )
        .await;
    assert_eq!(code(&resp), "INVALID_STATE");
    let resp = depot
        .gql(
            Some(&depot.truck),
            UPDATE,
            json!({ "t": tracking, "s": "CANCELLED" }),
        )
        .await;
    assert_eq!(code(&resp), "BAD_USER_INPUT");
    let resp = depot
        .gql(
            Some(&depot.truck),
            UPDATE,
            json!({ "t": "GRT-NOPE", "s": "PICKED" }),
        )
        .await;
    assert_eq!(code(&resp), "NOT_FOUND");
    // A shipment fails from any state before delivery.
    let resp = depot
        .gql(
            Some(&depot.truck),
            UPDATE,
            json!({ "t": tracking, "s": "FAILED" }),
        )
        .await;
    assert_no_errors(&resp);
    assert_eq!(
        depot
            .scalar("SELECT count(*) FROM shipment_status_history")
            .await,
        2
    );
}

#[tokio::test]
async fn an_order_cancelled_before_shipping_cancels_its_shipment_and_not_after() {
    let depot = Depot::new().await;
    let (customer, _) = depot.customer();
    let order = Uuid::new_v4();
    depot
        .apply(&depot.order_event(order, customer, "CONFIRMED"))
        .await;
    let cancelled = depot.order_event(order, customer, "CANCELLED");
    depot.apply(&cancelled).await;
    let status = depot
        .text(&format!(
            "SELECT status AS v FROM shipments WHERE order_id = '{order}'"
        ))
        .await;
    assert_eq!(status, "CANCELLED");
    // The cancellation is history and an event like any other change, once.
    assert_eq!(depot.apply(&cancelled).await, Applied::Duplicate);
    assert_eq!(
        depot
            .apply(&depot.order_event(order, customer, "CANCELLED"))
            .await,
        Applied::Processed
    );
    assert_eq!(
        depot
            .text(&format!(
                "SELECT string_agg(coalesce(from_status, '-') || '>' || to_status, ',' ORDER BY h.id) AS v
                 FROM shipment_status_history h JOIN shipments s ON s.id = h.shipment_id
                 WHERE s.order_id = '{order}'"
            ))
            .await,
        "->CREATED,CREATED>CANCELLED"
    );
    assert_eq!(
        depot
            .text(&format!(
                "SELECT string_agg(payload->>'status', ',' ORDER BY id) AS v FROM outbox
                 WHERE topic = 'shipment.status_changed' AND key = '{order}'"
            ))
            .await,
        "CREATED,CANCELLED"
    );

    let (order, _, tracking) = depot.shipped_order().await;
    for status in ["PICKED", "IN_TRANSIT"] {
        assert_no_errors(
            &depot
                .gql(
                    Some(&depot.truck),
                    UPDATE,
                    json!({ "t": tracking, "s": status }),
                )
                .await,
        );
    }
    let customer = Uuid::parse_str(
        &depot
            .text(&format!(
                "SELECT customer_id::text AS v FROM shipments WHERE order_id = '{order}'"
            ))
            .await,
    )
    .unwrap();
    assert_eq!(
        depot
            .apply(&depot.order_event(order, customer, "CANCELLED"))
            .await,
        Applied::Processed
    );
    let status = depot
        .text(&format!(
            "SELECT status AS v FROM shipments WHERE order_id = '{order}'"
        ))
        .await;
    assert_eq!(status, "IN_TRANSIT", "goods on the road are not cancelled");
    // A cancelled order that never had a shipment: nothing to do.
    let (other, _) = depot.customer();
    let never_paid = depot.order_event(Uuid::new_v4(), other, "CANCELLED");
    assert_eq!(depot.apply(&never_paid).await, Applied::Processed);
}

#[tokio::test]
async fn shipments_are_seen_by_their_customer_trucks_and_admins_only() {
    let depot = Depot::new().await;
    let (order, customer, tracking) = depot.shipped_order().await;
    let (_, stranger) = depot.customer();
    for token in [&customer, &depot.truck, &depot.admin] {
        let resp = depot
            .gql(Some(token), BY_TRACKING, json!({ "t": tracking }))
            .await;
        assert_no_errors(&resp);
        assert_eq!(resp["data"]["shipment"]["trackingId"], tracking.as_str());
    }
    let resp = depot
        .gql(Some(&stranger), BY_TRACKING, json!({ "t": tracking }))
        .await;
    assert_no_errors(&resp);
    assert_eq!(resp["data"]["shipment"], Value::Null);
    let resp = depot.gql(None, BY_TRACKING, json!({ "t": tracking })).await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");

    // Order.shipment, as the gateway asks for it, batched for many orders.
    let entities = "query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Order { id shipment { trackingId status } } } }";
    let unpaid = Uuid::new_v4();
    let reps = json!([
        { "__typename": "Order", "id": order },
        { "__typename": "Order", "id": unpaid },
    ]);
    let resp = depot
        .gql(Some(&customer), entities, json!({ "r": reps }))
        .await;
    assert_no_errors(&resp);
    assert_eq!(
        resp["data"]["_entities"],
        json!([
            { "id": order.to_string(), "shipment": { "trackingId": tracking, "status": "CREATED" } },
            { "id": unpaid.to_string(), "shipment": null },
        ])
    );
    let resp = depot
        .gql(Some(&stranger), entities, json!({ "r": reps }))
        .await;
    assert_eq!(resp["data"]["_entities"][0]["shipment"], Value::Null);
    // Shipment by id, as an entity.
    let id = depot
        .text(&format!(
            "SELECT id::text AS v FROM shipments WHERE order_id = '{order}'"
        ))
        .await;
    let resp = depot
        .gql(
            Some(&depot.admin),
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Shipment { trackingId } } }",
            json!({ "r": [{ "__typename": "Shipment", "id": id }] }),
        )
        .await;
    assert_no_errors(&resp);
    assert_eq!(
        resp["data"]["_entities"][0]["trackingId"],
        tracking.as_str()
    );
}
