//! Events: the outbox, the relay, the bus (in-process and Redis Streams) and
//! the orderStatusChanged subscription over graphql-transport-ws.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use kit::{
    events::{Bus, outbox},
    testing::wait_until,
};
use orders::{feed::StatusChanged, lifecycle::OrderStatus};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
use uuid::Uuid;

use crate::support::*;

/// Guards every wait so a broken feed fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(15);

async fn next<S: futures::Stream<Item = StatusChanged> + Unpin>(feed: &mut S) -> StatusChanged {
    tokio::time::timeout(PATIENCE, feed.next())
        .await
        .expect("an event in time")
        .expect("the feed is open")
}

fn order_id(order: &Value) -> Uuid {
    order["id"].as_str().unwrap().parse().unwrap()
}

async fn walk_through_lifecycle(shop: &Shop, token: &str, order: &Value) {
    let id = order["id"].as_str().unwrap();
    assert_no_errors(&shop.confirm(token, id, None, None).await);
    for status in ["PROCESSING", "SHIPPED"] {
        assert_no_errors(
            &shop
                .gql(
                    &shop.admin,
                    &SET_STATUS,
                    json!({ "id": id, "status": status }),
                )
                .await,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_change_reaches_the_feed_once_and_in_order() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let order = shop.preview(&token, &[("APPLE", 2)]).await;
    let mut feed = Box::pin(
        orders::feed::follow(&shop.state, order_id(&order))
            .await
            .unwrap(),
    );
    walk_through_lifecycle(&shop, &token, &order).await;
    let seen: Vec<_> = [
        next(&mut feed).await,
        next(&mut feed).await,
        next(&mut feed).await,
    ]
    .into_iter()
    .map(|c| (c.previous, c.status))
    .collect();
    assert_eq!(
        seen,
        [
            (Some(OrderStatus::Reserved), OrderStatus::Confirmed),
            (Some(OrderStatus::Confirmed), OrderStatus::Processing),
            (Some(OrderStatus::Processing), OrderStatus::Shipped),
        ]
    );
    // At least once: the relay may publish again; the feed drops repeats.
    let key = order_id(&order).to_string();
    let mut conn = shop.pool.get().await.unwrap();
    for event in outbox::since(&mut conn, orders::DB_SCHEMA, &key, 0)
        .await
        .unwrap()
    {
        shop.state.relay.bus().publish(&event).await.unwrap();
    }
    drop(conn);
    let delivered = shop
        .gql(
            &shop.admin,
            &SET_STATUS,
            json!({ "id": key, "status": "DELIVERED" }),
        )
        .await;
    assert_no_errors(&delivered);
    let last = next(&mut feed).await;
    assert_eq!(
        (last.previous, last.status),
        (Some(OrderStatus::Shipped), OrderStatus::Delivered)
    );
    // Everything written was relayed and marked. The relay marks a batch
    // after publishing it, so the feed can see an event a moment before its
    // row is marked.
    wait_until("every outbox row marked published", async || {
        shop.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await
            == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_is_served_over_graphql_transport_ws_to_owner_or_admin() {
    let shop = Shop::new().await;
    let (_, token) = shop.customer();
    let (_, stranger) = shop.customer();
    let order = shop.preview(&token, &[("MILK", 1)]).await;
    let url = format!("{}/graphql", serve(shop.router.clone()).await).replace("http", "ws");
    let connect = |bearer: String| {
        let url = url.clone();
        async move {
            let mut request = url.into_client_request().unwrap();
            request.headers_mut().insert(
                "sec-websocket-protocol",
                "graphql-transport-ws".parse().unwrap(),
            );
            let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
            let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {bearer}") } });
            ws.send(Message::Text(init.to_string().into()))
                .await
                .unwrap();
            ws
        }
    };
    let receive = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| -> Message {
        tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .unwrap()
    };
    let text = |m: Message| -> Value { serde_json::from_str(m.to_text().unwrap()).unwrap() };
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { orderStatusChanged(orderId: $id) { previousStatus status at order { number status } } }",
        "variables": { "id": order["id"] } } });

    // Someone else's order: refused like order(id).
    let mut theirs = connect(stranger).await;
    assert_eq!(text(receive(&mut theirs).await)["type"], "connection_ack");
    theirs
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    let refused = text(receive(&mut theirs).await);
    assert_eq!(refused["payload"]["data"], Value::Null, "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "NOT_FOUND"
    );

    // A token that does not verify is turned away at connection_init.
    let mut forged = connect("not-a-token".into()).await;
    assert!(matches!(receive(&mut forged).await, Message::Close(_)));

    let before = shop.state.relay.bus().subscribers();
    let mut ws = connect(token.clone()).await;
    assert_eq!(text(receive(&mut ws).await)["type"], "connection_ack");
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    // Changes count from the moment the subscription is live.
    wait_until("the subscription to follow the bus", async || {
        shop.state.relay.bus().subscribers() > before
    })
    .await;
    walk_through_lifecycle(&shop, &token, &order).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let message = text(receive(&mut ws).await);
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["orderStatusChanged"];
        assert!(event["at"].is_string());
        assert_eq!(event["order"]["number"], order["number"]);
        got.push((event["previousStatus"].clone(), event["status"].clone()));
    }
    assert_eq!(
        got,
        [
            (json!("RESERVED"), json!("CONFIRMED")),
            (json!("CONFIRMED"), json!("PROCESSING")),
            (json!("PROCESSING"), json!("SHIPPED")),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_events_go_through_a_stream_every_replica_reads() {
    let stream = format!("grocery:test:{}", Uuid::new_v4().simple());
    let shop = Shop::with(Options {
        redis_stream: Some(stream.clone()),
        ..Default::default()
    })
    .await;
    assert!(shop.state.relay.bus().is_redis());
    // Another replica: its own connection to the same stream.
    let replica = Bus::redis(&redis_url(), &stream).await.unwrap();
    let mut elsewhere = replica.subscribe();
    let (_, token) = shop.customer();
    let order = shop.preview(&token, &[("APPLE", 1)]).await;
    let mut feed = Box::pin(
        orders::feed::follow(&shop.state, order_id(&order))
            .await
            .unwrap(),
    );
    walk_through_lifecycle(&shop, &token, &order).await;
    let statuses: Vec<_> = [
        next(&mut feed).await,
        next(&mut feed).await,
        next(&mut feed).await,
    ]
    .into_iter()
    .map(|c| c.status)
    .collect();
    assert_eq!(
        statuses,
        [
            OrderStatus::Confirmed,
            OrderStatus::Processing,
            OrderStatus::Shipped
        ]
    );
    // The other replica saw the same events, in outbox order: RESERVED first.
    let mut topics = Vec::new();
    while topics.len() < 5 {
        let event = tokio::time::timeout(PATIENCE, elsewhere.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.key, order_id(&order).to_string());
        topics.push((
            event.topic.clone(),
            event.payload["status"].as_str().map(str::to_owned),
        ));
    }
    assert_eq!(
        topics,
        [
            (
                "order.status_changed".to_owned(),
                Some("RESERVED".to_owned())
            ),
            (
                "order.status_changed".to_owned(),
                Some("CONFIRMED".to_owned())
            ),
            ("payment.succeeded".to_owned(), None),
            (
                "order.status_changed".to_owned(),
                Some("PROCESSING".to_owned())
            ),
            (
                "order.status_changed".to_owned(),
                Some("SHIPPED".to_owned())
            ),
        ]
    );
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let length: i64 = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(length, 5);
    let _: i64 = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
}
