use diesel_async::RunQueryDsl;
use inventory::{allocation, db::ReservationStatus, error::InventoryError, items, reservations};
use uuid::Uuid;

use crate::support::*;

fn margin() -> rust_decimal::Decimal {
    "0.25".parse().unwrap()
}

#[tokio::test]
async fn commit_draws_first_expiry_first_and_prices_cost_plus_per_line() {
    let room = Stockroom::new().await;
    let late = room.stock("APPLE", 5, "1.10", Some(10)).await;
    let early = room.stock("APPLE", 2, "1.00", Some(5)).await;
    let mut conn = room.conn().await;
    let order = Uuid::new_v4();
    reservations::reserve(&conn, order, &[line("APPLE", 3)], TTL)
        .await
        .unwrap();
    let priced = allocation::commit(&mut conn, order, margin())
        .await
        .unwrap();
    let apple = &priced.lines[0];
    // (2 × 1.00 + 1 × 1.10) × 1.25 = 3.875 → 3.88; 3.88 / 3 = 1.2933… → 1.29
    assert_eq!(apple.line_total.to_string(), "3.88");
    assert_eq!(apple.unit_price.to_string(), "1.29");
    assert_eq!(priced.subtotal.to_string(), "3.88");
    let drawn: Vec<_> = apple
        .draws
        .iter()
        .map(|d| (d.batch_id, d.quantity))
        .collect();
    assert_eq!(drawn, [(early.batch_ids[0], 2), (late.batch_ids[0], 1)]);
    assert_eq!(room.levels("APPLE").await, (4, 0, 4));
    // A repeat answers the same commitment and moves nothing.
    let again = allocation::commit(&mut conn, order, margin())
        .await
        .unwrap();
    assert_eq!(again, priced);
    assert_eq!(
        room.scalar("SELECT count(*) FROM stock_movements WHERE kind = 'COMMIT'")
            .await,
        2
    );
    assert!(matches!(
        reservations::release(&mut conn, order).await,
        Err(InventoryError::WrongState {
            status: ReservationStatus::Committed,
            ..
        })
    ));
    room.audit().await;
}

#[tokio::test]
async fn a_product_margin_overrides_the_default() {
    let room = Stockroom::new().await;
    room.stock("COFFEE", 10, "4.00", Some(100)).await;
    let mut conn = room.conn().await;
    items::set_margin(&mut conn, "coffee", Some("0.5".parse().unwrap()))
        .await
        .unwrap();
    let order = Uuid::new_v4();
    reservations::reserve(&conn, order, &[line("COFFEE", 2)], TTL)
        .await
        .unwrap();
    let priced = allocation::commit(&mut conn, order, margin())
        .await
        .unwrap();
    assert_eq!(priced.lines[0].line_total.to_string(), "12.00");
    assert!(
        items::set_margin(&mut conn, "COFFEE", Some("-0.1".parse().unwrap()))
            .await
            .is_err()
    );
    assert!(
        items::set_margin(&mut conn, "COFFEE", Some("0.12345".parse().unwrap()))
            .await
            .is_err()
    );
    assert!(matches!(
        items::set_margin(&mut conn, "GHOST", None).await,
        Err(InventoryError::UnknownSku(_))
    ));
}

#[tokio::test]
async fn expired_batches_are_never_sold() {
    let room = Stockroom::new().await;
    let stale = room.stock("MILK", 4, "0.50", Some(3)).await;
    room.stock("MILK", 2, "0.80", Some(9)).await;
    let mut conn = room.conn().await;
    diesel::sql_query("UPDATE batches SET expiry_date = CURRENT_DATE - 1 WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(stale.batch_ids[0])
        .execute(&mut conn)
        .await
        .unwrap();
    // Only the two fresh units are available, before any write-off runs.
    assert_eq!(room.levels("MILK").await, (6, 0, 2));
    let short = reservations::reserve(&conn, Uuid::new_v4(), &[line("MILK", 3)], TTL).await;
    assert!(
        matches!(short, Err(InventoryError::Shortfall(ref s)) if s[0].available == 2),
        "{short:?}"
    );
    let order = Uuid::new_v4();
    reservations::reserve(&conn, order, &[line("MILK", 2)], TTL)
        .await
        .unwrap();
    let priced = allocation::commit(&mut conn, order, margin())
        .await
        .unwrap();
    assert!(
        priced.lines[0]
            .draws
            .iter()
            .all(|d| d.batch_id != stale.batch_ids[0])
    );
    // The write-off turns the stale units into a ledger entry.
    let units = inventory::expiry::write_off_expired(&mut conn)
        .await
        .unwrap();
    assert_eq!(units, 4);
    assert_eq!(room.levels("MILK").await, (0, 0, 0));
    assert_eq!(
        room.scalar("SELECT count(*) FROM stock_movements WHERE kind = 'EXPIRY'")
            .await,
        1
    );
    room.audit().await;
}

#[tokio::test]
async fn returned_stock_goes_back_into_the_batches_it_came_from_once() {
    let room = Stockroom::new().await;
    let batch = room.stock("EGGS", 6, "2.00", Some(20)).await;
    let mut conn = room.conn().await;
    let order = Uuid::new_v4();
    reservations::reserve(&conn, order, &[line("EGGS", 4)], TTL)
        .await
        .unwrap();
    assert!(matches!(
        allocation::return_stock(&mut conn, order).await,
        Err(InventoryError::WrongState {
            status: ReservationStatus::Active,
            ..
        })
    ));
    allocation::commit(&mut conn, order, margin())
        .await
        .unwrap();
    assert_eq!(room.levels("EGGS").await, (2, 0, 2));
    let returned = allocation::return_stock(&mut conn, order).await.unwrap();
    assert_eq!(returned.status, ReservationStatus::Returned);
    assert_eq!(room.levels("EGGS").await, (6, 0, 6));
    allocation::return_stock(&mut conn, order).await.unwrap();
    assert_eq!(
        room.levels("EGGS").await,
        (6, 0, 6),
        "a repeat returns nothing more"
    );
    assert_eq!(
        room.scalar(&format!(
            "SELECT remaining FROM batches WHERE id = '{}'",
            batch.batch_ids[0]
        ))
        .await,
        6
    );
    // The commitment stays readable after the return.
    assert_eq!(
        allocation::commit(&mut conn, order, margin())
            .await
            .unwrap()
            .lines[0]
            .quantity,
        4
    );
    room.audit().await;
}

#[tokio::test]
async fn units_returned_to_a_batch_that_expired_meanwhile_are_written_off() {
    let room = Stockroom::new().await;
    let batch = room.stock("YOGURT", 5, "0.50", Some(3)).await;
    let mut conn = room.conn().await;
    let order = Uuid::new_v4();
    reservations::reserve(&conn, order, &[line("YOGURT", 2)], TTL)
        .await
        .unwrap();
    allocation::commit(&mut conn, order, margin())
        .await
        .unwrap();
    diesel::sql_query("UPDATE batches SET expiry_date = CURRENT_DATE - 1 WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(batch.batch_ids[0])
        .execute(&mut conn)
        .await
        .unwrap();
    allocation::return_stock(&mut conn, order).await.unwrap();
    // Three expired units stay on hand until the sweep; the two returned ones never come back.
    assert_eq!(room.levels("YOGURT").await, (3, 0, 0));
    assert_eq!(
        room.scalar(
            "SELECT count(*) FROM stock_movements WHERE reference = 'returned after expiry'"
        )
        .await,
        1
    );
    room.audit().await;
}
