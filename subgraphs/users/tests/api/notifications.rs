//! Order and shipment events become notifications, once each, and users read
//! them as `User.notifications`.

use kit::{auth::Role, events::Applied};
use serde_json::{Value, json};
use users::notifications::{Delivery, NotificationKind};

use crate::support::*;

/// Configured but never contacted: these tests run no mailer.
const SMTP: &str = "smtp://127.0.0.1:9";

#[tokio::test]
async fn an_order_event_notifies_its_customer_once() {
    let app = TestApp::new().await;
    let ann = app
        .customer_with_email("fridge-ann", Some("ann@example.com"))
        .await;
    let consumer = app.consumer(&app.notifications(Some(SMTP.into())));
    let confirmed = order_event(7, &ann, "GR-000042", "CONFIRMED");

    assert_eq!(
        consumer.apply(&confirmed).await.unwrap(),
        Applied::Processed
    );
    assert_eq!(
        consumer.apply(&confirmed).await.unwrap(),
        Applied::Duplicate
    );

    let rows = app.notification_rows().await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let n = &rows[0];
    assert_eq!(n.user_id.to_string(), ann);
    assert_eq!(n.kind, NotificationKind::OrderConfirmed);
    assert_eq!(n.order_id.unwrap().to_string(), ORDER);
    assert_eq!(n.order_number.as_deref(), Some("GR-000042"));
    assert_eq!(n.subject, "Order GR-000042 confirmed");
    assert!(n.body.contains("GR-000042"), "{}", n.body);
    assert_eq!(n.delivery, Delivery::Pending);
    assert_eq!((n.attempts, n.sent_at), (0, None));
    assert!(n.next_attempt_at.is_some());
    assert_eq!(app.channels().await, ["EMAIL"]);
    assert_eq!(app.count("processed_events").await, 1);
}

#[tokio::test]
async fn each_customer_facing_order_status_has_its_kind_and_the_rest_are_ignored() {
    let app = TestApp::new().await;
    let ann = app.customer_with_email("fridge-ann", None).await;
    let consumer = app.consumer(&app.notifications(None));
    let notified = [
        (
            "CONFIRMED",
            NotificationKind::OrderConfirmed,
            "Order GR-000042 confirmed",
        ),
        (
            "SHIPPED",
            NotificationKind::OrderShipped,
            "Order GR-000042 shipped",
        ),
        (
            "DELIVERED",
            NotificationKind::OrderDelivered,
            "Order GR-000042 delivered",
        ),
        (
            "CANCELLED",
            NotificationKind::OrderCancelled,
            "Order GR-000042 cancelled",
        ),
        (
            "PAYMENT_FAILED",
            NotificationKind::PaymentFailed,
            "Payment for order GR-000042 failed",
        ),
        (
            "REFUNDED",
            NotificationKind::OrderRefunded,
            "Order GR-000042 refunded",
        ),
    ];
    for (i, (status, _, _)) in notified.iter().enumerate() {
        let event = order_event(i as i64 + 1, &ann, "GR-000042", status);
        assert_eq!(
            consumer.apply(&event).await.unwrap(),
            Applied::Processed,
            "{status}"
        );
    }
    for (i, status) in ["RESERVED", "PROCESSING", "EXPIRED", "DELIVERY_FAILED"]
        .iter()
        .enumerate()
    {
        let event = order_event(i as i64 + 100, &ann, "GR-000042", status);
        assert_eq!(
            consumer.apply(&event).await.unwrap(),
            Applied::Ignored,
            "{status}"
        );
    }
    let rows = app.notification_rows().await;
    let got: Vec<_> = rows.iter().map(|n| (n.kind, n.subject.as_str())).collect();
    let want: Vec<_> = notified
        .iter()
        .map(|(_, kind, subject)| (*kind, *subject))
        .collect();
    assert_eq!(got, want);
    // Ignored events are not even recorded as processed.
    assert_eq!(app.count("processed_events").await, 6);
}

#[tokio::test]
async fn without_smtp_or_without_an_address_notifications_are_only_stored() {
    let app = TestApp::new().await;
    let with_address = app
        .customer_with_email("fridge-ann", Some("ann@example.com"))
        .await;
    let without_address = app.customer_with_email("fridge-bob", None).await;

    let no_smtp = app.consumer(&app.notifications(None));
    no_smtp
        .apply(&order_event(1, &with_address, "GR-000001", "CONFIRMED"))
        .await
        .unwrap();
    let smtp = app.consumer(&app.notifications(Some(SMTP.into())));
    smtp.apply(&order_event(2, &without_address, "GR-000002", "CONFIRMED"))
        .await
        .unwrap();

    let rows = app.notification_rows().await;
    assert_eq!(
        rows.iter().map(|n| n.delivery).collect::<Vec<_>>(),
        [Delivery::Stored, Delivery::Stored]
    );
    assert!(rows.iter().all(|n| n.next_attempt_at.is_none()));
    assert_eq!(app.channels().await, ["NONE", "NONE"]);
}

#[tokio::test]
async fn a_failed_shipment_notifies_and_names_the_order_other_shipment_news_does_not() {
    let app = TestApp::new().await;
    let ann = app.customer_with_email("fridge-ann", None).await;
    let consumer = app.consumer(&app.notifications(None));
    consumer
        .apply(&order_event(1, &ann, "GR-000042", "CONFIRMED"))
        .await
        .unwrap();

    for (id, status) in [(1, "PICKED"), (2, "IN_TRANSIT"), (3, "DELIVERED")] {
        let event = shipment_event(id, &ann, ORDER, status);
        assert_eq!(
            consumer.apply(&event).await.unwrap(),
            Applied::Ignored,
            "{status}"
        );
    }
    let failed = shipment_event(4, &ann, ORDER, "FAILED");
    assert_eq!(consumer.apply(&failed).await.unwrap(), Applied::Processed);
    // An order this subgraph never heard of is named by its shipment.
    let unknown_order = shipment_event(5, &ann, &uuid::Uuid::now_v7().to_string(), "FAILED");
    assert_eq!(
        consumer.apply(&unknown_order).await.unwrap(),
        Applied::Processed
    );

    let rows = app.notification_rows().await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let known = &rows[1];
    assert_eq!(known.kind, NotificationKind::ShipmentFailed);
    assert_eq!(known.subject, "Delivery of order GR-000042 failed");
    assert_eq!(known.order_number.as_deref(), Some("GR-000042"));
    assert!(known.body.contains("TRK-7"), "{}", known.body);
    let unnamed = &rows[2];
    assert_eq!(unnamed.subject, "Delivery of shipment TRK-7 failed");
    assert_eq!(unnamed.order_number, None);
}

#[tokio::test]
async fn events_for_unknown_customers_are_skipped_not_failed() {
    let app = TestApp::new().await;
    let consumer = app.consumer(&app.notifications(None));
    let stranger = uuid::Uuid::now_v7().to_string();
    let event = order_event(1, &stranger, "GR-000042", "CONFIRMED");
    assert_eq!(consumer.apply(&event).await.unwrap(), Applied::Processed);
    assert_eq!(app.count("notifications").await, 0);
    assert_eq!(app.count("processed_events").await, 1);
}

#[tokio::test]
async fn malformed_payloads_fail_and_record_nothing() {
    let app = TestApp::new().await;
    let ann = app.customer_with_email("fridge-ann", None).await;
    let consumer = app.consumer(&app.notifications(None));
    let mut bad_customer = order_event(1, &ann, "GR-000042", "CONFIRMED");
    bad_customer.payload["customerId"] = json!("not-a-uuid");
    let mut no_number = order_event(2, &ann, "GR-000042", "CONFIRMED");
    no_number.payload.as_object_mut().unwrap().remove("number");
    let mut no_status = order_event(3, &ann, "GR-000042", "CONFIRMED");
    no_status.payload.as_object_mut().unwrap().remove("status");
    let mut shipment_without_order = shipment_event(4, &ann, ORDER, "FAILED");
    shipment_without_order
        .payload
        .as_object_mut()
        .unwrap()
        .remove("orderId");
    for event in [bad_customer, no_number, no_status, shipment_without_order] {
        let err = consumer.apply(&event).await.unwrap_err();
        assert!(format!("{err:#}").contains("malformed"), "{err:#}");
    }
    assert_eq!(app.count("notifications").await, 0);
    assert_eq!(
        app.count("processed_events").await,
        0,
        "rolled back with the handler"
    );

    let mut other_topic = order_event(5, &ann, "GR-000042", "CONFIRMED");
    other_topic.topic = "payment.succeeded".into();
    assert_eq!(
        consumer.apply(&other_topic).await.unwrap(),
        Applied::Ignored
    );
}

const MY_NOTIFICATIONS: &str = "query($after: String) { me { notifications(first: 2, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id kind subject body orderId orderNumber delivery createdAt sentAt } } } } }";

fn numbers(page: &Value) -> Vec<&str> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["orderNumber"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn me_notifications_pages_newest_first() {
    let app = TestApp::new().await;
    let ann = app.customer("fridge-ann").await;
    let bob = app.customer("fridge-bob").await;
    let consumer = app.consumer(&app.notifications(None));
    for i in 1..=5 {
        let event = order_event(i, &ann.user_id, &format!("GR-00000{i}"), "CONFIRMED");
        consumer.apply(&event).await.unwrap();
    }
    // Someone else's notification is not on Ann's pages.
    consumer
        .apply(&order_event(6, &bob.user_id, "GR-000006", "SHIPPED"))
        .await
        .unwrap();

    let mut after = Value::Null;
    let mut seen = Vec::new();
    for (want, more) in [
        (vec!["GR-000005", "GR-000004"], true),
        (vec!["GR-000003", "GR-000002"], true),
        (vec!["GR-000001"], false),
    ] {
        let resp = app
            .gql(
                Some(&ann.access),
                MY_NOTIFICATIONS,
                json!({ "after": after }),
            )
            .await;
        assert_no_errors(&resp);
        let page = &resp["data"]["me"]["notifications"];
        assert_eq!(numbers(page), want);
        assert_eq!(page["totalCount"], 5);
        assert_eq!(page["pageInfo"]["hasNextPage"], more);
        seen.extend(numbers(page).into_iter().map(str::to_owned));
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.len(), 5);

    let first = app
        .gql(
            Some(&ann.access),
            MY_NOTIFICATIONS,
            json!({ "after": null }),
        )
        .await;
    let node = &first["data"]["me"]["notifications"]["edges"][0]["node"];
    assert_eq!(node["kind"], "ORDER_CONFIRMED");
    assert_eq!(node["subject"], "Order GR-000005 confirmed");
    assert_eq!(node["orderId"], ORDER);
    assert_eq!(node["delivery"], "STORED");
    assert_eq!(node["sentAt"], Value::Null);
    assert!(node["createdAt"].as_str().is_some_and(|t| t.contains('T')));

    let garbage = app
        .gql(
            Some(&ann.access),
            MY_NOTIFICATIONS,
            json!({ "after": "!!" }),
        )
        .await;
    assert_eq!(code(&garbage), "BAD_USER_INPUT");
}

#[tokio::test]
async fn notifications_are_visible_to_their_user_and_admins_only() {
    let app = TestApp::new().await;
    let ann = app.customer("fridge-ann").await;
    let bob = app.customer("fridge-bob").await;
    let admin = app.with_role("admin", Role::Admin).await;
    let consumer = app.consumer(&app.notifications(None));
    consumer
        .apply(&order_event(1, &ann.user_id, "GR-000001", "DELIVERED"))
        .await
        .unwrap();

    // Bob can reach Ann's User through an entity reference, not her notifications.
    let entity = "query($r: [_Any!]!) { _entities(representations: $r) {
        ... on User { id notifications { totalCount } } } }";
    let reps = json!({ "r": [{ "__typename": "User", "id": ann.user_id }] });
    let as_bob = app.gql(Some(&bob.access), entity, reps.clone()).await;
    assert_eq!(code(&as_bob), "FORBIDDEN", "{as_bob}");
    let anonymous = app.gql(None, entity, reps.clone()).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    let as_admin = app.gql(Some(&admin.access), entity, reps).await;
    assert_no_errors(&as_admin);
    assert_eq!(
        as_admin["data"]["_entities"][0]["notifications"]["totalCount"],
        1
    );

    let by_admin = app
        .gql(
            Some(&admin.access),
            "query($id: ID!) { user(id: $id) { notifications { edges { node { kind } } } } }",
            json!({ "id": ann.user_id }),
        )
        .await;
    assert_no_errors(&by_admin);
    assert_eq!(
        by_admin["data"]["user"]["notifications"]["edges"][0]["node"]["kind"],
        "ORDER_DELIVERED"
    );
    let own = app
        .gql(
            Some(&bob.access),
            "{ me { notifications { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(own["data"]["me"]["notifications"]["totalCount"], 0);
}
