use inventory::{
    error::InventoryError,
    items,
    restock::{self, Delivery, RestockItem},
    stock,
};

use crate::support::*;

fn delivery(transaction_id: &str, items: Vec<RestockItem>) -> Delivery {
    Delivery {
        transaction_id: transaction_id.into(),
        truck_id: "truck-1".into(),
        supplier_id: "farm".into(),
        items,
    }
}

fn item(sku: &str, quantity: i32) -> RestockItem {
    RestockItem {
        sku: sku.into(),
        quantity,
        unit_cost: "0.4000".parse().unwrap(),
        mfd_date: Some(days(-1)),
        expiry_date: Some(days(10)),
    }
}

#[tokio::test]
async fn a_retried_delivery_adds_stock_once() {
    let room = Stockroom::new().await;
    let mut conn = room.conn().await;
    items::upsert(&mut conn, "APPLE", true).await.unwrap();
    items::upsert(&mut conn, "PEAR", true).await.unwrap();
    let d = delivery("tx-1", vec![item("apple", 10), item("PEAR", 5)]);
    let first = restock::restock(&mut conn, &d).await.unwrap();
    assert_eq!((first.units, first.batch_ids.len()), (15, 2));
    assert_eq!(restock::restock(&mut conn, &d).await.unwrap(), first);
    drop(conn);
    let retries = (0..6).map(|_| async {
        let mut conn = room.conn().await;
        restock::restock(&mut conn, &delivery("tx-2", vec![item("APPLE", 7)]))
            .await
            .unwrap()
    });
    let receipts = futures::future::join_all(retries).await;
    assert!(receipts.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(room.levels("APPLE").await, (17, 0, 17));
    assert_eq!(room.scalar("SELECT count(*) FROM batches").await, 3);
    room.audit().await;
}

#[tokio::test]
async fn a_delivery_with_any_bad_item_writes_nothing() {
    let room = Stockroom::new().await;
    let mut conn = room.conn().await;
    items::upsert(&mut conn, "APPLE", true).await.unwrap();
    match restock::restock(
        &mut conn,
        &delivery("tx-1", vec![item("APPLE", 5), item("GHOST", 1)]),
    )
    .await
    {
        Err(InventoryError::UnknownSku(skus)) => assert_eq!(skus, ["GHOST"]),
        other => panic!("expected unknown SKU, got {other:?}"),
    }
    let bad = RestockItem {
        mfd_date: Some(days(-1)),
        expiry_date: Some(days(-2)),
        ..item("APPLE", 1)
    };
    assert!(matches!(
        restock::restock(&mut conn, &delivery("tx-2", vec![item("APPLE", 5), bad])).await,
        Err(InventoryError::Invalid {
            field: "expiryDate",
            ..
        })
    ));
    assert_eq!(room.scalar("SELECT count(*) FROM batches").await, 0);
    assert_eq!(room.scalar("SELECT count(*) FROM restocks").await, 0);
    // The failed transaction id is still free to use.
    restock::restock(&mut conn, &delivery("tx-1", vec![item("APPLE", 5)]))
        .await
        .unwrap();
    room.audit().await;
}

#[tokio::test]
async fn adjustments_take_first_expiry_first_and_never_below_reserved() {
    let room = Stockroom::new().await;
    let late = room.stock("APPLE", 5, "1.10", Some(10)).await;
    let early = room.stock("APPLE", 3, "1.00", Some(4)).await;
    let mut conn = room.conn().await;
    inventory::reservations::reserve(&conn, uuid::Uuid::new_v4(), &[line("APPLE", 4)], TTL)
        .await
        .unwrap();
    match stock::adjust(&mut conn, "APPLE", -5, "dropped a crate").await {
        Err(InventoryError::Shortfall(s)) => assert_eq!((s[0].requested, s[0].available), (5, 4)),
        other => panic!("expected a shortfall, got {other:?}"),
    }
    stock::adjust(&mut conn, "APPLE", -4, "dropped a crate")
        .await
        .unwrap();
    assert_eq!(room.levels("APPLE").await, (4, 4, 0));
    let remaining = |id: uuid::Uuid| format!("SELECT remaining FROM batches WHERE id = '{id}'");
    assert_eq!(room.scalar(&remaining(early.batch_ids[0])).await, 0);
    assert_eq!(room.scalar(&remaining(late.batch_ids[0])).await, 4);
    stock::adjust(&mut conn, "APPLE", 2, "found behind the shelf")
        .await
        .unwrap();
    assert_eq!(room.levels("APPLE").await, (6, 4, 2));
    for (delta, reason) in [(0, "x"), (1, "  ")] {
        assert!(matches!(
            stock::adjust(&mut conn, "APPLE", delta, reason).await,
            Err(InventoryError::Invalid { .. })
        ));
    }
    let reasons = room
        .scalar("SELECT count(*) FROM stock_movements WHERE kind = 'ADJUSTMENT' AND reference LIKE 'adjustment: %'")
        .await;
    assert_eq!(reasons, 3);
    room.audit().await;
}

#[tokio::test]
async fn retiring_forgets_untouched_items_and_deactivates_used_ones() {
    let room = Stockroom::new().await;
    let mut conn = room.conn().await;
    items::upsert(&mut conn, "NEW", true).await.unwrap();
    assert!(items::retire(&mut conn, "new").await.unwrap());
    assert_eq!(room.scalar("SELECT count(*) FROM items").await, 0);
    assert!(
        items::retire(&mut conn, "NEW").await.unwrap(),
        "retiring twice is fine"
    );
    drop(conn);
    room.stock("USED", 1, "1.00", Some(3)).await;
    let mut conn = room.conn().await;
    assert!(!items::retire(&mut conn, "USED").await.unwrap());
    assert_eq!(
        room.scalar("SELECT count(*) FROM items WHERE sku = 'USED' AND NOT active")
            .await,
        1
    );
}

#[tokio::test]
async fn a_late_retry_answers_the_first_receipt_even_when_it_would_no_longer_validate() {
    let room = Stockroom::new().await;
    let mut conn = room.conn().await;
    items::upsert(&mut conn, "APPLE", true).await.unwrap();
    let first = restock::restock(&mut conn, &delivery("tx-late", vec![item("APPLE", 4)]))
        .await
        .unwrap();
    // The next day the goods count as expired and the SKU is no longer sold…
    let stale = RestockItem {
        mfd_date: Some(days(-10)),
        expiry_date: Some(days(-1)),
        ..item("APPLE", 4)
    };
    items::upsert(&mut conn, "APPLE", false).await.unwrap();
    // …but the retry is the same delivery: it answers the first receipt.
    assert_eq!(
        restock::restock(&mut conn, &delivery("tx-late", vec![stale]))
            .await
            .unwrap(),
        first
    );
    assert_eq!(room.levels("APPLE").await.0, 4);
}
