use diesel_async::RunQueryDsl;
use inventory::{allocation, db::ReservationStatus, error::InventoryError, expiry, reservations};
use uuid::Uuid;

use crate::support::*;

#[tokio::test]
async fn a_reservation_is_all_or_nothing_and_bad_input_writes_nothing() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 5, "0.30", Some(10)).await;
    room.stock("MILK", 1, "0.80", Some(10)).await;
    let mut conn = room.conn().await;
    let order = Uuid::new_v4();
    let short =
        reservations::reserve(&conn, order, &[line("APPLE", 2), line("MILK", 3)], TTL).await;
    match short {
        Err(InventoryError::Shortfall(s)) => {
            assert_eq!(s.len(), 1);
            assert_eq!(
                (s[0].sku.as_str(), s[0].requested, s[0].available),
                ("MILK", 3, 1)
            );
        }
        other => panic!("expected a shortfall, got {other:?}"),
    }
    for (lines, expected) in [
        (vec![line("APPLE", 0)], "quantity"),
        (vec![line("APPLE", -2)], "quantity"),
        (vec![], "lines"),
        (vec![line("not a sku!", 1)], "sku"),
    ] {
        match reservations::reserve(&conn, Uuid::new_v4(), &lines, TTL).await {
            Err(InventoryError::Invalid { field, .. }) => assert_eq!(field, expected),
            other => panic!("{lines:?}: expected invalid input, got {other:?}"),
        }
    }
    match reservations::reserve(
        &conn,
        Uuid::new_v4(),
        &[line("APPLE", 1), line("GHOST", 1)],
        TTL,
    )
    .await
    {
        Err(InventoryError::UnknownSku(skus)) => assert_eq!(skus, ["GHOST"]),
        other => panic!("expected unknown SKU, got {other:?}"),
    }
    inventory::items::upsert(&mut conn, "APPLE", false)
        .await
        .unwrap();
    assert!(matches!(
        reservations::reserve(&conn, Uuid::new_v4(), &[line("APPLE", 1)], TTL).await,
        Err(InventoryError::InactiveSku(_))
    ));
    assert_eq!(room.scalar("SELECT count(*) FROM reservations").await, 0);
    assert_eq!(
        room.scalar("SELECT count(*) FROM stock_movements WHERE kind <> 'RESTOCK'")
            .await,
        0
    );
    room.audit().await;
}

#[tokio::test]
async fn release_gives_the_units_back_once() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 5, "0.30", Some(10)).await;
    let mut conn = room.conn().await;
    let order = Uuid::new_v4();
    reservations::reserve(&conn, order, &[line("apple", 4)], TTL)
        .await
        .unwrap();
    assert_eq!(room.levels("APPLE").await, (5, 4, 1));
    let released = reservations::release(&mut conn, order).await.unwrap();
    assert_eq!(released.status, ReservationStatus::Released);
    assert_eq!(room.levels("APPLE").await, (5, 0, 5));
    let again = reservations::release(&mut conn, order).await.unwrap();
    assert_eq!(again.status, ReservationStatus::Released);
    assert_eq!(
        room.scalar("SELECT count(*) FROM stock_movements WHERE kind = 'RELEASE'")
            .await,
        1
    );
    assert!(matches!(
        reservations::release(&mut conn, Uuid::new_v4()).await,
        Err(InventoryError::UnknownOrder(_))
    ));
    // A released reservation cannot be committed.
    assert!(matches!(
        allocation::commit(&mut conn, order, "0.25".parse().unwrap()).await,
        Err(InventoryError::WrongState {
            status: ReservationStatus::Released,
            ..
        })
    ));
    room.audit().await;
}

#[tokio::test]
async fn lapsed_reservations_expire_give_stock_back_and_cannot_be_committed() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 5, "0.30", Some(10)).await;
    let mut conn = room.conn().await;
    let lapsed = Uuid::new_v4();
    let live = Uuid::new_v4();
    reservations::reserve(
        &conn,
        lapsed,
        &[line("APPLE", 2)],
        std::time::Duration::from_secs(1),
    )
    .await
    .unwrap();
    reservations::reserve(&conn, live, &[line("APPLE", 2)], TTL)
        .await
        .unwrap();
    // Past its time but not yet swept: it still holds its units, and commit refuses it.
    diesel::sql_query(
        "UPDATE reservations SET expires_at = now() - interval '1 minute' WHERE order_id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(lapsed)
    .execute(&mut conn)
    .await
    .unwrap();
    assert!(matches!(
        allocation::commit(&mut conn, lapsed, "0.25".parse().unwrap()).await,
        Err(InventoryError::Expired(_))
    ));
    let (expired, _) = expiry::sweep(&room.pool).await.unwrap();
    assert_eq!(expired, 1);
    assert_eq!(
        reservations::find(&conn, lapsed)
            .await
            .unwrap()
            .unwrap()
            .status,
        ReservationStatus::Expired
    );
    assert_eq!(
        reservations::find(&conn, live)
            .await
            .unwrap()
            .unwrap()
            .status,
        ReservationStatus::Active
    );
    assert_eq!(room.levels("APPLE").await, (5, 2, 3));
    assert_eq!(
        expiry::sweep(&room.pool).await.unwrap().0,
        0,
        "a second sweep finds nothing"
    );
    room.audit().await;
}

#[tokio::test]
async fn a_crash_between_reserving_and_writing_the_order_loses_nothing() {
    // The orders service reserves, then dies before recording the order: the
    // reservation is simply never confirmed, and time gives the stock back.
    let room = Stockroom::new().await;
    room.stock("APPLE", 3, "0.30", Some(10)).await;
    let conn = room.conn().await;
    let orphan = Uuid::new_v4();
    reservations::reserve(
        &conn,
        orphan,
        &[line("APPLE", 3)],
        std::time::Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert_eq!(room.levels("APPLE").await.2, 0);
    // Kept: the one-second hold has to run out, which is what is tested.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    expiry::sweep(&room.pool).await.unwrap();
    assert_eq!(room.levels("APPLE").await, (3, 0, 3));
    room.audit().await;
}

#[tokio::test]
async fn a_shortfall_names_only_what_is_short_with_its_real_availability() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 3, "0.30", Some(10)).await;
    room.stock("MILK", 4, "0.80", Some(10)).await;
    let conn = room.conn().await;
    // APPLE is held first (2 of 3), then MILK fails: APPLE must not be reported short.
    match reservations::reserve(
        &conn,
        Uuid::new_v4(),
        &[line("APPLE", 2), line("MILK", 10)],
        TTL,
    )
    .await
    {
        Err(InventoryError::Shortfall(s)) => {
            assert_eq!(s.len(), 1, "{s:?}");
            assert_eq!(
                (s[0].sku.as_str(), s[0].requested, s[0].available),
                ("MILK", 10, 4)
            );
        }
        other => panic!("expected a shortfall, got {other:?}"),
    }
    assert_eq!(room.levels("APPLE").await, (3, 0, 3), "nothing stays held");
    room.audit().await;
}

#[tokio::test]
async fn adjusting_a_reservation_holds_more_gives_back_and_refuses_too_much() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 10, "0.40", Some(10)).await;
    room.stock("MILK", 5, "0.80", Some(10)).await;
    let order = uuid::Uuid::new_v4();
    let mut conn = room.conn().await;
    inventory::reservations::reserve(&conn, order, &[line("APPLE", 4), line("MILK", 2)], TTL)
        .await
        .unwrap();
    let first = inventory::reservations::find(&conn, order)
        .await
        .unwrap()
        .unwrap();
    // Grow APPLE, drop MILK, add nothing else.
    let adjusted = inventory::reservations::adjust(&mut conn, order, &[line("apple", 7)])
        .await
        .unwrap();
    assert_eq!(adjusted.lines, [line("APPLE", 7)]);
    assert_eq!(
        adjusted.expires_at, first.expires_at,
        "the hold keeps its expiry"
    );
    drop(conn);
    assert_eq!(room.levels("APPLE").await, (10, 7, 3));
    assert_eq!(room.levels("MILK").await, (5, 0, 5));
    // Someone else takes 2; this order may still grow to 8, not to 9.
    let mut conn = room.conn().await;
    inventory::reservations::reserve(&conn, uuid::Uuid::new_v4(), &[line("APPLE", 2)], TTL)
        .await
        .unwrap();
    let short =
        inventory::reservations::adjust(&mut conn, order, &[line("APPLE", 9), line("MILK", 1)])
            .await
            .unwrap_err();
    match short {
        inventory::error::InventoryError::Shortfall(s) => {
            assert_eq!(
                (s[0].sku.as_str(), s[0].requested, s[0].available),
                ("APPLE", 9, 8)
            )
        }
        other => panic!("{other:?}"),
    }
    drop(conn);
    assert_eq!(room.levels("APPLE").await, (10, 9, 1), "nothing changed");
    assert_eq!(room.levels("MILK").await, (5, 0, 5));
    let mut conn = room.conn().await;
    inventory::reservations::release(&mut conn, order)
        .await
        .unwrap();
    let released = inventory::reservations::adjust(&mut conn, order, &[line("APPLE", 1)]).await;
    assert!(matches!(
        released,
        Err(inventory::error::InventoryError::WrongState { .. })
    ));
    drop(conn);
    room.audit().await;
}
