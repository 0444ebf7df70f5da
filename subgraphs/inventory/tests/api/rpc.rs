use contracts::inventory::{self as pb, inventory_client::InventoryClient};
use prost::Message;
use tonic::{Code, Request, transport::Channel};

use crate::support::*;

/// The real stock service on a loopback port, and a client for it.
async fn serve(room: &Stockroom) -> InventoryClient<Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = inventory::build(&room.config, room.pool.clone())
        .unwrap()
        .rpc;
    tokio::spawn(inventory::rpc::serve(
        listener,
        service,
        std::future::pending(),
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    InventoryClient::new(channel)
}

fn authorized<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    request
}

fn lines(pairs: &[(&str, i32)]) -> Vec<pb::Line> {
    pairs
        .iter()
        .map(|(sku, quantity)| pb::Line {
            sku: (*sku).into(),
            quantity: *quantity,
        })
        .collect()
}

#[tokio::test]
async fn calls_without_the_service_credential_are_refused() {
    let room = Stockroom::new().await;
    let mut client = serve(&room).await;
    let bare = client
        .get_price(Request::new(pb::GetPriceRequest {
            lines: lines(&[("APPLE", 1)]),
            ..Default::default()
        }))
        .await;
    assert_eq!(bare.unwrap_err().code(), Code::Unauthenticated);
    let mut wrong = Request::new(pb::GetPriceRequest {
        lines: lines(&[("APPLE", 1)]),
        ..Default::default()
    });
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer not-the-token".parse().unwrap());
    assert_eq!(
        client.get_price(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn the_order_flow_over_grpc_reserves_prices_commits_and_returns() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 10, "0.40", Some(10)).await;
    let mut client = serve(&room).await;
    let order_id = uuid::Uuid::new_v4().to_string();
    let reserve = |quantity, ttl_seconds, with_quote| {
        authorized(pb::ReserveStockRequest {
            order_id: order_id.clone(),
            lines: lines(&[("APPLE", quantity)]),
            ttl_seconds,
            with_quote,
        })
    };

    let quote = client
        .get_price(authorized(pb::GetPriceRequest {
            lines: lines(&[("apple", 3)]),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (quote.lines[0].line_total.as_str(), quote.subtotal.as_str()),
        ("1.50", "1.50")
    );

    let short = client
        .reserve_stock(reserve(11, 0, false))
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::FailedPrecondition);
    let details = pb::Shortfalls::decode(short.details()).unwrap();
    assert_eq!(
        details.items,
        [pb::Shortfall {
            sku: "APPLE".into(),
            requested: 11,
            available: 10
        }]
    );

    let reserved = client
        .reserve_stock(reserve(3, 60, true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reserved.status(), pb::ReservationStatus::Active);
    let expires: chrono::DateTime<chrono::Utc> = reserved.expires_at.parse().unwrap();
    assert!((expires - chrono::Utc::now()).num_seconds() <= 60);
    // The quote prices the order's own held units, as the commit will.
    let quote = reserved.quote.expect("asked for a quote");
    assert_eq!(
        (
            quote.lines[0].quantity,
            quote.lines[0].line_total.as_str(),
            quote.subtotal.as_str()
        ),
        (3, "1.50", "1.50")
    );
    let repeat = client
        .reserve_stock(reserve(3, 60, false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (repeat.expires_at, repeat.quote),
        (reserved.expires_at, None)
    );

    let committed = client
        .commit_stock(authorized(pb::OrderRef {
            order_id: order_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(committed.subtotal, "1.50");
    assert_eq!(committed.lines[0].allocations[0].quantity, 3);
    let returned = client
        .return_stock(authorized(pb::OrderRef {
            order_id: order_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(returned.status(), pb::ReservationStatus::Returned);
    assert_eq!(room.levels("APPLE").await, (10, 0, 10));

    let bad_id = client
        .release_stock(authorized(pb::OrderRef {
            order_id: "not-a-uuid".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(bad_id.code(), Code::InvalidArgument);
    let unknown = client
        .release_stock(authorized(pb::OrderRef {
            order_id: uuid::Uuid::new_v4().to_string(),
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    room.audit().await;
}

/// `ReserveStock` with its quote sends the quote's read beside the
/// reservation's statement: the quote must still price what the order
/// holds after the units others hold, and a repeat that answers a stored
/// reservation of other lines must be priced on the stored lines.
#[tokio::test]
async fn a_reservations_quote_prices_what_it_holds_behind_others() {
    let room = Stockroom::new().await;
    // First out: 2 units at 0.40; then 10 at 0.80 (margin 25 %).
    room.stock("APPLE", 2, "0.40", Some(10)).await;
    room.stock("APPLE", 10, "0.80", Some(20)).await;
    let mut client = serve(&room).await;
    let reserve = |order_id: &str, quantity| {
        authorized(pb::ReserveStockRequest {
            order_id: order_id.to_owned(),
            lines: lines(&[("APPLE", quantity)]),
            ttl_seconds: 60,
            with_quote: true,
        })
    };
    let priced = |reservation: pb::Reservation| {
        let quote = reservation.quote.expect("asked for a quote");
        (
            quote.lines[0].quantity,
            quote.lines[0].line_total.clone(),
            quote.subtotal,
        )
    };
    let first = uuid::Uuid::new_v4().to_string();
    let held = client.reserve_stock(reserve(&first, 2)).await.unwrap();
    assert_eq!(priced(held.into_inner()), (2, "1.00".into(), "1.00".into()));

    // The cheap units are the first order's: the second is priced after them.
    let second = uuid::Uuid::new_v4().to_string();
    let held = client.reserve_stock(reserve(&second, 3)).await.unwrap();
    assert_eq!(priced(held.into_inner()), (3, "3.00".into(), "3.00".into()));
    // GetPrice for the order, asked afterwards, agrees.
    let asked = client
        .get_price(authorized(pb::GetPriceRequest {
            lines: lines(&[("APPLE", 3)]),
            order_id: second.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(asked.subtotal, "3.00");

    // A repeat asking for 5 answers the stored 3, priced as 3.
    let repeat = client
        .reserve_stock(reserve(&second, 5))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(repeat.lines[0].quantity, 3);
    assert_eq!(priced(repeat), (3, "3.00".into(), "3.00".into()));

    // A refusal answers no quote and holds nothing more.
    let short = client
        .reserve_stock(reserve(&uuid::Uuid::new_v4().to_string(), 8))
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::FailedPrecondition);
    assert_eq!(room.levels("APPLE").await, (12, 5, 7));
    room.audit().await;
}

#[tokio::test]
async fn restock_and_catalog_calls_over_grpc() {
    let room = Stockroom::new().await;
    let mut client = serve(&room).await;
    let item = client
        .upsert_item(authorized(pb::UpsertItemRequest {
            sku: "pear".into(),
            active: true,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(item.sku, "PEAR");
    let request = || {
        authorized(pb::RestockItemsRequest {
            transaction_id: "truck-7-0001".into(),
            truck_id: "truck-7".into(),
            supplier_id: "orchard".into(),
            items: vec![pb::RestockItem {
                sku: "PEAR".into(),
                quantity: 12,
                unit_cost: "0.3500".into(),
                mfd_date: days(-2).to_string(),
                expiry_date: days(12).to_string(),
            }],
        })
    };
    let first = client.restock_items(request()).await.unwrap().into_inner();
    let again = client.restock_items(request()).await.unwrap().into_inner();
    assert_eq!(first, again);
    assert_eq!(room.levels("PEAR").await, (12, 0, 12));
    let mut bad = request().into_inner();
    bad.transaction_id = "truck-7-0002".into();
    bad.items[0].unit_cost = "cheap".into();
    assert_eq!(
        client
            .restock_items(authorized(bad))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );

    let retired = client
        .retire_item(authorized(pb::ItemRef { sku: "PEAR".into() }))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !retired.deleted,
        "a product with history is deactivated, not deleted"
    );
    client
        .upsert_item(authorized(pb::UpsertItemRequest {
            sku: "FIG".into(),
            active: true,
        }))
        .await
        .unwrap();
    let retired = client
        .retire_item(authorized(pb::ItemRef { sku: "fig".into() }))
        .await
        .unwrap()
        .into_inner();
    assert!(retired.deleted);
}

#[tokio::test]
async fn an_order_asking_for_a_price_is_not_priced_past_its_own_reservation() {
    let room = Stockroom::new().await;
    // Two batches: 3 cheap units expiring first, then dearer ones.
    room.stock("APPLE", 3, "0.40", Some(5)).await;
    room.stock("APPLE", 10, "0.80", Some(20)).await;
    let mut client = serve(&room).await;
    let order_id = uuid::Uuid::new_v4().to_string();
    client
        .reserve_stock(authorized(pb::ReserveStockRequest {
            order_id: order_id.clone(),
            lines: lines(&[("APPLE", 3)]),
            ttl_seconds: 60,
            with_quote: false,
        }))
        .await
        .unwrap();
    let priced_by = client.clone();
    let quote = |order_id: String| {
        let mut client = priced_by.clone();
        async move {
            client
                .get_price(authorized(pb::GetPriceRequest {
                    lines: lines(&[("APPLE", 3)]),
                    order_id,
                }))
                .await
                .unwrap()
                .into_inner()
                .subtotal
        }
    };
    // Anyone else is priced after the 3 held units: 3 × 0.80 × 1.25.
    assert_eq!(quote(String::new()).await, "3.00");
    // The holder itself is priced from the units it holds: 3 × 0.40 × 1.25.
    assert_eq!(quote(order_id.clone()).await, "1.50");
    // Once released, the reservation is nobody's: the order prices like anyone.
    client
        .release_stock(authorized(pb::OrderRef {
            order_id: order_id.clone(),
        }))
        .await
        .unwrap();
    assert_eq!(quote(order_id).await, "1.50");
    let bad = client
        .get_price(authorized(pb::GetPriceRequest {
            lines: lines(&[("APPLE", 1)]),
            order_id: "nope".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}
