//! Never oversell, measured under contention.

use std::sync::Arc;

use inventory::{allocation, error::InventoryError, expiry, reservations, restock};
use rand::{Rng, SeedableRng, rngs::StdRng};
use uuid::Uuid;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_one_unit_reservations_sell_exactly_the_hundred_available() {
    let room = Arc::new(Stockroom::new().await);
    room.stock("APPLE", 100, "0.30", Some(10)).await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let room = room.clone();
            tokio::spawn(async move {
                let conn = room.conn().await;
                reservations::reserve(&conn, Uuid::new_v4(), &[line("APPLE", 1)], TTL).await
            })
        })
        .collect();
    let mut won = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(InventoryError::Shortfall(s)) => {
                assert_eq!((s[0].sku.as_str(), s[0].requested), ("APPLE", 1));
                refused += 1
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!((won, refused), (100, 100));
    assert_eq!(room.levels("APPLE").await, (100, 100, 0));
    room.audit().await;
}

#[tokio::test]
async fn a_repeated_reserve_with_one_order_id_reserves_once() {
    let room = Stockroom::new().await;
    room.stock("APPLE", 10, "0.30", Some(10)).await;
    let order = Uuid::new_v4();
    let conn = room.conn().await;
    let first = reservations::reserve(&conn, order, &[line("APPLE", 3)], TTL)
        .await
        .unwrap();
    let again = reservations::reserve(&conn, order, &[line("APPLE", 3)], TTL)
        .await
        .unwrap();
    assert_eq!(first, again);
    // Even a different request under the same key answers the first result.
    let other = reservations::reserve(&conn, order, &[line("APPLE", 5)], TTL)
        .await
        .unwrap();
    assert_eq!(other.lines, first.lines);
    drop(conn);
    // And concurrent repeats too.
    let order = Uuid::new_v4();
    let attempts = (0..8).map(|_| async {
        let conn = room.conn().await;
        reservations::reserve(&conn, order, &[line("APPLE", 2)], TTL).await
    });
    for result in futures::future::join_all(attempts).await {
        assert_eq!(result.unwrap().lines, vec![line("APPLE", 2)]);
    }
    assert_eq!(room.levels("APPLE").await, (10, 5, 5));
    assert_eq!(
        room.scalar("SELECT count(*) FROM stock_movements WHERE kind = 'RESERVE'")
            .await,
        2
    );
    room.audit().await;
}

/// Commits are computed from unlocked reads and checked when written: when
/// many race for the last units of the batch that expires first, each one
/// that lost recomputes from the next batch. Exactly the first batch's units
/// go at its price, nothing fails, nothing is drawn twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_racing_for_a_batch_fall_through_to_the_next() {
    let room = Arc::new(Stockroom::new().await);
    room.stock("APPLE", 5, "1.00", Some(5)).await;
    room.stock("APPLE", 100, "2.00", Some(20)).await;
    let mut orders = Vec::new();
    {
        let conn = room.conn().await;
        for _ in 0..20 {
            let order = Uuid::new_v4();
            reservations::reserve(&conn, order, &[line("APPLE", 1)], TTL)
                .await
                .unwrap();
            orders.push(order);
        }
    }
    let commits: Vec<_> = orders
        .iter()
        .map(|&order| {
            let room = room.clone();
            tokio::spawn(async move {
                let mut conn = room.conn().await;
                allocation::commit(&mut conn, order, "0.25".parse().unwrap()).await
            })
        })
        .collect();
    let mut prices = Vec::new();
    for commit in commits {
        let priced = commit.await.unwrap().expect("every commit succeeds");
        prices.push(priced.lines[0].unit_price.to_string());
    }
    prices.sort();
    assert_eq!(
        prices.iter().filter(|p| *p == "1.25").count(),
        5,
        "{prices:?}"
    );
    assert_eq!(
        prices.iter().filter(|p| *p == "2.50").count(),
        15,
        "{prices:?}"
    );
    assert_eq!(
        room.scalar("SELECT SUM(remaining)::int8 FROM batches WHERE unit_cost = 1.00")
            .await,
        0
    );
    assert_eq!(
        room.scalar("SELECT SUM(remaining)::int8 FROM batches WHERE unit_cost = 2.00")
            .await,
        85
    );
    assert_eq!(
        room.scalar("SELECT SUM(quantity)::int8 FROM allocations")
            .await,
        20
    );
    assert_eq!(room.levels("APPLE").await, (85, 0, 85));
    // A repeat answers the first commitment and moves nothing.
    let mut conn = room.conn().await;
    let again = allocation::commit(&mut conn, orders[0], "0.25".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(again.lines[0].quantity, 1);
    assert_eq!(
        room.scalar("SELECT SUM(quantity)::int8 FROM allocations")
            .await,
        20
    );
    room.audit().await;
}

#[derive(Debug)]
enum Op {
    Reserve,
    Release,
    Commit,
    Return,
    Expire,
    Restock,
    Adjust,
}

/// Many tasks run a random mix of every stock operation on a few SKUs while an
/// auditor reads the books in consistent snapshots; every snapshot must balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_random_mix_of_operations_keeps_the_books_balanced_at_every_step() {
    const SKUS: [&str; 3] = ["APPLE", "MILK", "BREAD"];
    let room = Arc::new(Stockroom::new().await);
    for sku in SKUS {
        room.stock(sku, 30, "1.00", Some(20)).await;
        room.stock(sku, 20, "1.20", Some(5)).await;
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let auditor = {
        let (room, stop) = (room.clone(), stop.clone());
        tokio::spawn(async move {
            let mut audits = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                audit(&room.pool).await;
                audits += 1;
            }
            audits
        })
    };
    let workers: Vec<_> = (0..8u64)
        .map(|seed| {
            let room = room.clone();
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut mine: Vec<Uuid> = Vec::new();
                let mut ops = 0;
                for _ in 0..60 {
                    let op = match rng.gen_range(0..10) {
                        0..=3 => Op::Reserve,
                        4 => Op::Release,
                        5 => Op::Commit,
                        6 => Op::Return,
                        7 => Op::Expire,
                        8 => Op::Restock,
                        _ => Op::Adjust,
                    };
                    let mut conn = room.conn().await;
                    let sku = SKUS[rng.gen_range(0..SKUS.len())];
                    let result = match op {
                        Op::Reserve => {
                            let order = Uuid::new_v4();
                            let lines = vec![line(sku, rng.gen_range(1..6)), line(SKUS[rng.gen_range(0..3)], rng.gen_range(1..4))];
                            let r = reservations::reserve(&conn, order, &lines, TTL).await.map(|_| ());
                            if r.is_ok() {
                                mine.push(order);
                            }
                            r
                        }
                        Op::Release | Op::Commit | Op::Return | Op::Expire if !mine.is_empty() => {
                            let order = mine[rng.gen_range(0..mine.len())];
                            match op {
                                Op::Release => reservations::release(&mut conn, order).await.map(|_| ()),
                                Op::Commit => allocation::commit(&mut conn, order, "0.25".parse().unwrap()).await.map(|_| ()),
                                Op::Return => allocation::return_stock(&mut conn, order).await.map(|_| ()),
                                _ => {
                                    use diesel_async::RunQueryDsl;
                                    diesel::sql_query("UPDATE reservations SET expires_at = now() - interval '1 second' WHERE order_id = $1 AND status = 'ACTIVE'")
                                        .bind::<diesel::sql_types::Uuid, _>(order)
                                        .execute(&mut conn)
                                        .await
                                        .unwrap();
                                    expiry::sweep(&room.pool).await.map(|_| ())
                                }
                            }
                        }
                        Op::Restock => {
                            let delivery = restock::Delivery {
                                transaction_id: Uuid::new_v4().to_string(),
                                truck_id: "t".into(),
                                supplier_id: "s".into(),
                                items: vec![restock::RestockItem {
                                    sku: sku.into(),
                                    quantity: rng.gen_range(1..10),
                                    unit_cost: "1.10".parse().unwrap(),
                                    mfd_date: None,
                                    expiry_date: Some(days(rng.gen_range(1..30))),
                                }],
                            };
                            restock::restock(&mut conn, &delivery).await.map(|_| ())
                        }
                        Op::Adjust => {
                            let delta = if rng.gen_bool(0.5) { rng.gen_range(1..4) } else { -rng.gen_range(1..4) };
                            inventory::stock::adjust(&mut conn, sku, delta, "cycle count").await
                        }
                        _ => Ok(()),
                    };
                    match result {
                        Ok(())
                        | Err(InventoryError::Shortfall(_))
                        | Err(InventoryError::WrongState { .. })
                        | Err(InventoryError::Expired(_)) => ops += 1,
                        Err(other) => panic!("{op:?} failed: {other}"),
                    }
                }
                ops
            })
        })
        .collect();
    let mut ops = 0;
    for worker in workers {
        ops += worker.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let audits = auditor.await.unwrap();
    assert_eq!(ops, 480);
    assert!(audits > 3, "the auditor ran {audits} times");
    room.audit().await;
    for sku in SKUS {
        let (_, _, available) = room.levels(sku).await;
        assert!(available >= 0);
    }
}
